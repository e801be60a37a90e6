/**
 * Bytewise ordering of strings, as their UTF-8 encodings compare. Every list strata writes into
 * an image (paths in a layer, references, roots) is ordered this way so that its bytes never depend
 * on the host's locale or on JavaScript's UTF-16 ordering (which differs from UTF-8 byte order for
 * characters outside the Basic Multilingual Plane). UTF-8 byte order equals Unicode code point
 * order, which is also how Python compares `str`, so this matches nixpkgs' sorts too.
 */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A new array with `items` sorted bytewise; encodes each string once rather than per comparison. */
export function sortBytewise(items: Iterable<string>): string[] {
  const decorated = Array.from(items, (s) => ({ s, b: Buffer.from(s, 'utf8') }));
  decorated.sort((x, y) => Buffer.compare(x.b, y.b));
  return decorated.map((d) => d.s);
}
