/**
 * Deterministic tar writer producing what Go's archive/tar writes with no format set (the
 * bytes dockerd puts in layers): ustar blocks (magic `ustar\0`, version `00`), names over 100
 * bytes split into the ustar prefix when possible, a PAX `x` header only when something does
 * not fit (long or non-ASCII names and link names, sizes ≥ 8 GiB, uid/gid ≥ 2^21, xattrs, extra
 * records), mtime rounded to whole seconds, and exactly two zero blocks at the end (no record
 * padding). The mode field carries file-type bits (`0100644`) as dockerd writes it, unless
 * `modeTypeBits: false`. Same input, same bytes.
 */
import { BerthError, isBerthError } from '../core/errors.js';
import type { ByteStream, IoOptions } from '../io/stream.js';
import { BLOCK_SIZE, encodeHeader, flagFromType, isHeaderOnlyFlag, paddingLength, type TarHeader, type TarType } from './header.js';

export interface TarWriteEntry {
  /** Missing fields default to 0 / '' / {} except mode: 0644 files, 0755 directories, 0777 symlinks. */
  readonly header: Partial<TarHeader> & { readonly name: string; readonly type: TarType };
  /** The data: required length `header.size` (for a stream, `header.size` must be given). Header-only types take none. */
  readonly body?: ByteStream | Uint8Array;
}

export interface WriteTarOptions extends IoOptions {
  /** Put file-type bits in the mode field as dockerd does (`0100644`). Default true. */
  readonly modeTypeBits?: boolean;
}

const ZERO = new Uint8Array(BLOCK_SIZE * 2);

function defaultMode(type: TarType): number {
  if (type === 'directory') return 0o755;
  if (type === 'symlink') return 0o777;
  return 0o644;
}

function label(index: number, name: string): string {
  return `writing tar entry ${index} ${JSON.stringify(name)}`;
}

/** Streams a tar archive of `entries`; fails with BERTH_SIZE_MISMATCH when a body's length differs from its size. */
export async function* writeTar(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>, opts: WriteTarOptions = {}): ByteStream {
  let index = 0;
  for await (const entry of entries) {
    if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', 'writing tar: aborted', { cause: opts.signal.reason });
    const h = entry.header;
    const what = label(index, h.name);
    let flag: string;
    try {
      flag = flagFromType(h.type);
    } catch (err) {
      throw new BerthError('BERTH_USAGE', `${what}: ${(err as Error).message}`, { subject: h.name });
    }
    const body = entry.body;
    const headerOnly = isHeaderOnlyFlag(flag);
    let size: number;
    if (h.size !== undefined) size = h.size;
    else if (body === undefined) size = 0;
    else if (body instanceof Uint8Array) size = body.length;
    else throw new BerthError('BERTH_USAGE', `${what}: a streamed body needs header.size`, { subject: h.name });
    if (!Number.isSafeInteger(size) || size < 0) throw new BerthError('BERTH_USAGE', `${what}: invalid size (got ${size})`, { subject: h.name, got: size });
    if (headerOnly && (size !== 0 || (body instanceof Uint8Array && body.length > 0))) {
      throw new BerthError('BERTH_USAGE', `${what}: a ${h.type} entry carries no data (want size 0, got ${size || (body as Uint8Array).length})`, {
        subject: h.name, want: 0, got: size,
      });
    }
    let block: Uint8Array;
    try {
      block = encodeHeader({
        name: h.name, type: h.type, mode: h.mode ?? defaultMode(h.type), uid: h.uid ?? 0, gid: h.gid ?? 0, size, mtime: h.mtime ?? 0,
        linkname: h.linkname ?? '', uname: h.uname ?? '', gname: h.gname ?? '', devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
        xattrs: h.xattrs ?? {}, pax: h.pax ?? {},
      }, { modeTypeBits: opts.modeTypeBits !== false });
    } catch (err) {
      throw new BerthError(isBerthError(err) ? err.code : 'BERTH_INVALID_TAR', `${what}: ${(err as Error).message}`, { subject: h.name, cause: err });
    }
    yield block;
    let written = 0;
    const mismatch = (got: number, more: boolean): BerthError =>
      new BerthError('BERTH_SIZE_MISMATCH', `${what}: body length differs from header size (want ${size} bytes, got ${more ? 'at least ' : ''}${got})`, {
        subject: h.name, want: size, got,
      });
    if (body instanceof Uint8Array) {
      if (body.length !== size) throw mismatch(body.length, false);
      if (size > 0) yield body;
      written = size;
    } else if (body !== undefined) {
      for await (const chunk of body) {
        if (written + chunk.length > size) throw mismatch(written + chunk.length, true);
        written += chunk.length;
        if (chunk.length > 0) yield chunk;
      }
      if (written !== size) throw mismatch(written, false);
    } else if (size !== 0) {
      throw mismatch(0, false);
    }
    const pad = paddingLength(written);
    if (pad > 0) yield new Uint8Array(pad);
    index++;
  }
  yield ZERO.slice();
}
