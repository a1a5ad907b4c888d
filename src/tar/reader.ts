/**
 * Streaming tar reader with bounded buffering: headers and extension data (≤ 1 MiB each) are
 * buffered, bodies never are. Every byte of the input is accounted for, so
 * `raw + body + padding` of each entry followed by the trailer reproduces the input exactly
 * (what tar-split needs).
 *
 * Semantics follow Go's archive/tar: links, symlinks, devices, directories and FIFOs carry no
 * data whatever their size field says; a PAX `g` header is reported as its own entry (type `g`,
 * its records in `header.pax`, its data in `raw`, no body) and is not merged into later entries;
 * input that ends exactly between entries (no end-of-archive blocks) is accepted.
 */
import { BerthError, withContext } from '../core/errors.js';
import type { ByteStream } from '../io/stream.js';
import {
  BLOCK_SIZE, MAX_EXTENSION_BYTES, buildHeader, decodeBlock, isHeaderOnlyFlag, isZeroBlock, paddingLength, parsePaxRecords, peekName,
  type Extensions, type TarHeader,
} from './header.js';

export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_TRAILER_BYTES = 16 << 20;

export interface ReadTarOptions {
  /** More entries than this is a BERTH_LIMIT error. Default 1 000 000. */
  readonly maxEntries?: number;
  readonly signal?: AbortSignal;
  /**
   * Called once after the last entry with the exact bytes that follow it: the end-of-archive
   * zero blocks and anything after them (GNU record padding). Empty when the input ended right
   * after the last entry. Not called when reading fails or the consumer stops early.
   */
  readonly onTrailer?: (bytes: Uint8Array) => void;
  /** Trailing bytes beyond this are a BERTH_LIMIT error. Default 16 MiB. */
  readonly maxTrailerBytes?: number;
}

export interface TarEntry {
  /** 0-based position among the entries yielded (extension headers are not entries). */
  readonly index: number;
  readonly header: TarHeader;
  /** Offset of the first byte of `raw` (the first extension header, or the main header). */
  readonly rawOffset: number;
  /** Offset of the main header block. */
  readonly headerOffset: number;
  /** Offset of the first data byte (headerOffset + 512). */
  readonly dataOffset: number;
  /** Bytes of data that follow the header: `header.size`, or 0 for header-only types. */
  readonly dataSize: number;
  /** Exact bytes from the end of the previous entry's padding up to this entry's data: extension headers, their data and padding, the main header. */
  readonly raw: Uint8Array;
  /**
   * The entry's data, exactly `dataSize` bytes. Call at most once; whatever is not consumed is
   * skipped when the iterator advances (a body read after that fails).
   */
  body(): ByteStream;
  /** The exact bytes after the data up to the next 512-byte boundary; readable once the body is finished or the iterator advanced. */
  readonly padding: Uint8Array;
}

/** A source of bytes for header parsing: returns fewer than `n` bytes only at the end of input. */
export interface BlockReader {
  read(n: number): Promise<Uint8Array>;
}

export type HeaderGroup =
  | { readonly end: true; readonly first: Uint8Array }
  | {
    readonly end: false;
    readonly header: TarHeader;
    readonly raw: Uint8Array;
    readonly rawOffset: number;
    readonly headerOffset: number;
    readonly dataOffset: number;
    readonly dataSize: number;
    readonly paddingSize: number;
  };

/** `reading tar entry 3 "etc/passwd"` (or `(after "x")` when the name is unknown). */
export function entryLabel(index: number, name: string | undefined, prevName?: string): string {
  if (name !== undefined && name !== '') return `reading tar entry ${index} ${JSON.stringify(name)}`;
  if (prevName !== undefined) return `reading tar entry ${index} (after ${JSON.stringify(prevName)})`;
  return `reading tar entry ${index}`;
}

function invalid(label: string, detail: string, extra: { want?: unknown; got?: unknown; subject?: string } = {}): BerthError {
  return new BerthError('BERTH_INVALID_TAR', `${label}: ${detail}`, extra);
}

/**
 * Reads one member's header blocks (extension headers included) starting at `offset`.
 * Returns `end` at an all-zero block or at the end of input; throws BERTH_INVALID_TAR otherwise.
 */
