/** `berth copy SRC... DST`: copy images between layouts and archives, converting on the way. */
import type { Command } from 'commander';
import {
  copyReferences, parsePlatform, shortDigest, type CopyEvent, type CopyReferenceOptions, type Descriptor, type Platform,
} from '../api.js';
import { humanSize, UsageError, type Io } from '../output.js';
import type { CommandContext } from './read.js';

interface CopyFlags {
  platform?: string[];
  allPlatforms?: boolean;
  compression?: string;
  format?: string;
  name?: string[];
  attestations: string;
  overwrite?: boolean;
  concurrency: string;
  quiet?: boolean;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Turns the flags into library options; every contradiction is a usage error before anything is opened. */
export function copyOptions(flags: CopyFlags, destination: string): CopyReferenceOptions {
  if (flags.platform !== undefined && flags.allPlatforms === true) throw new UsageError('--platform and --all-platforms contradict each other');
  const platforms: 'all' | Platform[] = flags.platform === undefined ? 'all' : flags.platform.map((p) => parsePlatform(p));
  const compression = flags.compression;
  if (compression !== undefined && compression !== 'gzip' && compression !== 'zstd' && compression !== 'none') {
    throw new UsageError(`--compression must be gzip, zstd or none, got "${compression}"`);
  }
  const format = flags.format;
  if (format !== undefined && format !== 'oci' && format !== 'docker' && format !== 'docker-legacy') {
    throw new UsageError(`--format must be oci, docker or docker-legacy, got "${format}"`);
  }
  if (format === 'docker-legacy' && !destination.startsWith('docker-archive:')) {
    throw new UsageError('--format docker-legacy writes the legacy docker-archive layout; the destination must be docker-archive:FILE');
  }
  if (flags.attestations !== 'keep' && flags.attestations !== 'drop') throw new UsageError(`--attestations must be keep or drop, got "${flags.attestations}"`);
  const concurrency = Number(flags.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError(`--concurrency must be an integer from 1 to 64, got "${flags.concurrency}"`);
  return {
    platforms,
    ...(compression !== undefined ? { compression } : {}),
    ...(format === 'oci' || format === 'docker' ? { format } : {}),
    ...(format === 'docker-legacy' ? { archiveLayout: 'legacy' as const } : {}),
    ...(flags.name !== undefined ? { names: flags.name } : {}),
    attestations: flags.attestations,
    overwrite: flags.overwrite === true,
    concurrency,
  };
}

/** Per-blob and total progress on a terminal: bytes and rate, redrawn at most ten times a second. */
export function progressDisplay(io: Io, enabled: boolean): { onEvent(e: CopyEvent): void; done(): void } {
  if (!enabled || io.stderr.isTTY !== true) return { onEvent() {}, done() {} };
  const active = new Map<string, { desc: Descriptor; bytes: number; start: number }>();
  let total = 0;
  let blobs = 0;
  let skipped = 0;
  let drawn = 0;
  let last = 0;
  const start = Date.now();
  const rate = (bytes: number, since: number): string => `${humanSize(bytes / Math.max((Date.now() - since) / 1000, 0.001))}/s`;
  const draw = (force: boolean): void => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    const lines = [...active.values()].map((b) => `  ${shortDigest(b.desc.digest)}  ${humanSize(b.bytes)} / ${humanSize(b.desc.size)}  ${rate(b.bytes, b.start)}`);
    lines.push(`total: ${humanSize(total)}, ${blobs} blob(s) copied, ${skipped} skipped  ${rate(total, start)}`);
    let out = drawn > 0 ? `\x1b[${drawn}F` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    for (let i = lines.length; i < drawn; i++) out += '\x1b[2K\n';
    if (drawn > lines.length) out += `\x1b[${drawn - lines.length}F`;
    drawn = lines.length;
    io.stderr.write(out);
  };
  return {
    onEvent(e) {
      switch (e.type) {
        case 'blob-start':
          active.set(e.desc.digest, { desc: e.desc, bytes: 0, start: Date.now() });
          break;
        case 'blob-progress': {
          const b = active.get(e.desc.digest);
          if (b !== undefined) {
            total += e.bytes - b.bytes;
            b.bytes = e.bytes;
          }
          break;
        }
        case 'blob-done':
          active.delete(e.desc.digest);
          blobs++;
          break;
        case 'blob-skip':
          skipped++;
          break;
        default:
          return;
      }
      draw(false);
    },
    done() {
      if (drawn > 0) {
        draw(true);
      }
    },
  };
}

export function registerCopyCommand(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('copy')
    .description('copy images between OCI layouts, oci-archives and docker-archives; select platforms, recompress layers, convert OCI ↔ Docker formats')
    .argument('<refs...>', 'SRC... DST: sources (any readable reference) and a destination (oci:DIR[:NAME], oci-archive:FILE[:NAME], docker-archive:FILE[:NAME:TAG])')
    .option('--platform <os/arch[/variant]>', 'copy only this platform of an index (repeatable)', collect)
    .option('--all-platforms', 'copy every platform of an index (the default)')
    .option('--compression <gzip|zstd|none>', 'recompress image layers (diff_ids stay, compressed digests change)')
    .option('--format <oci|docker|docker-legacy>', 'manifest format at the destination; docker-legacy: the pre-Docker-25 docker-archive layout')
    .option('--name <NAME:TAG>', 'name at the destination: ref.name in a layout, RepoTags in a docker-archive (repeatable)', collect)
    .option('--attestations <keep|drop>', 'attestation manifests of the copied images', 'keep')
    .option('--overwrite', 'replace an existing archive, or an existing name in a layout')
    .option('--concurrency <n>', 'blobs copied at once', '3')
    .option('-q, --quiet', 'print nothing but errors')
    .action((refs: string[], flags: CopyFlags) => ctx.run(async () => {
      if (refs.length < 2) throw new UsageError('copy needs a source and a destination: berth copy SRC... DST');
      const destination = refs[refs.length - 1]!;
      const sources = refs.slice(0, -1);
      const opts = copyOptions(flags, destination);
      const display = progressDisplay(io, flags.quiet !== true);
      const abort = new AbortController();
      let signalled: NodeJS.Signals | undefined;
      const onSignal = (sig: NodeJS.Signals): void => {
        signalled = sig;
        abort.abort(new Error(`interrupted by ${sig}`));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await copyReferences(sources, destination, {
          ...opts,
          signal: abort.signal,
          onEvent: (e) => {
            display.onEvent(e);
            if (e.type === 'note' && flags.quiet !== true) io.stderr.write(`note: ${e.message}\n`);
          },
        });
        display.done();
        if (flags.quiet === true) return;
        for (const img of result.images) {
          const names = img.names.length > 0 ? ` as ${img.names.join(', ')}` : '';
          io.stdout.write(`copied ${img.sourceReference} to ${result.destination}${names}: ${img.root.digest}\n`);
        }
        io.stdout.write(`${result.copied} blob(s) copied (${humanSize(result.bytes)} read), ${result.skipped} already there\n`);
      } catch (err) {
        display.done();
        if (signalled !== undefined) {
          io.stderr.write(`berth: copy interrupted by ${signalled}; the destination is unchanged\n`);
          return signalled === 'SIGINT' ? 130 : 143;
        }
        throw err;
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    }));
}
