/**
 * `store:[ROOT]NAME[:TAG]`, `store:[ROOT]@ID`, `store:[ROOT]` (every image): the local image
 * store, a Docker-compatible data root. ROOT is optional (the bracket form is containers-storage's);
 * without it the root is `--root`, else `$BERTH_ROOT`, else `$XDG_DATA_HOME/berth`, else
 * `~/.local/share/berth`.
 */
import os from 'node:os';
import path from 'node:path';
import { BerthError } from '../../core/errors.js';
import type { IoOptions } from '../../io/stream.js';
import type { DestinationOptions, ImageDestination, ImageSelector, ImageSource, Transport, WritableReference } from '../transport.js';

export interface StoreDefaults {
  /** `--root`: wins over the environment. */
  readonly root?: string;
  /** The environment to read BERTH_ROOT, XDG_DATA_HOME and HOME from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

let defaults: StoreDefaults = {};

/** Sets where `store:NAME` (no ROOT) looks; the CLI calls this once per command with `--root` and its environment. */
export function setStoreDefaults(d: StoreDefaults): void {
  defaults = { ...d };
}

let allowWriteDefault: boolean | undefined;

/**
 * Sets whether store writes given no `allowWrite` may change roots berth did not create (the CLI's
 * --allow-write). Kept here, beside the root, so configuring it loads none of the write code.
 */
export function setStoreAllowWrite(allow: boolean | undefined): void {
  allowWriteDefault = allow;
}

export function storeAllowWrite(): boolean | undefined {
  return allowWriteDefault;
}

/** The default data root: `--root`, `$BERTH_ROOT`, `$XDG_DATA_HOME/berth`, `~/.local/share/berth`. */
export function defaultStoreRoot(d: StoreDefaults = defaults): string {
  if (d.root !== undefined && d.root !== '') return path.resolve(d.root);
  const env = d.env ?? process.env;
  if (env.BERTH_ROOT) return path.resolve(env.BERTH_ROOT);
  if (env.XDG_DATA_HOME) return path.resolve(env.XDG_DATA_HOME, 'berth');
  return path.join(env.HOME || os.homedir(), '.local', 'share', 'berth');
}

export interface StoreReferenceParts {
  /** ROOT when written in the reference (`[ROOT]`). */
  readonly root: string | undefined;
  /** NAME[:TAG], NAME@DIGEST, @ID, or undefined for the whole store. */
  readonly name: string | undefined;
}

/** Splits the text after `store:`; BERTH_INVALID_REFERENCE for an unclosed `[`. */
export function parseStoreReference(rest: string): StoreReferenceParts {
  let root: string | undefined;
  let name = rest;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) throw new BerthError('BERTH_INVALID_REFERENCE', `store:${rest}: "[" without "]" (want store:[ROOT]NAME)`, { subject: `store:${rest}` });
    root = rest.slice(1, end);
    if (root === '') throw new BerthError('BERTH_INVALID_REFERENCE', `store:${rest}: empty [ROOT]`, { subject: `store:${rest}` });
    name = rest.slice(end + 1);
  }
  if (name === '@') throw new BerthError('BERTH_INVALID_REFERENCE', `store:${rest}: an image ID is required after "@"`, { subject: `store:${rest}` });
  return { root, name: name === '' ? undefined : name };
}

export class StoreReference implements WritableReference {
  /** The data root (absolute). */
  readonly path: string;
  readonly selector: ImageSelector | undefined;

  constructor(
    readonly transport: Transport,
    readonly parts: StoreReferenceParts,
    private readonly opener: (ref: StoreReference, opts: IoOptions) => Promise<ImageSource>,
    private readonly destinationOpener?: (ref: StoreReference, opts: DestinationOptions) => Promise<ImageDestination>,
  ) {
    this.path = parts.root !== undefined ? path.resolve(parts.root) : defaultStoreRoot();
    this.selector = parts.name === undefined ? undefined : { kind: 'name', name: parts.name };
  }

  /** The image name or ID as written, if any. */
  get name(): string | undefined {
    return this.parts.name;
  }

  toString(): string {
    return `store:${this.parts.root !== undefined ? `[${this.parts.root}]` : ''}${this.parts.name ?? ''}`;
  }

  openSource(opts: IoOptions = {}): Promise<ImageSource> {
    return this.opener(this, opts);
  }

  /** Opens the store for writing (`berth copy X store:NAME`, `berth load`). */
  openDestination(opts: DestinationOptions = {}): Promise<ImageDestination> {
    if (this.destinationOpener === undefined) throw new BerthError('BERTH_UNSUPPORTED', `${this.toString()}: cannot be written`, { subject: this.toString() });
    return this.destinationOpener(this, opts);
  }
}
