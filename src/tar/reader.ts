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
import { limits, shortName } from '../io/limits.js';
import { concatBytes, type ByteStream } from '../io/stream.js';
import {
  BLOCK_SIZE, MAX_EXTENSION_BYTES, buildHeader, decodeBlockAt, isHeaderOnlyFlag, isZeroBlock, paddingLength, parsePaxRecords, peekName,
  type Extensions, type TarHeader,
} from './header.js';

/** The default; limits().maxStreamEntries is the one in force. */
export const DEFAULT_MAX_ENTRIES = 1_000_000;
export const DEFAULT_MAX_TRAILER_BYTES = 16 << 20;

export interface ReadTarOptions {
  /** More entries than this is a BERTH_LIMIT error. Default limits().maxStreamEntries (1 000 000). */
  readonly maxEntries?: number;
  /** A name or link target longer than this many bytes is a BERTH_LIMIT error. Default limits().maxPathBytes (4096). */
  readonly maxPathBytes?: number;
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

/** A synchronous source for header parsing: throws NEED_MORE when the bytes are not at hand yet. */
interface SyncBlockReader {
  read(n: number): Uint8Array;
}

/** Thrown by a SyncBlockReader that has to wait for input. */
class NeedMore {
  constructor(public wanted = 0) {}
}
const NEED_MORE = new NeedMore();

type ParsedGroup =
  | { readonly end: true; readonly first: Uint8Array }
  | (Omit<Extract<HeaderGroup, { end: false }>, 'raw'> & { readonly parts: Uint8Array[] });

/**
 * The header-group parser proper, synchronous: every byte comes from `r.read`, which returns
 * exactly the bytes asked for (fewer only at the end of input) or throws NEED_MORE. Parsing has
 * no side effects, so a caller that gets NEED_MORE can fetch more input and start over.
 */
function parseHeaderGroup(r: SyncBlockReader, offset: number, index: number, prevName: string | undefined): ParsedGroup {
  const parts: Uint8Array[] = [];
  let at = offset;
  const ext: Extensions = {};
  let pendingName: string | undefined;
  for (;;) {
    const block = r.read(BLOCK_SIZE);
    if (parts.length === 0 && (block.length === 0 || isZeroBlock(block))) return { end: true, first: block };
    // Error labels are built only when an error happens (peekName decodes the block again).
    const labelName = pendingName;
    const label = (): string => entryLabel(index, labelName ?? (block.length === BLOCK_SIZE ? peekName(block) : undefined), prevName);
    if (block.length < BLOCK_SIZE) {
      throw invalid(label(), `truncated header (want ${BLOCK_SIZE} bytes, got ${block.length})`, { want: BLOCK_SIZE, got: block.length });
    }
    if (isZeroBlock(block)) throw invalid(label(), 'extension header not followed by a file header');
    let fields;
    try {
      fields = decodeBlockAt(block, 0);
    } catch (err) {
      throw withContext(err, label());
    }
    const flag = fields.typeflag;
    const headerOffset = at;
    parts.push(block);
    at += BLOCK_SIZE;
    if (flag === 'x' || flag === 'L' || flag === 'K' || flag === 'g') {
      const size = fields.size;
      if (size > MAX_EXTENSION_BYTES) {
        throw new BerthError('BERTH_LIMIT', `${label()}: extension header "${flag}" too large (want at most ${MAX_EXTENSION_BYTES} bytes, got ${size})`, {
          want: MAX_EXTENSION_BYTES, got: size,
        });
      }
      const data = r.read(size);
      if (data.length < size) throw invalid(label(), `truncated extension data (want ${size} bytes, got ${data.length})`, { want: size, got: data.length });
      parts.push(data);
      at += size;
      const pad = paddingLength(size);
      if (flag !== 'g') {
        const padding = r.read(pad);
        if (padding.length < pad) throw invalid(label(), `truncated padding (want ${pad} bytes, got ${padding.length})`, { want: pad, got: padding.length });
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
            end: false, header: { ...header, size: 0 }, parts, rawOffset: offset, headerOffset,
            dataOffset: headerOffset + BLOCK_SIZE, dataSize: 0, paddingSize: pad,
          };
        }
      } catch (err) {
        throw withContext(err, label());
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
      end: false, header, parts, rawOffset: offset, headerOffset, dataOffset: headerOffset + BLOCK_SIZE,
      dataSize, paddingSize: paddingLength(dataSize),
    };
  }
}

/** Serves the reads recorded so far, in order; asks for the next one with NEED_MORE. */
class ReplayReader implements SyncBlockReader {
  private next = 0;
  constructor(private readonly got: readonly Uint8Array[]) {}

