/** The filesystem commands: layers, ls, cat, export, unpack, diff. */
import type { Command } from 'commander';
import {
  diffImages, exportFlattened, exportFlattenedToFile, layersOf, listFiles, readFile, shortDigest, unpack,
  type DiffEntry, type FileInfo,
} from '../api.js';
import { humanSize, parseFormat, table, UsageError, writeJson, type Io } from '../output.js';
import { platformOption, type CommandContext } from './read.js';

const FORMAT_HELP = 'output format: text or json';
const PLATFORM_HELP = 'os/arch[/variant] to pick from a multi-platform index (default: this host)';

/** Copies a stream to stdout with backpressure; a reader that goes away (EPIPE) just ends it. */
async function writeStream(io: Io, stream: AsyncIterable<Uint8Array>): Promise<void> {
  let closed = false;
  const onError = (err: NodeJS.ErrnoException): void => {
    if (err.code !== 'EPIPE') throw err;
    closed = true;
  };
  io.stdout.on('error', onError);
  try {
    for await (const chunk of stream) {
      if (closed) break;
      if (!io.stdout.write(chunk)) await new Promise((r) => { io.stdout.once('drain', r); io.stdout.once('close', r); });
    }
  } finally {
    io.stdout.off('error', onError);
  }
}

function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(value.trim());
  if (m === null) throw new UsageError(`${flag} must be a whole number (optionally with K, M, G or T), got "${value}"`);
  const unit = (m[2] ?? '').charAt(0).toUpperCase();
  const mult = unit === '' ? 1 : 1024 ** ('KMGT'.indexOf(unit) + 1);
  return Number(m[1]) * mult;
}

/** `drwxr-xr-x`, with s/S/t/T for setuid, setgid and sticky, as ls -l. */
export function modeString(type: FileInfo['type'], mode: number): string {
  const t = { file: '-', directory: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p' }[type] ?? '?';
  const bit = (b: number, c: string): string => (mode & b ? c : '-');
  const special = (x: number, s: number, c: string): string => {
    const has = (mode & x) !== 0;
    if (mode & s) return has ? c : c.toUpperCase();
    return has ? 'x' : '-';
  };
  return t + bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's') + bit(0o40, 'r') + bit(0o20, 'w') + special(0o10, 0o2000, 's')
    + bit(0o4, 'r') + bit(0o2, 'w') + special(0o1, 0o1000, 't');
}

function describeChange(e: DiffEntry): string {
  return (e.changes ?? []).join(', ');
}

