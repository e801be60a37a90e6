/**
 * How containers-storage (overlay driver) names what it stores, so an image store strata writes
 * is the one podman would have made by pulling the same image: a later pull into the host's own
 * store reuses its layers, and containers that recorded its link names keep finding them.
 * Checked against podman 4.3.1 / containers-storage 1.43 (design notes §7).
 */
import { createHash } from 'node:crypto';
import { digestHex, type Digest } from '../../image/digest.js';

/**
 * Layer IDs as containers/image assigns them on a pull (storage_dest.go): the base layer's ID is
 * its DiffID's hex, every later one sha256(parentID + "+" + DiffID hex) — not the OCI ChainID.
 */
export function storageLayerIds(diffIds: readonly Digest[]): string[] {
  const ids: string[] = [];
  for (const d of diffIds) {
    const parent = ids.at(-1);
    ids.push(parent === undefined ? digestHex(d) : createHash('sha256').update(`${parent}+${digestHex(d)}`).digest('hex'));
  }
  return ids;
}

const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * The short name under overlay/l/ for a layer: 26 characters of [A-Z2-7] as containers-storage
 * makes them, but derived from the layer ID instead of drawn at random, so that rebuilding the
 * host gives the same names (containers record them in their own `lower` files).
 */
export function linkName(layerId: string): string {
  const bytes = createHash('sha256').update(`strata link ${layerId}`).digest();
  let out = '';
  for (let i = 0; i < 26; i++) {
    // 26 × 5 bits = 130 bits, from the first 17 bytes.
    const bit = i * 5;
    const word = (bytes[bit >> 3]! << 8) | bytes[(bit >> 3) + 1]!;
    out += LINK_ALPHABET[(word >> (11 - (bit & 7))) & 31];
  }
  return out;
}

/** A big-data key's file name: kept when it is only [.0-9a-z], else "=" + padded base64 of it. */
export function bigDataFileName(key: string): string {
  return /^[.0-9a-z]+$/.test(key) ? key : `=${Buffer.from(key, 'utf8').toString('base64')}`;
}