export async function readHeaderGroup(r: BlockReader, offset: number, index: number, prevName?: string): Promise<HeaderGroup> {
  const parts: Uint8Array[] = [];
  let at = offset;
  const ext: Extensions = {};
  let pendingName: string | undefined;
  for (;;) {
    const block = await r.read(BLOCK_SIZE);
    if (parts.length === 0 && (block.length === 0 || isZeroBlock(block))) return { end: true, first: block };
    const label = entryLabel(index, pendingName ?? (block.length === BLOCK_SIZE ? peekName(block) : undefined), prevName);
    if (block.length < BLOCK_SIZE) {
      throw invalid(label, `truncated header (want ${BLOCK_SIZE} bytes, got ${block.length})`, { want: BLOCK_SIZE, got: block.length });
    }
    if (isZeroBlock(block)) throw invalid(label, 'extension header not followed by a file header');
    let fields;
    try {
      fields = decodeBlock(block);
    } catch (err) {
      throw withContext(err, label);
    }
    const flag = fields.typeflag;
    const headerOffset = at;
    parts.push(block);
    at += BLOCK_SIZE;
    if (flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g') {
      const size = fields.size;
      if (size > MAX_EXTENSION_BYTES) {
        throw new BerthError('BERTH_LIMIT', `${label}: extension header "${flag}" too large (want at most ${MAX_EXTENSION_BYTES} bytes, got ${size})`, {
          want: MAX_EXTENSION_BYTES, got: size,
        });
      }
      const data = await r.read(size);
      if (data.length < size) throw invalid(label, `truncated extension data (want ${size} bytes, got ${data.length})`, { want: size, got: data.length });
      parts.push(data);
      at += size;
      const pad = paddingLength(size);
      if (flag !== 'g') {
        const padding = await r.read(pad);
        if (padding.length < pad) throw invalid(label, `truncated padding (want ${pad} bytes, got ${padding.length})`, { want: pad, got: padding.length });
        parts.push(padding);
        at += pad;
      }
      try {
        if (flag === 'L') {
          ext.longName = data;
          ext.gnu = true;
          pendingName = peekName(data);
        } else if (flag === 'K') {
          ext.longLink = data;
          ext.gnu = true;
        } else if (flag === 'x') {
          ext.pax = [...(ext.pax ?? []), ...parsePaxRecords(data)];
          const path = ext.pax.find((p) => p.key === 'path');
          if (path !== undefined) pendingName = new TextDecoder().decode(path.value);
        } else {
          // A global header is an entry of its own (as in Go): records in header.pax, data in raw.
          const header = buildHeader({ ...fields, size: 0 }, { pax: parsePaxRecords(data) });
          return {
            end: false, header: { ...header, size: 0 }, raw: concatParts(parts), rawOffset: offset, headerOffset,
            dataOffset: headerOffset + BLOCK_SIZE, dataSize: 0, paddingSize: pad,
          };
        }
      } catch (err) {
        throw withContext(err, label);
      }
      continue;
    }
    let header: TarHeader;
    try {
      header = buildHeader(fields, ext);
    } catch (err) {
      throw withContext(err, entryLabel(index, fields.name, prevName));
    }
    const dataSize = isHeaderOnlyFlag(flag) ? 0 : header.size;
    if (!Number.isSafeInteger(dataSize)) throw invalid(entryLabel(index, header.name), `size out of range (got ${dataSize})`);
    return {
      end: false, header, raw: concatParts(parts), rawOffset: offset, headerOffset, dataOffset: headerOffset + BLOCK_SIZE,
      dataSize, paddingSize: paddingLength(dataSize),
    };
  }
}

function concatParts(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const EMPTY = new Uint8Array(0);

function abortError(signal: AbortSignal): BerthError {
  return new BerthError('BERTH_ABORTED', 'reading tar: aborted', { cause: signal.reason });
}

/** Pull-based buffer over a ByteStream: holds at most one source chunk plus what `read` copies. */
class Input implements BlockReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private cur: Uint8Array = EMPTY;
  private pos = 0;
  private eof = false;
  offset = 0;

  constructor(src: ByteStream, private readonly signal: AbortSignal | undefined) {
    this.it = src[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    while (this.pos >= this.cur.length) {
      if (this.eof) return false;
      if (this.signal?.aborted === true) throw abortError(this.signal);
      const r = await this.it.next();
      if (r.done === true) {
        this.eof = true;
        this.cur = EMPTY;
        this.pos = 0;
        return false;
      }
      this.cur = r.value;
      this.pos = 0;
    }
    return true;
  }

  async read(n: number): Promise<Uint8Array> {
    if (n === 0) return EMPTY;
    if (!(await this.more())) return EMPTY;
    if (this.cur.length - this.pos >= n) {
      const out = new Uint8Array(this.cur.subarray(this.pos, this.pos + n));
      this.pos += n;
      this.offset += n;
      return out;
    }
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n && (await this.more())) {
      const take = Math.min(n - got, this.cur.length - this.pos);
      out.set(this.cur.subarray(this.pos, this.pos + take), got);
      this.pos += take;
      got += take;
    }
    this.offset += got;
    return got === n ? out : out.subarray(0, got);
  }

  /** Next piece of at most `n` bytes without copying; empty at the end of input. */
  async next(n: number): Promise<Uint8Array> {
    if (n === 0 || !(await this.more())) return EMPTY;
    const take = Math.min(n, this.cur.length - this.pos);
    const out = this.cur.subarray(this.pos, this.pos + take);
    this.pos += take;
    this.offset += take;
    return out;
  }

  async close(): Promise<void> {
    if (!this.eof) await this.it.return?.();
  }
}

