/**
 * A plain-HTTP GET on a socket of its own, for blob bodies. node:http runs every body chunk
 * through its parser and copies it into a fresh Buffer; here the socket reads straight into
 * 1 MiB buffers (several hundred KiB per read instead of 64 KiB) and the body is handed on as
 * views of them, never copied: about a third of node:http's CPU per byte on a 116 MB layer.
 *
 * Only the plain case is handled: a status line, headers, and a Content-Length body. The caller
 * (RegistryClient.getBlob) sends anything else through node:http again: chunked bodies, bodies
 * without a length, 1xx answers, statuses it does not accept (auth challenges, redirects, errors).
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** A response body: what resumingStream and readLimited use of an IncomingMessage. */
export interface ResponseBody extends AsyncIterable<Buffer> {
  /** True once every byte the headers announced has come. */
  readonly complete: boolean;
  /** Drops the connection (the rest of the body is not read). */
  destroy(): void;
  /** Reads the rest of the body and drops it. */
  resume(): void;
}

export interface RawResponse {
  readonly status: number;
  readonly statusMessage: string;
  readonly headers: IncomingHttpHeaders;
  /** Undefined when the body is not a plain Content-Length body (the socket is closed then). */
  readonly body: RawBody | undefined;
}

export interface RawGetOptions {
  /** A connection idle this long fails with ETIMEDOUT. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

const READ_BUFFER = 1 << 20;
/** A read gets at least this much room (libuv's own read size), else a fresh buffer is taken. */
const MIN_READ = 64 * 1024;
/** Reading pauses while this much is queued and not taken by the consumer. */
const HIGH_WATER = 2 << 20;
const MAX_HEAD = 64 * 1024;

type Failure = Error & { code?: string };

function failure(message: string, code: string): Failure {
  return Object.assign(new Error(message), { code });
}

/** The body of a raw response: the socket's reads queued until the consumer takes them. */
export class RawBody implements ResponseBody {
  complete = false;
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private remaining: number;
  private error: Failure | undefined;
  private ended = false;
  private wake: (() => void) | undefined;
  private draining = false;
  private paused = false;

  constructor(private readonly socket: net.Socket, readonly length: number) {
    this.remaining = length;
    if (length === 0) this.finish();
  }

