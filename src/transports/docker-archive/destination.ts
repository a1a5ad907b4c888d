/**
 * Writing a docker-archive (`docker-archive:FILE[:NAME:TAG]`), the tar `docker load` reads.
 *
 * Default, the Docker 25+ layout (formats.md 9.2): an OCI layout and a docker-archive at once:
 * `oci-layout`, `index.json` (one entry per tag with `io.containerd.image.name` and ref.name = the
 * tag), `manifest.json` (RepoTags, Config and Layers pointing into `blobs/sha256/`), `repositories`,
 * and blobs: configs, per-image manifests, and layers as UNCOMPRESSED tars named by their diff_id.
 * dockerd ≤ 24 reads only manifest.json and follows its paths, so it loads this too.
 *
 * `archiveLayout: 'legacy'` writes what dockerd ≤ 24 saves (9.1): `<v1id>/layer.tar`, `<v1id>/json`,
 * `<v1id>/VERSION`, `<config hex>.json`, manifest.json, repositories. v1 ids are opaque names
 * (docker load never recomputes them); berth derives them deterministically from chain IDs.
 *
 * A layer put with its size known goes straight into the archive (a temp file beside the target)
 * as its bytes arrive, one layer at a time in the order put, once its member name is known: always
 * for the Docker 25 layout (`blobs/sha256/<diff_id>`), and for the legacy one once a config listing
 * the layer was put (the copy engine puts an image's config first; a layer waits for a config
 * still being written). Anything else is staged and packed at commit, after the streamed members,
 * with the metadata files last (the order is free: docker load unpacks the whole archive first,
 * and docker save itself writes `blobs/` first).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Descriptor } from '../../core/descriptor.js';
import { chainIds, configDiffIds, parseImageConfig } from '../../core/config.js';
import { digestAlgorithm, digestHex, digestOf, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { isJsonObject, parseJsonBytes } from '../../core/json.js';
import { parseImageManifest } from '../../core/manifest.js';
import { classifyMediaType, OCI_MANIFEST, DOCKER_MANIFEST } from '../../core/media-types.js';
import type { ByteStream, IoOptions } from '../../io/stream.js';
import { verifyStream } from '../../io/verify.js';
import { verificationOf } from '../../io/verified-stream.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import {
  blobName, canWriteDigest, layoutMembers, OCI_LAYOUT_FILE, repoTag, rootEntries, serializeIndex, stagingBeside, StagingDestination, TarAppender,
  discard, eager, targetState, writeError, writeTarFile, type TarMember,
} from '../shared/layout-writer.js';
import { limits } from '../../io/limits.js';

export const DOCKER_ARCHIVE_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: false,
  manifestTypes: [OCI_MANIFEST, DOCKER_MANIFEST],
  layerCompression: 'none',
  acceptsForeignLayers: false,
  acceptsAttestations: false,
  // Layers with a known size still stream into the archive one at a time, in the order put
  // (waiting their turn); parallel puts keep decompressing sources (putComputed) running side by side.
  parallelPuts: true,
  multipleRoots: true,
};

const encoder = new TextEncoder();

/** What one image contributes to the archive. */
interface ArchiveImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly configBytes: Uint8Array;
  readonly diffIds: readonly Digest[];
  readonly repoTags: readonly string[];
}

/** An image config put so far, for naming legacy layer directories before the manifest comes. */
interface PutConfig {
  readonly digest: Digest;
  readonly diffIds: readonly Digest[];
  readonly json: unknown;
}

export class DockerArchiveDestination extends StagingDestination {
  /** The archive being written, from the first streamed layer on. */
  private appender: Promise<TarAppender> | undefined;
  /** Resolves when the last layer put so far has had its turn at the archive. */
  private turn: Promise<void> = Promise.resolve();
  /** Config puts still being written (legacy layer names wait for them). */
  private readonly configPuts = new Set<Promise<void>>();
  /** Layers in the archive already: digest → size and member name. */
  private readonly direct = new Map<string, { size: number; name: string }>();
  /** Legacy: `<v1id>` directories written whole (dir, VERSION, json, layer.tar). */
  private readonly directDirs = new Set<string>();
  /** Docker 25: `blobs/` and `blobs/sha256/` are in the archive. */
  private blobDirs = false;
  private readonly configs: PutConfig[] = [];

