/**
 * The write side of containers in a data root (issue 10): a new container laid out as dockerd
 * 20.10 lays it out at `docker create` (formats.md 10.4–10.6), and its removal.
 *
 *   image/<driver>/layerdb/mounts/<id>/{mount-id,init-id,parent}   0755 dir, 0644 files, no newline
 *   overlay2/<mount-id>-init/{diff,link,lower,work,committed}        the init layer
 *   overlay2/<mount-id>/{diff,link,lower,work}                       the writable layer (empty diff)
 *   overlay2/l/<link> -> ../<dir>/diff                               one per new directory
 *   vfs/dir/<mount-id>-init, vfs/dir/<mount-id>                      full copies
 *   containers/<id>/{config.v2.json (0600), hostconfig.json (0644), checkpoints/ (0700)}   dir 0710
 *
 * The init layer holds what dockerd's initlayer.Setup writes through the mounted layer: /dev/pts,
 * /dev/shm, /proc, /sys (directories 0755), /.dockerenv, /etc/resolv.conf, /etc/hosts,
 * /etc/hostname, /dev/console (empty files 0755) and /etc/mtab -> /proc/mounts. A non-directory
 * the image has on one of those paths is replaced; a directory the image has is kept (copied up
 * when a child is created in it). berth computes that view from the image's layer directories
 * instead of mounting them, so no overlay mount is needed.
 *
 * Everything is staged under `layerdb/tmp/.berth-tmp-…` and the driver directory's own temp
 * names, then renamed into place: driver directories, the layerdb mount record, and last
 * containers/<id> (the record dockerd loads). A crash leaves temp names `berth store gc` removes,
 * or driver directories a mount record names (then `berth container rm` removes them).
 * Callers hold the writer lock.
 */
import { execFile } from 'node:child_process';
import { constants, type Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, mkdtemp, open, readFile, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Digest } from '../../core/digest.js';
import { BerthError, withContext } from '../../core/errors.js';
import { fsyncDir, TEMP_PREFIX } from '../../io/atomic-file.js';
import type { ContainerRecord } from './containers.js';
import { readXattrs } from './containers.js';
import type { DataRoot, StoredImage } from './data-root.js';
import { failpoint } from './safety.js';
import { newCacheId, newLinkId, rfc3339Nano, StoreWriter, tempName } from './writer.js';

const run = promisify(execFile);

/** What initlayer.Setup creates (dockerd 20.10, daemon/initlayer/setup_unix.go). */
export const INIT_LAYER_ENTRIES: ReadonlyArray<readonly [string, 'dir' | 'file' | { readonly symlink: string }]> = [
  ['dev/pts', 'dir'],
  ['dev/shm', 'dir'],
  ['proc', 'dir'],
  ['sys', 'dir'],
  ['.dockerenv', 'file'],
  ['etc/resolv.conf', 'file'],
  ['etc/hosts', 'file'],
  ['etc/hostname', 'file'],
  ['dev/console', 'file'],
  ['etc/mtab', { symlink: '/proc/mounts' }],
];

