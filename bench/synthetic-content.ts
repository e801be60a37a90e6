/**
 * File contents for the synthetic benchmark store that compress the way a real closure does.
 *
 * Why not random bytes: deflate's speed and output size depend on the data. Random bytes are
 * its worst case (every match search fails, nothing shrinks), so a gzip benchmark on them says
 * little about a real closure, where binaries compress to ~35–45 % and text to ~25–35 % under
 * `gzip -6`, and only files that are already compressed (.gz, .mo, images) stay at ~100 %.
 *
 * Three generators, each deterministic for a given PRNG:
 *  - text: lines of words drawn Zipf-like from a fixed vocabulary (source, headers, docs);
 *  - binary: machine-code-like — tokens drawn Zipf-like from a table of short byte strings,
 *    mixed with random 4-byte immediates (shared libraries, executables, large data files);
 *  - random: already-compressed content.
 * Output is assembled from a fixed pool per kind (like the old random pool) so that generating
 * ~850 MB stays fast; slices start at random offsets, so files are not copies of each other.
 */

export type ContentKind = 'text' | 'binary' | 'random';

export class SyntheticContent {
  private readonly pools: Record<ContentKind, Buffer>;

  constructor(private readonly rand: () => number, poolBytes = 16 << 20) {
    this.pools = {
      text: textPool(rand, poolBytes),
      binary: binaryPool(rand, poolBytes),
      random: randomPool(rand, poolBytes),
    };
  }

  /** `n` bytes of the given kind: a slice of its pool (repeated past the pool's size). */
  bytes(kind: ContentKind, n: number): Buffer {
    const pool = this.pools[kind];
    if (n <= pool.length) {
      const at = Math.floor(this.rand() * (pool.length - n + 1));
      return pool.subarray(at, at + n);
    }
    // Large files: chunks of the pool at random offsets, so deflate's 32 KiB window never sees
    // one long exact repeat (which would compress unrealistically well).
    const out = Buffer.allocUnsafe(n);
    const CHUNK = 1 << 20;
    for (let at = 0; at < n; at += CHUNK) {
      const take = Math.min(CHUNK, n - at);
      const from = Math.floor(this.rand() * (pool.length - take + 1));
      pool.copy(out, at, from, from + take);
    }
    return out;
  }
}

/** An index drawn Zipf-like (rank r with weight ~1/r) from [0, n). */
function zipf(rand: () => number, n: number): number {
  // Inverse of the continuous approximation: exp(u · ln n) - 1, in [0, n).
  return Math.min(n - 1, Math.floor(Math.exp(rand() * Math.log(n + 1)) - 1));
}

function randomPool(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(Math.floor(rand() * 4294967296), i);
  return b;
}

function textPool(rand: () => number, n: number): Buffer {
  const letters = 'etaoinshrdlcumwfgypbvkjxqz_';
  const vocab: string[] = [];
  for (let i = 0; i < 3000; i++) {
    let w = '';
    const len = 2 + Math.floor(rand() * 9);
    for (let k = 0; k < len; k++) w += letters[zipf(rand, letters.length)];
    vocab.push(w);
  }
  const punct = [' ', ' ', ' ', ' ', ', ', '.', '(', ')', ' = ', ': ', '_', '->', ';'];
  const parts: string[] = [];
  let size = 0;
  while (size < n) {
    let line = ' '.repeat(4 * Math.floor(rand() * rand() * 4));
    const words = 1 + Math.floor(rand() * 12);
    for (let k = 0; k < words; k++) {
      line += vocab[zipf(rand, vocab.length)];
      line += punct[Math.floor(rand() * punct.length)];
      // Numbers appear in code and docs, and are what makes text less than trivially repetitive.
      if (rand() < 0.04) line += String(Math.floor(rand() * 100000));
    }
    line += '\n';
    parts.push(line);
    size += line.length;
  }
  return Buffer.from(parts.join(''), 'latin1').subarray(0, n);
}

function binaryPool(rand: () => number, n: number): Buffer {
  // Opcode-like tokens (1–7 bytes), combined into instruction sequences ("phrases": prologues,
  // call sequences, loops) that recur with Zipf frequencies, as they do in compiled code.
  const tokens: Buffer[] = [];
  for (let i = 0; i < 1024; i++) {
    const t = Buffer.allocUnsafe(1 + Math.floor(rand() * 7));
    for (let k = 0; k < t.length; k++) t[k] = Math.floor(rand() * 256);
    tokens.push(t);
  }
  const phrases: Buffer[] = [];
  for (let i = 0; i < 8192; i++) {
    const parts: Buffer[] = [];
    for (let k = 1 + Math.floor(rand() * 5); k > 0; k--) parts.push(tokens[zipf(rand, tokens.length)]!);
    phrases.push(Buffer.concat(parts));
  }
  const b = Buffer.allocUnsafe(n);
  let at = 0;
  while (at < n) {
    if (rand() < 0.25) {
      // An immediate or address: mostly-random low bytes, zero high bytes (as in real code).
      const v = Math.floor(rand() * 65536 * (rand() < 0.5 ? 1 : 256));
      for (let k = 0; k < 4 && at < n; k++) b[at++] = (v >>> (8 * k)) & 0xff;
    } else {
      const t = phrases[zipf(rand, phrases.length)]!;
      const take = Math.min(t.length, n - at);
      t.copy(b, at, 0, take);
      at += take;
    }
  }
  return b;
}
