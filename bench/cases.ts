/**
 * The benchmark cases: berth against a peer tool on the same input (alternating runs), and the
 * physical-limit rows that say how fast the machine could do the job at all. A case whose berth
 * command does not exist yet is listed as skipped with the reason, so the table grows as the
 * CLI does. Peer commands are those of bench-baseline.md, so the numbers can be compared.
 */
import path from 'node:path';
import type { Data, Dataset } from './datasets.js';
import type { Available } from './detect.js';
import type { Command } from './measure.js';
import type { Scratch } from './scratch.js';
import { containerName, DOCKER_BIN, DOCKER_HOST, ensureDockerd, FreshDockerd, LOAD_DOCKER_HOST } from './dockerd.js';
import { run } from './measure.js';
import { Registry, REGISTRY_BIN } from './registry.js';

export type Role = 'berth' | 'peer' | 'limit';

export interface Side {
  readonly role: Role;
  /** Short tool name for the table: berth, skopeo, sha256sum, umoci, … */
  readonly tool: string;
  readonly cmd: Command;
  /** Untimed work before every run (clearing the previous output). */
  readonly prepare?: () => Promise<void>;
  /**
   * The pid of a daemon doing the work for this side's client (dockerd for `docker load`): its
   * CPU over the run is added to the side's, and its peak RSS counts. Read after `prepare`.
   */
  readonly daemon?: () => number | undefined;
}

/** berth at most `ratio` × the peer's median, or at most `seconds` absolute. */
export type Goal = { readonly ratio: number } | { readonly seconds: number };

export interface Case {
  /** Stable id, matched by --only: verify-oci/debian, limit/bigfile/tar-x, meta/huge/tree. */
  readonly id: string;
  readonly dataset: string;
  readonly what: string;
  readonly sides: readonly Side[];
  readonly goal?: Goal;
  /** Files to read once before the runs so the page cache is warm for both sides. */
  readonly inputs: readonly string[];
  /** Bytes the MB/s figure counts (uncompressed layer bytes), when meaningful. */
  readonly basisBytes?: number;
  /** Takes many seconds per run: --slow-runs applies. */
  readonly slow?: boolean;
  /** Untimed, once after the runs (also after a failure): stops what the prepare steps started. */
  readonly teardown?: () => Promise<void>;
}

export interface Skipped {
  readonly id: string;
  readonly reason: string;
}

export interface Context {
  readonly data: Data;
  readonly scratch: Scratch;
  readonly avail: Available;
  /** How to start berth: node and the launcher. */
  readonly berth: readonly string[];
  /** How to start the limit helpers under dist/bench/limits. */
  readonly node: string;
  readonly limitsDir: string;
}

export interface CaseList {
  readonly cases: Case[];
  readonly skipped: Skipped[];
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const files = (list: readonly string[]): string => list.map(q).join(' ');

class Builder implements CaseList {
  readonly cases: Case[] = [];
  readonly skipped: Skipped[] = [];

  constructor(readonly ctx: Context) {}

  berth(...args: string[]): Command {
    return { argv: [...this.ctx.berth, ...args] };
  }

