import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import type { RegistryOptions } from '../../transports/registry/client.js';
import { StrataError } from '../../util/errors.js';

/** Registry flags, the same for every command that may talk to a registry. */
export function registryFlags<T>(y: Argv<T>) {
  return y
    .option('creds', { type: 'string', describe: 'USER[:PASSWORD] for the registries involved (else auth files, as podman/docker)' })
    .option('password-stdin', { type: 'boolean', default: false, describe: 'read the password for --creds from standard input' })
    .option('authfile', { type: 'string', describe: 'auth file to read first (as podman --authfile)' })
    .option('insecure-registry', { type: 'string', array: true, describe: 'host[:port] that may be reached over plain HTTP (localhost always may)' });
}

export interface RegistryArgs {
  creds?: string;
  'password-stdin'?: boolean;
  authfile?: string;
  'insecure-registry'?: string[];
}

export function registryOptions(args: RegistryArgs): RegistryOptions {
  const opts: RegistryOptions = {};
  if (args.creds !== undefined) {
    const i = args.creds.indexOf(':');
    const username = i < 0 ? args.creds : args.creds.slice(0, i);
    let password = i < 0 ? undefined : args.creds.slice(i + 1);
    if (args['password-stdin']) password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    if (!username || password === undefined) throw new StrataError('--creds: expected USER:PASSWORD (or USER with --password-stdin)');
    opts.username = username;
    opts.password = password;
  }
  if (args.authfile) opts.authFile = args.authfile;
  if (args['insecure-registry']?.length) opts.insecure = args['insecure-registry'];
  return opts;
}
