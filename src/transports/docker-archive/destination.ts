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
 */
import { readFile } from 'node:fs/promises';
import type { Descriptor } from '../../core/descriptor.js';
import { chainIds, configDiffIds, parseImageConfig } from '../../core/config.js';
import { digestHex, digestOf, shortDigest, type Digest } from '../../core/digest.js';
import { BerthError } from '../../core/errors.js';
import { isJsonObject, parseJsonBytes } from '../../core/json.js';
import { parseImageManifest } from '../../core/manifest.js';
import { classifyMediaType, OCI_MANIFEST, DOCKER_MANIFEST } from '../../core/media-types.js';
import type { IoOptions } from '../../io/stream.js';
import type { DestinationCapabilities, DestinationOptions, ImageDestination, ImageReference, NamedRoot } from '../transport.js';
import {
  blobName, layoutMembers, repoTag, rootEntries, serializeIndex, stagingBeside, StagingDestination, targetState, writeTarFile, type TarMember,
} from '../shared/layout-writer.js';
import { limits } from '../../io/limits.js';

export const DOCKER_ARCHIVE_CAPABILITIES: DestinationCapabilities = {
  acceptsIndex: false,
  manifestTypes: [OCI_MANIFEST, DOCKER_MANIFEST],
  layerCompression: 'none',
  acceptsForeignLayers: false,
  acceptsAttestations: false,
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

export class DockerArchiveDestination extends StagingDestination {
  private constructor(reference: ImageReference, staging: string, opts: DestinationOptions) {
    super(reference, DOCKER_ARCHIVE_CAPABILITIES, staging, opts, { scratch: true });
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
    await writeTarFile(this.reference.path, members, { ...opts, fsync: this.opts.fsync !== false });
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
    const repositories = repositoriesFile(images, (img) => v1Ids(img).at(-1));
    if (repositories !== undefined) extra.push({ name: 'repositories', type: 'file', bytes: repositories });
    // index.json: one entry per tag (Docker 25: full name + the tag as ref.name), one for an untagged image.
    const named = roots.map((r, i) => ({ descriptor: r.descriptor, names: images[i]!.repoTags }));
    const index = serializeIndex(rootEntries(named, 'docker'));
    return layoutMembers(this.staging, index, this.blobs.blobs, extra);
  }

  private async legacyMembers(images: readonly ArchiveImage[]): Promise<TarMember[]> {
    const members: TarMember[] = [];
    const writtenDirs = new Set<string>();
    const layerFileOf = new Map<string, string>();
    const manifestJson: unknown[] = [];
    const writtenConfigs = new Set<string>();
    for (const img of images) {
      const ids = v1Ids(img);
      const config = parseJsonBytes(img.configBytes, 'config', limits().maxConfigBytes);
      const layers: string[] = [];
      for (const [i, diffId] of img.diffIds.entries()) {
        const id = ids[i]!;
        const dir = id;
        layers.push(`${dir}/layer.tar`);
        if (writtenDirs.has(dir)) continue;
        writtenDirs.add(dir);
        const top = i === img.diffIds.length - 1;
        members.push({ name: dir, type: 'directory' });
        members.push({ name: `${dir}/VERSION`, type: 'file', bytes: encoder.encode('1.0') });
        members.push({ name: `${dir}/json`, type: 'file', bytes: encoder.encode(JSON.stringify(v1Json(id, i > 0 ? ids[i - 1] : undefined, top ? config : undefined, config))) });
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
    const repositories = repositoriesFile(images, (img) => v1Ids(img).at(-1));
    if (repositories !== undefined) members.push({ name: 'repositories', type: 'file', bytes: repositories });
    return members;
  }
}

/**
 * Opaque, deterministic v1 ids: a lower layer's id depends only on its chain ID, so images sharing
 * a base share those directories; the top layer's id also depends on the config, as its `json`
 * carries the image config.
 */
function v1Ids(img: ArchiveImage): string[] {
  const chains = chainIds(img.diffIds);
  return chains.map((chain, i) =>
    digestHex(digestOf(i === chains.length - 1 ? `berth v1 top ${chain} ${img.config.digest}` : `berth v1 layer ${chain}`)));
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
