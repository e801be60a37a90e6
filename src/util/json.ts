/**
 * Canonical JSON: object keys sorted by UTF-16 code unit (as Go's encoding/json and
 * `json.dumps(sort_keys=True)` do for ASCII keys), no insignificant whitespace.
 * Every JSON document strata writes goes through this, so its bytes depend only on its value,
 * never on the order in which code happened to set the fields.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}