  private constructor(reference: ImageReference, staging: string, opts: DestinationOptions) {
    super(reference, DOCKER_ARCHIVE_CAPABILITIES, staging, opts, { scratch: true });
  }

  override async has(desc: Descriptor): Promise<boolean> {
    return this.direct.get(desc.digest)?.size === desc.size || await super.has(desc);
  }

  override async put(desc: Descriptor, data: ByteStream, opts: IoOptions = {}): Promise<void> {
    this.checkOpen();
    const kind = classifyMediaType(desc.mediaType).kind;
    if (kind === 'config') {
      const p = super.put(desc, data, opts).then(() => this.noteConfig(desc));
      this.configPuts.add(p);
      const done = (): void => void this.configPuts.delete(p);
      p.then(done, done);
      return p;
    }
    if (kind !== 'layer' || !canWriteDigest(desc.digest)) return super.put(desc, data, opts);
    // Verified once: a stream that verifies itself against exactly `desc` (the copy engine's) is
    // not hashed again.
    const v = verificationOf(data);
    const trusted = v !== undefined && v.digest === desc.digest && v.size === desc.size;
    const body = trusted ? data : verifyStream(data, { digest: desc.digest, size: desc.size, what: `layer ${desc.digest}` });
    return this.putLayer(desc, body, opts);
  }

