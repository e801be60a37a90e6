/**
 * Uncompressed bytes per compressed unit, for every block codec (pigz uses 128 KiB blocks; larger
 * ones suit worker hand-offs, and zstd's default window at level 3 is 2 MiB, so a 1 MiB frame
 * loses little against one long frame). Changing it changes layer bytes: each codec's format tag
 * names it.
 */
export const BLOCK_SIZE = 1 << 20;