  /** Adds the case when berth has `command` (and the peer tool exists), else records why not. */
  add(c: Case, needs: { berth?: string; tools?: readonly string[] } = {}): void {
    if (needs.berth !== undefined && !this.ctx.avail.berth.has(needs.berth)) {
      this.skipped.push({ id: c.id, reason: `berth has no \`${needs.berth}\` command yet` });
      return;
    }
    const missing = (needs.tools ?? []).filter((t) => !this.ctx.avail.tools.has(t));
    if (missing.length > 0) {
      this.skipped.push({ id: c.id, reason: `not installed: ${missing.join(', ')}` });
      return;
    }
    this.cases.push(c);
  }
}

/** tree/inspect of the 5 GiB archive: they must read manifest.json and the config, never the layer. */
function metadataCases(b: Builder): void {
  const ref = `docker-archive:${b.ctx.data.huge}`;
  const skopeo: Side = { role: 'peer', tool: 'skopeo inspect', cmd: { argv: ['skopeo', 'inspect', ref] } };
  for (const command of ['tree', 'inspect']) {
    b.add({
      id: `meta/huge/${command}`, dataset: 'huge (5 GiB)', what: `berth ${command} of a 5 GiB docker-archive`,
      sides: [{ role: 'berth', tool: `berth ${command}`, cmd: b.berth(command, ref) }, skopeo], goal: { seconds: 0.3 }, inputs: [],
    }, { berth: command, tools: ['skopeo'] });
  }
  const debian = b.ctx.data.datasets.find((d) => d.name === 'debian');
  if (debian === undefined) return;
  const oci = `oci:${debian.oci}:latest`;
  b.add({
    id: 'meta/debian/inspect-oci', dataset: 'debian', what: 'berth inspect of an OCI layout',
    sides: [
      { role: 'berth', tool: 'berth inspect', cmd: b.berth('inspect', oci) },
      { role: 'peer', tool: 'skopeo inspect', cmd: { argv: ['skopeo', 'inspect', oci] } },
    ],
    goal: { seconds: 0.3 }, inputs: [],
  }, { berth: 'inspect', tools: ['skopeo'] });
}

/** verify hashes every blob and, for gzip layers, the uncompressed stream too (diff_ids). */
function verifyCases(b: Builder, ds: Dataset): void {
  b.add({
    id: `verify-oci/${ds.name}`, dataset: ds.name, what: 'berth verify of the OCI layout vs sha256sum of its blobs',
    sides: [
      { role: 'berth', tool: 'berth verify', cmd: b.berth('verify', '--quiet', `oci:${ds.oci}`) },
      { role: 'peer', tool: 'sha256sum blobs', cmd: { shell: `sha256sum ${files(ds.ociBlobs)} > /dev/null` } },
    ],
    inputs: ds.ociBlobs, basisBytes: ds.tarBytes,
  }, { berth: 'verify', tools: ['sha256sum'] });
  b.add({
    id: `verify-da/${ds.name}`, dataset: ds.name, what: 'berth verify of the docker-archive vs sha256sum of its layer tars',
    sides: [
      { role: 'berth', tool: 'berth verify', cmd: b.berth('verify', '--quiet', `docker-archive:${ds.dockerArchive}`) },
      { role: 'peer', tool: 'sha256sum layers', cmd: { shell: `sha256sum ${files(ds.tars)} > /dev/null` } },
    ],
    inputs: [ds.dockerArchive, ...ds.tars], basisBytes: ds.tarBytes,
  }, { berth: 'verify', tools: ['sha256sum'] });
}

/** The option `berth copy` takes for the destination compression, read from its help. */
function compressOption(b: Builder): string | undefined {
  if (!b.ctx.avail.berth.has('copy')) return undefined;
  return /(--(?:dest-)?compress(?:ion)?(?:-format)?)\b/.exec(b.ctx.avail.berthHelp('copy'))?.[1];
}

function copyCases(b: Builder, ds: Dataset): void {
  const out = (name: string): string => b.ctx.scratch.path('copy', ds.name, name);
  const fresh = (p: string) => () => b.ctx.scratch.fresh(p);
  const slow = ds.name === 'bigfile';
  const pair = (id: string, what: string, berthArgs: string[], skopeoArgs: string[], berthOut: string, skopeoOut: string, inputs: readonly string[]): void => {
    b.add({
      id: `${id}/${ds.name}`, dataset: ds.name, what,
      sides: [
        { role: 'berth', tool: 'berth copy', cmd: b.berth('copy', '-q', ...berthArgs), prepare: fresh(berthOut) },
        { role: 'peer', tool: 'skopeo copy', cmd: { argv: ['skopeo', 'copy', '-q', ...skopeoArgs] }, prepare: fresh(skopeoOut) },
      ],
      goal: { ratio: 0.8 }, inputs, basisBytes: ds.tarBytes, slow,
    }, { berth: 'copy', tools: ['skopeo'] });
  };
  const opt = compressOption(b);
  const da = `docker-archive:${ds.dockerArchive}`;
  const oci = `oci:${ds.oci}:latest`;
  const tag = `berth-bench/${ds.name}:latest`;
  // skopeo gzips layers going into an OCI layout; berth is asked to, so both do the same job.
  pair('copy-da-oci', 'docker-archive → OCI layout (gzip)', [opt ?? '--compression', 'gzip', da, `oci:${out('b-oci')}:latest`], [da, `oci:${out('s-oci')}:latest`], out('b-oci'), out('s-oci'), [ds.dockerArchive]);
  pair('copy-oci-da', 'OCI layout (gzip) → docker-archive', [oci, `docker-archive:${out('b.tar')}:${tag}`], [oci, `docker-archive:${out('s.tar')}:${tag}`], out('b.tar'), out('s.tar'), ds.ociBlobs);
  const id = `copy-oci-zstd/${ds.name}`;
  if (b.ctx.avail.berth.has('copy') && opt === undefined) {
    b.skipped.push({ id, reason: '`berth copy --help` names no compression option' });
    return;
  }
  pair('copy-oci-zstd', 'OCI gzip → OCI zstd (recompress)', [opt ?? '--compression', 'zstd', oci, `oci:${out('b-zstd')}:latest`],
    ['--dest-compress-format', 'zstd', oci, `oci:${out('s-zstd')}:latest`], out('b-zstd'), out('s-zstd'), ds.ociBlobs);
}

function unpackCases(b: Builder, ds: Dataset): void {
  const berthOut = b.ctx.scratch.path('unpack', ds.name, 'berth');
  const umociOut = b.ctx.scratch.path('unpack', ds.name, 'umoci');
  b.add({
    id: `unpack/${ds.name}`, dataset: ds.name, what: 'unpack the OCI image to a directory (rootfs) vs umoci unpack',
    sides: [
      { role: 'berth', tool: 'berth unpack', cmd: b.berth('unpack', `oci:${ds.oci}:latest`, berthOut), prepare: () => b.ctx.scratch.fresh(berthOut) },
      // umoci refuses an existing bundle directory: clear it without recreating it.
      { role: 'peer', tool: 'umoci unpack', cmd: { argv: ['umoci', 'unpack', '--image', `${ds.oci}:latest`, umociOut] }, prepare: () => b.ctx.scratch.fresh(umociOut) },
    ],
    goal: { ratio: 0.7 }, inputs: ds.ociBlobs, basisBytes: ds.tarBytes, slow: ds.name !== 'debian',
  }, { berth: 'unpack', tools: ['umoci'] });
}

/** How fast this machine can read, hash, decompress and write the dataset at all. */
function limitCases(b: Builder, ds: Dataset): void {
  const limit = (step: string, what: string, cmd: Command, inputs: readonly string[], prepare?: () => Promise<void>): void => {
    b.add({
      id: `limit/${ds.name}/${step}`, dataset: ds.name, what,
      sides: [{ role: 'limit', tool: step, cmd, ...(prepare ? { prepare } : {}) }], inputs, basisBytes: ds.tarBytes,
    });
  };
  const node = (script: string, ...args: string[]): Command => ({ argv: [b.ctx.node, `${b.ctx.limitsDir}/${script}`, ...args] });
  limit('cat-docker-tar', 'read the docker archive (page cache)', { shell: `cat ${q(ds.dockerArchive)} > /dev/null` }, [ds.dockerArchive]);
  limit('openssl-sha256', 'sha256 of the layer tars (OpenSSL)', { shell: `openssl dgst -sha256 ${files(ds.tars)} > /dev/null` }, ds.tars);
  limit('node-sha256', 'sha256 of the layer tars (Node, 1 MiB reads)', node('node-sha256.js', ...ds.tars), ds.tars);
  limit('node-gunzip', 'gunzip the gzip layers (Node zlib)', node('node-gunzip.js', ...ds.gzips), ds.gzips);
  limit('node-gunzip-sha256', 'gunzip + sha256 of both streams (Node)', node('node-gunzip.js', '--hash', ...ds.gzips), ds.gzips);
  limit('zstd-d-null', 'zstd -dc of the layers', { shell: `for f in ${files(ds.zstds)}; do zstd -q -dc "$f" > /dev/null; done` }, ds.zstds);
  const x = b.ctx.scratch.path('limit', ds.name, 'x');
  limit('tar-x', `tar -x of the layer tars${b.ctx.scratch.tmpfs ? ' (tmpfs)' : ''}`,
    { shell: `for f in ${files(ds.tars)}; do tar -xf "$f" -C ${q(x)}; done` }, ds.tars, () => b.ctx.scratch.fresh(x, { mkdir: true }));
}

/** save reads the dockerd data root offline (`berth --root`); docker save asks the daemon over the same root. */
function saveCase(b: Builder, ds: Dataset): void {
  const berthOut = b.ctx.scratch.path('save', ds.name, 'berth.tar');
  const dockerOut = b.ctx.scratch.path('save', ds.name, 'docker.tar');
  const image = `berth-bench/${ds.name}:latest`;
  const root = path.join(b.ctx.data.dir, '.dockerd-root');
  b.add({
    id: `save/${ds.name}`, dataset: ds.name, what: 'docker-archive from the local store (dockerd data root) vs docker save',
    sides: [
      // docker-legacy: the layout dockerd 20.10 itself writes, so both produce the same kind of archive.
      { role: 'berth', tool: 'berth save', cmd: b.berth('--root', root, 'save', '--format', 'docker-legacy', '-o', berthOut, image), prepare: () => b.ctx.scratch.fresh(berthOut) },
      {
        role: 'peer', tool: 'docker save', cmd: { argv: [DOCKER_BIN, '-H', DOCKER_HOST, 'save', '-o', dockerOut, image] },
        prepare: async () => {
          await ensureDockerd(b.ctx.data.dir, b.ctx.data.datasets.map((d) => d.name));
          await b.ctx.scratch.fresh(dockerOut);
        },
      },
    ],
    goal: { ratio: 0.5 }, inputs: [], basisBytes: ds.tarBytes, slow: ds.name !== 'debian',
  }, { berth: 'save', tools: ['dockerd'] });
}

/**
 * load: berth into an empty store (overlay2) vs docker load into a dockerd started on an empty
 * data root, both roots under the scratch directory (same filesystem). The daemon starts in the
 * untimed prepare step; its CPU and peak RSS are counted for the docker side (the CLI only
 * streams the archive). Each prepare stops the daemon and empties both roots, so during either
 * side's timed run nothing of the other is left running or holding tmpfs memory.
 */
function loadCase(b: Builder, ds: Dataset): void {
  const id = `load/${ds.name}`;
  const unmet = !b.ctx.avail.berth.has('load') ? 'berth has no `load` command yet' : process.getuid?.() !== 0 ? 'needs root (dockerd, and an overlay2 store)' : undefined;
  if (unmet !== undefined) {
    b.skipped.push({ id, reason: unmet });
    return;
  }
  const berthRoot = b.ctx.scratch.path('load', ds.name, 'berth-root');
  const dockerRoot = b.ctx.scratch.path('load', ds.name, 'docker-root');
  const dockerd = new FreshDockerd();
  const reset = async (): Promise<void> => {
    await dockerd.stop();
    await b.ctx.scratch.fresh(berthRoot);
    await b.ctx.scratch.fresh(dockerRoot);
  };
  b.add({
    id, dataset: ds.name, what: 'docker-archive into an empty store (overlay2) vs docker load into a fresh dockerd data root',
    sides: [
      { role: 'berth', tool: 'berth load', cmd: b.berth('--root', berthRoot, 'load', '-q', '--driver', 'overlay2', '-i', ds.dockerArchive), prepare: reset },
      {
        role: 'peer', tool: 'docker load', cmd: { argv: [DOCKER_BIN, '-H', LOAD_DOCKER_HOST, 'load', '-q', '-i', ds.dockerArchive] },
        prepare: async () => {
          await reset();
          await dockerd.restart(dockerRoot);
        },
        daemon: () => dockerd.pid,
      },
    ],
    goal: { ratio: 0.5 }, inputs: [ds.dockerArchive], basisBytes: ds.tarBytes, slow: ds.name !== 'debian', teardown: reset,
  }, { berth: 'load', tools: ['dockerd'] });
}

/** A command whose argv is read when it runs: the registry's port is known only once it started. */
function lazy(argv: () => readonly string[]): Command {
  return {
    get argv() {
      return argv();
    },
  };
}

/**
 * push and pull against a local registry (one per case, plain HTTP on 127.0.0.1): berth copy vs
 * skopeo copy, both naming the registry insecure. push empties the registry's storage before
 * every run, or the second run would find every blob there and skip it; pull reads an image
 * pushed once by skopeo (untimed) into a fresh OCI layout in the scratch directory.
 */
function registryCases(b: Builder, ds: Dataset): void {
  const oci = `oci:${ds.oci}:latest`;
  const repo = `bench/${ds.name}:latest`;
  const slow = ds.name === 'bigfile';
  const registry = (name: string): Registry => {
    const dir = b.ctx.scratch.path('registry', `${name}-${ds.name}`);
    return new Registry(dir, path.join(dir, 'storage'));
  };
  const stop = (r: Registry, ...outputs: string[]) => async (): Promise<void> => {
    await r.stop();
    for (const p of [r.dir, ...outputs]) await b.ctx.scratch.fresh(p);
  };
  const needs = { berth: 'copy', tools: ['skopeo', REGISTRY_BIN] };

  const push = registry('push');
  const emptyStorage = async (): Promise<void> => {
    await push.ensure();
    await b.ctx.scratch.fresh(push.storage, { mkdir: true });
  };
  const pushTo = (): string => `docker://${push.host}/${repo}`;
  b.add({
    id: `push/${ds.name}`, dataset: ds.name, what: 'OCI layout → registry (empty storage each run)',
    sides: [
      { role: 'berth', tool: 'berth copy', cmd: lazy(() => [...b.ctx.berth, '--insecure', push.host, 'copy', '-q', oci, pushTo()]), prepare: emptyStorage },
      { role: 'peer', tool: 'skopeo copy', cmd: lazy(() => ['skopeo', 'copy', '-q', '--dest-tls-verify=false', oci, pushTo()]), prepare: emptyStorage },
    ],
    goal: { ratio: 0.8 }, inputs: ds.ociBlobs, basisBytes: ds.tarBytes, slow, teardown: stop(push),
  }, needs);

  const pull = registry('pull');
  const pullFrom = (): string => `docker://${pull.host}/${repo}`;
  let seeded: Promise<void> | undefined;
  const seed = (): Promise<void> => {
    seeded ??= pull.ensure().then(() => run(['skopeo', 'copy', '-q', '--dest-tls-verify=false', oci, pullFrom()]));
    return seeded;
  };
  const out = (name: string): string => b.ctx.scratch.path('pull', ds.name, name);
  const fresh = (p: string) => async (): Promise<void> => {
    await seed();
    await b.ctx.scratch.fresh(p);
  };
  b.add({
    id: `pull/${ds.name}`, dataset: ds.name, what: 'registry → OCI layout (tmpfs)',
    sides: [
      { role: 'berth', tool: 'berth copy', cmd: lazy(() => [...b.ctx.berth, '--insecure', pull.host, 'copy', '-q', pullFrom(), `oci:${out('berth')}:latest`]), prepare: fresh(out('berth')) },
      { role: 'peer', tool: 'skopeo copy', cmd: lazy(() => ['skopeo', 'copy', '-q', '--src-tls-verify=false', pullFrom(), `oci:${out('skopeo')}:latest`]), prepare: fresh(out('skopeo')) },
    ],
    goal: { ratio: 0.8 }, inputs: [], basisBytes: ds.tarBytes, slow,
    teardown: async () => {
      seeded = undefined;
      await stop(pull, out('berth'), out('skopeo'))();
    },
  }, needs);
}

/** export: the flattened rootfs as one tar, vs `docker export` of a created container of the same image. */
function exportCases(b: Builder, ds: Dataset): void {
  const berthOut = b.ctx.scratch.path('export', ds.name, 'berth.tar');
  const dockerOut = b.ctx.scratch.path('export', ds.name, 'docker.tar');
  const names = b.ctx.data.datasets.map((d) => d.name);
  b.add({
    id: `export/${ds.name}`, dataset: ds.name, what: 'flattened filesystem as one tar vs docker export (dockerd on the dataset data root)',
    sides: [
      { role: 'berth', tool: 'berth export', cmd: b.berth('export', '-o', berthOut, `oci:${ds.oci}:latest`), prepare: () => b.ctx.scratch.fresh(berthOut) },
      {
        role: 'peer', tool: 'docker export', cmd: { argv: [DOCKER_BIN, '-H', DOCKER_HOST, 'export', '-o', dockerOut, containerName(ds.name)] },
        prepare: async () => {
          await ensureDockerd(b.ctx.data.dir, names);
          await b.ctx.scratch.fresh(dockerOut);
        },
      },
    ],
    inputs: ds.ociBlobs, basisBytes: ds.tarBytes, slow: ds.name !== 'debian',
  }, { berth: 'export', tools: ['dockerd'] });
}

export function buildCases(ctx: Context, withLimits: boolean): CaseList {
  const b = new Builder(ctx);
  metadataCases(b);
  for (const ds of ctx.data.datasets) {
    verifyCases(b, ds);
    copyCases(b, ds);
    unpackCases(b, ds);
    exportCases(b, ds);
    saveCase(b, ds);
    loadCase(b, ds);
    registryCases(b, ds);
    if (withLimits) limitCases(b, ds);
  }
  return b;
}