  read(n: number): Uint8Array {
    const b = this.got[this.next];
    if (b === undefined) {
      NEED_MORE.wanted = n;
      throw NEED_MORE;
    }
    this.next++;
    return b;
  }
}

/**
 * Reads one member's header blocks (extension headers included) starting at `offset`.
 * Returns `end` at an all-zero block or at the end of input; throws BERTH_INVALID_TAR otherwise.
 */
export async function readHeaderGroup(r: BlockReader, offset: number, index: number, prevName?: string): Promise<HeaderGroup> {
  // Each pass replays the reads made so far and stops at the first new one (a group is a few reads).
  const got: Uint8Array[] = [];
  for (;;) {
    let g: ParsedGroup;
    try {
      g = parseHeaderGroup(new ReplayReader(got), offset, index, prevName);
    } catch (err) {
      if (err !== NEED_MORE) throw err;
      got.push(await r.read(NEED_MORE.wanted));
      continue;
    }
    if (g.end) return g;
    const { parts, ...rest } = g;
    return { ...rest, raw: concatBytes(parts) };
  }
}

const EMPTY = new Uint8Array(0);

function abortError(signal: AbortSignal): BerthError {
  return new BerthError('BERTH_ABORTED', 'reading tar: aborted', { cause: signal.reason });
}

/** Reads straight from Input's current chunk (views, no copies); NEED_MORE past its end. */
class ChunkReader implements SyncBlockReader {
  buf: Uint8Array = EMPTY;
  pos = 0;

  read(n: number): Uint8Array {
    const end = this.pos + n;
    if (end > this.buf.length) throw NEED_MORE;
    const out = this.buf.subarray(this.pos, end);
    this.pos = end;
    return out;
  }
}

/**
 * Copies of small byte ranges (headers, padding) carved out of shared 64 KiB buffers: one
 * allocation per ~128 headers instead of one off-heap buffer each (which costs more than the
 * parsing). Large copies get their own buffer.
 */
class Slab {
  private static readonly SIZE = 64 << 10;
  private buf = new Uint8Array(0);
  private used = 0;

  copy(src: Uint8Array, at: number, n: number): Uint8Array {
    if (n > Slab.SIZE >>> 3) return new Uint8Array(src.subarray(at, at + n));
    if (this.used + n > this.buf.length) {
      this.buf = new Uint8Array(Slab.SIZE);
      this.used = 0;
    }
    if (Buffer.isBuffer(src)) src.copy(this.buf, this.used, at, at + n);
    else this.buf.set(src.subarray(at, at + n), this.used);
    const out = this.buf.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }
}

type GroupFields = Omit<Extract<HeaderGroup, { end: false }>, 'raw'>;

/**
 * Pull-based buffer over a ByteStream: holds at most one source chunk plus what `read` copies.
 * Whatever lies in the current chunk is also reachable synchronously (tryGroup, available,
 * take, copy), so entries that fit in a chunk cost no await at all.
 */
