// Pyroscope's FixGoProfile: run on every profile whose language is detected as Go, before
// normalisation. Drops generic type shapes from function names, then repairs truncated stacks.

import type { Profile } from "../../../storage/model/profile.ts";
import { dropGoTypeParametersFromProfile } from "./go-type-parameters.ts";
import { potentialTruncatedGoStacktraces, repairGoTruncatedStacktraces } from "./go-truncated-stacks.ts";

/** The fixed profile, or `p` itself when there was nothing to fix. `p` is not modified. */
export function fixGoProfile(p: Profile): Profile {
  const q = dropGoTypeParametersFromProfile(p);
  return potentialTruncatedGoStacktraces(q) ? repairGoTruncatedStacktraces(q) : q;
}