function prefixes(rel: string): string[] {
  const parts = rel.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

type Kind = 'absent' | 'dir' | 'other';

/**
 * What the union of overlay2 layer directories (nearest first) shows at `rel`: overlayfs rules
 * (a 0/0 char device hides the name, an opaque directory hides lower directories, a non-directory
 * hides everything below). With the stat of the entry that provides it.
 */
export async function overlayUnionLookup(layersTopFirst: readonly string[], rel: string, opaque: ReadonlySet<string>): Promise<{ kind: Kind; stat?: Stats }> {
  let active = [...layersTopFirst];
  let found: { kind: Kind; stat?: Stats } = { kind: 'absent' };
  const parts = prefixes(rel);
  for (let i = 0; i < parts.length; i++) {
    const sub = parts[i]!;
    found = { kind: 'absent' };
    const next: string[] = [];
    for (const layer of active) {
      const st = await lstat(path.join(layer, sub)).catch(() => undefined);
      if (st === undefined) continue;
      if (st.isCharacterDevice() && st.rdev === 0) break;
      if (!st.isDirectory()) {
        if (next.length === 0) found = { kind: 'other', stat: st };
        break;
      }
      if (next.length === 0) found = { kind: 'dir', stat: st };
      next.push(layer);
      if (opaque.has(path.join(layer, sub))) break;
    }
    if (found.kind !== 'dir' && i < parts.length - 1) return { kind: 'absent' };
    active = next;
  }
  return found;
}

async function newDir(p: string, mode: number, uid: number, gid: number, privileged: boolean): Promise<void> {
  await mkdir(p, mode);
  await chmod(p, mode);
  if (privileged) await lchown(p, uid, gid);
}

async function newFile(p: string, privileged: boolean): Promise<void> {
  const fh = await open(p, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o755);
  try {
    await fh.chmod(0o755);
    if (privileged) await fh.chown(0, 0);
  } finally {
    await fh.close();
  }
}

/** Which directories on the init layer's paths, in any of `layers`, are opaque (one child process). */
export async function opaqueDirs(layers: readonly string[]): Promise<Set<string>> {
  const candidates: string[] = [];
  const seen = new Set<string>();
  for (const [rel] of INIT_LAYER_ENTRIES) {
    for (const p of prefixes(rel)) {
      for (const layer of layers) {
        const full = path.join(layer, p);
        if (seen.has(full)) continue;
        seen.add(full);
        if ((await lstat(full).catch(() => undefined))?.isDirectory() === true) candidates.push(full);
      }
    }
  }
  const out = new Set<string>();
  for (const [p, attrs] of await readXattrs(candidates)) {
    const v = attrs['trusted.overlay.opaque'] ?? attrs['user.overlay.opaque'];
    if (v !== undefined && v.length === 1 && v[0] === 0x79) out.add(p);
  }
  return out;
}

/**
 * Writes the init layer's entries into `dir`. overlay2: `dir` is the (empty) upper dir and
 * `lowers` the image's layer directories nearest first; vfs: `dir` is a full copy of the image
 * and `lowers` is empty (the copy is changed in place, as dockerd does through its mount).
 */
export async function writeInitLayer(dir: string, lowers: readonly string[], overlay: boolean): Promise<void> {
  const privileged = process.getuid?.() === 0;
  const removed = new Set<string>();
  const opaque = overlay ? await opaqueDirs(lowers) : new Set<string>();
  const kind = async (p: string): Promise<{ kind: Kind; stat?: Stats }> => {
    const own = await lstat(path.join(dir, p)).catch(() => undefined);
    if (own !== undefined) {
      if (overlay && own.isCharacterDevice() && own.rdev === 0) return { kind: 'absent' };
      return { kind: own.isDirectory() ? 'dir' : 'other', stat: own };
    }
    if (!overlay || prefixes(p).some((a) => removed.has(a))) return { kind: 'absent' };
    return overlayUnionLookup(lowers, p, opaque);
  };
  for (const [rel, typ] of INIT_LAYER_ENTRIES) {
    // unix.Unlink on every component: non-directories go (directories make unlink fail).
    for (const p of prefixes(rel)) {
      const k = await kind(p);
      if (k.kind !== 'other') continue;
      await unlink(path.join(dir, p)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw withContext(err, `init layer: removing ${p}`);
      });
      if (overlay) removed.add(p);
    }
    // os.Stat follows symlinks, but none is left on the path.
    if ((await kind(rel)).kind !== 'absent') continue;
    // MkdirAllAndChownNew(parent, 0755, root): existing directories kept (overlay: copied up).
    for (const p of prefixes(rel).slice(0, -1)) {
      const k = await kind(p);
      const here = await lstat(path.join(dir, p)).catch(() => undefined);
      if (here?.isDirectory() === true) continue;
      if (k.kind === 'dir' && k.stat !== undefined) await newDir(path.join(dir, p), k.stat.mode & 0o7777, k.stat.uid, k.stat.gid, privileged);
      else await newDir(path.join(dir, p), 0o755, 0, 0, privileged);
    }
    const target = path.join(dir, rel);
    if (typ === 'dir') await newDir(target, 0o755, 0, 0, privileged);
    else if (typ === 'file') await newFile(target, privileged);
    else {
      await symlink(typ.symlink, target);
      if (privileged) await lchown(target, 0, 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// config.v2.json and hostconfig.json

export interface ContainerSpec {
  readonly id: string;
  /** Without the leading slash. */
  readonly name: string;
  /** The image as the user named it (Config.Image). */
  readonly imageRef: string;
  readonly image: StoredImage;
  /** Replaces the image's Cmd (docker create IMAGE COMMAND…). */
  readonly cmd?: readonly string[];
  /** HostConfig.NetworkMode: default, none, host, bridge or a network name. */
  readonly network: string;
  readonly driver: 'overlay2' | 'vfs';
  readonly created: Date;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function endpoint(): Json {
  return {
    IPAMConfig: null, Links: null, Aliases: null, NetworkID: '', EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '',
    GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, MacAddress: '', DriverOpts: null, IPAMOperational: false,
  };
}

/** Path and Args as dockerd's getEntrypointAndArgs makes them; BERTH_USAGE without a command. */
export function entrypointAndArgs(entrypoint: readonly string[] | null | undefined, cmd: readonly string[] | null | undefined): { path: string; args: string[] } {
  if (entrypoint !== null && entrypoint !== undefined && entrypoint.length > 0) return { path: entrypoint[0]!, args: [...entrypoint.slice(1), ...(cmd ?? [])] };
  if (cmd === null || cmd === undefined || cmd.length === 0) throw new BerthError('BERTH_USAGE', 'no command specified (the image has no Cmd or Entrypoint; give one after the image)', {});
  return { path: cmd[0]!, args: cmd.slice(1) };
}

/** containers/<id>/config.v2.json as `docker create` (20.10) writes it, with the image's config merged in. */
export function containerConfigV2(spec: ContainerSpec): Record<string, Json> {
  const ic = (spec.image.config.config ?? {}) as Record<string, Json | undefined>;
  const arr = (v: Json | undefined): string[] | null => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : null);
  const cmd = spec.cmd !== undefined && spec.cmd.length > 0 ? [...spec.cmd] : arr(ic.Cmd);
  const entrypoint = arr(ic.Entrypoint);
  const { path: p, args } = entrypointAndArgs(entrypoint, cmd);
  const config: Record<string, Json> = {
    Hostname: spec.id.slice(0, 12), Domainname: '', User: typeof ic.User === 'string' ? ic.User : '',
    AttachStdin: false, AttachStdout: true, AttachStderr: true,
    ...(ic.ExposedPorts !== undefined && ic.ExposedPorts !== null ? { ExposedPorts: ic.ExposedPorts } : {}),
    Tty: false, OpenStdin: false, StdinOnce: false,
    Env: arr(ic.Env), Cmd: cmd,
    ...(ic.Healthcheck !== undefined && ic.Healthcheck !== null ? { Healthcheck: ic.Healthcheck } : {}),
    ...(spec.cmd === undefined && ic.ArgsEscaped === true ? { ArgsEscaped: true } : {}),
    Image: spec.imageRef,
    Volumes: ic.Volumes ?? null,
    WorkingDir: typeof ic.WorkingDir === 'string' ? ic.WorkingDir : '',
    Entrypoint: entrypoint, OnBuild: null,
    Labels: ic.Labels !== undefined && ic.Labels !== null ? ic.Labels : {},
    ...(typeof ic.StopSignal === 'string' && ic.StopSignal !== '' ? { StopSignal: ic.StopSignal } : {}),
  };
  const netName = spec.network === 'default' ? 'bridge' : spec.network;
  return {
    StreamConfig: {},
    State: {
      Running: false, Paused: false, Restarting: false, OOMKilled: false, RemovalInProgress: false, Dead: false, Pid: 0, ExitCode: 0, Error: '',
      StartedAt: '0001-01-01T00:00:00Z', FinishedAt: '0001-01-01T00:00:00Z', Health: null,
    },
    ID: spec.id,
    Created: rfc3339Nano(spec.created),
    Managed: false,
    Path: p,
    Args: args,
    Config: config,
    Image: spec.image.id,
    NetworkSettings: {
      Bridge: '', SandboxID: '', HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
      Networks: { [netName]: endpoint() },
      Service: null, Ports: null, SandboxKey: '', SecondaryIPAddresses: null, SecondaryIPv6Addresses: null, IsAnonymousEndpoint: false, HasSwarmEndpoint: false,
    },
    LogPath: '', Name: `/${spec.name}`, Driver: spec.driver, OS: 'linux', MountLabel: '', ProcessLabel: '', RestartCount: 0,
    HasBeenStartedBefore: false, HasBeenManuallyStopped: false, MountPoints: {}, SecretReferences: null, ConfigReferences: null, AppArmorProfile: '',
    HostnamePath: '', HostsPath: '', ShmPath: '', ResolvConfPath: '', SeccompProfile: '', NoNewPrivileges: false, LocalLogCacheMeta: { HaveNotifyEnabled: false },
  };
}

/** containers/<id>/hostconfig.json with the defaults dockerd 20.10 fills in at create. */
export async function containerHostConfig(network: string): Promise<Record<string, Json>> {
  // cgroup v2 (unified) hosts default to a private cgroup namespace, v1 hosts to the host's.
  const unified = await stat('/sys/fs/cgroup/cgroup.controllers').then(() => true, () => false);
  return {
    Binds: null, ContainerIDFile: '', LogConfig: { Type: 'json-file', Config: {} }, NetworkMode: network, PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: '', VolumesFrom: null, CapAdd: null, CapDrop: null,
    CgroupnsMode: unified ? 'private' : 'host', Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null, GroupAdd: null, IpcMode: 'private', Cgroup: '',
    Links: null, OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '',
    UsernsMode: '', ShmSize: 67108864, Runtime: 'runc', ConsoleSize: [0, 0], Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '',
    BlkioWeight: 0, BlkioWeightDevice: [], BlkioDeviceReadBps: [], BlkioDeviceWriteBps: [], BlkioDeviceReadIOps: [], BlkioDeviceWriteIOps: [],
    CpuPeriod: 0, CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [], DeviceCgroupRules: null,
    DeviceRequests: null, KernelMemory: 0, KernelMemoryTCP: 0, MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: null, OomKillDisable: false,
    PidsLimit: null, Ulimits: [], CpuCount: 0, CpuPercent: 0, IOMaximumIOps: 0, IOMaximumBandwidth: 0,
    MaskedPaths: ['/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
    ReadonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
  };
}

/** A container name docker accepts. */
export const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A new container ID: 64 random hex that does not look like a number (dockerd's GenerateRandomID rule). */
export function newContainerId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex');
    if (!/^\d+$/.test(id.slice(0, 12))) return id;
  }
}

// ---------------------------------------------------------------------------------------------
// Create and remove

export interface CreatedContainer {
  readonly id: string;
  readonly name: string;
  readonly mountId: string;
  readonly initId: string;
  /** chainID of the image's top layer (layerdb/mounts/<id>/parent); undefined for an image without layers. */
  readonly parent: Digest | undefined;
}

/** Writes a new container for `spec.image` into the store (the caller holds the writer lock and checked the name). */
export async function writeNewContainer(store: DataRoot, spec: ContainerSpec, opts: { fsync?: boolean } = {}): Promise<CreatedContainer> {
  const writer = new StoreWriter(store, opts);
  const fsync = opts.fsync !== false;
  const root = store.root;
  const top = spec.image.chainIds[spec.image.chainIds.length - 1];
  const parent = top === undefined ? undefined : await writer.parentInfo(top);
  const mountId = newCacheId();
  const initId = `${mountId}-init`;
  const configV2 = containerConfigV2(spec);
  const hostConfig = await containerHostConfig(spec.network);
  const tmpRoot = path.join(store.imageDir, 'layerdb/tmp');
  await mkdir(tmpRoot, { recursive: true });
  const staged = await mkdtemp(path.join(tmpRoot, `${TEMP_PREFIX}${process.pid}-container-`));
  const driverParent = store.driver === 'overlay2' ? path.join(root, 'overlay2') : path.join(root, 'vfs/dir');
  const initStage = path.join(driverParent, tempName('init'));
  const rwStage = path.join(driverParent, tempName('rw'));
  const published: string[] = [];
  const links: string[] = [];
  try {
    let initLink: string | undefined;
    let rwLink: string | undefined;
    let initLower = '';
    if (store.driver === 'overlay2') {
      // The image's layer directories, nearest first (what the init layer's overlay mount would see).
      const lowers: string[] = [];
      for (const chain of [...spec.image.chainIds].reverse()) {
        const e = await store.layer(chain);
        if (e?.cacheId === undefined) throw new BerthError('BERTH_NOT_FOUND', `layer ${chain}: no usable ${store.imageRel}/layerdb/sha256/${chain.slice(7)}`, { subject: chain });
        lowers.push(path.join(root, 'overlay2', e.cacheId, 'diff'));
      }
      initLink = newLinkId();
      rwLink = newLinkId();
      initLower = parent === undefined ? '' : parent.lower ? `l/${parent.link}:${parent.lower}` : `l/${parent.link}`;
      for (const [dir, link, lower] of [[initStage, initLink, initLower], [rwStage, rwLink, initLower === '' ? `l/${initLink}` : `l/${initLink}:${initLower}`]] as const) {
        await mkdir(dir, 0o710);
        await chmod(dir, 0o710);
        await mkdir(path.join(dir, 'diff'), 0o755);
        await chmod(path.join(dir, 'diff'), 0o755);
        await writeFile(path.join(dir, 'link'), link, { mode: 0o644 });
        if (lower !== '') {
          await writeFile(path.join(dir, 'lower'), lower, { mode: 0o644 });
          await mkdir(path.join(dir, 'work'), 0o700);
        }
      }
      await writeInitLayer(path.join(initStage, 'diff'), lowers, true);
      // The init layer has a child now (overlay2's create writes `committed` into the parent).
      await writeFile(path.join(initStage, 'committed'), '', { mode: 0o600 });
    } else {
      if (parent !== undefined) await run('cp', ['-a', '--reflink=auto', '--', parent.dir, initStage]);
      else await newDir(initStage, 0o755, 0, 0, process.getuid?.() === 0);
      await writeInitLayer(initStage, [], false);
      await run('cp', ['-a', '--reflink=auto', '--', initStage, rwStage]);
    }
    // The layerdb mount record and the container's directory, staged.
    const mountStage = path.join(staged, 'mount');
    await mkdir(mountStage, 0o755);
    await chmod(mountStage, 0o755);
    await writeFile(path.join(mountStage, 'mount-id'), mountId, { mode: 0o644 });
    await writeFile(path.join(mountStage, 'init-id'), initId, { mode: 0o644 });
    if (top !== undefined) await writeFile(path.join(mountStage, 'parent'), top, { mode: 0o644 });
    const cStage = path.join(staged, 'container');
    await mkdir(cStage, 0o710);
    await chmod(cStage, 0o710);
    await mkdir(path.join(cStage, 'checkpoints'), 0o700);
    await writeFile(path.join(cStage, 'config.v2.json'), JSON.stringify(configV2), { mode: 0o600 });
    await writeFile(path.join(cStage, 'hostconfig.json'), JSON.stringify(hostConfig), { mode: 0o644 });
    failpoint('container-staged');

    // Publish: driver directories (and l/ links), the mount record, then containers/<id>.
    const initDir = path.join(driverParent, initId);
    const rwDir = path.join(driverParent, mountId);
    await rename(initStage, initDir);
    published.push(initDir);
    await rename(rwStage, rwDir);
    published.push(rwDir);
    if (store.driver === 'overlay2') {
      await mkdir(path.join(root, 'overlay2/l'), { recursive: true, mode: 0o700 });
      for (const [link, dir] of [[initLink!, initId], [rwLink!, mountId]] as const) {
        await symlink(`../${dir}/diff`, path.join(root, 'overlay2/l', link));
        links.push(link);
      }
      if (parent !== undefined) await writeFile(path.join(parent.dir, 'committed'), '', { mode: 0o600 });
    }
    if (fsync) await fsyncDir(driverParent);
    failpoint('container-driver-dirs');
    const mountsDir = path.join(store.imageDir, 'layerdb/mounts');
    await mkdir(mountsDir, { recursive: true, mode: 0o755 });
    await rename(mountStage, path.join(mountsDir, spec.id));
    published.push(path.join(mountsDir, spec.id));
    if (fsync) await fsyncDir(mountsDir);
    failpoint('container-mount-record');
    const containersDir = path.join(root, 'containers');
    if ((await stat(containersDir).catch(() => undefined)) === undefined) {
      await mkdir(containersDir, 0o710);
      await chmod(containersDir, 0o710);
    }
    await rename(cStage, path.join(containersDir, spec.id));
    if (fsync) await fsyncDir(containersDir);
    await rm(staged, { recursive: true, force: true });
    return { id: spec.id, name: spec.name, mountId, initId, parent: top };
  } catch (err) {
    for (const link of links) await unlink(path.join(root, 'overlay2/l', link)).catch(() => undefined);
    for (const p of [...published].reverse()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
    for (const p of [initStage, rwStage, staged]) await rm(p, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Removes a container: containers/<id> and the layerdb mount record are renamed away first (then
 * neither dockerd nor berth sees the container), then its driver directories and l/ links go.
 */
export async function removeContainerFiles(store: DataRoot, rec: ContainerRecord, opts: { fsync?: boolean } = {}): Promise<void> {
  const writer = new StoreWriter(store, opts);
  const tmpRoot = path.join(store.imageDir, 'layerdb/tmp');
  await mkdir(tmpRoot, { recursive: true });
  const aside: string[] = [];
  for (const src of [path.join(store.root, 'containers', rec.id), path.join(store.imageDir, 'layerdb/mounts', rec.id)]) {
    const dst = path.join(tmpRoot, tempName('rm-container'));
    try {
      await rename(src, dst);
      aside.push(dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw withContext(err, `removing container ${rec.id.slice(0, 12)}`);
    }
  }
  if (opts.fsync !== false) {
    await fsyncDir(path.join(store.root, 'containers')).catch(() => undefined);
    await fsyncDir(path.join(store.imageDir, 'layerdb/mounts')).catch(() => undefined);
  }
  failpoint('container-unlinked');
  const mountId = rec.mountId !== undefined && /^[a-f0-9]{64}$/.test(rec.mountId) ? rec.mountId : undefined;
  const initId = rec.initId !== undefined && /^[a-f0-9]{64}-init$/.test(rec.initId) ? rec.initId : mountId !== undefined ? `${mountId}-init` : undefined;
  for (const dir of [mountId, initId]) if (dir !== undefined) await writer.removeDriverDir(dir);
  for (const a of aside) await rm(a, { recursive: true, force: true });
}

/** The text of a file, trimmed; undefined when missing. */
export async function readTrimmed(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').then((s) => s.trim(), () => undefined);
}
