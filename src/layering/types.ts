/** The layering strategies strata offers. */
export type LayeringStrategy = 'popularity' | 'auto' | 'stable' | 'per-path';

/** One layer of store paths, as a plan assigns them. */
export interface PlannedLayer {
  /** Store paths in this layer, bytewise sorted. */
  readonly paths: readonly string[];
  /**
   * Set by the stable strategy when this layer is carried over unchanged from the previous
   * release: the index of that layer among the previous image's store-path layers.
   */
  readonly reusedFrom?: number;
}

/** A layer assignment: store-path layers from bottom to top. Every closure path appears exactly once. */
export interface LayerPlan {
  readonly strategy: LayeringStrategy;
  readonly layers: readonly PlannedLayer[];
}
