/**
 * Deep verification of everything an entry point reaches: every blob's size and digest, JSON
 * validity and schema, media types against content, each layer's uncompressed digest against
 * the config's diff_ids, counts, missing blobs (errors where an image needs them, warnings for
 * sparse index children) and blobs nothing references (warnings). Every blob is read once.
 */
import { availableParallelism } from 'node:os';
import type { Descriptor } from '../core/descriptor.js';
import { createDigester, shortDigest } from '../core/digest.js';
import { toBerthError } from '../core/errors.js';
import { configDiffIds, parseImageConfig, type ImageConfig } from '../core/config.js';
import { parseJsonBytes } from '../core/json.js';
import { classifyMediaType } from '../core/media-types.js';
import { describeBlob, fetchBytes, openVerified, type BlobSource } from '../content/store.js';
import { decompress, detectCompression } from '../io/codec.js';
import { drain, type IoOptions } from '../io/stream.js';
import { entryRole, isImageManifest, readNode, type EntryRole } from './node.js';
import type { TreeEntryPoint } from './tree.js';
import { limits } from '../io/limits.js';
import { Limiter } from '../io/limiter.js';

export interface VerifyProblem {
  readonly severity: 'error' | 'warning';
  /** The object: `blob sha256:…`, `layer 2 sha256:…`, `index.json`. */
  readonly subject: string;
  readonly message: string;
}

export interface VerifyReport {
  readonly problems: readonly VerifyProblem[];
  readonly blobs: number;
  readonly bytes: number;
  readonly manifests: number;
  readonly layers: number;
}

export interface VerifySource extends BlobSource {
  listBlobs?(opts?: IoOptions): Promise<ReadonlyArray<{ digest: string; size: number; location: string }>>;
}

export interface VerifyOptions extends IoOptions {
  /** Roots to check; all roots of the entry point when omitted. */
  readonly roots?: readonly Descriptor[];
  /** Treat sparse (absent) index children as errors. */
  readonly strict?: boolean;
  /** Called as bytes are read, for progress displays. */
  readonly onBytes?: (n: number) => void;
  /** Extra checks for attestation layers (statement subjects); returns problems as text. */
  readonly checkAttestationLayer?: (layer: Descriptor, bytes: Uint8Array, subjectDigest: string | undefined) => readonly string[];
  readonly entryNotes?: readonly string[];
  /** Entry-point problems the reader tolerated but verification fails on. */
  readonly entryProblems?: readonly string[];
  /** Manifests berth synthesised (docker-archive): their layer media types are berth's, not the producer's. */
  readonly synthesized?: ReadonlySet<string>;
}

const ATTESTATION_LAYER_LIMIT = 64 * 1024 * 1024;

/** Layers read at once: enough to keep two cores busy (gunzip on the thread pool, hashing here). */
function layerConcurrency(): number {
  return Math.max(2, Math.min(4, availableParallelism()));
}

