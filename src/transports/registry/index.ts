/** The daemonless registry transport: `docker://host/repo:tag` as a build output and as a base. */
export { openRegistryDestination, RegistryDestination } from './destination.js';
export { openRegistrySource, RegistrySource, RegistryLayer, type BlobOrigin } from './source.js';
export {
  RegistryClient, BlobUpload, registryStats, newRegistryStats, MANIFEST_ACCEPT,
  type RegistryOptions, type RegistryStats, type FetchedManifest,
} from './client.js';
export {
  parseRegistryReference, formatReference, manifestReference, isLoopbackHost, DOCKER_HUB,
  type RegistryReference,
} from './reference.js';
export { lookupCredentials, authFileCandidates, parseWwwAuthenticate, type Credentials, type CredentialOptions, type Challenge } from './auth.js';

/** True when a CLI argument names a registry (`docker://…`) rather than a file or layout. */
export function isRegistryArg(arg: string): boolean {
  return arg.startsWith('docker://');
}
