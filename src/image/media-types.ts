/** Media types strata reads and writes. */
export const MediaTypes = {
  ociLayout: '1.0.0',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

/** The OCI layer media type for a compression. */
export function ociLayerMediaType(c: Compression): string {
  switch (c) {
    case 'none': return MediaTypes.ociLayer;
    case 'gzip': return MediaTypes.ociLayerGzip;
    case 'zstd': return MediaTypes.ociLayerZstd;
  }
}

/** Compression named by a layer media type (OCI or Docker), or undefined when it is not a layer type. */
export function compressionOfMediaType(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MediaTypes.ociLayer:
    case MediaTypes.dockerLayer:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    case MediaTypes.ociLayerGzip:
    case MediaTypes.dockerLayerGzip:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
      return 'gzip';
    case MediaTypes.ociLayerZstd:
    case 'application/vnd.docker.image.rootfs.diff.tar.zstd':
      return 'zstd';
    default:
      return undefined;
  }
}

const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
const MANIFEST_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);

/** An OCI index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/** An OCI image manifest or a Docker schema 2 manifest. */
export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}