class Input implements BlockReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private cur: Uint8Array = EMPTY;
  private pos = 0;
  private eof = false;
  private readonly chunkReader = new ChunkReader();
  private readonly slab = new Slab();
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
    if (this.cur.length - this.pos >= n) return this.copy(n);
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
    return this.take(n);
  }

  /** Bytes of the current chunk not consumed yet. */
  available(): number {
    return this.cur.length - this.pos;
  }

  /** Up to `n` bytes of the current chunk, not copied. */
  take(n: number): Uint8Array {
    const take = Math.min(n, this.cur.length - this.pos);
    const out = this.cur.subarray(this.pos, this.pos + take);
    this.pos += take;
    this.offset += take;
    return out;
  }

  /** A copy of the next `n` bytes, which must be in the current chunk. */
  copy(n: number): Uint8Array {
    const out = this.slab.copy(this.cur, this.pos, n);
    this.pos += n;
    this.offset += n;
    return out;
  }

  /**
   * The next header group when all of it is in the current chunk; undefined when it is not
   * (or at the end of the archive), and then nothing was consumed.
   */
  tryGroup(index: number, prevName: string | undefined): { g: GroupFields; raw: Uint8Array } | undefined {
    if (this.cur.length - this.pos < BLOCK_SIZE) return undefined;
    const r = this.chunkReader;
    r.buf = this.cur;
    r.pos = this.pos;
    let g: ParsedGroup;
    try {
      g = parseHeaderGroup(r, this.offset, index, prevName);
    } catch (err) {
      if (err === NEED_MORE) return undefined;
      throw err;
    } finally {
      r.buf = EMPTY;
    }
    if (g.end) return undefined;
    return { g, raw: this.copy(r.pos - this.pos) };
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
  private readonly paddingSize: number;
  private remaining: number;
  private bodyTaken = false;
  private finished = false;
  private skipped = false;
  private pad: Uint8Array | undefined;

  constructor(private readonly input: Input, g: GroupFields, raw: Uint8Array, index: number) {
    this.index = index;
    this.header = g.header;
    this.rawOffset = g.rawOffset;
    this.headerOffset = g.headerOffset;
    this.dataOffset = g.dataOffset;
    this.dataSize = g.dataSize;
    this.paddingSize = g.paddingSize;
    this.raw = raw;
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

  private movedOn(): BerthError {
    return new BerthError('BERTH_USAGE', `${this.label()}: body read after the reader moved to the next entry`);
  }

  body(): ByteStream {
    if (this.bodyTaken) throw new BerthError('BERTH_USAGE', `${this.label()}: body() called twice`);
    this.bodyTaken = true;
    return new BodyIterator(this);
  }

  /**
   * One step of the body: the next chunk, or null once the data and its padding are read.
   * Synchronous while the bytes are in the current chunk. `resumed` says a chunk was handed
   * out before (reading on after the reader skipped the rest is an error).
   */
  step(resumed: boolean): Uint8Array | null | Promise<Uint8Array | null> {
    if (resumed && this.skipped) throw this.movedOn();
    if (this.remaining > 0) {
      if (this.finished) throw this.movedOn();
      if (this.input.available() === 0) return this.stepAsync();
      const chunk = this.input.take(this.remaining);
      this.remaining -= chunk.length;
      return chunk;
    }
    if (this.pad !== undefined) return null;
    if (this.input.available() >= this.paddingSize) {
      this.pad = this.paddingSize === 0 ? EMPTY : this.input.copy(this.paddingSize);
      return null;
    }
    return this.readPadding().then(() => null);
  }

  private async stepAsync(): Promise<Uint8Array> {
    const chunk = await this.input.next(this.remaining);
    if (chunk.length === 0) throw this.truncated();
    this.remaining -= chunk.length;
    return chunk;
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

  /** finish() without awaiting when the rest of the body and the padding are in the current chunk; false (nothing done) otherwise. */
  finishSync(): boolean {
    const need = this.remaining + (this.pad === undefined ? this.paddingSize : 0);
    if (need > this.input.available()) return false;
    this.finished = true;
    if (this.remaining > 0) {
      this.skipped = true;
      this.input.take(this.remaining);
      this.remaining = 0;
    }
    if (this.pad === undefined) this.pad = this.paddingSize === 0 ? EMPTY : this.input.copy(this.paddingSize);
    return true;
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

/** The iterator body() returns: a plain object, so chunks already at hand cost one resolved promise each. */
class BodyIterator implements AsyncIterableIterator<Uint8Array> {
  /** 0: not started, 1: handed out a chunk, 2: done. */
  private state: 0 | 1 | 2 = 0;

  constructor(private readonly entry: StreamEntry) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.state === 2) return Promise.resolve({ value: undefined, done: true });
    let r: Uint8Array | null | Promise<Uint8Array | null>;
    try {
      r = this.entry.step(this.state === 1);
    } catch (err) {
      this.state = 2;
      return Promise.reject(err);
    }
    if (r instanceof Promise) {
      return r.then((v) => this.settle(v), (err: unknown) => {
        this.state = 2;
        throw err;
      });
    }
    return Promise.resolve(this.settle(r));
  }

  private settle(v: Uint8Array | null): IteratorResult<Uint8Array> {
    if (v === null) {
      this.state = 2;
      return { value: undefined, done: true };
    }
    this.state = 1;
    return { value: v, done: false };
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.state = 2;
    return Promise.resolve({ value: undefined, done: true });
  }
}

/**
 * Iterates the entries of an uncompressed tar stream. Errors are BERTH_INVALID_TAR (BERTH_LIMIT
 * for too many entries or oversized extension data) and name the entry index and name.
 * An empty input and an archive of only zero blocks have no entries.
 */
export async function* readTar(src: ByteStream, opts: ReadTarOptions = {}): AsyncGenerator<TarEntry> {
  const input = new Input(src, opts.signal);
  const maxEntries = opts.maxEntries ?? limits().maxStreamEntries;
  const maxPath = opts.maxPathBytes ?? limits().maxPathBytes;
  const maxTrailer = opts.maxTrailerBytes ?? DEFAULT_MAX_TRAILER_BYTES;
  let index = 0;
  let prevName: string | undefined;
  try {
    for (;;) {
      if (opts.signal?.aborted === true) throw abortError(opts.signal);
      // Headers inside the current chunk are parsed without awaiting; the rest (chunk boundaries,
      // the end of the archive) goes through the general path.
      let entry: StreamEntry;
      const fast = input.tryGroup(index, prevName);
      if (fast !== undefined) {
        checkEntries(index, maxEntries, fast.g.header.name);
        checkPath(index, maxPath, fast.g.header);
        entry = new StreamEntry(input, fast.g, fast.raw, index);
      } else {
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
          opts.onTrailer?.(concatBytes(parts));
          return;
        }
        checkEntries(index, maxEntries, g.header.name);
        checkPath(index, maxPath, g.header);
        entry = new StreamEntry(input, g, g.raw, index);
      }
      yield entry;
      if (!entry.finishSync()) await entry.finish();
      prevName = entry.header.name;
      index++;
    }
  } finally {
    await input.close();
  }
}

/**
 * BERTH_LIMIT when the entry's name or link target is longer than `maxPath` bytes: one short line
 * naming the entry index and a truncated name (never the whole multi-KB name).
 */
export function checkPath(index: number, maxPath: number, header: { readonly name: string; readonly linkname: string }): void {
  // UTF-8 takes at most 3 bytes per UTF-16 unit: most names need no byte count.
  for (const [field, value] of [['name', header.name], ['link target', header.linkname]] as const) {
    if (value.length * 3 <= maxPath) continue;
    const bytes = Buffer.byteLength(value);
    if (bytes > maxPath) {
      throw new BerthError('BERTH_LIMIT', `reading tar entry ${index} ${shortName(header.name, 60)}: ${field} is ${bytes} bytes, over the path limit of ${maxPath} (--max-path)`, {
        want: maxPath, got: bytes, subject: header.name.slice(0, 256),
      });
    }
  }
}

/** BERTH_LIMIT when entry `index` (0-based) is past `maxEntries`. */
export function checkEntries(index: number, maxEntries: number, name: string): void {
  if (index >= maxEntries) {
    throw new BerthError('BERTH_LIMIT', `${entryLabel(index, name)}: too many entries (want at most ${maxEntries})`, {
      want: maxEntries, got: index + 1, subject: name,
    });
  }
}

/** Reads buf[pos, end): short reads only when `eof`, else NEED_MORE with `need` = bytes wanted from `start`. */
class SliceReader implements SyncBlockReader {
  need = 0;
  constructor(private readonly buf: Uint8Array, private pos: number, private readonly end: number, private readonly eof: boolean, private readonly start: number) {}

  read(n: number): Uint8Array {
    const stop = this.pos + n;
    if (stop > this.end) {
      if (!this.eof) {
        this.need = stop - this.start;
        throw NEED_MORE;
      }
      const out = this.buf.subarray(this.pos, this.end);
      this.pos = this.end;
      return out;
    }
    const out = this.buf.subarray(this.pos, stop);
    this.pos = stop;
    return out;
  }

  get at(): number {
    return this.pos;
  }
}

/** What parseHeaderGroupAt found: the end of the archive, a header group, or how many bytes it needs first. */
export type HeaderGroupAt =
  | { readonly kind: 'end'; readonly first: Uint8Array; readonly consumed: number }
  | { readonly kind: 'entry'; readonly header: TarHeader; readonly dataSize: number; readonly paddingSize: number; readonly consumed: number }
  | { readonly kind: 'more'; readonly need: number };

/**
 * The header group at buf[pos, end), parsed and checked exactly as readTar does (same errors).
 * When the group runs past `end` and more input may follow (`eof` false), returns how many bytes
 * from `pos` it needs. For readers that scan chunks themselves (scan.ts).
 */
export function parseHeaderGroupAt(buf: Uint8Array, pos: number, end: number, eof: boolean, index: number, prevName: string | undefined): HeaderGroupAt {
  const r = new SliceReader(buf, pos, end, eof, pos);
  let g: ParsedGroup;
  try {
    g = parseHeaderGroup(r, 0, index, prevName);
  } catch (err) {
    if (err === NEED_MORE) return { kind: 'more', need: r.need };
    throw err;
  }
  if (g.end) return { kind: 'end', first: g.first, consumed: r.at - pos };
  return { kind: 'entry', header: g.header, dataSize: g.dataSize, paddingSize: g.paddingSize, consumed: r.at - pos };
}
