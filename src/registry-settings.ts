/**
 * Registry settings (insecure hosts, CAs, credentials, retries), apart from src/registry.ts so that
 * the CLI, which sets them before every command, loads no registry client to do so.
 */
import type { Credentials, Env } from './transports/docker/auth.js';
import type { RegistryOptions } from './transports/docker/client.js';
import { parseCreds, setRegistryDefaults } from './transports/docker/settings.js';

export interface RegistrySettings {
  /** Hosts that may use plain HTTP or unverified TLS (`--insecure HOST`). */
  readonly insecure?: readonly string[];
  /** Extra trusted CA certificates, PEM files (`--ca-file`). */
  readonly caFiles?: readonly string[];
  /** `USER:PASS` or credentials, used for every registry instead of config.json (`--creds`). */
  readonly creds?: string | Credentials;
  /** Environment for DOCKER_CONFIG, HOME and SSL_CERT_FILE (default process.env). */
  readonly env?: Env;
  /** Retries on 429/5xx and broken connections (default 3). */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  readonly timeoutMs?: number;
  /** Pushes in chunks: blobs up to this size go in one PUT, larger ones in PATCH chunks of it (default: one streamed PATCH per blob over 4 MiB). */
  readonly uploadChunkSize?: number;
}

/** Sets how every later registry access behaves (pooled connections and tokens are dropped). */
export function configureRegistry(settings: RegistrySettings): void {
  const opts: RegistryOptions = {
    ...(settings.insecure ? { insecure: settings.insecure } : {}),
    ...(settings.caFiles ? { caFiles: settings.caFiles } : {}),
    ...(settings.creds === undefined ? {} : { creds: typeof settings.creds === 'string' ? parseCreds(settings.creds) : settings.creds }),
    ...(settings.env ? { env: settings.env } : {}),
    ...(settings.retries === undefined ? {} : { retries: settings.retries }),
    ...(settings.retryDelayMs === undefined ? {} : { retryDelayMs: settings.retryDelayMs }),
    ...(settings.timeoutMs === undefined ? {} : { timeoutMs: settings.timeoutMs }),
    ...(settings.uploadChunkSize === undefined ? {} : { uploadChunkSize: settings.uploadChunkSize }),
  };
  setRegistryDefaults(opts);
}
