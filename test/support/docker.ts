/**
 * A private, throwaway Docker daemon for tests: the real Debian dockerd 20.10 with its own data
 * root, exec root and unix socket in fresh temp dirs, so tests never touch a system daemon.
 * There is no network, so test images are made from scratch with busybox-static.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requirePeer } from './peers.js';

export type StorageDriver = 'overlay2' | 'vfs';

export interface StartDockerdOptions {
  /** Storage driver. Default: overlay2, falling back to vfs when overlay2 cannot start here. */
  readonly driver?: StorageDriver;
  /** Use this data root instead of a fresh temp dir (it is never deleted by stop()). */
  readonly dataRoot?: string;
  /** Keep the (temp) data root when stopping, e.g. to inspect /var/lib/docker-style files. */
  readonly keepDataRoot?: boolean;
  /** How long to wait for the daemon to answer (default 60 s). */
  readonly timeoutMs?: number;
}

export interface DockerResult {
  readonly stdout: string;
  readonly stderr: string;
}

export interface Dockerd {
  /** unix:///… socket address, for DOCKER_HOST. */
  readonly host: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** The storage driver the daemon actually runs with. */
  readonly driver: StorageDriver;
  readonly pid: number;
  /** Runs /usr/bin/docker against this daemon; rejects with the command's stderr on failure. */
  docker(args: readonly string[], opts?: { input?: Buffer | string; timeoutMs?: number }): Promise<DockerResult>;
  /** The daemon's log so far (stdout and stderr). */
  log(): Promise<string>;
  /** SIGTERM, wait for exit (SIGKILL after 30 s), then remove the temp dirs. Idempotent. */
  stop(): Promise<void>;
}

/** Temp dirs go under /tmp (not os.tmpdir(), which may be long): unix socket paths must stay < 108 bytes. */
const TMP_BASE = '/tmp';

export async function startDockerd(opts: StartDockerdOptions = {}): Promise<Dockerd> {
  if (opts.driver !== undefined) return startWith(opts.driver, opts);
  try {
    return await startWith('overlay2', opts);
  } catch (err) {
    // overlay2 needs a backing file system that supports it (not overlayfs itself, e.g. inside
    // a container); vfs works everywhere, only slower and without opaque-dir markers.
    if (!/overlay|driver|graphdriver/i.test(String(err))) throw err;
    return startWith('vfs', opts);
  }
}

async function startWith(driver: StorageDriver, opts: StartDockerdOptions): Promise<Dockerd> {
  const dockerd = requirePeer('dockerd');
  const client = requirePeer('docker');
  const base = await mkdtemp(path.join(TMP_BASE, 'bd-'));
  const dataRoot = opts.dataRoot ?? path.join(base, 'data');
  const execRoot = path.join(base, 'x');
  const socket = path.join(base, 'd.sock');
  const pidfile = path.join(base, 'd.pid');
  const logFile = path.join(base, 'd.log');
  const configDir = path.join(base, 'cfg');
  await Promise.all([mkdir(dataRoot, { recursive: true }), mkdir(execRoot), mkdir(configDir)]);
  const host = `unix://${socket}`;

  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(dockerd, [
      '--data-root', dataRoot,
      '--exec-root', execRoot,
      '-H', host,
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      `--storage-driver=${driver}`,
      '--pidfile', pidfile,
    ], { stdio: ['ignore', logFd, logFd], env: daemonEnv() });
  } finally {
    closeSync(logFd);
  }
  let exited: { code: number | null; signal: string | null } | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.on('error', () => resolve());
  });

  const env = { ...clientEnv(), DOCKER_HOST: host, DOCKER_CONFIG: configDir };
  const docker = (args: readonly string[], o: { input?: Buffer | string; timeoutMs?: number } = {}): Promise<DockerResult> =>
    run(client, args, env, o.input, o.timeoutMs ?? 300_000);
  const log = (): Promise<string> => readFile(logFile, 'utf8').catch(() => '');

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (exited === undefined && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exitPromise;
      clearTimeout(timer);
    }
    const keep = opts.keepDataRoot === true || opts.dataRoot !== undefined;
    if (keep) {
      await Promise.all([execRoot, socket, pidfile, logFile, configDir].map((p) => rm(p, { recursive: true, force: true })));
      // `base` still holds the data root when it is a temp one being kept.
      if (opts.dataRoot !== undefined) await rm(base, { recursive: true, force: true });
    } else {
      await rm(base, { recursive: true, force: true, maxRetries: 3 });
    }
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let lastError = '';
  for (;;) {
    if (exited !== undefined) {
      const text = await log();
      await stop();
      throw new Error(`dockerd (${driver}) exited during startup (code ${exited.code}, signal ${exited.signal}); log tail:\n${tail(text)}`);
    }
    try {
      await run(client, ['version', '--format', '{{.Server.Version}}'], env, undefined, 10_000);
      break;
    } catch (err) {
      lastError = String(err);
    }
    if (Date.now() > deadline) {
      const text = await log();
      await stop();
      throw new Error(`dockerd (${driver}) did not answer within ${opts.timeoutMs ?? 60_000} ms (last: ${lastError}); log tail:\n${tail(text)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { host, dataRoot, execRoot, driver, pid: child.pid!, docker, log, stop };
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}

function daemonEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  // dockerd and containerd find runc, containerd-shim and docker-init on PATH.
  env.PATH = `/usr/sbin:/usr/bin:/sbin:/bin${env.PATH ? `:${env.PATH}` : ''}`;
  delete env.DOCKER_HOST;
  delete env.NOTIFY_SOCKET;
  return env;
}

function clientEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_API_VERSION']) delete env[k];
  return env;
}

function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv, input: Buffer | string | undefined, timeoutMs: number): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, [...args], { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (${err.code ?? err.signal ?? 'error'}): ${stderr.trim() || err.message}`));
        return;
      }
      resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Test images

