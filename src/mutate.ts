/**
 * Mutating images without a container or a daemon (issue 10; like crane append / mutate):
 * append a layer made from a directory or a tar, change the config's execution defaults, or
 * write an image under another name. The result is a new image (new config, new manifest, the
 * old layers untouched) presented to the copy engine as an ImageSource, so it can be written
 * anywhere the engine writes (oci:, oci-archive:, docker-archive:, docker://). Each change adds
 * a history entry dated --source-date-epoch (or now), so the same input gives the same digests.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Descriptor } from './core/descriptor.js';
import { createDigester, digestOf, shortDigest, type Digest } from './core/digest.js';
import { BerthError, isBerthError, withContext } from './core/errors.js';
import type { JsonObject } from './core/json.js';
import { DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_LAYER_GZIP, OCI_MANIFEST } from './core/media-types.js';
import { parsePlatform } from './core/platform.js';
import { copyImage, type CopyOptions } from './copy/copy.js';
import { destinationName, parseDestinationName } from './copying.js';
import { resolveImage } from './image/resolve.js';
import {
  appendLayerToConfig, applyConfigSteps, parseChange, parseCommand, parseKeyValues, rebuildManifest, steps, timestamp, type ConfigStep,
} from './image/mutate.js';
import { compress, decompress, detectCompression } from './io/codec.js';
import type { ByteStream, IoOptions } from './io/stream.js';
import { layerFromDirectory } from './layer/generate.js';
import { readTar } from './tar/reader.js';
import { parseImageName } from './transports/all.js';
import type { EntryPoint, ImageReference, ImageSource, RootEntry, WritableReference } from './transports/transport.js';

export { CHANGE_INSTRUCTIONS } from './image/mutate.js';

export interface MutateOptions extends Omit<CopyOptions, 'platforms'> {
  /** Which image of a multi-platform source (default: the host's). */
  readonly sourcePlatform?: string;
  /** History dates and config `created`: seconds since the epoch (default now). */
  readonly sourceDateEpoch?: number;
  /** Names at the target (default: the target's `:NAME`, else none). */
  readonly names?: readonly string[];
  /** Replace an existing archive or name. */
  readonly overwrite?: boolean;
  /** docker-archive only: 'docker25' (default) or 'legacy'. */
  readonly archiveLayout?: 'docker25' | 'legacy';
  readonly fsync?: boolean;
  /** History `author` and `comment`. */
  readonly author?: string;
  readonly message?: string;
}

export interface ConfigChanges {
  /** `K=V` each. */
  readonly env?: readonly string[];
  /** Exec form (JSON array) or shell form; '' clears. */
  readonly entrypoint?: string;
  readonly cmd?: string;
  readonly workdir?: string;
  readonly user?: string;
  /** `k=v` each. */
  readonly labels?: readonly string[];
  /** `8080/tcp`, `53/udp`, `80`. */
  readonly expose?: readonly string[];
  readonly volumes?: readonly string[];
  readonly stopSignal?: string;
  /** Sets the config's os/architecture/variant, e.g. `linux/arm64`. */
  readonly platform?: string;
  /** Dockerfile-style instructions, as `docker commit --change` takes them. */
  readonly changes?: readonly string[];
}

/** The config steps the options ask for, in a fixed order; bad input is BERTH_USAGE before anything is read. */
export function configSteps(c: ConfigChanges): ConfigStep[] {
  const out: ConfigStep[] = [];
  for (const e of c.env ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new BerthError('BERTH_USAGE', `--env: want KEY=VALUE, got ${JSON.stringify(e)}`, { got: e });
    out.push(steps.env(e.slice(0, eq), e.slice(eq + 1)));
  }
  if (c.entrypoint !== undefined) out.push(steps.entrypoint(parseCommand(c.entrypoint, '--entrypoint')));
  if (c.cmd !== undefined) out.push(steps.cmd(parseCommand(c.cmd, '--cmd')));
  if (c.workdir !== undefined) out.push(steps.workdir(c.workdir));
  if (c.user !== undefined) out.push(steps.user(c.user));
  for (const l of c.labels ?? []) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new BerthError('BERTH_USAGE', `--label: want KEY=VALUE, got ${JSON.stringify(l)}`, { got: l });
    out.push(steps.label(l.slice(0, eq), l.slice(eq + 1)));
  }
  for (const p of c.expose ?? []) out.push(steps.expose(p));
  for (const v of c.volumes ?? []) out.push(steps.volume(v));
  if (c.stopSignal !== undefined) out.push(steps.stopSignal(c.stopSignal));
  if (c.platform !== undefined) out.push(steps.platform(parsePlatform(c.platform)));
  for (const ch of c.changes ?? []) out.push(...parseChange(ch));
  return out;
}

