/**
 * Containers of the local store (a Docker data root, `--root`), read offline: `berth containers`,
 * `berth container diff|export|layer ID`.
 */
import type { Command } from 'commander';
import {
  commitContainer, containerDiff, containerLayerToFile, createContainer, exportContainerToFile, listContainers, mountContainer, removeContainer, unmountContainer,
  type ContainersResult, type DiffMode,
} from '../api.js';
import { humanSize, parseFormat, table, UsageError, writeJson, type Io } from '../output.js';
import type { CommandContext } from './read.js';

const FORMAT_HELP = 'output format: text or json';

function ago(iso: string | undefined, now: number): string {
  const t = iso === undefined ? NaN : Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.trunc((now - t) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.trunc(s / 60)} minutes ago`;
  if (s < 48 * 3600) return `${Math.trunc(s / 3600)} hours ago`;
  return `${Math.trunc(s / 86400)} days ago`;
}

export function renderContainers(r: ContainersResult, now: number, opts: { noTrunc?: boolean } = {}): string {
  const rows = [['CONTAINER ID', 'IMAGE', 'CREATED', 'STATUS', 'SIZE', 'NAME']];
  for (const c of r.containers) {
    rows.push([
      opts.noTrunc === true ? c.id : c.id.slice(0, 12),
      c.image ?? (c.imageId !== undefined ? c.imageId.slice(7, 19) : '<unknown>'),
      ago(c.created, now),
      c.running === true ? 'running' : c.running === false ? 'stopped' : 'unknown',
      c.size === undefined ? '-' : humanSize(c.size),
      c.name ?? '',
    ]);
  }
  return table(rows);
}

function diffMode(v: string | undefined): DiffMode | undefined {
  if (v === undefined) return undefined;
  if (v === 'naive' || v === 'overlay') return v;
  throw new UsageError(`--mode must be naive or overlay, got "${v}"`);
}

export function registerContainerCommands(program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  const root = (): { root?: string } => {
    const r = (program.opts() as { root?: string }).root;
    return r === undefined ? {} : { root: r };
  };

  program
    .command('containers')
    .description('list the containers of the local store (a Docker data root, read offline): ID, image, created, size of the writable layer, name')
    .option('--no-trunc', 'show full container IDs')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((o: { format: string; trunc?: boolean }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await listContainers(root());
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderContainers(result, Date.now(), { noTrunc: o.trunc === false }));
      for (const c of result.containers) for (const p of c.problems) io.stderr.write(`note: ${c.id.slice(0, 12)}: ${p}\n`);
    }));

  const container = program.command('container').description('containers of the local store, offline: diff, export, layer, commit, create, mount, unmount, rm');

  container
    .command('diff')
    .description('what a container changed, as `docker diff` prints it (A added, C changed, D deleted)')
    .argument('<container>', 'container ID, ID prefix or name')
    .option('--mode <mode>', 'naive (default: dockerd\'s tree comparison, what dockerd 20.10 prints) or overlay (moby\'s upper-dir walk, OverlayChanges)')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((id: string, o: { format: string; mode?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const mode = diffMode(o.mode);
      const result = await containerDiff(id, { ...root(), ...(mode !== undefined ? { mode } : {}) });
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(result.changes.map((c) => `${c.kind} ${c.path}\n`).join(''));
    }));

  container
    .command('export')
    .description('write the merged file system of a container as a tar, as `docker export` does')
    .argument('<container>', 'container ID, ID prefix or name')
    .requiredOption('-o, --output <file>', 'tar file to write (through a temp file and a rename)')
    .option('--format <format>', `${FORMAT_HELP} (of the summary)`, 'text')
    .action((id: string, o: { output: string; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const bytes = await exportContainerToFile(id, o.output, root());
      if (format === 'json') return writeJson(io, { container: id, output: o.output, bytes });
      io.stdout.write(`wrote ${o.output} (${humanSize(bytes)})\n`);
    }));

  container
    .command('layer')
    .description('write only the writable layer of a container as an OCI layer tar (overlay whiteouts as .wh. entries, opaque directories as .wh..wh..opq)')
    .argument('<container>', 'container ID, ID prefix or name')
    .requiredOption('-o, --output <file>', 'layer file to write')
    .option('--compression <c>', 'none (default), gzip or zstd')
    .option('--format <format>', `${FORMAT_HELP} (of the summary)`, 'text')
    .action((id: string, o: { output: string; format: string; compression?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const c = o.compression ?? 'none';
      if (c !== 'none' && c !== 'gzip' && c !== 'zstd') throw new UsageError(`--compression must be none, gzip or zstd, got "${c}"`);
      const result = await containerLayerToFile(id, o.output, { ...root(), compression: c });
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(`wrote ${o.output}: ${result.entries} entries, ${humanSize(result.size)}, diff_id ${result.diffId}\n`);
    }));

  registerContainerCommitCommand(container, program, ctx);
  registerContainerWorkCommands(container, program, ctx);
}

/** create, mount, unmount, rm: working containers in the data root, offline (writes need a root berth created, or --allow-write). */
export function registerContainerWorkCommands(container: Command, program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  const root = (): { root?: string } => {
    const r = (program.opts() as { root?: string }).root;
    return r === undefined ? {} : { root: r };
  };

  container
    .command('create')
    .description('create a container from an image of the store, as `docker create` lays it out (init layer, writable layer, config.v2.json, hostconfig.json), without a daemon; prints its ID')
    .argument('<image>', 'image name, ID or ID prefix in the store')
    .argument('[command...]', 'command and arguments replacing the image\'s Cmd (put -- before a command that has options)')
    .option('--name <name>', 'container name (default: generated)')
    .option('--network <mode>', 'network mode dockerd uses when it starts the container: default, none, host, bridge or a network name', 'default')
    .option('--json', 'print the result as JSON')
    .action((image: string, command: string[], o: { name?: string; network: string; json?: boolean }) => ctx.run(async () => {
      const result = await createContainer(image, { ...root(), network: o.network, ...(o.name !== undefined ? { name: o.name } : {}), ...(command.length > 0 ? { command } : {}) });
      if (o.json === true) return writeJson(io, result);
      io.stdout.write(`${result.id}\n`);
    }));

  container
    .command('mount')
    .description('mount a container\'s file system at DIR (an empty or new directory): an overlay mount (overlay2) or bind mount (vfs) as root, else a copy whose changes `container unmount` folds back')
    .argument('<container>', 'container ID, ID prefix or name')
    .argument('<dir>', 'mount point: an empty directory, created when missing')
    .option('--copy', 'make a materialised copy even where a kernel mount is possible')
    .option('--json', 'print the result as JSON')
    .action((id: string, dir: string, o: { copy?: boolean; json?: boolean }) => ctx.run(async () => {
      const result = await mountContainer(id, dir, { ...root(), ...(o.copy === true ? { copy: true } : {}) });
      if (o.json === true) return writeJson(io, result);
      for (const n of result.notes) io.stderr.write(`note: ${n}\n`);
      io.stdout.write(`${result.dir}\n`);
    }));

  container
    .command('unmount')
    .alias('umount')
    .description('undo `container mount`: unmount, or fold the copy\'s changes into the writable layer (deletions as whiteouts, replaced directories opaque) and empty it')
    .argument('<container>', 'container ID, ID prefix or name')
    .option('--discard', 'a copy: drop its changes')
    .option('--json', 'print the result as JSON')
    .action((id: string, o: { discard?: boolean; json?: boolean }) => ctx.run(async () => {
      const result = await unmountContainer(id, { ...root(), ...(o.discard === true ? { discard: true } : {}) });
      if (o.json === true) return writeJson(io, result);
      const f = result.folded;
      io.stdout.write(f === undefined
        ? `unmounted ${result.dir}\n`
        : `folded ${f.added} added, ${f.changed} changed, ${f.deleted} deleted (${f.whiteouts} whiteouts, ${f.opaque} opaque directories) from ${result.dir}\n`);
    }));

  container
    .command('rm')
    .description('remove containers (their init and writable layers, mount record and containers/<id>); their images stay')
    .argument('<container...>', 'container IDs, ID prefixes or names')
    .option('-f, --force', 'also remove a mounted container (unmounting it; a copy\'s changes are dropped) or one marked running')
    .option('--json', 'print the result as JSON')
    .action((ids: string[], o: { force?: boolean; json?: boolean }) => ctx.run(async () => {
      const results = [];
      for (const id of ids) {
        results.push(await removeContainer(id, { ...root(), ...(o.force === true ? { force: true } : {}) }));
        if (o.json !== true) io.stdout.write(`${id}\n`);
      }
      if (o.json === true) return writeJson(io, results);
    }));
}

export function registerContainerCommitCommand(container: Command, program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  container
    .command('commit')
    .description('make an image from a stopped container, as `docker commit` does, offline: its writable layer on top of its image, into the same store (NAME[:TAG]) or any transport reference')
    .argument('<container>', 'container ID, ID prefix or name')
    .argument('<target>', 'NAME[:TAG] in the same store, or oci:…, oci-archive:…, docker-archive:…, docker://…, store:[ROOT]NAME')
    .option('-m, --message <text>', 'commit message (history comment)')
    .option('-a, --author <text>', 'author')
    .option('-c, --change <instruction>', 'a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)', (v: string, p: string[] | undefined) => [...(p ?? []), v])
    .option('--source-date-epoch <seconds>', 'date of the history entries and config (default now)')
    .option('--json', 'print the result as JSON')
    .action((id: string, target: string, o: { message?: string; author?: string; change?: string[]; sourceDateEpoch?: string; json?: boolean }) => ctx.run(async () => {
      if (o.sourceDateEpoch !== undefined && !/^\d+$/.test(o.sourceDateEpoch)) throw new UsageError(`--source-date-epoch must be whole seconds since 1970, got "${o.sourceDateEpoch}"`);
      const r = (program.opts() as { root?: string }).root;
      const result = await commitContainer(id, target, {
        ...(r !== undefined ? { root: r } : {}),
        ...(o.message !== undefined ? { message: o.message } : {}),
        ...(o.author !== undefined ? { author: o.author } : {}),
        ...(o.change !== undefined ? { changes: o.change } : {}),
        ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: Number(o.sourceDateEpoch) } : {}),
      });
      if (o.json === true) return writeJson(io, result);
      io.stdout.write(`${result.config ?? result.manifest}\n`);
    }));
}
