// Tenancy: X-Scope-OrgID names the tenant. With multi-tenancy off every request is `anonymous`.

import { ApiError } from "./errors.ts";

export const DEFAULT_TENANT = "anonymous";
const TENANT_RE = /^[A-Za-z0-9!\-_.*'()]+$/;
const MAX_TENANT_LENGTH = 150;

function validate(id: string): string {
  if (id.length > MAX_TENANT_LENGTH) throw new ApiError("unauthenticated", `tenant ID is longer than ${MAX_TENANT_LENGTH} characters`);
  if (id === "." || id === "..") throw new ApiError("unauthenticated", `tenant ID ${JSON.stringify(id)} is not allowed`);
  if (!TENANT_RE.test(id))
    throw new ApiError("unauthenticated", `tenant ID ${JSON.stringify(id)} contains unsupported characters (allowed: letters, digits and ! - _ . * ' ( ))`);
  return id;
}

/** The tenant of a write: exactly one. */
export function tenantOf(headers: Headers, multitenancy: boolean): string {
  if (!multitenancy) return DEFAULT_TENANT;
  const h = headers.get("x-scope-orgid");
  if (!h) throw new ApiError("unauthenticated", "no org id");
  if (h.includes("|")) throw new ApiError("invalid_argument", "writes take exactly one tenant; X-Scope-OrgID has several");
  return validate(h);
}

/** The tenants of a read: `a|b` queries several, de-duplicated and sorted. */
export function tenantsOf(headers: Headers, multitenancy: boolean): string[] {
  if (!multitenancy) return [DEFAULT_TENANT];
  const h = headers.get("x-scope-orgid");
  if (!h) throw new ApiError("unauthenticated", "no org id");
  return [...new Set(h.split("|").map(validate))].sort();
}