export { parseKeyValues };

// ---------------------------------------------------------------------------------------------
// The mutated image as a source

type Blob = { readonly kind: 'bytes'; readonly bytes: Uint8Array } | { readonly kind: 'file'; readonly file: string; readonly size: number };

class MutatedReference implements ImageReference {
  readonly selector = undefined;
  constructor(private readonly base: ImageReference, private readonly label: string) {}
  get transport() {
    return this.base.transport;
  }
  get path(): string {
    return this.base.path;
  }
  toString(): string {
    return `${this.base.toString()} (${this.label})`;
  }
  openSource(): Promise<ImageSource> {
    throw new BerthError('BERTH_UNSUPPORTED', `${this.toString()}: a mutated image exists only while it is written`, {});
  }
}

class MutatedSource implements ImageSource {
  readonly reference: ImageReference;
  constructor(private readonly base: ImageSource, private readonly rootEntry: RootEntry, private readonly blobs: ReadonlyMap<string, Blob>, label: string) {
    this.reference = new MutatedReference(base.reference, label);
  }
  async entryPoint(opts?: IoOptions): Promise<EntryPoint> {
    const ep = await this.base.entryPoint(opts);
    return { file: ep.file, raw: ep.raw, format: ep.format, roots: [this.rootEntry], notes: [] };
  }
  async root(): Promise<RootEntry> {
    return this.rootEntry;
  }
  async open(desc: Descriptor, opts?: IoOptions): Promise<ByteStream> {
    const b = this.blobs.get(desc.digest);
    if (b === undefined) return this.base.open(desc, opts);
    if (b.kind === 'bytes') return (async function* one() { yield b.bytes; })();
    return createReadStream(b.file, { highWaterMark: 1 << 20 });
  }
  async has(desc: Descriptor, opts?: IoOptions): Promise<boolean> {
    return this.blobs.has(desc.digest) || this.base.has(desc, opts);
  }
  async close(): Promise<void> {
    // The base source is closed by its owner.
  }
}

// ---------------------------------------------------------------------------------------------
// New layers

export interface LayerInput {
  /** A directory (made into a deterministic layer) or a layer tar (plain, gzip or zstd). */
  readonly path: string;
  /** Keep files' uid/gid (default 0/0). */
  readonly keepOwner?: boolean;
}

interface BuiltLayer {
  readonly tarFile: string;
  readonly diffId: Digest;
  readonly tarSize: number;
  readonly entries: number;
}

async function writeHashed(src: ByteStream, file: string): Promise<{ digest: Digest; size: number }> {
  const d = createDigester();
  const fh = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of src) {
      d.update(chunk);
      let at = 0;
      while (at < chunk.length) at += (await fh.write(chunk, at, chunk.length - at)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
  return { digest: d.digest(), size: d.bytes };
}

async function buildLayer(input: LayerInput, work: string, mtime: number | undefined, opts: IoOptions): Promise<BuiltLayer> {
  const st = await stat(input.path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
    throw withContext(err, `reading layer ${input.path}`);
  });
  if (st === undefined) throw new BerthError('BERTH_NOT_FOUND', `layer ${input.path}: no such directory or file`, { subject: input.path });
  const tarFile = path.join(work, 'layer.tar');
  let stream: ByteStream;
  if (st.isDirectory()) {
    stream = await layerFromDirectory(input.path, { ...(mtime !== undefined ? { mtime } : {}), keepOwner: input.keepOwner === true, ...opts });
  } else if (st.isFile()) {
    const what = `layer ${input.path}`;
    const { compression, stream: raw } = await detectCompression(createReadStream(input.path), { what });
    stream = decompress(raw, compression, { what });
  } else {
    throw new BerthError('BERTH_USAGE', `layer ${input.path}: not a directory or a regular file`, { subject: input.path });
  }
  const { digest, size } = await writeHashed(stream, tarFile);
  // A tar berth cannot read is refused here rather than by whoever pulls the image.
  let entries = 0;
  try {
    for await (const e of readTar(createReadStream(tarFile))) {
      entries++;
      void e;
    }
  } catch (err) {
    throw withContext(err, `layer ${input.path} is not a valid tar`);
  }
  return { tarFile, diffId: digest, tarSize: size, entries };
}

// ---------------------------------------------------------------------------------------------
// The operation

