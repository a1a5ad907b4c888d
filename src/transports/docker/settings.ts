/**
 * The registry options every access uses (the CLI's --insecure, --ca-file, --creds). Kept apart
 * from client.ts so that setting them on every command loads no HTTP code; client.ts reads them
 * here and drops its pooled connections when they change.
 */
import { BerthError } from '../../core/errors.js';
import type { Credentials } from './auth.js';
import type { RegistryOptions } from './client.js';

let defaults: RegistryOptions = {};
let onChange: (() => void) | undefined;

/** Options every registry access uses from now on. Closes pooled clients. */
export function setRegistryDefaults(opts: RegistryOptions): void {
  onChange?.();
  defaults = opts;
}

export function registryDefaults(): RegistryOptions {
  return defaults;
}

/** client.ts: called before the defaults change (to drop clients made with the old ones). */
export function onRegistryDefaultsChange(fn: () => void): void {
  onChange = fn;
}

/** Parses `--creds USER:PASS` (the password may contain ':'). */
export function parseCreds(text: string): Credentials {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new BerthError('BERTH_USAGE', '--creds must be USER:PASSWORD', {});
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
