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
import { BLOCK_SIZE, encodeHeader, encodeUstarInto, flagFromType, isHeaderOnlyFlag, paddingLength, type TarHeader, type TarType } from './header.js';

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

/** Output comes in chunks of up to this size: headers, padding and small bodies are copied into one buffer. */
const BATCH_BYTES = 1 << 20;
/** Bodies (and body chunks) larger than this are passed through as they are, not copied. */
const COPY_MAX = 64 << 10;

function defaultMode(type: TarType): number {
  if (type === 'directory') return 0o755;
  if (type === 'symlink') return 0o777;
  return 0o644;
}

function label(index: number, name: string): string {
  return `writing tar entry ${index} ${JSON.stringify(name)}`;
}

/**
 * The batch being filled. Bytes past `len` are always zero, so padding and the trailer cost a
 * length update. take() hands out what is filled: a nearly empty buffer is copied out and
 * reused, a fuller one is handed over and replaced.
 */
class Batch {
  buf = new Uint8Array(BATCH_BYTES);
  len = 0;

  room(): number {
    return BATCH_BYTES - this.len;
  }

  take(): Uint8Array {
    let out: Uint8Array;
    if (this.len >= BATCH_BYTES / 4) {
      out = this.buf.subarray(0, this.len);
      this.buf = new Uint8Array(BATCH_BYTES);
    } else {
      out = this.buf.slice(0, this.len);
      this.buf.fill(0, 0, this.len);
    }
    this.len = 0;
    return out;
  }

  put(bytes: Uint8Array): void {
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }
}

/** Streams a tar archive of `entries`; fails with BERTH_SIZE_MISMATCH when a body's length differs from its size. */
export async function* writeTar(entries: AsyncIterable<TarWriteEntry> | Iterable<TarWriteEntry>, opts: WriteTarOptions = {}): ByteStream {
  // A plain iterable is walked without an await per entry (for await would add one).
  const ait = Symbol.asyncIterator in entries ? (entries as AsyncIterable<TarWriteEntry>)[Symbol.asyncIterator]() : undefined;
  const sit = ait === undefined ? (entries as Iterable<TarWriteEntry>)[Symbol.iterator]() : undefined;
  const modeTypeBits = opts.modeTypeBits !== false;
  const out = new Batch();
  let index = 0;
  let finished = false;
  let failed = false;
  try {
    for (;;) {
      const r = ait !== undefined ? await ait.next() : sit!.next();
      if (r.done === true) {
        finished = true;
        break;
      }
      const entry = r.value;
      if (opts.signal?.aborted === true) throw new BerthError('BERTH_ABORTED', 'writing tar: aborted', { cause: opts.signal.reason });
      const h = entry.header;
      let flag: string;
      try {
        flag = flagFromType(h.type);
      } catch (err) {
        throw new BerthError('BERTH_USAGE', `${label(index, h.name)}: ${(err as Error).message}`, { subject: h.name });
      }
      const body = entry.body;
      const headerOnly = isHeaderOnlyFlag(flag);
      let size: number;
      if (h.size !== undefined) size = h.size;
      else if (body === undefined) size = 0;
      else if (body instanceof Uint8Array) size = body.length;
      else throw new BerthError('BERTH_USAGE', `${label(index, h.name)}: a streamed body needs header.size`, { subject: h.name });
      if (!Number.isSafeInteger(size) || size < 0) throw new BerthError('BERTH_USAGE', `${label(index, h.name)}: invalid size (got ${size})`, { subject: h.name, got: size });
      if (headerOnly && (size !== 0 || (body instanceof Uint8Array && body.length > 0))) {
        throw new BerthError('BERTH_USAGE', `${label(index, h.name)}: a ${h.type} entry carries no data (want size 0, got ${size || (body as Uint8Array).length})`, {
          subject: h.name, want: 0, got: size,
        });
      }
      const full = {
        name: h.name, type: h.type, mode: h.mode ?? defaultMode(h.type), uid: h.uid ?? 0, gid: h.gid ?? 0, size, mtime: h.mtime ?? 0,
        linkname: h.linkname ?? '', uname: h.uname ?? '', gname: h.gname ?? '', devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0,
        xattrs: h.xattrs ?? {}, pax: h.pax ?? {},
      };
      if (out.room() < BLOCK_SIZE) yield out.take();
      if (encodeUstarInto(full, modeTypeBits, out.buf, out.len)) {
        out.len += BLOCK_SIZE;
      } else {
        let blocks: Uint8Array;
        try {
          blocks = encodeHeader(full, { modeTypeBits });
        } catch (err) {
          throw new BerthError(isBerthError(err) ? err.code : 'BERTH_INVALID_TAR', `${label(index, h.name)}: ${(err as Error).message}`, { subject: h.name, cause: err });
        }
        if (blocks.length > out.room()) yield out.take();
        if (blocks.length <= out.room()) out.put(blocks);
        else yield blocks;
      }
      let written = 0;
      const mismatch = (got: number, more: boolean): BerthError =>
        new BerthError('BERTH_SIZE_MISMATCH', `${label(index, h.name)}: body length differs from header size (want ${size} bytes, got ${more ? 'at least ' : ''}${got})`, {
          subject: h.name, want: size, got,
        });
      if (body instanceof Uint8Array) {
        if (body.length !== size) throw mismatch(body.length, false);
        if (size > 0) {
          if (size > COPY_MAX) {
            if (out.len > 0) yield out.take();
            yield body;
          } else {
            if (size > out.room()) yield out.take();
            out.put(body);
          }
        }
        written = size;
      } else if (body !== undefined) {
        for await (const chunk of body) {
          if (written + chunk.length > size) throw mismatch(written + chunk.length, true);
          written += chunk.length;
          if (chunk.length > COPY_MAX) {
            if (out.len > 0) yield out.take();
            yield chunk;
          } else if (chunk.length > 0) {
            if (chunk.length > out.room()) yield out.take();
            out.put(chunk);
          }
        }
        if (written !== size) throw mismatch(written, false);
      } else if (size !== 0) {
        throw mismatch(0, false);
      }
      const pad = paddingLength(written);
      if (pad > out.room()) yield out.take();
      out.len += pad;
      index++;
    }
    if (out.room() < 2 * BLOCK_SIZE) yield out.take();
    out.len += 2 * BLOCK_SIZE;
    yield out.take();
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (!finished) {
      // What for-await does on an early exit: close the source, keeping the first error.
      try {
        await (ait !== undefined ? ait.return?.() : sit!.return?.());
      } catch (err) {
        if (!failed) throw err;
      }
    }
  }
}