  /**
   * Streams a layer into the archive in its turn (puts are taken in the order they come, so the
   * archive's order is the engine's), or stages it when its name cannot be known.
   */
  private async putLayer(desc: Descriptor, body: ByteStream, opts: IoOptions): Promise<void> {
    const prev = this.turn;
    let release!: () => void;
    this.turn = new Promise<void>((resolve) => (release = resolve));
    let staged = false;
    // The source is not read while the put waits (a layer rebuilt on a worker starts it only
    // then). A source that fails on an abort (a file stream given the copy's signal) gets a reader
    // at the abort, so its error does not go unhandled.
    let started = false;
    const tracked = (async function* (): ByteStream {
      started = true;
      yield* body;
    })();
    const onAbort = (): void => {
      if (!started) void discard(body);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await prev;
      // legacy names come from the config: wait for one still being written
      if (this.opts.archiveLayout === 'legacy' && this.configPuts.size > 0) await Promise.allSettled([...this.configPuts]);
      if (this.direct.has(desc.digest)) {
        await discard(tracked);
        return;
      }
      const m = this.streamedMembers(desc);
      if (m === undefined) {
        staged = true;
      } else {
        await this.putDirect(desc, tracked, m, opts);
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      release();
    }
    if (staged) await this.blobs.putVerified(desc, eager(tracked), opts);
  }

  /**
   * The members a streamed layer is written with (the layer's last, its body to be filled in),
   * or undefined while its name cannot be known yet (legacy: no config listing it was put).
   */
  private streamedMembers(desc: Descriptor): { before: TarMember[]; name: string; dir?: string } | undefined {
    if (this.opts.archiveLayout !== 'legacy') {
      const before: TarMember[] = this.blobDirs ? [] : [{ name: 'blobs', type: 'directory' }, { name: 'blobs/sha256', type: 'directory' }];
      return digestAlgorithm(desc.digest) === 'sha256' ? { before, name: blobName(desc.digest) } : undefined;
    }
    for (const c of this.configs) {
      const i = c.diffIds.indexOf(desc.digest);
      if (i < 0) continue;
      const ids = v1Ids(c.diffIds, c.digest);
      const id = ids[i]!;
      if (this.directDirs.has(id)) return undefined;
      const top = i === c.diffIds.length - 1;
      return { before: v1DirMembers(id, i > 0 ? ids[i - 1] : undefined, top ? c.json : undefined, c.json), name: `${id}/layer.tar`, dir: id };
    }
    return undefined;
  }

  private async putDirect(desc: Descriptor, body: ByteStream, m: { before: TarMember[]; name: string; dir?: string }, opts: IoOptions): Promise<void> {
    try {
      this.appender ??= TarAppender.create(path.join(this.staging, 'archive.tar'));
      const appender = await this.appender;
      // A mismatch fails on the last read, and append() then cuts the member off again.
      await appender.append([...m.before, { name: m.name, type: 'file', stream: body, size: desc.size }], opts);
      this.direct.set(desc.digest, { size: desc.size, name: m.name });
      if (m.dir !== undefined) this.directDirs.add(m.dir);
      else this.blobDirs = true;
    } catch (err) {
      await discard(body);
      if (err instanceof BerthError && err.code !== 'BERTH_IO' && err.code !== 'BERTH_NOT_FOUND') throw err;
      throw writeError(err, `writing layer ${desc.digest} to ${this.where}`);
    }
  }

  /** Remembers a staged image config's diff_ids (an unreadable one is left for describeImage to report). */
  private async noteConfig(desc: Descriptor): Promise<void> {
    if (this.opts.archiveLayout !== 'legacy' || desc.size > limits().maxConfigBytes) return;
    try {
      const bytes = await readFile(this.blobs.filePath(desc.digest));
      const what = `config ${shortDigest(desc.digest)}`;
      const diffIds = configDiffIds(parseImageConfig(bytes, { what }));
      this.configs.push({ digest: desc.digest, diffIds, json: parseJsonBytes(bytes, what, limits().maxConfigBytes) });
    } catch {
      // not an image config: its layers are staged
    }
  }

  override async close(): Promise<void> {
    const appender = this.appender;
    this.appender = undefined;
    await appender?.then((a) => a.close(), () => undefined);
    await super.close();
  }

  static async open(reference: ImageReference, opts: DestinationOptions = {}): Promise<ImageDestination> {
    const target = reference.path;
    const state = await targetState(target);
    if (state.kind === 'directory') {
      throw new BerthError('BERTH_EXISTS', `${reference.toString()}: ${target} is a directory, not an archive file`, { subject: target });
    }
    if (state.kind === 'file' && opts.overwrite !== true) {
      throw new BerthError('BERTH_EXISTS', `${reference.toString()}: ${target} already exists (use --overwrite to replace it)`, { subject: target });
    }
    return new DockerArchiveDestination(reference, await stagingBeside(target), opts);
  }

  protected async publish(roots: readonly NamedRoot[], opts: IoOptions): Promise<void> {
    const images: ArchiveImage[] = [];
    const tagOwner = new Map<string, string>();
    for (const root of roots) {
      const image = await this.describeImage(root);
      for (const tag of image.repoTags) {
        const other = tagOwner.get(tag);
        if (other !== undefined && other !== image.manifest.digest) {
          throw new BerthError('BERTH_AMBIGUOUS', `${this.where}: tag ${tag} is given to two different images (${shortDigest(other)} and ${shortDigest(image.manifest.digest)})`, { subject: tag });
        }
        tagOwner.set(tag, image.manifest.digest);
      }
      images.push(image);
    }
    const members = this.opts.archiveLayout === 'legacy'
      ? await this.legacyMembers(images)
      : await this.docker25Members(roots, images);
    const fsync = this.opts.fsync !== false;
    if (this.appender === undefined) {
      await writeTarFile(this.reference.path, members, { ...opts, fsync });
      return;
    }
    try {
      const appender = await this.appender;
      await appender.append(members, opts);
      await appender.publish(this.reference.path, { fsync });
    } catch (err) {
      if (err instanceof BerthError && err.code !== 'BERTH_IO') throw err;
      throw writeError(err, `writing ${this.reference.path}`);
    }
  }

  private async describeImage(root: NamedRoot): Promise<ArchiveImage> {
    const desc = root.descriptor;
    const kind = classifyMediaType(desc.mediaType).kind;
    if (kind !== 'manifest') {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.where}: a docker-archive holds single-platform images, not ${desc.mediaType} (choose one platform)`, { subject: desc.digest });
    }
    const bytes = this.manifests.get(desc.digest)?.bytes ?? await readFile(this.blobs.filePath(desc.digest));
    const what = `manifest ${shortDigest(desc.digest)}`;
    const manifest = parseImageManifest(bytes, { what, mediaType: desc.mediaType });
    if (classifyMediaType(manifest.config.mediaType).kind !== 'config') {
      throw new BerthError('BERTH_UNSUPPORTED', `${this.where}: ${what} is not a container image (config ${manifest.config.mediaType}); docker-archive holds images only`, { subject: desc.digest });
    }
    const configBytes = await readFile(this.blobs.filePath(manifest.config.digest));
    if (configBytes.length > limits().maxConfigBytes) {
      throw new BerthError('BERTH_TOO_LARGE', `${this.where}: config ${shortDigest(manifest.config.digest)} is over ${limits().maxConfigBytes} bytes`, { subject: manifest.config.digest });
    }
    const config = parseImageConfig(configBytes, { what: `config ${shortDigest(manifest.config.digest)}` });
    const diffIds = configDiffIds(config);
    if (diffIds.length !== manifest.layers.length) {
      throw new BerthError('BERTH_INVALID_MANIFEST', `${this.where}: ${what} lists ${manifest.layers.length} layers but its config has ${diffIds.length} diff_ids`, {
        subject: desc.digest, want: diffIds.length, got: manifest.layers.length,
      });
    }
    manifest.layers.forEach((layer, i) => {
      if (layer.digest !== diffIds[i]) {
        throw new BerthError('BERTH_INVALID_MANIFEST', `${this.where}: layer ${i} of ${what} is ${layer.digest}, not the uncompressed tar of diff_id ${diffIds[i]} (docker-archive layers must be uncompressed)`, { subject: layer.digest });
      }
    });
    const repoTags: string[] = [];
    for (const name of root.names) {
      const tag = repoTag(name);
      if (tag === undefined) {
        throw new BerthError('BERTH_INVALID_REFERENCE', `${this.where}: "${name}" is not a tagged image name (docker-archive RepoTags want NAME:TAG)`, { subject: name });
      }
      if (!repoTags.includes(tag)) repoTags.push(tag);
    }
    return { manifest: desc, config: manifest.config, configBytes, diffIds, repoTags };
  }

  private async docker25Members(roots: readonly NamedRoot[], images: readonly ArchiveImage[]): Promise<TarMember[]> {
    const manifestJson = images.map((img) => ({
      Config: blobName(img.config.digest),
      RepoTags: img.repoTags.length > 0 ? img.repoTags : null,
      Layers: img.diffIds.map((d) => blobName(d)),
    }));
    const extra: TarMember[] = [{ name: 'manifest.json', type: 'file', bytes: encoder.encode(`${JSON.stringify(manifestJson)}\n`) }];
    const repositories = repositoriesFile(images, (img) => v1Ids(img.diffIds, img.config.digest).at(-1));
    if (repositories !== undefined) extra.push({ name: 'repositories', type: 'file', bytes: repositories });
    // index.json: one entry per tag (Docker 25: full name + the tag as ref.name), one for an untagged image.
    const named = roots.map((r, i) => ({ descriptor: r.descriptor, names: images[i]!.repoTags }));
    const index = serializeIndex(rootEntries(named, 'docker'));
    if (this.appender === undefined) return layoutMembers(this.staging, index, this.blobs.blobs, extra);
    // After the streamed layers: the staged blobs (configs, manifests), then the metadata files.
    const out: TarMember[] = [];
    if (!this.blobDirs) out.push({ name: 'blobs', type: 'directory' });
    const staged = [...this.blobs.blobs.keys()].filter((d) => !this.direct.has(d)).sort();
    const algs = [...new Set(staged.map((d) => d.slice(0, d.indexOf(':'))))].sort();
    for (const alg of algs) {
      if (alg !== 'sha256' || !this.blobDirs) out.push({ name: `blobs/${alg}`, type: 'directory' });
      for (const d of staged.filter((x) => x.startsWith(`${alg}:`))) {
        out.push({ name: blobName(d as Digest), type: 'file', file: this.blobs.filePath(d as Digest), size: this.blobs.blobs.get(d)! });
      }
    }
    out.push({ name: 'oci-layout', type: 'file', bytes: OCI_LAYOUT_FILE }, { name: 'index.json', type: 'file', bytes: index }, ...extra);
    return out;
  }

  private async legacyMembers(images: readonly ArchiveImage[]): Promise<TarMember[]> {
    const members: TarMember[] = [];
    // directories and layers streamed in already
    const writtenDirs = new Set<string>(this.directDirs);
    const layerFileOf = new Map<string, string>([...this.direct].map(([d, f]) => [d, f.name]));
    const manifestJson: unknown[] = [];
    const writtenConfigs = new Set<string>();
    for (const img of images) {
      const ids = v1Ids(img.diffIds, img.config.digest);
      const config = parseJsonBytes(img.configBytes, 'config', limits().maxConfigBytes);
      const layers: string[] = [];
      for (const [i, diffId] of img.diffIds.entries()) {
        const id = ids[i]!;
        const dir = id;
        layers.push(`${dir}/layer.tar`);
        if (writtenDirs.has(dir)) continue;
        writtenDirs.add(dir);
        const top = i === img.diffIds.length - 1;
        members.push(...v1DirMembers(id, i > 0 ? ids[i - 1] : undefined, top ? config : undefined, config));
        const first = layerFileOf.get(diffId);
        if (first !== undefined) {
          // The same layer under another v1 id: a relative symlink, as docker save writes it.
          members.push({ name: `${dir}/layer.tar`, type: 'symlink', target: `../${first}` });
        } else {
          const size = this.blobs.blobs.get(diffId);
          if (size === undefined) throw new BerthError('BERTH_NOT_FOUND', `${this.where}: layer ${diffId} was never written`, { subject: diffId });
          members.push({ name: `${dir}/layer.tar`, type: 'file', file: this.blobs.filePath(diffId), size });
          layerFileOf.set(diffId, `${dir}/layer.tar`);
        }
      }
      const configName = `${digestHex(img.config.digest)}.json`;
      if (!writtenConfigs.has(configName)) {
        writtenConfigs.add(configName);
        members.push({ name: configName, type: 'file', bytes: img.configBytes });
      }
      manifestJson.push({ Config: configName, RepoTags: img.repoTags.length > 0 ? img.repoTags : null, Layers: layers });
    }
    members.push({ name: 'manifest.json', type: 'file', bytes: encoder.encode(`${JSON.stringify(manifestJson)}\n`) });
    const repositories = repositoriesFile(images, (img) => v1Ids(img.diffIds, img.config.digest).at(-1));
    if (repositories !== undefined) members.push({ name: 'repositories', type: 'file', bytes: repositories });
    return members;
  }
}

/**
 * Opaque, deterministic v1 ids: a lower layer's id depends only on its chain ID, so images sharing
 * a base share those directories; the top layer's id also depends on the config, as its `json`
 * carries the image config.
 */
function v1Ids(diffIds: readonly Digest[], config: Digest): string[] {
  const chains = chainIds(diffIds);
  return chains.map((chain, i) =>
    digestHex(digestOf(i === chains.length - 1 ? `berth v1 top ${chain} ${config}` : `berth v1 layer ${chain}`)));
}

/** A legacy layer directory's members before its layer.tar: the directory, VERSION, json. */
function v1DirMembers(id: string, parent: string | undefined, topConfig: unknown, config: unknown): TarMember[] {
  return [
    { name: id, type: 'directory' },
    { name: `${id}/VERSION`, type: 'file', bytes: encoder.encode('1.0') },
    { name: `${id}/json`, type: 'file', bytes: encoder.encode(JSON.stringify(v1Json(id, parent, topConfig, config))) },
  ];
}


const EMPTY_CONTAINER_CONFIG = {
  Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false,
  StdinOnce: false, Env: null, Cmd: null, Image: '', Volumes: null, WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
};

/** The legacy `<v1id>/json`: the image config minus rootfs and history for the top layer, a stub below (formats.md 9.1). */
function v1Json(id: string, parent: string | undefined, topConfig: unknown, config: unknown): Record<string, unknown> {
  if (isJsonObject(topConfig)) {
    const { rootfs: _r, history: _h, id: _i, parent: _p, ...rest } = topConfig;
    return { id, ...(parent !== undefined ? { parent } : {}), ...rest };
  }
  const os = isJsonObject(config) && typeof config['os'] === 'string' ? config['os'] : 'linux';
  return { id, ...(parent !== undefined ? { parent } : {}), created: '1970-01-01T00:00:00Z', container_config: EMPTY_CONTAINER_CONFIG, os };
}

/** `repositories`: `{ "<familiar repo>": { "<tag>": "<v1 id of the top layer>" } }`; undefined when nothing is tagged. */
function repositoriesFile(images: readonly ArchiveImage[], topId: (img: ArchiveImage) => string | undefined): Uint8Array | undefined {
  const repos: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const id = topId(img);
    if (id === undefined) continue;
    for (const tag of img.repoTags) {
      const colon = tag.lastIndexOf(':');
      const repo = tag.slice(0, colon);
      (repos[repo] ??= {})[tag.slice(colon + 1)] = id;
    }
  }
  if (Object.keys(repos).length === 0) return undefined;
  return encoder.encode(`${JSON.stringify(repos)}\n`);
}
