// Profile type IDs (`name:sample_type:sample_unit:period_type:period_unit`), Pyroscope's key for
// one kind of profile; built by the ingester, parsed by every query.

export interface ProfileTypeParts {
  /** The ID exactly as given, including a tolerated 6th part. */
  id: string;
  name: string;
  sampleType: string;
  sampleUnit: string;
  periodType: string;
  periodUnit: string;
}

/**
 * Splits a profile type ID. Like Pyroscope's ParseProfileTypeSelector it accepts 5 parts or 6
 * (the 6th, conventionally `delta`, is kept in `id` but otherwise ignored); anything else throws.
 * Empty parts are valid: profiles without a period type have IDs like `block:contentions:count::`.
 */
export function parseProfileTypeId(id: string): ProfileTypeParts {
  const parts = id.split(":");
  if (parts.length !== 5 && parts.length !== 6) {
    throw new Error(
      `profile-type selection must be of the form <name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>(:delta), got(${parts.length}): ${JSON.stringify(id)}`,
    );
  }
  return {
    id,
    name: parts[0],
    sampleType: parts[1],
    sampleUnit: parts[2],
    periodType: parts[3],
    periodUnit: parts[4],
  };
}

export function profileTypeId(name: string, sampleType: string, sampleUnit: string, periodType: string, periodUnit: string): string {
  return `${name}:${sampleType}:${sampleUnit}:${periodType}:${periodUnit}`;
}
