// The only place errors become HTTP statuses and Connect codes. Everything else throws ApiError
// (or lets an unknown error through, which becomes 500 "internal").

import { Code, ConnectError } from "@connectrpc/connect";

export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "resource_exhausted"
  | "payload_too_large"
  | "unprocessable"
  | "unsupported_media_type"
  | "method_not_allowed"
  | "unavailable"
  | "unimplemented"
  | "internal";

/** An error meant for the client: `message` names what was wrong. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export const badRequest = (msg: string) => new ApiError("invalid_argument", msg);
export const tooLarge = (msg: string) => new ApiError("payload_too_large", msg);
export const unprocessable = (msg: string) => new ApiError("unprocessable", msg);

const httpStatus: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  resource_exhausted: 429,
  internal: 500,
  unimplemented: 501,
  unavailable: 503,
};

const connectCode: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  method_not_allowed: Code.Unimplemented,
  payload_too_large: Code.InvalidArgument,
  unsupported_media_type: Code.InvalidArgument,
  unprocessable: Code.InvalidArgument,
  resource_exhausted: Code.ResourceExhausted,
  internal: Code.Internal,
  unimplemented: Code.Unimplemented,
  unavailable: Code.Unavailable,
};

// The Connect wire name of each code, as Pyroscope writes it in plain-HTTP error bodies.
const connectName: Record<ErrorCode, string> = {
  invalid_argument: "invalid_argument",
  unauthenticated: "unauthenticated",
  permission_denied: "permission_denied",
  not_found: "not_found",
  method_not_allowed: "unimplemented",
  payload_too_large: "invalid_argument",
  unsupported_media_type: "invalid_argument",
  unprocessable: "unknown",
  resource_exhausted: "resource_exhausted",
  internal: "internal",
  unimplemented: "unimplemented",
  unavailable: "unavailable",
};

function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ConnectError) {
    for (const [k, v] of Object.entries(connectCode)) if (v === err.code) return new ApiError(k as ErrorCode, err.rawMessage);
  }
  console.error("internal error:", err);
  return new ApiError("internal", "internal error");
}

/** A plain-HTTP JSON error response, body `{"code","message"}` as Pyroscope's HTTP routes answer. */
export function errorResponse(err: unknown): Response {
  const e = asApiError(err);
  return Response.json({ code: connectName[e.code], message: e.message }, { status: httpStatus[e.code] });
}

/** The HTTP status an error maps to (for metrics and logs). */
export function errorStatus(err: unknown): number {
  return err instanceof ApiError ? httpStatus[err.code] : 500;
}

/** For Connect handlers: the ConnectError the router writes back. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = asApiError(err);
  return new ConnectError(e.message, connectCode[e.code]);
}
