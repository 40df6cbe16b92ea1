// Why the distributor refused a profile: Pyroscope's discard reasons (the `reason` label of
// pyroscope_discarded_samples_total / _bytes_total) carried by the error the client gets.

import { ApiError, type ErrorCode } from "../errors.ts";

/** Pyroscope's reason values, for the ones Hearth's ingest path can produce. */
export type DiscardReason =
  | "rate_limited"
  | "not_in_ingestion_window"
  | "max_label_names_per_series"
  | "label_name_too_long"
  | "label_value_too_long"
  | "duplicate_label_names"
  | "invalid_labels"
  | "missing_labels"
  | "samples_limit"
  | "profile_size_limit"
  | "sample_labels_limit"
  | "malformed_profile"
  | "body_size_limit_exceeded";

/** An ApiError that also says which limit or rule refused the data, for the discard metrics. */
export class DiscardError extends ApiError {
  constructor(
    readonly reason: DiscardReason,
    message: string,
    code: ErrorCode = "invalid_argument",
  ) {
    super(code, message);
  }
}

/** A validation refusal: 400 on Push and text /ingest (Pyroscope's InvalidArgument). */
export const invalid = (reason: DiscardReason, message: string) => new DiscardError(reason, message);