/** Busybox applets linked into the base image. */
export const BUSYBOX_APPLETS = ['sh', 'cat', 'ls', 'rm', 'mkdir', 'ln', 'echo', 'mv', 'chmod', 'cp', 'touch', 'true'] as const;

export type FileFact =
  /** content undefined: not checked (large binaries). */
  | { readonly path: string; readonly type: 'file'; readonly content?: string; readonly mode: number }
  | { readonly path: string; readonly type: 'dir' }
  | { readonly path: string; readonly type: 'symlink'; readonly target: string }
  | { readonly path: string; readonly type: 'hardlink'; readonly target: string; readonly content: string };

export interface LayerFacts {
  /** What the step did, for messages. */
  readonly summary: string;
  /** Paths (no leading "/" or "./") that the layer tar must contain as regular entries. */
  readonly adds: readonly string[];
  /** Paths deleted in this layer: the tar holds `dir/.wh.name` for each. */
  readonly whiteouts: readonly string[];
  /** Directories replaced in this layer: the tar holds `dir/.wh..wh..opq` (overlay2 only). */
  readonly opaqueDirs: readonly string[];
}

export interface TestImages {
  readonly driver: StorageDriver;
  readonly base: { readonly name: string; readonly id: string };
  readonly app: { readonly names: readonly string[]; readonly id: string };
  /** Layers of the app image in order; [0] is the imported base rootfs. */
  readonly layers: readonly LayerFacts[];
  /** Facts about the app image's final file system (a union of all layers). */
  readonly files: readonly FileFact[];
  /** Paths that must not exist in the app image's final file system. */
  readonly absent: readonly string[];
  readonly config: {
    readonly env: string;
    readonly cmd: readonly string[];
    readonly workingDir: string;
    readonly labels: Readonly<Record<string, string>>;
    readonly exposedPorts: readonly string[];
  };
}

export const BASE_IMAGE = 'berth-test/base:1';
export const APP_IMAGE = 'berth-test/app:1';
export const APP_IMAGE_LATEST = 'berth-test/app:latest';

const HELLO = 'hello from berth\n';
const TOOL = '#!/bin/sh\necho tool\n';

/**
 * Builds berth-test/base:1 (busybox-static imported from a tar) and berth-test/app:1 (+ :latest),
 * three `docker run` + `docker commit` layers on top that add, modify and delete files, replace a
 * directory, and add a hardlink, a symlink and a setuid file. Returns what tests should find.
 */