export async function verifyImages(src: VerifySource, entry: TreeEntryPoint, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyProblem[] = [];
  const seen = new Set<string>();
  const layerResults = new Map<string, Promise<string | undefined>>();
  let bytes = 0;
  let blobs = 0;
  let manifests = 0;
  let layers = 0;
  const problemOf = (severity: VerifyProblem['severity'], subject: string, message: string): VerifyProblem => ({ severity, subject, message });
  const error = (subject: string, message: string) => problems.push(problemOf('error', subject, message));
  const warn = (subject: string, message: string) => problems.push(problemOf('warning', subject, message));
  const count = (n: number) => {
    bytes += n;
    opts.onBytes?.(n);
  };

  const report = (note: string, as: (subject: string, message: string) => void) => {
    // notes that name a field (`manifest.json[0].Layers[1]: …`) use it as their subject
    const m = /^([^\s:]+(?:\[[^\]]*\]|\.[A-Za-z]+)*): (.*)$/s.exec(note);
    if (m !== null && m[1]!.startsWith(entry.file)) as(m[1]!, m[2]!);
    else as(entry.file, note);
  };
  for (const note of opts.entryNotes ?? []) report(note, warn);
  for (const problem of opts.entryProblems ?? []) report(problem, error);
  let unreadable = 0;
  const layerSlots = new Limiter(layerConcurrency());

  async function visitManifestLike(desc: Descriptor, role: EntryRole, parentIndex: boolean, path: readonly string[], subjectDigest?: string): Promise<void> {
    const what = describeBlob(desc, role === 'unknown' ? 'blob' : role === 'image' ? 'manifest' : role);
    if (path.includes(desc.digest)) {
      warn(what, 'an index contains itself (cycle); not followed again');
      return;
    }
    if (!(await src.has(desc, opts))) {
      if (parentIndex && !opts.strict) warn(what, `listed but not present (a sparse export)${desc.platform ? ` for ${desc.platform.os}/${desc.platform.architecture}` : ''}`);
      else error(what, 'is missing');
      return;
    }
    if (role === 'unknown' && classifyMediaType(desc.mediaType).kind === 'schema1') {
      error(what, `is a docker schema 1 manifest (${desc.mediaType}): deprecated, and not an image berth can verify`);
      return;
    }
    if (role === 'unknown') {
      if (!seen.has(desc.digest)) {
        seen.add(desc.digest);
        await verifyPlainBlob(desc, what);
      }
      warn(what, `has a media type berth does not know (${desc.mediaType}); checked its digest only`);
      return;
    }
    if (seen.has(desc.digest)) return;
    seen.add(desc.digest);
    let node;
    try {
      node = await readNode(src, desc, opts);
    } catch (err) {
      error(what, toBerthError(err).message);
      unreadable++;
      return;
    }
    blobs++;
    manifests++;
    count(desc.size);
    const here = [...path, desc.digest];
    if (node.kind === 'index') {
      for (const child of node.index.manifests) {
        await visitManifestLike(child, entryRole(child), true, here, child.annotations?.['vnd.docker.reference.digest']);
      }
      if (node.index.subject) await checkSubjectPresent(node.index.subject, what);
      return;
    }
    const manifest = node.manifest;
    if (manifest.subject) await checkSubjectPresent(manifest.subject, what);
    const image = isImageManifest(manifest) && role !== 'attestation';
    // config
    let config: ImageConfig | undefined;
    const cfgWhat = describeBlob(manifest.config, 'config');
    if (!(await src.has(manifest.config, opts))) {
      error(cfgWhat, `is missing (needed by ${what})`);
    } else if (!seen.has(manifest.config.digest) || image) {
      const first = !seen.has(manifest.config.digest);
      seen.add(manifest.config.digest);
      try {
        const raw = await fetchBytes(src, manifest.config, { ...opts, maxBytes: limits().maxConfigBytes, what: cfgWhat });
        if (first) {
          blobs++;
          count(raw.length);
        }
        if (image) config = parseImageConfig(raw, { what: cfgWhat });
        else if (first && /\+json$/.test(manifest.config.mediaType)) {
          // A config type berth does not know must not be parsed by consumers: a non-JSON body is odd, not fatal.
          try {
            parseJsonBytes(raw, cfgWhat, limits().maxConfigBytes);
          } catch (err) {
            warn(cfgWhat, `its media type ${manifest.config.mediaType} says JSON but ${toBerthError(err).message}`);
          }
        }
      } catch (err) {
        if (first) error(cfgWhat, toBerthError(err).message);
      }
    }
    if (config !== undefined && configDiffIds(config).length !== manifest.layers.length) {
      error(what, `lists ${manifest.layers.length} layers but its config ${shortDigest(manifest.config.digest)} has ${configDiffIds(config).length} rootfs.diff_ids`);
    }
    // Layers are verified several at once (each gunzips on the thread pool while the main thread
    // hashes another); each index keeps its own problem list so the report reads in layer order.
    const sinks: VerifyProblem[][] = manifest.layers.map(() => []);
    const pending: Array<Promise<void>> = [];
    try {
      for (const [i, layer] of manifest.layers.entries()) {
        const sink = sinks[i]!;
        const lWhat = `layer ${i} ${shortDigest(layer.digest)} of ${what}`;
        if (!(await src.has(layer, opts))) {
          const info = classifyMediaType(layer.mediaType);
          if ((layer.urls && layer.urls.length > 0) || info.nondistributable) sink.push(problemOf('warning', lWhat, 'is a foreign layer not stored here (its descriptor lists urls)'));
          else sink.push(problemOf('error', lWhat, 'is missing'));
          continue;
        }
        if (role === 'attestation') {
          // held in memory whole (up to 64 MiB each), so one at a time
          await verifyAttestationLayer(layer, lWhat, subjectDigest, sink);
          continue;
        }
        const diffId = (config ? configDiffIds(config)[i] : undefined);
        // decided before any await, so the first index naming a digest verifies it (and owns its problems)
        if (!layerResults.has(layer.digest)) layerResults.set(layer.digest, verifyLayer(layer, lWhat, image, desc.digest, sink));
        pending.push(layerResults.get(layer.digest)!.then((got) => {
          if (diffId !== undefined && got !== undefined && got !== diffId) {
            sink.push(problemOf('error', lWhat, `uncompressed digest ${got} does not match the config's rootfs.diff_ids[${i}] ${diffId}`));
          }
        }));
      }
    } finally {
      // even when a has() fails, no layer job outlives this manifest
      await Promise.allSettled(pending);
      for (const sink of sinks) problems.push(...sink);
    }
  }

  async function checkSubjectPresent(subject: Descriptor, what: string): Promise<void> {
    if (!(await src.has(subject, opts))) warn(what, `its subject ${shortDigest(subject.digest)} is not stored here`);
  }

  async function verifyPlainBlob(desc: Descriptor, what: string): Promise<void> {
    try {
      const n = await drain(await openVerified(src, desc, { ...opts, what }));
      blobs++;
      count(n);
    } catch (err) {
      error(what, toBerthError(err).message);
    }
  }

  /** Returns the diffID, or undefined when the layer could not be read (problem recorded). */
  function verifyLayer(layer: Descriptor, what: string, image: boolean, manifestDigest: string, sink: VerifyProblem[]): Promise<string | undefined> {
    if (seen.has(layer.digest)) return Promise.resolve(undefined);
    seen.add(layer.digest);
    return layerSlots.run(() => readLayer(layer, what, image, manifestDigest, sink));
  }

  async function readLayer(layer: Descriptor, what: string, image: boolean, manifestDigest: string, sink: VerifyProblem[]): Promise<string | undefined> {
    const info = classifyMediaType(layer.mediaType);
    try {
      const verified = await openVerified(src, layer, { ...opts, what });
      if (!image || info.kind !== 'layer' || info.encrypted) {
        count(await drain(verified));
        blobs++;
        return undefined;
      }
      const { compression, stream } = await detectCompression(verified, { what });
      const declared = info.compression ?? 'none';
      if (compression !== declared && !(opts.synthesized?.has(manifestDigest) ?? false)) {
        const msg = `media type ${layer.mediaType} says ${declared === 'none' ? 'an uncompressed tar' : declared} but the content is ${compression === 'none' ? 'not compressed' : compression}`;
        if (info.family === 'oci') sink.push(problemOf('error', what, msg));
        else sink.push(problemOf('warning', what, `${msg} (docker sniffs the content, so it still loads)`));
      }
      const digester = createDigester();
      const counted = (async function* () {
        for await (const chunk of stream) {
          count(chunk.length);
          yield chunk;
        }
      })();
      for await (const chunk of decompress(counted, compression, { what })) digester.update(chunk);
      blobs++;
      layers++;
      return digester.digest();
    } catch (err) {
      sink.push(problemOf('error', what, toBerthError(err).message));
      return undefined;
    }
  }

  async function verifyAttestationLayer(layer: Descriptor, what: string, subjectDigest: string | undefined, sink: VerifyProblem[]): Promise<void> {
    if (seen.has(layer.digest)) return;
    seen.add(layer.digest);
    try {
      const raw = await fetchBytes(src, layer, { ...opts, maxBytes: ATTESTATION_LAYER_LIMIT, what });
      blobs++;
      layers++;
      count(raw.length);
      if (layer.mediaType.endsWith('json')) parseJsonBytes(raw, what, ATTESTATION_LAYER_LIMIT);
      for (const p of opts.checkAttestationLayer?.(layer, raw, subjectDigest) ?? []) {
        if (p.startsWith('note: ')) sink.push(problemOf('warning', what, p.slice('note: '.length)));
        else sink.push(problemOf('error', what, p));
      }
    } catch (err) {
      sink.push(problemOf('error', what, toBerthError(err).message));
    }
  }

  const roots = opts.roots ?? entry.roots.map((r) => r.descriptor);
  for (const root of roots) await visitManifestLike(root, entryRole(root), false, []);

  if (opts.roots === undefined && src.listBlobs) {
    const unreferenced = (await src.listBlobs(opts)).filter((b) => !seen.has(b.digest));
    if (unreferenced.length > 0 && unreadable > 0) {
      // what an unreadable manifest points at cannot be told apart from garbage
      warn(entry.file, `${unreferenced.length} blobs are not reachable through the manifests that could be read; the unreferenced-blob check was skipped`);
    } else {
      for (const blob of unreferenced) warn(`blob ${shortDigest(blob.digest)}`, `is not referenced by anything reachable from ${entry.file} (${blob.location})`);
    }
  }
  return { problems, blobs, bytes, manifests, layers };
}
