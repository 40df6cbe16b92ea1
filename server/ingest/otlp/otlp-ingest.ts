// An OTLP ExportProfilesServiceRequest → IngestItems with Pyroscope's series labels: one item per
// (resource, scope, profile, sample service name). Label names keep their dots here; the
// distributor turns them into underscores.

import type { ExportProfilesServiceRequest } from "../../api/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.ts";
import type { KeyValue } from "../../api/gen/opentelemetry/proto/common/v1/common_pb.ts";
import { LABEL_DELTA, LABEL_NAME, LABEL_SERVICE_NAME, sortLabels, type Labels } from "../../../storage/model/labels.ts";
import { badRequest } from "../../errors.ts";
import type { IngestItem } from "../../ingester.ts";
import { anyValueString, resourceServiceName, SERVICE_NAME_ATTR } from "./attributes.ts";
import { convertOtlpProfile } from "./profile-converter.ts";

export const LABEL_OTEL = "__otel__";

/** The opentelemetry-proto release whose profiles schema (v1development) Hearth reads, as Pyroscope does. */
export const OTLP_PROFILES_SCHEMA = "opentelemetry-proto v1.10.0";

export interface OtlpConversion {
  items: IngestItem[];
  /** Samples kept across all items. */
  samples: number;
}

/** Appends each attribute with a usable value whose key is not taken yet; the first one wins. */
function appendAttributes(ls: Labels, attrs: KeyValue[], taken: Set<string>, serviceName: string) {
  for (const a of attrs) {
    if (taken.has(a.key)) continue;
    const v = anyValueString(a.value);
    if (v === "") continue;
    // `service.name` becomes service_name once dots are replaced; Pyroscope then keeps one
    // copy when both agree, so the duplicate is left out here.
    if (a.key === SERVICE_NAME_ATTR && v === serviceName) continue;
    ls.push({ name: a.key, value: v });
    taken.add(a.key);
  }
}

/**
 * Converts a whole request. Throws 400 for a request without a dictionary or resource profiles,
 * for references that do not resolve, and when no sample with a value is left: that is what data
 * written for another revision of the v1development schema looks like once decoded.
 */
export function otlpToIngestItems(req: ExportProfilesServiceRequest, nowNanos?: () => bigint): OtlpConversion {
  const dict = req.dictionary;
  if (!dict) throw badRequest("missing profile metadata dictionary");
  if (req.resourceProfiles.length === 0) throw badRequest("missing resource profiles");
  const items: IngestItem[] = [];
  let samples = 0;
  let profiles = 0;
  for (const rp of req.resourceProfiles) {
    const resourceAttrs = rp.resource?.attributes ?? [];
    const resourceService = resourceServiceName(resourceAttrs);
    for (const sp of rp.scopeProfiles) {
      for (const p of sp.profiles) {
        profiles++;
        let converted;
        try {
          converted = convertOtlpProfile(p, dict, nowNanos);
        } catch (e) {
          throw badRequest(`failed to convert otel profile: ${e instanceof Error ? e.message : String(e)}`);
        }
        for (const [sampleService, c] of converted) {
          if (c.profile.samples.count === 0) continue;
          const service = sampleService || resourceService;
          const ls: Labels = [
            { name: LABEL_DELTA, value: "false" },
            { name: LABEL_OTEL, value: "true" },
            { name: LABEL_NAME, value: c.name },
            { name: LABEL_SERVICE_NAME, value: service },
          ];
          const taken = new Set(ls.map((l) => l.name));
          appendAttributes(ls, resourceAttrs, taken, service);
          appendAttributes(ls, sp.scope?.attributes ?? [], taken, service);
          items.push({ labels: sortLabels(ls), profile: c.profile });
          samples += c.profile.samples.count;
        }
      }
    }
  }
  if (samples === 0)
    throw badRequest(
      `the request's ${profiles} OTLP profile(s) converted to no samples with values; check the OTLP profiles schema version: ` +
        `Hearth reads ${OTLP_PROFILES_SCHEMA} (opentelemetry.proto.profiles.v1development), and data written for another ` +
        `v1development revision decodes with values and stack/attribute indexes that do not resolve`,
    );
  return { items, samples };
}
