/** Fetches from the explorer's API (same origin, with its header); errors carry the server's message. */
import { API_HEADER, FILE_HEADERS, type ApiError } from '../../api.js';

export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly size?: number) {
    super(message);
  }
}

export type Query = Record<string, string | number | undefined>;

export function url(route: string, q: Query = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
  const s = p.toString();
  return `/api/${route}${s ? `?${s}` : ''}`;
}

async function failure(res: Response): Promise<ApiFailure> {
  try {
    const body = (await res.json()) as ApiError;
    return new ApiFailure(res.status, body.error.code, body.error.message, body.error.size);
  } catch {
    return new ApiFailure(res.status, 'HTTP', `${res.status} ${res.statusText}`);
  }
}

export async function getJson<T>(route: string, q: Query = {}, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url(route, q), { headers: { [API_HEADER]: '1' }, ...(signal ? { signal } : {}) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface FileBytes {
  readonly path: string;
  readonly size: number;
  readonly layer: number;
  readonly truncated: boolean;
  readonly bytes: Uint8Array;
}

export async function getFile(q: Query, signal?: AbortSignal): Promise<FileBytes> {
  const res = await fetch(url('file', q), { headers: { [API_HEADER]: '1' }, ...(signal ? { signal } : {}) });
  if (!res.ok) throw await failure(res);
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    path: decodeURIComponent(res.headers.get(FILE_HEADERS.path) ?? ''),
    size: Number(res.headers.get(FILE_HEADERS.size) ?? bytes.length),
    layer: Number(res.headers.get(FILE_HEADERS.layer) ?? -1),
    truncated: res.headers.get(FILE_HEADERS.truncated) === '1',
    bytes,
  };
}
