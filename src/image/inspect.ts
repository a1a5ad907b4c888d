/**
 * The summary `berth inspect` prints: like `skopeo inspect`, plus the config's execution
 * defaults, history and per-layer diff_ids. Field names are camelCase and stable (JSON output).
 */
import { configDiffIds } from '../core/config.js';
import { formatPlatform } from '../core/platform.js';
import { isImageManifest } from './node.js';
import type { ResolvedImage } from './resolve.js';

export interface InspectLayer {
  readonly index: number;
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
  readonly diffId: string | undefined;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly urls?: readonly string[];
}

export interface InspectHistory {
  readonly created?: string;
  readonly createdBy?: string;
  readonly author?: string;
  readonly comment?: string;
  readonly emptyLayer: boolean;
}

export interface InspectResult {
  readonly reference: string;
  /** `artifact`: the manifest is not a runnable image (its config is not an image config, or it declares an artifactType). */
  readonly kind: 'image' | 'artifact';
  readonly artifactType?: string;
  readonly names: readonly string[];
  readonly digest: string;
  readonly mediaType: string;
  /** The index the image was picked from, when there was one. */
  readonly indexDigest?: string;
  readonly synthesized: boolean;
  readonly configDigest: string;
  readonly configMediaType: string;
  readonly created?: string;
  readonly author?: string;
  readonly platform?: string;
  readonly os?: string;
  readonly architecture?: string;
  readonly variant?: string;
  readonly env: readonly string[];
  readonly entrypoint: readonly string[] | null;
  readonly cmd: readonly string[] | null;
  readonly workingDir: string;
  readonly user: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly exposedPorts: readonly string[];
  readonly volumes: readonly string[];
  readonly stopSignal?: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly history: readonly InspectHistory[];
  readonly layers: readonly InspectLayer[];
  readonly totalSize: number;
}

export function inspectImage(image: ResolvedImage, meta: { reference: string; names: readonly string[]; synthesized: boolean }): InspectResult {
  const cfg = image.config;
  const exec = cfg?.config ?? undefined;
  const diffIds = cfg ? configDiffIds(cfg) : [];
  const layers = image.manifest.layers.map((l, index) => ({
    index,
    digest: l.digest,
    mediaType: l.mediaType,
    size: l.size,
    diffId: diffIds[index],
    ...(l.annotations ? { annotations: l.annotations } : {}),
    ...(l.urls ? { urls: l.urls } : {}),
  }));
  const indexDigest = image.via.length > 0 ? image.via[0]!.digest : undefined;
  const artifactType = image.manifest.artifactType;
  return {
    reference: meta.reference,
    kind: isImageManifest(image.manifest) ? 'image' : 'artifact',
    ...(artifactType ? { artifactType } : {}),
    names: meta.names,
    digest: image.descriptor.digest,
    mediaType: image.descriptor.mediaType,
    ...(indexDigest ? { indexDigest } : {}),
    synthesized: meta.synthesized,
    configDigest: image.manifest.config.digest,
    configMediaType: image.manifest.config.mediaType,
    ...(cfg?.created ? { created: cfg.created } : {}),
    ...(cfg?.author ? { author: cfg.author } : {}),
    ...(image.platform ? { platform: formatPlatform(image.platform) } : {}),
    ...(cfg?.os ? { os: cfg.os } : {}),
    ...(cfg?.architecture ? { architecture: cfg.architecture } : {}),
    ...(cfg?.variant ? { variant: cfg.variant } : {}),
    env: exec?.Env ?? [],
    entrypoint: exec?.Entrypoint ?? null,
    cmd: exec?.Cmd ?? null,
    workingDir: exec?.WorkingDir ?? '',
    user: exec?.User ?? '',
    labels: exec?.Labels ?? {},
    exposedPorts: Object.keys(exec?.ExposedPorts ?? {}).sort(),
    volumes: Object.keys(exec?.Volumes ?? {}).sort(),
    ...(exec?.StopSignal ? { stopSignal: exec.StopSignal } : {}),
    annotations: image.manifest.annotations ?? {},
    history: (cfg?.history ?? []).map((h) => ({
      ...(h.created ? { created: h.created } : {}),
      ...(h.created_by ? { createdBy: h.created_by } : {}),
      ...(h.author ? { author: h.author } : {}),
      ...(h.comment ? { comment: h.comment } : {}),
      emptyLayer: h.empty_layer === true,
    })),
    layers,
    totalSize: image.manifest.layers.reduce((n, l) => n + l.size, 0),
  };
}
