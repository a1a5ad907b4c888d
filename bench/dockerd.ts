/**
 * A private dockerd on the dataset script's data root (<data>/.dockerd-root holds the
 * berth-bench/* images), for the `docker export` comparison. Started lazily by the first export
 * run, stopped by its pid when the harness ends; never touches another daemon.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
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

async function waitUntilUp(): Promise<void> {
  for (let i = 0; i < 120; i++) {
    if (daemon?.exitCode !== null) throw new Error(`dockerd exited (log: ${DOCKERD_DIR}/dockerd.log)`);
    if (await docker('info').then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error('dockerd did not come up within 60 s');
}

async function start(dataDir: string, datasets: readonly string[]): Promise<void> {
  await rm(DOCKERD_DIR, { recursive: true, force: true });
  await mkdir(DOCKERD_DIR, { recursive: true });
  const logFd = openSync(path.join(DOCKERD_DIR, 'dockerd.log'), 'a');
  daemon = spawn('dockerd', [
    '--data-root', path.join(dataDir, '.dockerd-root'), '--exec-root', path.join(DOCKERD_DIR, 'exec'), '-H', DOCKER_HOST,
    '--pidfile', path.join(DOCKERD_DIR, 'pid'), '--iptables=false', '--ip-masq=false', '--bridge=none', '--storage-driver=overlay2',
  ], { stdio: ['ignore', logFd, logFd] });
  await waitUntilUp();
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
  if (d === undefined || d.exitCode !== null) return;
  const exited = new Promise((r) => d.once('exit', r));
  d.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
  await rm(DOCKERD_DIR, { recursive: true, force: true }).catch(() => undefined);
}
