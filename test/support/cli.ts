/**
 * Runs berth's CLI in process through main() with captured stdout/stderr (fast: no node start-up
 * per call), plus the paths the fixture tests share.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import path from 'node:path';
import { main } from '../../cli/main.js';
import { realFixtures, repoRoot } from './paths.js';

/** The repository root; compiled tests run from dist/test/support/, sources sit in test/support/. */
export { realFixtures, repoRoot };

/** A path under the real-fixture folder. */
export function fixture(rel: string): string {
  return path.join(realFixtures, rel);
}

export interface CliResult {
  readonly code: number;
  /** stdout as UTF-8 text */
  readonly stdout: string;
  /** stdout exactly as written (for `manifest` and `blob`) */
  readonly bytes: Buffer;
  readonly stderr: string;
}

function sink(chunks: Buffer[]): NodeJS.WritableStream {
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
      cb();
    },
  });
}

/** Runs `berth ARGV…` in process; never throws for a non-zero exit. */
export async function berth(...argv: string[]): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const code = await main(argv, { stdout: sink(out), stderr: sink(err), env: {} });
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString('utf8'), bytes, stderr: Buffer.concat(err).toString('utf8') };
}

/** Runs the real bin/berth in a subprocess (for what only a real process shows: stack traces, hangs). */
export function berthProcess(argv: readonly string[], timeoutMs = 20_000): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin/berth'), ...argv], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; signal?: string }) | null;
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** A stack-trace frame line as Node prints it. */
export const STACK_LINE = /^\s{4}at /m;

/** Asserts the error output is one clean `berth: …` line (commander's usage hints aside), no stack. */
export function assertCleanError(r: CliResult, what: string): void {
  assert.doesNotMatch(r.stderr, STACK_LINE, `${what}: stderr has a stack trace:\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  const berthLines = lines.filter((l) => l.startsWith('berth: '));
  assert.equal(berthLines.length, 1, `${what}: want exactly one "berth: " error line, got:\n${r.stderr}`);
}

/** Parses stdout as JSON, failing with the output when it is not. */
export function json<T = unknown>(r: CliResult, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (err) {
    assert.fail(`${what}: stdout is not valid JSON (${String(err)}):\n${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`);
  }
}

/** The short digest form berth prints: `sha256:` + 12 hex. */
export function short(digest: string): string {
  const [alg, hex] = digest.split(':');
  return `${alg}:${hex!.slice(0, 12)}`;
}
