/**
 * Damaging copies of fixtures for the corruption tests: temp dirs, copies that can be written,
 * a small tar member index (to find a blob's bytes inside an archive), byte flips inside one
 * member (through gzip or xz when the whole archive is compressed) and truncation.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, cp, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

/** A fresh temp dir (under `parent`, default os.tmpdir()); remove it with removeDir. */
export async function tempDir(prefix = 'berth-test-', parent = os.tmpdir()): Promise<string> {
  return mkdtemp(path.join(parent, prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Copies a fixture file or directory into `dir` (keeping its base name) and makes it writable. */
export async function copyFixture(src: string, dir: string): Promise<string> {
  const dest = path.join(dir, path.basename(src));
  await cp(src, dest, { recursive: true });
  await makeWritable(dest);
  return dest;
}

async function makeWritable(p: string): Promise<void> {
  const st = await stat(p);
  await chmod(p, st.isDirectory() ? 0o755 : 0o644);
  if (st.isDirectory()) for (const e of await readdir(p)) await makeWritable(path.join(p, e));
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export interface TarMember {
  readonly name: string;
  /** 0 file, 5 dir, 2 symlink, … (the typeflag character) */
  readonly type: string;
  /** offset of this member's (last) header block */
  readonly headerOffset: number;
  /** offset of the first data byte */
  readonly dataOffset: number;
  readonly size: number;
}

function cstr(buf: Buffer, start: number, len: number): string {
  const b = buf.subarray(start, start + len);
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

function octal(buf: Buffer, start: number, len: number): number {
  const b = buf.subarray(start, start + len);
  if ((b[0]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = cstr(buf, start, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** Lists the members of an uncompressed tar held in memory (ustar, GNU long names, PAX path). */
export function tarMembers(tar: Buffer): TarMember[] {
  const members: TarMember[] = [];
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(tar, off + 124, 12);
    const type = String.fromCharCode(header[156]! || 0x30);
    const dataOffset = off + 512;
    const next = dataOffset + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = cstr(tar, dataOffset, size);
    } else if (type === 'x') {
      const pax = tar.subarray(dataOffset, dataOffset + size).toString('utf8');
      const m = /\d+ path=([^\n]*)\n/.exec(pax);
      if (m) longName = m[1];
    } else if (type !== 'g') {
      const prefix = cstr(tar, off + 345, 155);
      const name = longName ?? (prefix ? `${prefix}/${cstr(tar, off, 100)}` : cstr(tar, off, 100));
      members.push({ name: name.replace(/^\.\//, ''), type, headerOffset: off, dataOffset, size });
      longName = undefined;
    }
    off = next;
  }
  return members;
}

export function findMember(members: readonly TarMember[], name: string): TarMember {
  const m = members.find((x) => x.name === name && (x.type === '0' || x.type === '\0'));
  if (m === undefined) throw new Error(`no regular member ${name} (have ${members.map((x) => x.name).join(', ')})`);
  return m;
}

export type OuterCompression = 'none' | 'gzip' | 'xz';

export function sniffOuter(bytes: Buffer): OuterCompression {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
  if (bytes.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'none';
}

/** The uncompressed tar bytes of an archive file that may be gzip- or xz-compressed as a whole. */
export async function readTar(file: string): Promise<{ tar: Buffer; outer: OuterCompression }> {
  const raw = await readFile(file);
  const outer = sniffOuter(raw);
  if (outer === 'gzip') return { tar: gunzipSync(raw), outer };
  if (outer === 'xz') return { tar: execFileSync('xz', ['-dc'], { input: raw, maxBuffer: 256 * 1024 * 1024 }), outer };
  return { tar: raw, outer };
}

export async function writeTar(file: string, tar: Buffer, outer: OuterCompression): Promise<void> {
  const out = outer === 'gzip' ? gzipSync(tar) : outer === 'xz' ? execFileSync('xz', ['-c'], { input: tar, maxBuffer: 256 * 1024 * 1024 }) : tar;
  await writeFile(file, out);
}

/** The bytes of one member of an archive file. */
export async function memberBytes(file: string, name: string): Promise<Buffer> {
  const { tar } = await readTar(file);
  const m = findMember(tarMembers(tar), name);
  return Buffer.from(tar.subarray(m.dataOffset, m.dataOffset + m.size));
}

/**
 * Where to flip in a blob: for JSON the first ASCII letter at or after the middle (xor 0x01 keeps
 * it a letter, so the document stays valid JSON and only its digest changes), else the middle.
 */
export function flipOffset(data: Uint8Array): number {
  const mid = Math.floor(data.length / 2);
  if (data[0] === 0x7b /* { */) {
    for (let i = mid; i < data.length; i++) {
      const c = data[i]!;
      if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) return i;
    }
  }
  return mid;
}

/** Flips one byte of an archive member in place (re-compressing the archive when it is compressed). */
export async function flipInArchive(file: string, memberName: string): Promise<void> {
  const { tar, outer } = await readTar(file);
  const m = findMember(tarMembers(tar), memberName);
  const at = m.dataOffset + flipOffset(tar.subarray(m.dataOffset, m.dataOffset + m.size));
  tar[at] = tar[at]! ^ 0x01;
  await writeTar(file, tar, outer);
}

/** Flips one byte of a file in place. */
export async function flipInFile(file: string): Promise<void> {
  const data = await readFile(file);
  const at = flipOffset(data);
  data[at] = data[at]! ^ 0x01;
  await writeFile(file, data);
}

export async function truncateAt(file: string, length: number): Promise<void> {
  await truncate(file, length);
}

/** Runs GNU tar (with fixed owner and mtime) to pack `names` from `cwd` into `out`. */
export function packTar(cwd: string, out: string, names: readonly string[], extra: readonly string[] = []): void {
  execFileSync('tar', ['--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '--format=gnu', ...extra, '-cf', out, '-C', cwd, ...names]);
}
