/**
 * A private dockerd on the dataset script's data root (<data>/.dockerd-root holds the
 * berth-bench/* images), for the `docker export`/`docker save` comparisons. Started lazily by the
 * first run that needs it, stopped by its pid when the harness ends; never touches another
 * daemon. Plus FreshDockerd: one on an empty data root per `docker load` run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { run } from './measure.js';

/** Short and fixed: unix socket paths are limited to 108 bytes. */
export const DOCKERD_DIR = '/tmp/berth-bench-dockerd';
export const DOCKER_HOST = `unix://${DOCKERD_DIR}/docker.sock`;
/** The Debian docker.io client matches the 20.10 daemon; a newer one may refuse its API version. */
export const DOCKER_BIN = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

let daemon: ChildProcess | undefined;
let starting: Promise<void> | undefined;

export function containerName(dataset: string): string {
  return `berth-bench-export-${dataset}`;
}

async function docker(...args: string[]): Promise<void> {
  await run([DOCKER_BIN, '-H', DOCKER_HOST, ...args]);
}

/** Starts dockerd on `dataRoot` with its socket, exec root and log in `dir`, and waits until it answers. */
async function spawnDockerd(dataRoot: string, dir: string): Promise<ChildProcess> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const host = `unix://${dir}/docker.sock`;
  const logFd = openSync(path.join(dir, 'dockerd.log'), 'a');
  const child = spawn('dockerd', [
    '--data-root', dataRoot, '--exec-root', path.join(dir, 'exec'), '-H', host,
    '--pidfile', path.join(dir, 'pid'), '--iptables=false', '--ip-masq=false', '--bridge=none', '--storage-driver=overlay2',
  ], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  for (let i = 0; i < 120; i++) {
    if (child.exitCode !== null) throw new Error(`dockerd exited (log: ${dir}/dockerd.log)`);
    if (await run([DOCKER_BIN, '-H', host, 'info']).then(() => true, () => false)) return child;
    await new Promise((r) => setTimeout(r, 500));
  }
  await stopChild(child);
  throw new Error(`dockerd did not come up within 60 s (log: ${dir}/dockerd.log)`);
}

/** SIGTERM by pid and wait (dockerd unmounts its layers on the way out); SIGKILL after 30 s. */
async function stopChild(d: ChildProcess): Promise<void> {
  if (d.exitCode !== null || d.signalCode !== null) return;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGTERM');
  const timer = setTimeout(() => d.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

async function start(dataDir: string, datasets: readonly string[]): Promise<void> {
  daemon = await spawnDockerd(path.join(dataDir, '.dockerd-root'), DOCKERD_DIR);
  // docker export works on containers: one created (never started) container per image.
  for (const ds of datasets) {
    await docker('rm', '-f', containerName(ds)).catch(() => undefined);
    await docker('create', '--name', containerName(ds), `berth-bench/${ds}:latest`, '/bin/true');
  }
}

/** Starts the daemon and the containers once; later calls wait for the first. */
export function ensureDockerd(dataDir: string, datasets: readonly string[]): Promise<void> {
  starting ??= start(dataDir, datasets);
  return starting;
}

export async function stopDockerd(): Promise<void> {
  const d = daemon;
  if (d === undefined) return;
  await stopChild(d);
  await rm(DOCKERD_DIR, { recursive: true, force: true }).catch(() => undefined);
}

/** Its own socket and exec root, so it never meets the long-running daemon above. */
export const LOAD_DOCKERD_DIR = '/tmp/berth-bench-dockerd-load';
export const LOAD_DOCKER_HOST = `unix://${LOAD_DOCKERD_DIR}/docker.sock`;

/**
 * A dockerd started on an empty data root for each `docker load` run (in the untimed prepare
 * step), so every load writes all its layers as `berth load` into a fresh store does.
 */
export class FreshDockerd {
  private child: ChildProcess | undefined;
  private static readonly all = new Set<FreshDockerd>();

  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  /** Stops the previous daemon if any; the caller has emptied `dataRoot`. */
  async restart(dataRoot: string): Promise<void> {
    await this.stop();
    FreshDockerd.all.add(this);
    this.child = await spawnDockerd(dataRoot, LOAD_DOCKERD_DIR);
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    FreshDockerd.all.delete(this);
    if (c === undefined) return;
    await stopChild(c);
    await rm(LOAD_DOCKERD_DIR, { recursive: true, force: true }).catch(() => undefined);
  }

  /** On exit or interrupt: every fresh daemon still running. */
  static async stopAll(): Promise<void> {
    for (const d of [...FreshDockerd.all]) await d.stop();
  }
}
