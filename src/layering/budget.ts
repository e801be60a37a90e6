import { StrataError } from '../util/errors.js';

/** nixpkgs' default `maxLayers` for buildLayeredImage / streamLayeredImage. */
export const DEFAULT_MAX_LAYERS = 100;

/** Docker refuses images with more layers than this (containerd allows 127). */
export const MAX_IMAGE_LAYERS = 125;

/**
 * How many layers store paths may use: `maxLayers` minus the base image's layers minus one for the
 * customisation layer (as nixpkgs' popularity-contest-layering-pipeline.nix computes it). At least
 * one must remain, or there is nowhere to put the closure.
 */
export function storeLayerBudget(maxLayers: number, baseLayers: number): number {
  if (!Number.isSafeInteger(maxLayers) || maxLayers < 2) {
    throw new StrataError(`max layers must be an integer of at least 2 (one for store paths, one for the customisation layer), got ${maxLayers}`);
  }
  if (maxLayers > MAX_IMAGE_LAYERS) {
    throw new StrataError(`max layers ${maxLayers} exceeds ${MAX_IMAGE_LAYERS}, the most layers Docker accepts in an image`);
  }
  if (!Number.isSafeInteger(baseLayers) || baseLayers < 0) {
    throw new StrataError(`base image layer count must be a non-negative integer, got ${baseLayers}`);
  }
  const budget = maxLayers - baseLayers - 1;
  if (budget < 1) {
    throw new StrataError(`max layers ${maxLayers} leaves no layer for store paths: the base image uses ${baseLayers} and the customisation layer 1, so at least ${baseLayers + 2} are needed`);
  }
  return budget;
}