export async function buildTestImages(d: Dockerd): Promise<TestImages> {
  const work = await mkdtemp(path.join(TMP_BASE, 'bt-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    await mkdir(path.join(rootfs, 'bin'), { recursive: true });
    await mkdir(path.join(rootfs, 'etc'));
    await mkdir(path.join(rootfs, 'tmp'));
    await chmod(path.join(rootfs, 'tmp'), 0o1777);
    await copyFile(requirePeer('busybox'), path.join(rootfs, 'bin', 'busybox'));
    await chmod(path.join(rootfs, 'bin', 'busybox'), 0o755);
    for (const applet of BUSYBOX_APPLETS) await symlink('busybox', path.join(rootfs, 'bin', applet));
    await writeFile(path.join(rootfs, 'etc', 'motd'), 'berth test base\n');
    const tarFile = path.join(work, 'rootfs.tar');
    await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0', '-C', rootfs, '-cf', tarFile, '.'], process.env, undefined, 60_000);
    const baseId = (await d.docker(['import', tarFile, BASE_IMAGE])).stdout.trim();

    const steps: Array<{ facts: LayerFacts; script: string }> = [
      {
        script: [
          'mkdir -p /app/data /app/bin',
          `echo 'hello from berth' > /app/hello.txt`,
          `echo 'version=1' > /app/config.ini`,
          `echo 'to be deleted' > /app/old.txt`,
          `echo a > /app/data/a`,
          `echo b > /app/data/b`,
        ].join(' && '),
        facts: {
          summary: 'add files and a directory',
          adds: ['app/hello.txt', 'app/config.ini', 'app/old.txt', 'app/data/a', 'app/data/b'],
          whiteouts: [],
          opaqueDirs: [],
        },
      },
      {
        script: [
          `echo 'version=2' > /app/config.ini`,
          'rm /app/old.txt',
          'rm -rf /app/data',
          'mkdir /app/data',
          'echo new > /app/data/c',
        ].join(' && '),
        facts: {
          summary: 'modify a file, delete a file, replace a directory',
          adds: ['app/config.ini', 'app/data/c'],
          whiteouts: ['app/old.txt'],
          opaqueDirs: ['app/data'],
        },
      },
      {
        script: [
          `echo '#!/bin/sh' > /app/bin/tool`,
          `echo 'echo tool' >> /app/bin/tool`,
          'chmod 0755 /app/bin/tool',
          'ln /app/bin/tool /app/bin/tool-hardlink',
          'ln -s data /app/current',
          `echo suid > /app/bin/suid`,
          'chmod 4755 /app/bin/suid',
        ].join(' && '),
        facts: {
          summary: 'add a hardlink, a symlink and a setuid file',
          adds: ['app/bin/tool', 'app/bin/tool-hardlink', 'app/current', 'app/bin/suid'],
          whiteouts: [],
          opaqueDirs: [],
        },
      },
    ];

    const config = {
      env: 'APP_MODE=test',
      cmd: ['/bin/sh', '-c', 'cat /app/hello.txt'],
      workingDir: '/app',
      labels: { 'org.berth.test': 'app' },
      exposedPorts: ['8080/tcp'],
    };
    let image = BASE_IMAGE;
    let appId = '';
    for (const [i, step] of steps.entries()) {
      const name = `bt-${randomBytes(5).toString('hex')}`;
      await d.docker(['run', '--name', name, '--network', 'none', image, '/bin/sh', '-c', step.script]);
      const last = i === steps.length - 1;
      const changes = last
        ? [
            '--change', `ENV ${config.env}`,
            '--change', `CMD ${JSON.stringify(config.cmd)}`,
            '--change', `WORKDIR ${config.workingDir}`,
            '--change', `LABEL org.berth.test=app`,
            '--change', `EXPOSE ${config.exposedPorts[0]}`,
          ]
        : [];
      const id = (await d.docker(['commit', ...changes, name, ...(last ? [APP_IMAGE] : [])])).stdout.trim();
      await d.docker(['rm', name]);
      image = id;
      appId = id;
    }
    await d.docker(['tag', APP_IMAGE, APP_IMAGE_LATEST]);

    const layers: LayerFacts[] = [
      {
        summary: 'imported busybox-static rootfs',
        adds: ['bin/busybox', 'etc/motd', ...BUSYBOX_APPLETS.map((a) => `bin/${a}`)],
        whiteouts: [],
        opaqueDirs: [],
      },
      ...steps.map((s) => s.facts),
    ];
    if (d.driver === 'vfs') {
      // vfs computes diffs by comparing trees: a replaced directory becomes one whiteout per
      // old child instead of an opaque marker.
      const replaced = layers[2]!;
      layers[2] = { ...replaced, whiteouts: [...replaced.whiteouts, 'app/data/a', 'app/data/b'], opaqueDirs: [] };
    }
    const files: FileFact[] = [
      { path: 'bin/busybox', type: 'file', mode: 0o755 },
      { path: 'bin/sh', type: 'symlink', target: 'busybox' },
      { path: 'etc/motd', type: 'file', content: 'berth test base\n', mode: 0o644 },
      { path: 'app', type: 'dir' },
      { path: 'app/hello.txt', type: 'file', content: HELLO, mode: 0o644 },
      { path: 'app/config.ini', type: 'file', content: 'version=2\n', mode: 0o644 },
      { path: 'app/data', type: 'dir' },
      { path: 'app/data/c', type: 'file', content: 'new\n', mode: 0o644 },
      { path: 'app/bin/tool', type: 'file', content: TOOL, mode: 0o755 },
      { path: 'app/bin/tool-hardlink', type: 'hardlink', target: 'app/bin/tool', content: TOOL },
      { path: 'app/current', type: 'symlink', target: 'data' },
      { path: 'app/bin/suid', type: 'file', content: 'suid\n', mode: 0o4755 },
    ];
    return {
      driver: d.driver,
      base: { name: BASE_IMAGE, id: baseId },
      app: { names: [APP_IMAGE, APP_IMAGE_LATEST], id: appId },
      layers,
      files,
      absent: ['app/old.txt', 'app/data/a', 'app/data/b'],
      config,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