  /** Bytes read from the socket (the first call has what followed the headers). */
  push(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    // a server that sends more than it announced is cut at the announced length
    const take = chunk.length > this.remaining ? chunk.subarray(0, this.remaining) : chunk;
    this.remaining -= take.length;
    if (!this.draining) {
      this.queue.push(take);
      this.queued += take.length;
      if (this.queued >= HIGH_WATER && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
    }
    if (this.remaining === 0) this.finish();
    this.signal();
  }

  /** The socket closed or failed: an error unless the whole body came. */
  fail(err: Failure | undefined): void {
    if (this.ended) return;
    this.error = err ?? failure('connection closed before the whole body came', 'ECONNRESET');
    this.ended = true;
    this.signal();
  }

  private finish(): void {
    this.complete = true;
    this.ended = true;
    // Connection: close was asked; nothing more is read from this socket
    this.socket.destroy();
  }

  private signal(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  destroy(): void {
    this.queue.length = 0;
    this.queued = 0;
    if (!this.ended) this.fail(failure('response body dropped', 'ERR_STREAM_DESTROYED'));
    this.socket.destroy();
  }

  resume(): void {
    this.draining = true;
    this.queue.length = 0;
    this.queued = 0;
    this.paused = false;
    this.socket.resume();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    try {
      for (;;) {
        const chunk = this.queue.shift();
        if (chunk !== undefined) {
          this.queued -= chunk.length;
          if (this.paused && this.queued < HIGH_WATER / 2) {
            this.paused = false;
            this.socket.resume();
          }
          yield chunk;
          continue;
        }
        if (this.ended) {
          if (this.error !== undefined) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      // a consumer that stops early (or an error) leaves nothing open
      if (!this.complete) this.socket.destroy();
    }
  }
}

/** Parses `HTTP/1.1 200 OK\r\nName: value\r\n…` (the bytes before the blank line). */
function parseHead(text: string): { status: number; statusMessage: string; headers: IncomingHttpHeaders } {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (m === null) throw failure(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 40))}`, 'HPE_INVALID_CONSTANT');
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) throw failure(`malformed header line ${JSON.stringify(line.slice(0, 40))}`, 'HPE_INVALID_HEADER_TOKEN');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(m[1]), statusMessage: m[2] ?? '', headers };
}

/**
 * Sends `GET url` with `headers` (plus Host and Connection: close) and resolves with the status
 * and headers once they came. Rejects on connection errors, a malformed answer, abort, or idle
 * timeout before the headers; later failures surface as errors of the body's iteration.
 */
export function rawGet(url: URL, headers: Readonly<Record<string, string>>, opts: RawGetOptions): Promise<RawResponse> {
  if (url.protocol !== 'http:') return Promise.reject(new Error(`rawGet is for http: URLs, not ${url.protocol}`));
  let request = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) return Promise.reject(failure(`header ${name} holds a line break`, 'ERR_INVALID_CHAR'));
    request += `${name}: ${value}\r\n`;
  }
  request += 'Connection: close\r\n\r\n';

  return new Promise<RawResponse>((resolve, reject) => {
    let buf = Buffer.allocUnsafe(READ_BUFFER);
    let used = 0;
    let head: Buffer | undefined;
    let body: RawBody | undefined;
    let settled = false;
    const settle = (err: Failure | undefined, res?: RawResponse): void => {
      if (settled) return;
      settled = true;
      if (err !== undefined) {
        socket.destroy();
        reject(err);
      } else {
        resolve(res!);
      }
    };
    const onHead = (bytes: Buffer, end: number): void => {
      let parsed: ReturnType<typeof parseHead>;
      try {
        parsed = parseHead(bytes.subarray(0, end).toString('latin1'));
      } catch (err) {
        settle(err as Failure);
        return;
      }
      const length = parsed.headers['content-length'];
      const plain = parsed.headers['transfer-encoding'] === undefined && length !== undefined && /^\d{1,15}$/.test(length) && parsed.status >= 200;
      if (!plain) {
        socket.destroy();
        settle(undefined, { ...parsed, body: undefined });
        return;
      }
      body = new RawBody(socket, Number(length));
      body.push(bytes.subarray(end + 4));
      settle(undefined, { ...parsed, body });
    };
    const socket = net.connect({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? 80 : Number(url.port),
      onread: {
        // each read gets fresh room in the current buffer, so chunks already handed on stay valid
        buffer: () => {
          if (READ_BUFFER - used < MIN_READ) {
            buf = Buffer.allocUnsafe(READ_BUFFER);
            used = 0;
          }
          return buf.subarray(used);
        },
        callback: (n: number, into: Uint8Array) => {
          const chunk = (into as Buffer).subarray(0, n);
          used += n;
          if (body !== undefined) {
            body.push(chunk);
            return true;
          }
          // the headers: small, so gathered by copying until the blank line
          head = head === undefined ? Buffer.from(chunk) : Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end >= 0) onHead(head, end);
          else if (head.length > MAX_HEAD) settle(failure(`response headers longer than ${MAX_HEAD} bytes`, 'HPE_HEADER_OVERFLOW'));
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.setTimeout(opts.timeoutMs, () => {
      const err = failure(`no answer for ${Math.round(opts.timeoutMs / 1000)} s`, 'ETIMEDOUT');
      body?.fail(err);
      socket.destroy(err);
    });
    socket.on('error', (err: Failure) => {
      body?.fail(err);
      settle(err);
    });
    socket.on('close', () => {
      opts.signal?.removeEventListener('abort', onAbort);
      body?.fail(undefined);
      settle(failure('connection closed before the response headers', 'ECONNRESET'));
    });
    const onAbort = (): void => {
      const err = failure('request aborted', 'ABORT_ERR');
      err.name = 'AbortError';
      body?.fail(err);
      socket.destroy(err);
    };
    if (opts.signal?.aborted) {
      onAbort();
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    socket.write(request, 'latin1');
  });
}
