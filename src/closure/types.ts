/** One store path of a closure, as every closure reader normalises it. */
export interface StorePathInfo {
  /** Logical store path, e.g. `/nix/store/<hash>-hello-2.12`. This is its name inside the image. */
  readonly path: string;
  /** Store paths it refers to, self-reference removed, sorted, all present in the closure. */
  readonly references: readonly string[];
  /** NAR size in bytes, 0 when the input did not say. Used by size-aware layering. */
  readonly narSize: number;
  /** NAR hash as the input printed it (any encoding), when known. Content identity for caches. */
  readonly narHash?: string;
  /** Package name, version and output name, when the input recorded them (they beat parsing the path's name). */
  readonly pname?: string;
  readonly version?: string;
  readonly output?: string;
}

/** A validated, self-contained dependency closure. */
export interface Closure {
  /** Logical store directory, `/nix/store` unless set. Every path lies directly inside it. */
  readonly storeDir: string;
  /** Every store path, keyed by path, iterated in bytewise-sorted path order. */
  readonly paths: ReadonlyMap<string, StorePathInfo>;
  /** Paths no other path refers to (or those given explicitly), sorted. */
  readonly roots: readonly string[];
}