export interface MutateResult {
  readonly source: string;
  readonly target: string;
  readonly names: readonly string[];
  /** Manifest digest as written. */
  readonly manifest: Digest;
  /** Config digest (the image ID dockerd gives it after `docker load`); undefined for retag. */
  readonly config: Digest | undefined;
  /** The appended layer, when one was. */
  readonly layer?: { readonly diffId: Digest; readonly digest: Digest; readonly size: number; readonly mediaType: string; readonly entries: number };
  /** created_by of each history entry added. */
  readonly history: readonly string[];
}

interface Mutation {
  readonly layer?: LayerInput;
  readonly layerCreatedBy?: string;
  readonly steps: readonly ConfigStep[];
  readonly label: string;
}

/**
 * The target: a transport reference (oci:, oci-archive:, docker-archive:, docker://, store:), or
 * a bare `NAME[:TAG]`, which names an image of the local store (`store:NAME[:TAG]`).
 */
export async function parseTarget(text: string): Promise<WritableReference> {
  try {
    return await parseDestinationName(text);
  } catch (err) {
    const bare = /^[a-z0-9][a-z0-9._/-]*(?::[\w][\w.-]{0,127})?$/.test(text) && !text.startsWith('/');
    if (!bare || !isBerthError(err, 'BERTH_INVALID_REFERENCE')) throw err;
    return parseDestinationName(`store:${text}`);
  }
}

async function mutate(sourceText: string, target: string, m: Mutation, opts: MutateOptions): Promise<MutateResult> {
  const dstRef = await parseTarget(target);
  const created = timestamp(opts.sourceDateEpoch);
  const srcRef = await parseImageName(sourceText);
  const src = await srcRef.openSource(opts);
  const work = await mkdtemp(path.join(tmpdir(), 'berth-mutate-'));
  try {
    const where = srcRef.toString();
    const root = await src.root(opts);
    const image = await resolveImage(src, root.descriptor, { ...opts, where, ...(opts.sourcePlatform !== undefined ? { platform: parsePlatform(opts.sourcePlatform) } : {}) });
    if (image.config === undefined) {
      throw new BerthError('BERTH_UNSUPPORTED', `${where}: config ${shortDigest(image.manifest.config.digest)} is not an image config (${image.manifest.config.mediaType})`, { subject: image.manifest.config.digest });
    }
    const synthesized = root.synthesized && image.via.length === 0;
    const blobs = new Map<string, Blob>();
    const history: string[] = [];
    let config = JSON.parse(Buffer.from(image.rawConfig).toString('utf8')) as JsonObject;
    let layerDesc: Descriptor | undefined;
    let layerInfo: MutateResult['layer'];
    if (m.layer !== undefined) {
      const mtime = opts.sourceDateEpoch;
      const built = await buildLayer(m.layer, work, mtime, opts);
      const family = image.manifest.family;
      if (synthesized) {
        // The source's manifest is berth's own (docker-archive, the store): its layers are stored
        // uncompressed whatever the media type says, and so is this one.
        const mediaType = image.manifest.layers[image.manifest.layers.length - 1]?.mediaType ?? DOCKER_LAYER_GZIP;
        layerDesc = { mediaType, size: built.tarSize, digest: built.diffId };
        blobs.set(built.diffId, { kind: 'file', file: built.tarFile, size: built.tarSize });
      } else {
        const gz = path.join(work, 'layer.tar.gz');
        const { digest, size } = await writeHashed(compress(createReadStream(built.tarFile), 'gzip', opts.signal ? { signal: opts.signal } : {}), gz);
        layerDesc = { mediaType: family === 'docker' ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP, size, digest };
        blobs.set(digest, { kind: 'file', file: gz, size });
      }
      layerInfo = { diffId: built.diffId, digest: layerDesc.digest, size: layerDesc.size, mediaType: layerDesc.mediaType, entries: built.entries };
      const createdBy = m.layerCreatedBy ?? `berth append ${path.basename(m.layer.path)}`;
      config = appendLayerToConfig(config, built.diffId, {
        created, createdBy, ...(opts.author !== undefined ? { author: opts.author } : {}), ...(opts.message !== undefined ? { comment: opts.message } : {}),
      });
      history.push(createdBy);
    }
    if (m.steps.length > 0) {
      config = applyConfigSteps(config, m.steps, {
        created, ...(opts.author !== undefined ? { author: opts.author } : {}), comment: opts.message ?? `berth ${m.label}`,
      });
      history.push(...m.steps.map((s) => s.text));
    }
    const configBytes = new TextEncoder().encode(JSON.stringify(config));
    const configDesc: Descriptor = { mediaType: image.manifest.config.mediaType, size: configBytes.length, digest: digestOf(configBytes) };
    blobs.set(configDesc.digest, { kind: 'bytes', bytes: configBytes });
    const manifestBytes = new TextEncoder().encode(JSON.stringify(rebuildManifest(image.manifest.raw, configDesc, layerDesc === undefined ? [] : [layerDesc])));
    const manifestType = image.manifest.mediaType ?? (image.manifest.family === 'docker' ? DOCKER_MANIFEST : OCI_MANIFEST);
    const manifestDesc: Descriptor = { mediaType: manifestType, size: manifestBytes.length, digest: digestOf(manifestBytes) };
    blobs.set(manifestDesc.digest, { kind: 'bytes', bytes: manifestBytes });
    const names = opts.names !== undefined && opts.names.length > 0 ? [...opts.names] : destinationName(dstRef) !== undefined ? [destinationName(dstRef)!] : [];
    const mutated = new MutatedSource(src, { descriptor: manifestDesc, names, position: 0, synthesized }, blobs, m.label);
    const dst = await dstRef.openDestination({
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
      ...(opts.archiveLayout !== undefined ? { archiveLayout: opts.archiveLayout } : {}),
      ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}),
    });
    try {
      const result = await copyImage(mutated, dst, opts);
      await dst.commit([{ descriptor: result.root, names }], opts);
      // The engine may rewrite the manifest (format, compression) but never the config bytes.
      return {
        source: where, target: dstRef.toString(), names, manifest: result.root.digest, config: configDesc.digest,
        ...(layerInfo !== undefined ? { layer: layerInfo } : {}), history,
      };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
    await rm(work, { recursive: true, force: true });
  }
}

