/**
 * Writing an OCI image layout directory (`oci:DIR[:NAME]`): a new one, or added to an existing
 * one. Blobs are staged in a temp directory beside DIR; at commit a new layout is renamed into
 * place whole, and an existing one (under its lock) gets the missing blobs moved in, then its
 * index.json replaced atomically. Blobs already in the layout are never written again.
 */
import { chmod, mkdir, readFile, rename, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Descriptor } from '../../core/descriptor.js';
import { BerthError } from '../../core/errors.js';
import { fsyncDir, withLock, writeFileAtomic } from '../../io/atomic-file.js';
import type { IoOptions } from '../../io/stream.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import {
  blobName, mergeIndex, OCI_LAYOUT_FILE, rootEntries, serializeIndex, stagingBeside, StagingDestination, targetState, writeError,
} from '../shared/layout-writer.js';

export const OCI_LAYOUT_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: true,
  manifestTypes: 'any',
  layerCompression: 'preserve',
  acceptsForeignLayers: true,
  acceptsAttestations: true,
  parallelPuts: true,
  multipleRoots: true,
};

export class OciLayoutDestination extends StagingDestination {
  private constructor(
    reference: ImageReference,
    staging: string,
    opts: DestinationOptions,
    private readonly target: string,
    private readonly mode: 'new' | 'empty-dir' | 'existing',
  ) {
    super(reference, OCI_LAYOUT_CAPABILITIES, staging, opts, mode === 'existing' ? { existing: (d) => hasBlob(target, d) } : {});
  }

  static async open(reference: ImageReference, opts: DestinationOptions = {}): Promise<ImageDestination> {
    const target = reference.path;
    const state = await targetState(target);
    let mode: 'new' | 'empty-dir' | 'existing';
    if (state.kind === 'file') {
      throw new BerthError('BERTH_EXISTS', `${reference.toString()}: ${target} is a file, not an OCI layout directory`, { subject: target });
    }
    if (state.kind === 'absent') mode = 'new';
    else if (state.entries.length === 0) mode = 'empty-dir';
    else if (state.entries.includes('oci-layout')) mode = 'existing';
    else {
      throw new BerthError('BERTH_INVALID_LAYOUT', `${reference.toString()}: ${target} is a non-empty directory that is not an OCI layout (no oci-layout file); refusing to write into it`, { subject: target });
    }
    if (mode === 'existing') await checkLayoutVersion(target, reference.toString());
    const staging = await stagingBeside(target);
    return new OciLayoutDestination(reference, staging, opts, target, mode);
  }

  protected async publish(roots: readonly NamedRoot[], opts: IoOptions): Promise<void> {
    const entries = rootEntries(roots, 'oci');
    const fsync = this.opts.fsync !== false;
    if (this.mode !== 'existing') {
      try {
        await writeFileAtomic(path.join(this.staging, 'oci-layout'), OCI_LAYOUT_FILE, { fsync });
        await writeFileAtomic(path.join(this.staging, 'index.json'), serializeIndex(entries), { fsync });
        await mkdir(path.join(this.staging, 'blobs'), { recursive: true });
        await chmod(this.staging, 0o755); // mkdtemp made it 0700
        if (this.mode === 'empty-dir') await rmdir(this.target);
        await rename(this.staging, this.target);
        if (fsync) await fsyncDir(path.dirname(path.resolve(this.target)));
      } catch (err) {
        throw writeError(err, `writing ${this.where}`);
      }
      return;
    }
    await withLock(this.target, async () => {
      const indexFile = path.join(this.target, 'index.json');
      const existing = await readFile(indexFile).catch((err: { code?: string }) => {
        if (err.code === 'ENOENT') return undefined;
        throw writeError(err, `reading ${indexFile}`);
      });
      // Checks names before anything moves, so a refused name leaves the layout as it was.
      const merged = mergeIndex(existing, entries, { overwrite: this.opts.overwrite === true, where: this.where });
      try {
        const dirs = new Set<string>();
        for (const digest of this.blobs.blobs.keys()) {
          const name = blobName(digest as Descriptor['digest']);
          const to = path.join(this.target, ...name.split('/'));
          if (await stat(to).then(() => true, () => false)) continue;
          await mkdir(path.dirname(to), { recursive: true });
          await rename(path.join(this.staging, ...name.split('/')), to);
          dirs.add(path.dirname(to));
        }
        if (fsync) for (const d of dirs) await fsyncDir(d);
        await writeFileAtomic(indexFile, merged, { fsync });
      } catch (err) {
        throw writeError(err, `writing ${this.where}`);
      }
    }, opts.signal ? { signal: opts.signal } : {});
  }
}

async function hasBlob(layout: string, desc: Descriptor): Promise<boolean> {
  const st = await stat(path.join(layout, ...blobName(desc.digest).split('/'))).catch(() => undefined);
  return st !== undefined && st.isFile() && st.size === desc.size;
}

async function checkLayoutVersion(dir: string, where: string): Promise<void> {
  const text = await readFile(path.join(dir, 'oci-layout'), 'utf8').catch(() => '');
  let version: unknown;
  try {
    version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
  } catch {
    version = undefined;
  }
  if (typeof version !== 'string' || !version.startsWith('1.')) {
    throw new BerthError('BERTH_INVALID_LAYOUT', `${where}: oci-layout in ${dir} does not declare imageLayoutVersion 1.x; refusing to add to it`, { subject: dir });
  }
}
