/**
 * Setting extended attributes, which Node.js cannot do itself: one child process per batch (a
 * layer's worth), never one per file. `setfattr --restore` (Debian's `attr` package) when it is
 * installed, else python3's os.setxattr. Symlinks are never followed (setfattr -h,
 * follow_symlinks=False).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { BerthError } from '../core/errors.js';

export interface XattrWrite {
  /** Path relative to the batch's directory (no `..`; the caller confined it). */
  readonly path: string | Buffer;
  readonly name: string;
  readonly value: Uint8Array;
}

const SETFATTR = ['/usr/bin/setfattr', '/bin/setfattr'];
const PYTHON = ['/usr/bin/python3', '/bin/python3'];

function firstExecutable(candidates: readonly string[]): string | undefined {
  return candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The tool that will set xattrs here, or undefined when there is none. */
export function xattrTool(): string | undefined {
  return firstExecutable(SETFATTR) ?? firstExecutable(PYTHON);
}

/** getfattr's quoting: bytes outside a safe set as `\ooo` (setfattr --restore decodes them). */
function quote(p: Buffer): string {
  let out = '';
  for (const b of p) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._/+,:@%-]/.test(c) ? c : `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function run(cmd: string, args: readonly string[], cwd: string, input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { cwd, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4000) stderr += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new BerthError('BERTH_IO', `setting extended attributes with ${cmd} failed (exit ${code}): ${stderr.trim()}`, { subject: cwd }));
    });
    child.stdin.end(input);
  });
}

const PY = [
  'import json, os, sys',
  'for p, n, v in json.load(sys.stdin):',
  '    os.setxattr(os.fsdecode(bytes.fromhex(p)), n, bytes.fromhex(v), follow_symlinks=False)',
].join('\n');

/** Sets every attribute of `writes` under `dir`; BERTH_UNSUPPORTED when no tool is installed. */
export async function setXattrs(dir: string, writes: readonly XattrWrite[]): Promise<void> {
  if (writes.length === 0) return;
  const tool = xattrTool();
  if (tool === undefined) {
    throw new BerthError('BERTH_UNSUPPORTED', 'setting extended attributes needs setfattr (Debian package attr) or python3', {});
  }
  const buf = (p: string | Buffer) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  if (tool.endsWith('setfattr')) {
    let dump = '';
    for (const w of writes) {
      // The name is quoted too: a raw newline in it (a layer chooses its xattr names) would start a
      // `# file:` line of its own and set attributes on any path, e.g. ../../../../etc/passwd.
      dump += `# file: ./${quote(buf(w.path))}\n${quote(Buffer.from(w.name, 'utf8'))}=${w.value.length === 0 ? '""' : `0x${Buffer.from(w.value).toString('hex')}`}\n\n`;
    }
    await run(tool, ['-h', '--restore=-'], dir, dump);
    return;
  }
  const items = writes.map((w) => [Buffer.concat([Buffer.from('./'), buf(w.path)]).toString('hex'), w.name, Buffer.from(w.value).toString('hex')]);
  await run(tool, ['-c', PY], dir, JSON.stringify(items));
}
