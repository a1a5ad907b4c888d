/**
 * A local distribution registry (Debian's docker-registry) for the push and pull cases: plain
 * HTTP on 127.0.0.1 and a free port, storage in a directory the harness owns. Started by a
 * case's first prepare step, stopped by its pid in the case's teardown (or at exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const REGISTRY_BIN = 'docker-registry';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function answers(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(`http://${host}/v2/`, { timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/**
 * The registry's config.yml. No `storage.cache` section: the registry then keeps no blob
 * descriptors in memory, so emptying the storage directory between runs really empties it.
 */
export function registryConfig(host: string, storage: string): string {
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storage)}`,
    'http:',
    `  addr: ${host}`,
    '  secret: berth-bench',
    '',
  ].join('\n');
}

export class Registry {
  private child: ChildProcess | undefined;
  private addr: string | undefined;
  private starting: Promise<void> | undefined;
  private static readonly all = new Set<Registry>();

  /** `dir` holds config.yml and the log; `storage` is the registry's root directory. */
  constructor(readonly dir: string, readonly storage: string) {}

  /** 127.0.0.1:PORT once started (kept after stop, for the report); before that a placeholder. */
  get host(): string {
    return this.addr ?? '127.0.0.1:PORT';
  }

  /** Hosts of every registry started so far, to scrub from the results. */
  static readonly hosts: string[] = [];

  /** Starts the registry once; later calls wait for the first. */
  ensure(): Promise<void> {
    this.starting ??= this.start().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  private async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir(this.storage, { recursive: true });
    const host = `127.0.0.1:${await freePort()}`;
    const config = path.join(this.dir, 'config.yml');
    await writeFile(config, registryConfig(host, this.storage));
    let output = '';
    const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      output = (output + d.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    this.child = child;
    Registry.all.add(this);
    for (let i = 0; i < 150; i++) {
      if (child.exitCode !== null) break;
      if (await answers(host)) {
        this.addr = host;
        Registry.hosts.push(host);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.stop();
    throw new Error(`registry on ${host} did not come up: ${output.trim().split('\n').pop() ?? ''}`);
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    this.starting = undefined;
    Registry.all.delete(this);
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  static async stopAll(): Promise<void> {
    for (const r of [...Registry.all]) await r.stop();
  }
}
