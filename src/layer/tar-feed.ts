/**
 * A push-driven tar reader for extraction: each decompressed chunk is parsed synchronously and
 * body bytes go to the sink as views of that chunk (no per-entry stream, promise or copy). Only
 * an entry whose sink handler returns a promise (the general, lstat-walking path) pauses the
 * feed. Headers go through readTar's own parser (parseHeaderGroupAt), so names, checks and
 * errors are the same as readTar's (BERTH_INVALID_TAR, BERTH_LIMIT for long paths and trailers).
 */
import { BerthError } from '../core/errors.js';
import { limits } from '../io/limits.js';
import type { TarHeader } from '../tar/header.js';
import { DEFAULT_MAX_TRAILER_BYTES, checkPath, entryLabel, parseHeaderGroupAt } from '../tar/reader.js';

export interface TarFeedSink {
  /** A new member; a returned promise pauses the feed until it settles (a rejection stops it). */
  entry(header: TarHeader, index: number, dataSize: number): Promise<void> | undefined;
  /** The next bytes of the current member's data: a view valid only during the call. */
  data(bytes: Uint8Array): void;
  /** The current member's data is complete (called for every member, after its data). */
  end(): void;
}

const EMPTY = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export class TarFeed {
  private index = 0;
  private prevName: string | undefined;
  private cur: TarHeader | undefined;
  private dataSize = 0;
  /** Data and padding of the current member still to come; inBody until end() was called. */
  private bodyLeft = 0;
  private padLeft = 0;
  private padSize = 0;
  private inBody = false;
  /** A header group cut by the end of a chunk, and how many bytes the parser wants of it. */
  private carry: Uint8Array | undefined;
  private need = 0;
  private ended = false;
  private trailer = 0;
  private buf: Uint8Array = EMPTY;
  private pos = 0;
  private readonly maxPath = limits().maxPathBytes;

  constructor(private readonly sink: TarFeedSink, private readonly maxTrailer = DEFAULT_MAX_TRAILER_BYTES) {}

  /** Consumes one chunk; a promise when a member's handler went asynchronous (feed again only after it settles). */
  feed(chunk: Uint8Array): Promise<void> | undefined {
    this.buf = chunk;
    this.pos = 0;
    return this.run();
  }

  /** The end of the input: what is left must be the end of the archive (or nothing). */
  finish(): void {
    while (!this.ended) {
      if (this.bodyLeft > 0) throw this.truncated('body', this.dataSize, this.dataSize - this.bodyLeft);
      if (this.padLeft > 0) throw this.truncated('padding after the body', this.padSize, this.padSize - this.padLeft);
      const buf = this.carry ?? EMPTY;
      this.carry = undefined;
      // At the end of input a header group is either the end of the archive or an error.
      const g = parseHeaderGroupAt(buf, 0, buf.length, true, this.index, this.prevName);
      if (g.kind !== 'end') throw new BerthError('BERTH_INVALID_TAR', `${entryLabel(this.index, undefined, this.prevName)}: truncated archive`);
      this.ended = true;
      this.trailer = g.first.length;
      this.addTrailer(buf.length - g.consumed);
    }
  }

  private run(): Promise<void> | undefined {
    const buf = this.buf;
    const len = buf.length;
    for (;;) {
      let pos = this.pos;
      if (this.carry !== undefined) {
        const take = Math.min(this.need - this.carry.length, len - pos);
        if (take > 0) {
          this.carry = concat(this.carry, buf.subarray(pos, pos + take));
          pos += take;
          this.pos = pos;
        }
        if (this.carry.length < this.need) return undefined;
        const carry = this.carry;
        const r = this.group(carry, 0);
        if (r === -1) continue;
        this.carry = undefined;
        // The parser stops where its last read ended, which is where the carry ends.
        if (r.used < carry.length) this.pos -= carry.length - r.used;
        if (r.wait !== undefined) return r.wait.then(() => this.run());
        continue;
      }
      if (this.bodyLeft > 0) {
        const t = Math.min(this.bodyLeft, len - pos);
        if (t > 0) {
          this.bodyLeft -= t;
          this.pos = pos + t;
          this.sink.data(buf.subarray(pos, pos + t));
        }
        if (this.bodyLeft > 0) return undefined;
        pos = this.pos;
      }
      if (this.inBody) {
        this.inBody = false;
        this.sink.end();
      }
      if (this.padLeft > 0) {
        const t = Math.min(this.padLeft, len - pos);
        this.padLeft -= t;
        pos += t;
        this.pos = pos;
        if (this.padLeft > 0) return undefined;
      }
      if (this.ended) {
        this.addTrailer(len - pos);
        this.pos = len;
        return undefined;
      }
      if (pos === len) return undefined;
      const r = this.group(buf, pos);
      if (r === -1) {
        // a copy (a Buffer's slice() is a view): a reader may reuse the chunk's memory, as SplitFeed's does
        this.carry = new Uint8Array(buf.subarray(pos));
        this.pos = len;
        return undefined;
      }
      this.pos = pos + r.used;
      if (r.wait !== undefined) return r.wait.then(() => this.run());
    }
  }

  /** Parses the header group at buf[pos] and hands it to the sink; -1 (need set) when it runs past the end of buf. */
  private group(buf: Uint8Array, pos: number): -1 | { used: number; wait: Promise<void> | undefined } {
    const g = parseHeaderGroupAt(buf, pos, buf.length, false, this.index, this.prevName);
    if (g.kind === 'more') {
      this.need = g.need;
      return -1;
    }
    if (g.kind === 'end') {
      this.ended = true;
      this.trailer = g.first.length;
      return { used: g.consumed, wait: undefined };
    }
    const h = g.header;
    checkPath(this.index, this.maxPath, h);
    this.cur = h;
    this.dataSize = g.dataSize;
    this.bodyLeft = g.dataSize;
    this.padLeft = g.paddingSize;
    this.padSize = g.paddingSize;
    this.inBody = true;
    const index = this.index++;
    this.prevName = h.name;
    return { used: g.consumed, wait: this.sink.entry(h, index, g.dataSize) };
  }

  private addTrailer(n: number): void {
    this.trailer += n;
    if (this.trailer > this.maxTrailer) {
      throw new BerthError('BERTH_LIMIT', `reading tar trailer: more than ${this.maxTrailer} bytes after the end-of-archive block (want at most ${this.maxTrailer})`, {
        want: this.maxTrailer, got: this.trailer,
      });
    }
  }

  private truncated(part: string, want: number, got: number): BerthError {
    const name = this.cur?.name;
    return new BerthError('BERTH_INVALID_TAR', `${entryLabel(this.index - 1, name)}: truncated ${part} (want ${want} bytes, got ${got})`, { want, got, subject: name });
  }
}
