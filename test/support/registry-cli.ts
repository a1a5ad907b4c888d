/**
 * Runs berth's CLI in process with a chosen environment and stdin (registry tests need
 * DOCKER_CONFIG and --password-stdin), and compares berth with skopeo over docker:// references.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { main } from '../../cli/main.js';
import type { CliResult } from './cli.js';
import { skopeo } from './registry.js';

export async function berthEnv(env: Record<string, string | undefined>, argv: readonly string[], stdin?: string): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) => new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
      cb();
    },
  });
  const io = { stdout: sink(out), stderr: sink(err), env, ...(stdin === undefined ? {} : { stdin: Readable.from([Buffer.from(stdin, 'utf8')]) }) };
  const code = await main(argv, io);
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString('utf8'), bytes, stderr: Buffer.concat(err).toString('utf8') };
}

export interface SkopeoFacts {
  /** The digest of what the reference names (an index for a multi-platform tag). */
  readonly digest: string;
  readonly layers: readonly string[];
  readonly configDigest: string;
}

/** skopeo inspect of a docker:// reference on a plain-HTTP test registry. */
export async function skopeoFacts(ref: string, extra: readonly string[] = []): Promise<SkopeoFacts> {
  const info = JSON.parse(await skopeo([...extra, 'inspect', '--tls-verify=false', ref])) as { Digest: string; Layers: string[] };
  const raw = await skopeoRaw([...extra, 'inspect', '--tls-verify=false', '--config', '--raw', ref]);
  return { digest: info.Digest, layers: info.Layers, configDigest: `sha256:${createHash('sha256').update(raw).digest('hex')}` };
}

async function skopeoRaw(args: readonly string[]): Promise<Buffer> {
  const { execFile } = await import('node:child_process');
  const { requirePeer } = await import('./peers.js');
  return new Promise((resolve, reject) => {
    execFile(requirePeer('skopeo'), [...args], { encoding: 'buffer', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`skopeo ${args.join(' ')}: ${stderr.toString('utf8')}`));
      else resolve(stdout);
    });
  });
}
