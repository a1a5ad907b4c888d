/**
 * Output helpers shared by the commands: human sizes, tables, JSON, the tree drawing, progress
 * on a terminal, and the one table that maps error codes to exit codes.
 */
import { isBerthError, shortDigest, toBerthError, type TreeNode } from './api.js';

export interface Io {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
}

export type OutputFormat = 'text' | 'json';

export function parseFormat(value: string): OutputFormat {
  if (value === 'text' || value === 'json') return value;
  throw new UsageError(`--format must be "text" or "json", got "${value}"`);
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function humanSize(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

export function writeJson(io: Io, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns separated by two spaces. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Exit code for an error: 2 for usage errors, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return 2;
  if (isBerthError(err, 'BERTH_USAGE')) return 2;
  if (isBerthError(err, 'BERTH_INVALID_REFERENCE')) return 2;
  return 1;
}

/** One line, no stack unless --debug. */
export function reportError(io: Io, err: unknown, debug: boolean): number {
  const code = exitCodeFor(err);
  const message = err instanceof UsageError ? err.message : toBerthError(err).message;
  io.stderr.write(`berth: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (debug && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  if (debug && isBerthError(err)) io.stderr.write(`code: ${err.code}${err.path ? `, path: ${err.path}` : ''}\n`);
  return code;
}

const ROLE_LABEL: Record<string, string> = {
  entry: '', index: 'index', image: 'image', attestation: 'attestation', artifact: 'artifact',
  referrer: 'referrer', signature: 'signature', config: 'config', layer: 'layer', unknown: 'blob',
};

/** Draws the tree the way the image-spec diagrams nest it. */
export function renderTree(node: TreeNode, heading: string): string {
  const lines: string[] = [heading];
  const describe = (n: TreeNode): string => {
    const parts: string[] = [];
    const label = n.role === 'layer' ? `layer ${n.label ?? ''}`.trim() : n.role === 'entry' ? (n.label ?? '') : ROLE_LABEL[n.role] ?? n.role;
    parts.push(label);
    if (n.platform && n.role !== 'config' && n.role !== 'layer') parts.push(n.platform);
    if (n.digest) parts.push(shortDigest(n.digest));
    if (n.mediaType) parts.push(n.mediaType);
    if (n.artifactType) parts.push(`artifactType=${n.artifactType}`);
    if (n.predicateType) parts.push(`predicate=${n.predicateType}`);
    parts.push(humanSize(n.size));
    if (n.names && n.names.length > 0) parts.push(`[${n.names.join(', ')}]`);
    if (n.role === 'attestation' && n.annotations?.['vnd.docker.reference.digest']) {
      parts.push(`describes ${shortDigest(n.annotations['vnd.docker.reference.digest'])}`);
    }
    if (n.synthesized) parts.push('(manifest synthesised by berth: the place stores none)');
    if (n.absent) parts.push('(absent)');
    if (n.cycle) parts.push('(cycle: already shown above)');
    if (n.error) parts.push(`ERROR: ${n.error}`);
    return parts.join('  ');
  };
  const walk = (n: TreeNode, prefix: string, last: boolean, top: boolean): void => {
    lines.push(top ? describe(n) : `${prefix}${last ? '└── ' : '├── '}${describe(n)}`);
    const childPrefix = top ? '' : `${prefix}${last ? '    ' : '│   '}`;
    n.children.forEach((c, i) => walk(c, childPrefix, i === n.children.length - 1, false));
  };
  walk(node, '', true, true);
  return `${lines.join('\n')}\n`;
}

/** A throttled one-line progress display on stderr, only on a terminal. */
export function progress(io: Io, label: string, enabled: boolean): { add(n: number): void; done(): void } {
  if (!enabled || !io.stderr.isTTY) return { add() {}, done() {} };
  let total = 0;
  let last = 0;
  const start = Date.now();
  const draw = () => {
    const secs = Math.max((Date.now() - start) / 1000, 0.001);
    io.stderr.write(`\r\x1b[K${label}: ${humanSize(total)} (${humanSize(total / secs)}/s)`);
  };
  return {
    add(n) {
      total += n;
      const now = Date.now();
      if (now - last > 100) {
        last = now;
        draw();
      }
    },
    done() {
      io.stderr.write('\r\x1b[K');
    },
  };
}