export interface AppendOptions extends MutateOptions {
  readonly keepOwner?: boolean;
  /** History created_by of the layer (default `berth append <basename>`). */
  readonly createdBy?: string;
  /** Config changes made in the same step. */
  readonly config?: ConfigChanges;
}

/** `berth append IMAGE --layer DIR|TAR -t TARGET`: the image with one more layer. */
export async function appendLayer(source: string, layer: string, target: string, opts: AppendOptions = {}): Promise<MutateResult> {
  const list = configSteps(opts.config ?? {});
  return mutate(source, target, {
    layer: { path: layer, ...(opts.keepOwner !== undefined ? { keepOwner: opts.keepOwner } : {}) },
    ...(opts.createdBy !== undefined ? { layerCreatedBy: opts.createdBy } : {}),
    steps: list, label: 'append',
  }, opts);
}

/** `berth config-set IMAGE -t TARGET --env … --cmd …`: the image with new execution defaults. */
export async function setImageConfig(source: string, target: string, changes: ConfigChanges, opts: MutateOptions = {}): Promise<MutateResult> {
  const list = configSteps(changes);
  if (list.length === 0) throw new BerthError('BERTH_USAGE', 'config-set: nothing to change (give --env, --cmd, --entrypoint, --workdir, --user, --label, --expose, --volume, --platform or --change)', {});
  return mutate(source, target, { steps: list, label: 'config-set' }, opts);
}

/** `berth retag IMAGE -t TARGET`: the same image under another name (the manifest is kept when the target's format allows). */
export async function retagImage(source: string, target: string, opts: MutateOptions = {}): Promise<MutateResult> {
  const dstRef = await parseTarget(target);
  const srcRef = await parseImageName(source);
  const src = await srcRef.openSource(opts);
  try {
    const names = opts.names !== undefined && opts.names.length > 0 ? [...opts.names] : destinationName(dstRef) !== undefined ? [destinationName(dstRef)!] : [];
    if (names.length === 0) throw new BerthError('BERTH_USAGE', `retag: ${target} gives no name (write oci:DIR:NAME, docker-archive:FILE:NAME:TAG, or pass --name)`, { subject: target });
    const dst = await dstRef.openDestination({
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.overwrite !== undefined ? { overwrite: opts.overwrite } : {}),
      ...(opts.archiveLayout !== undefined ? { archiveLayout: opts.archiveLayout } : {}),
      ...(opts.fsync !== undefined ? { fsync: opts.fsync } : {}),
    });
    try {
      const platforms = opts.sourcePlatform !== undefined ? [parsePlatform(opts.sourcePlatform)] : 'all' as const;
      const result = await copyImage(src, dst, { ...opts, platforms });
      await dst.commit([{ descriptor: result.root, names }], opts);
      return { source: srcRef.toString(), target: dstRef.toString(), names, manifest: result.root.digest, config: undefined, history: [] };
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}
