/**
 * Files as ByteStreams that open on first read. A Node read stream opens its file at once and,
 * given an abort signal, errors when it fires; a stream nobody iterates then has no error
 * listener and the error crashes the process (copy aborts leave unread layer streams behind).
 */
import { createReadStream } from 'node:fs';
import type { ByteStream } from './stream.js';

export interface FileStreamOptions {
  /** First byte (default 0). */
  readonly start?: number;
  /** Last byte, inclusive (default: the end of the file). */
  readonly end?: number;
  /** Read size (default 1 MiB). */
  readonly highWaterMark?: number;
  readonly signal?: AbortSignal;
}

export async function* fileStream(file: string, opts: FileStreamOptions = {}): ByteStream {
  const s = createReadStream(file, {
    highWaterMark: opts.highWaterMark ?? 1 << 20,
    ...(opts.start !== undefined ? { start: opts.start } : {}),
    ...(opts.end !== undefined ? { end: opts.end } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  });
  try {
    for await (const chunk of s) yield chunk as Buffer;
  } finally {
    s.destroy();
  }
}