export function registerLayerCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;

  program
    .command('layers')
    .description('list the layers of an image with what each does to the filesystem: files added, modified, deleted, bytes wasted')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string; platform?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const r = await layersOf(ref, platform ? { platform } : {});
      if (format === 'json') return writeJson(io, r);
      const rows = [['#', 'DIGEST', 'SIZE', 'DIFF_ID', 'UNCOMPRESSED', 'ADDED', 'MODIFIED', 'DELETED', 'WASTED', 'CREATED BY']];
      for (const l of r.layers) {
        rows.push([
          String(l.index), shortDigest(l.digest), humanSize(l.size), shortDigest(l.diffId), humanSize(l.uncompressedSize),
          String(l.filesAdded), String(l.filesModified), String(l.filesDeleted), humanSize(l.wastedBytes),
          (l.history?.createdBy ?? l.history?.comment ?? '').replace(/\s+/g, ' ').slice(0, 80),
        ]);
      }
      io.stdout.write(table(rows));
      io.stdout.write(`\n${r.layers.length} layers, ${humanSize(r.totals.size)} compressed, ${humanSize(r.totals.uncompressedSize)} uncompressed, ${r.totals.files} paths, ${humanSize(r.totals.wastedBytes)} wasted\n`);
    }));

  program
    .command('ls')
    .description('list files of the image filesystem (the union of its layers)')
    .argument('<ref>', 'image reference')
    .argument('[path]', 'directory or file inside the image', '/')
    .option('--layer <n>', 'the filesystem as of layer N (layers 0..N applied)')
    .option('-l, --long', 'type, mode, owner, size, layer and link target')
    .option('-R, --recursive', 'the whole subtree')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, path: string, o: { format: string; platform?: string; layer?: string; long?: boolean; recursive?: boolean }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      let layer: number | undefined;
      if (o.layer !== undefined) {
        if (!/^\d+$/.test(o.layer)) throw new UsageError(`--layer must be a layer index (0, 1, …), got "${o.layer}"`);
        layer = Number(o.layer);
      }
      const r = await listFiles(ref, { path, ...(platform ? { platform } : {}), ...(layer !== undefined ? { layer } : {}), recursive: o.recursive === true });
      if (format === 'json') return writeJson(io, r);
      if (o.long !== true) {
        io.stdout.write(r.entries.map((e) => `${e.path}\n`).join(''));
        return;
      }
      const rows = r.entries.map((e) => [
        modeString(e.type, e.mode), `${e.uid}/${e.gid}`, e.device ? `${e.device.major},${e.device.minor}` : String(e.size), `L${e.layer}`,
        e.path + (e.linkTarget !== undefined ? ` -> ${e.linkTarget}` : '') + (e.links !== undefined ? `  (${e.links} links)` : ''),
      ]);
      io.stdout.write(rows.length > 0 ? table(rows) : '');
    }));

  program
    .command('cat')
    .description('write one file of the image to stdout (symlinks are followed inside the image only)')
    .argument('<ref>', 'image reference')
    .argument('<path>', 'file inside the image')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .action((ref: string, path: string, o: { platform?: string }) => ctx.run(async () => {
      const platform = platformOption(o.platform);
      const r = await readFile(ref, path, platform ? { platform } : {});
      await writeStream(io, r.stream);
    }));

  program
    .command('export')
    .description('write the flattened filesystem of an image as one tar (whiteouts resolved), like docker export')
    .argument('<ref>', 'image reference')
    .requiredOption('-o, --output <file>', 'tar file to write (through a temp file and a rename), or - for stdout')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', `${FORMAT_HELP} (of the summary; not with -o -)`, 'text')
    .action((ref: string, o: { output: string; platform?: string; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const opts = platform ? { platform } : {};
      if (o.output === '-') {
        if (io.stdout.isTTY === true) throw new UsageError('refusing to write a tar to a terminal; redirect stdout or use -o FILE');
        if (format === 'json') throw new UsageError('--format json needs -o FILE (stdout carries the tar)');
        await writeStream(io, exportFlattened(ref, opts));
        return;
      }
      const bytes = await exportFlattenedToFile(ref, o.output, opts);
      if (format === 'json') return writeJson(io, { reference: ref, output: o.output, bytes });
      io.stdout.write(`wrote ${o.output} (${humanSize(bytes)})\n`);
    }));

  program
    .command('unpack')
    .description('unpack the filesystem of an image into a directory; nothing outside it is created, changed or followed')
    .argument('<ref>', 'image reference')
    .argument('<dir>', 'directory to unpack into (created when missing; must be empty unless --force)')
    .option('--force', 'unpack into a directory that is not empty')
    .option('--max-bytes <n>', 'stop after this many uncompressed layer bytes (default 64G)')
    .option('--max-entries <n>', 'stop after this many tar entries (default 4000000)')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, dir: string, o: { force?: boolean; maxBytes?: string; maxEntries?: string; platform?: string; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const maxBytes = parseCount('--max-bytes', o.maxBytes);
      const maxEntries = parseCount('--max-entries', o.maxEntries);
      const r = await unpack(ref, dir, {
        ...(platform ? { platform } : {}), force: o.force === true,
        limits: { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(maxEntries !== undefined ? { maxEntries } : {}) },
        ...(format === 'text' ? { onWarning: (m: string) => io.stderr.write(`warning: ${m}\n`) } : {}),
      });
      if (format === 'json') return writeJson(io, r);
      io.stdout.write(`unpacked ${r.layers} layers (${r.entries} entries, ${humanSize(r.bytes)}) into ${dir}\n`);
    }));

  program
    .command('diff')
    .description('compare the filesystems of two images: added, removed and modified paths (contents by sha256)')
    .argument('<ref-a>', 'the image before')
    .argument('<ref-b>', 'the image after')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((a: string, b: string, o: { platform?: string; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const r = await diffImages(a, b, platform ? { platform } : {});
      if (format === 'json') return writeJson(io, r);
      const lines: string[] = [];
      for (const e of r.added) lines.push(`A  ${e.path}${e.after?.linkTarget !== undefined ? ` -> ${e.after.linkTarget}` : ''}`);
      for (const e of r.removed) lines.push(`D  ${e.path}`);
      for (const e of r.modified) lines.push(`M  ${e.path}  (${describeChange(e)})`);
      lines.sort((x, y) => (x.slice(3) < y.slice(3) ? -1 : x.slice(3) > y.slice(3) ? 1 : 0));
      io.stdout.write(lines.map((l) => `${l}\n`).join(''));
      const s = r.summary;
      io.stdout.write(`\n${s.added} added (${humanSize(s.bytesAdded)}), ${s.removed} removed (${humanSize(s.bytesRemoved)}), ${s.modified} modified, ${s.unchanged} unchanged\n`);
    }));
}
