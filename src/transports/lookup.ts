/** The transport table: prefix → Transport. Only transports/all.ts registers the built-in ones. */
import type { Transport } from './transport.js';

const transports = new Map<string, Transport>();

export function registerTransport(t: Transport): void {
  transports.set(t.name, t);
}

export function findTransport(name: string): Transport | undefined {
  return transports.get(name);
}

export function transportNames(): string[] {
  return [...transports.keys()].sort();
}