class StreamEntry implements TarEntry {
  readonly index: number;
  readonly header: TarHeader;
  readonly rawOffset: number;
  readonly headerOffset: number;
  readonly dataOffset: number;
  readonly dataSize: number;
  readonly raw: Uint8Array;
  private remaining: number;
  private bodyTaken = false;
  private finished = false;
  private skipped = false;
  private pad: Uint8Array | undefined;

  constructor(private readonly input: Input, g: Extract<HeaderGroup, { end: false }>, index: number, private readonly paddingSize: number) {
    this.index = index;
    this.header = g.header;
    this.rawOffset = g.rawOffset;
    this.headerOffset = g.headerOffset;
    this.dataOffset = g.dataOffset;
    this.dataSize = g.dataSize;
    this.raw = g.raw;
    this.remaining = g.dataSize;
  }

  get padding(): Uint8Array {
    if (this.pad === undefined) {
      throw new BerthError('BERTH_USAGE', `${this.label()}: padding is known only after the body has been read or skipped`);
    }
    return this.pad;
  }

  private label(): string {
    return entryLabel(this.index, this.header.name);
  }

  private truncated(): BerthError {
    const got = this.dataSize - this.remaining;
    return invalid(this.label(), `truncated body (want ${this.dataSize} bytes, got ${got})`, { want: this.dataSize, got, subject: this.header.name });
  }

  body(): ByteStream {
    if (this.bodyTaken) throw new BerthError('BERTH_USAGE', `${this.label()}: body() called twice`);
    this.bodyTaken = true;
    return this.stream();
  }

  private async *stream(): AsyncGenerator<Uint8Array> {
    while (this.remaining > 0) {
      if (this.finished) throw new BerthError('BERTH_USAGE', `${this.label()}: body read after the reader moved to the next entry`);
      const chunk = await this.input.next(this.remaining);
      if (chunk.length === 0) throw this.truncated();
      this.remaining -= chunk.length;
      yield chunk;
      if (this.skipped) throw new BerthError('BERTH_USAGE', `${this.label()}: body read after the reader moved to the next entry`);
    }
    await this.readPadding();
  }

  private async readPadding(): Promise<void> {
    if (this.pad !== undefined) return;
    const pad = await this.input.read(this.paddingSize);
    if (pad.length < this.paddingSize) {
      throw invalid(this.label(), `truncated padding after the body (want ${this.paddingSize} bytes, got ${pad.length})`, {
        want: this.paddingSize, got: pad.length, subject: this.header.name,
      });
    }
    this.pad = pad;
  }

  /** Skips what the consumer left of the body, then reads the padding. */
  async finish(): Promise<void> {
    this.finished = true;
    if (this.remaining > 0) this.skipped = true;
    while (this.remaining > 0) {
      const chunk = await this.input.next(this.remaining);
      if (chunk.length === 0) throw this.truncated();
      this.remaining -= chunk.length;
    }
    await this.readPadding();
  }
}

/**
 * Iterates the entries of an uncompressed tar stream. Errors are BERTH_INVALID_TAR (BERTH_LIMIT
 * for too many entries or oversized extension data) and name the entry index and name.
 * An empty input and an archive of only zero blocks have no entries.
 */
export async function* readTar(src: ByteStream, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const input = new Input(src, opts.signal);
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const maxTrailer = opts.maxTrailerBytes ?? DEFAULT_MAX_TRAILER_BYTES;
  let index = 0;
  let prevName: string | undefined;
  try {
    for (;;) {
      if (opts.signal?.aborted === true) throw abortError(opts.signal);
      const g = await readHeaderGroup(input, input.offset, index, prevName);
      if (g.end) {
        const parts = [g.first];
        let total = g.first.length;
        for (;;) {
          const chunk = await input.next(1 << 20);
          if (chunk.length === 0) break;
          total += chunk.length;
          if (total > maxTrailer) {
            throw new BerthError('BERTH_LIMIT', `reading tar trailer: more than ${maxTrailer} bytes after the end-of-archive block (want at most ${maxTrailer})`, {
              want: maxTrailer, got: total,
            });
          }
          parts.push(new Uint8Array(chunk));
        }
        opts.onTrailer?.(concatParts(parts));
        return;
      }
      if (index >= maxEntries) {
        throw new BerthError('BERTH_LIMIT', `${entryLabel(index, g.header.name)}: too many entries (want at most ${maxEntries})`, {
          want: maxEntries, got: index + 1, subject: g.header.name,
        });
      }
      const entry = new StreamEntry(input, g, index, g.paddingSize);
      yield entry;
      await entry.finish();
      prevName = g.header.name;
      index++;
    }
  } finally {
    await input.close();
  }
}
