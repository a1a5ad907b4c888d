/**
 * Registers every built-in transport and parses what users type: `PREFIX:REST`, or a bare path
 * whose format is detected from its contents.
 */
import { stat } from 'node:fs/promises';
import { BerthError } from '../core/errors.js';
import type { IoOptions } from '../io/stream.js';
import { dockerArchiveTransport } from './docker-archive/transport.js';
import { dockerTransport } from './docker/transport.js';
import { DockerArchiveSource, dockerArchiveProblem } from './docker-archive/source.js';
import { findTransport, registerTransport, transportNames } from './lookup.js';
import { ociArchiveTransport } from './oci-archive/transport.js';
import { ociTransport } from './oci/transport.js';
import { bareStoreReference, storeTransport } from './store/transport.js';
import { openArchiveFiles, openDirectoryFiles, type PlaceFiles } from './shared/files.js';
import { isOciLayout, LayoutSource } from './shared/layout.js';
import { formatSelector, parseSelector } from './shared/reference.js';
import type { ImageReference, ImageSelector, ImageSource, Transport } from './transport.js';

registerTransport(ociTransport);
registerTransport(ociArchiveTransport);
registerTransport(dockerArchiveTransport);
registerTransport(storeTransport);
registerTransport(dockerTransport);

/** A bare path: the format is decided when it is opened, from what is inside. */
const detectTransport: Transport = {
  name: 'path',
  parseReference(rest) {
    return new DetectedReference(rest, undefined);
  },
};

class DetectedReference implements ImageReference {
  readonly transport = detectTransport;
  constructor(readonly path: string, readonly selector: ImageSelector | undefined) {}

  toString(): string {
    return `${this.path}${formatSelector(this.selector)}`;
  }

  async openSource(opts: IoOptions = {}): Promise<ImageSource> {
    const st = await stat(this.path).catch(() => undefined);
    if (st === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.path}: no such file or directory`, { subject: this.path });
    let files: PlaceFiles;
    if (st.isDirectory()) {
      files = await openDirectoryFiles(this.path);
      if (!(await isOciLayout(files))) {
        throw new BerthError('BERTH_INVALID_LAYOUT', `${this.path}: directory is not an OCI image layout (no oci-layout file)`, { subject: this.path });
      }
      return new LayoutSource(this, files);
    }
    files = await openArchiveFiles(this.path, opts);
    try {
      if (await isOciLayout(files)) {
        const layout = new LayoutSource(this, files);
        const entry = await layout.entryPoint().catch(() => undefined);
        // Docker 25+ archives are OCI layouts too; an empty index (`"manifests": null`) means
        // only manifest.json tells what is inside.
        if (entry !== undefined && entry.roots.length > 0) return layout;
        if ((await dockerArchiveProblem(files)) !== undefined) return layout;
        return new DockerArchiveSource(this, files);
      }
      const problem = await dockerArchiveProblem(files);
      if (problem !== undefined) {
        throw new BerthError(problem.includes('not supported') ? 'BERTH_UNSUPPORTED' : 'BERTH_INVALID_ARCHIVE', `${this.path}: ${problem}`, { subject: this.path });
      }
      return new DockerArchiveSource(this, files);
    } catch (err) {
      await files.close();
      throw err;
    }
  }
}

const PREFIX = /^([a-z][a-z0-9-]*):(.*)$/s;

/** Parses `oci:DIR:REF`, `oci-archive:F`, `docker-archive:F:NAME:TAG`, `docker://HOST/REPO:TAG`, or a bare path (`./x.tar`, `dir:TAG`). */
export async function parseImageName(text: string): Promise<ImageReference> {
  if (text === '') throw new BerthError('BERTH_INVALID_REFERENCE', 'an image reference is required', {});
  const m = PREFIX.exec(text);
  if (m !== null) {
    const prefix = m[1]!;
    const rest = m[2]!;
    const known = findTransport(prefix);
    if (known !== undefined) return known.parseReference(rest);
  }
  if (await exists(text)) return new DetectedReference(text, undefined);
  // `PATH:SELECTOR` or `PATH@DIGEST` with an existing PATH
  const at = text.search(/@sha(?:256|512):/);
  const colon = text.indexOf(':');
  const cut = at > 0 && (colon < 0 || at < colon) ? at : colon;
  if (cut > 0 && (await exists(text.slice(0, cut)))) {
    const sel = text.slice(cut);
    return new DetectedReference(text.slice(0, cut), parseSelector(sel.startsWith(':') ? sel.slice(1) : sel, text));
  }
  // `NAME[:TAG]`, `NAME@DIGEST`, an image ID: an image of the local store, when it has one
  const stored = await bareStoreReference(text);
  if (stored !== undefined) return stored;
  throw new BerthError('BERTH_NOT_FOUND', `${text}: no such file or directory, and not a reference berth knows (prefixes: ${transportNames().map((n) => `${n}:`).join(', ')})`, { subject: text });
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}
