// The `name` parameter of /ingest: `app.name{key=value,key2=value2}` (Pyroscope's labelset grammar).

import { badRequest } from "../errors.ts";

const APP_RE = /^[A-Za-z0-9_.\-/]+$/;
const KEY_RE = /^[A-Za-z0-9_.]+$/;

/** Parses `name`; the app name comes back under `__name__` (a `__name__` tag overrides it). */
export function parseLabelSet(name: string | null): Map<string, string> {
  if (name == null || name === "") throw badRequest("name: service name is required");
  const out = new Map<string, string>();
  const brace = name.indexOf("{");
  const app = (brace < 0 ? name : name.slice(0, brace)).trim();
  if (app === "") throw badRequest("name: service name is required");
  if (!APP_RE.test(app)) throw badRequest(`name: invalid service name ${JSON.stringify(app)}: allowed characters are A-Z a-z 0-9 _ . - /`);
  out.set("__name__", app);
  if (brace < 0) return out;
  const close = name.indexOf("}", brace);
  const body = name.slice(brace + 1, close < 0 ? undefined : close);
  for (const part of body.split(",")) {
    if (part.trim() === "") continue;
    const eq = part.indexOf("=");
    if (eq < 0) throw badRequest(`name: tag ${JSON.stringify(part.trim())} has no '=': expected key=value`);
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    if (!KEY_RE.test(k)) throw badRequest(`name: invalid tag key ${JSON.stringify(k)}: allowed characters are A-Z a-z 0-9 _ .`);
    out.set(k, v);
  }
  return out;
}
