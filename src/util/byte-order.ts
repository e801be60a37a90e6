/**
 * Bytewise ordering of strings, as their UTF-8 encodings compare. Every list strata writes into
 * an image (paths in a layer, references, roots) is ordered this way so that its bytes never depend
 * on the host's locale or on JavaScript's UTF-16 ordering (which differs from UTF-8 byte order for
 * characters outside the Basic Multilingual Plane). UTF-8 byte order equals Unicode code point
 * order, which is also how Python compares `str`, so this matches nixpkgs' sorts too.
 */
export function compareBytes(a: string, b: string): number {
  // Without encoding: UTF-16 code units already order as UTF-8 bytes, except that surrogates
  // (code points >= U+10000) must rank after U+E000..U+FFFF; shift the two ranges to fix that.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** A new array with `items` sorted bytewise. */
export function sortBytewise(items: Iterable<string>): string[] {
  return Array.from(items).sort(compareBytes);
}
