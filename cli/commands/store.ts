/**
 * The local store commands: images, history, trace, save, and the write side: load, tag, rmi,
 * store fsck, store gc; and the global `--root DIR` that every command's `store:NAME` and bare
 * `NAME[:TAG]` references use, with `--allow-write` for roots berth did not create.
 */
import type { Command } from 'commander';
import {
  configureStore, configureStoreWrites, fsckStore, gcStore, listStoreImages, loadImages, parsePlatform, removeStoreImages, saveStoreImages, storeHistory,
  tagStoreImage, traceStore,
  type FsckResult, type GcResult, type LoadResult, type RemoveResult, type StoreHistoryResult, type StoreImagesResult, type TraceResult,
} from '../api.js';
import { parseFormat, table, UsageError, writeJson, type Io } from '../output.js';
import type { CommandContext } from './read.js';

const FORMAT_HELP = 'output format: text or json';

/** Go's `%.*g` for the sizes docker prints (`precision` significant digits, no trailing zeros). */
function goG(v: number, precision: number): string {
  if (v === 0) return '0';
  const rounded = Number(v.toPrecision(precision));
  const e = Math.floor(Math.log10(Math.abs(rounded)));
  const trim = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (e < -4 || e >= precision) {
    const [m, x] = rounded.toExponential(precision - 1).split('e') as [string, string];
    const n = Number(x);
    return `${trim(m)}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return trim(rounded.toFixed(Math.max(0, precision - 1 - e)));
}

/** docker's units.HumanSizeWithPrecision(size, 3): decimal units, `1.98MB`, `27B`. */
export function dockerSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${goG(v, 3)}${units[i]}`;
}

/** docker's units.HumanDuration, for `CREATED` (`3 weeks`, `About an hour`). */
export function dockerDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

function created(iso: string | undefined, now: number): string {
  const t = iso === undefined ? NaN : Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  return `${dockerDuration(now - t)} ago`;
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** docker's formatter.Ellipsis: at most `max` characters, the last one `…`. */
function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

export function renderImages(r: StoreImagesResult, now: number, opts: { noTrunc?: boolean } = {}): string {
  const rows = [['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']];
  for (const img of r.images) {
    const id = opts.noTrunc === true ? img.id : short(img.id);
    const when = created(img.created, now);
    const size = dockerSize(img.size);
    if (img.dangling) {
      rows.push(['<none>', '<none>', id, when, size]);
      continue;
    }
    // One row per repository:tag; a repository known only by digest shows tag <none>.
    const tagged = new Set<string>();
    for (const t of img.repoTags) {
      const colon = t.lastIndexOf(':');
      rows.push([t.slice(0, colon), t.slice(colon + 1), id, when, size]);
      tagged.add(t.slice(0, colon));
    }
    for (const d of img.repoDigests) {
      const repo = d.slice(0, d.indexOf('@'));
      if (tagged.has(repo)) continue;
      tagged.add(repo);
      rows.push([repo, '<none>', id, when, size]);
    }
  }
  return table(rows);
}

export function renderHistory(r: StoreHistoryResult, now: number, opts: { noTrunc?: boolean } = {}): string {
  const rows = [['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT']];
  for (const e of r.entries) {
    const by = e.createdBy.replace(/\t/g, ' ');
    rows.push([
      e.id === undefined ? '<missing>' : opts.noTrunc === true ? e.id : short(e.id),
      created(e.created, now),
      opts.noTrunc === true ? by : ellipsis(by, 45),
      dockerSize(e.size),
      e.comment,
    ]);
  }
  return table(rows);
}

const ACTION_TEXT: Record<string, string> = {
  adds: 'adds',
  overrides: 'overrides (replaces the lower layer\'s entry)',
  deletes: 'deletes it (whiteout)',
  'deletes-parent': 'deletes a parent directory (whiteout)',
  'opaque-parent': 'makes a parent directory opaque (hides everything lower layers had in it)',
  'replaces-parent': 'replaces a parent directory with a non-directory',
  opaque: 'makes it opaque (its lower-layer contents are hidden)',
};

function describeDisk(disk: { kind: string; mode?: number; size?: number; nlink?: number; target?: string }): string {
  switch (disk.kind) {
    case 'absent':
      return 'not on disk';
    case 'whiteout':
      return 'char device 0/0 (overlay whiteout)';
    case 'symlink':
      return `symlink -> ${disk.target ?? '?'}`;
    case 'file':
      return `file, mode ${(disk.mode ?? 0).toString(8).padStart(4, '0')}, ${disk.size} bytes${(disk.nlink ?? 1) > 1 ? `, ${disk.nlink} links` : ''}`;
    case 'directory':
      return `directory, mode ${(disk.mode ?? 0).toString(8).padStart(4, '0')}`;
    default:
      return disk.kind;
  }
}

export function renderTrace(r: TraceResult): string {
  const out: string[] = [];
  const say = (s: string) => out.push(s);
  say(`store ${r.root} (storage driver ${r.driver})`);
  say(`name ${JSON.stringify(r.name)}`);
  if (r.resolution.via === 'repositories.json') {
    say(`  → ${r.resolution.file}`);
    say(`      Repositories[${JSON.stringify(r.resolution.repository)}][${JSON.stringify(r.resolution.reference)}] = ${r.resolution.id}`);
  } else {
    say(`  → an image ID: ${r.resolution.id}`);
  }
  const img = r.image;
  say(`image ${img.id}`);
  say(`  → ${img.config}  (${img.configSize} bytes, sha256 = the image ID)`);
  if (img.tags.length + img.digests.length > 0) say(`      names: ${[...img.tags, ...img.digests].join(', ')}`);
  if (img.parent) say(`      metadata parent = ${img.parent}`);
  if (img.lastUpdated) say(`      metadata lastUpdated = ${img.lastUpdated}`);
  say(`  rootfs.diff_ids: ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'}`);
  for (const l of r.layers) {
    say(`layer ${l.index}  diff_id ${l.diffId}`);
    say(`  chainID ${l.chainId}  ${l.chainRule}`);
    say(`  → ${l.layerdb}/${l.exists ? '' : '  (MISSING)'}`);
    if (l.exists) {
      say(`      diff     = ${l.diff ?? '(none)'}${l.diffMatches ? '' : '  (DIFFERS from the config)'}`);
      say(`      size     = ${l.size === undefined ? '(none)' : JSON.stringify(l.size).slice(1, -1)}`);
      say(`      cache-id = ${l.cacheId ?? '(none)'}`);
      say(`      parent   = ${l.parent ?? '(none: base layer)'}`);
      say(`      tar-split.json.gz: ${l.tarSplit === undefined ? 'MISSING (the tar cannot be rebuilt)' : `${l.members} members, rebuilds a ${l.tarSize} byte tar`}`);
    }
    if (l.files !== undefined) {
      say(`  → ${l.files}/  (${l.filesExist ? 'exists' : 'MISSING'})`);
      if (l.overlay) {
        const o = l.overlay;
        if (o.link) say(`      link = ${o.link}  (overlay2/l/${o.link} -> ${o.linkTarget ?? 'MISSING'})`);
        if (o.lower.length > 0) say(`      lower = ${o.lower.join(':')}`);
        say(`      committed: ${o.committed ? 'yes' : 'no'}`);
      }
    }
    for (const p of l.problems) say(`  problem: ${p}`);
  }
  if (r.path !== undefined) {
    const p = r.path;
    say(`path /${p.path}`);
    if (p.events.length === 0) say('  no layer has it');
    for (const e of p.events) {
      const link = e.linkname ? ` -> ${e.linkname}` : '';
      say(`  layer ${e.layer}: ${ACTION_TEXT[e.action] ?? e.action}: ${e.member} (${e.type}${e.size > 0 ? `, ${e.size} bytes` : ''}${link})`);
      if (e.onDisk !== undefined) {
        const opaqueNote = e.action === 'opaque' || e.action === 'opaque-parent' ? (r.driver === 'overlay2' ? '; overlay2 marks it with xattr trusted.overlay.opaque=y, readable only by root, so berth reads the marker from tar-split' : '') : '';
        say(`      on disk: ${e.onDisk}  (${e.disk ? describeDisk(e.disk) : '?'}${opaqueNote})`);
      } else if (e.action === 'deletes' || e.action === 'deletes-parent') {
        say(`      on disk: nothing (vfs applies deletions to its full copy)`);
      }
    }
    if (p.visibleFrom !== undefined) {
      say(`the container sees /${p.path} from layer ${p.visibleFrom}${p.mergedFrom.length > 1 ? ` (a directory merged from layers ${p.mergedFrom.join(', ')})` : ''}`);
      if (p.onDisk !== undefined) say(`  at ${r.root}/${p.onDisk}`);
    } else if (p.removedBy !== undefined) {
      say(`the container does not see /${p.path}: layer ${p.removedBy.layer} ${ACTION_TEXT[p.removedBy.action] ?? p.removedBy.action} (${p.removedBy.member})`);
    } else {
      say(`the container does not see /${p.path}: no layer has it`);
    }
  }
  for (const p of r.problems) say(`problem: ${p}`);
  return `${out.join('\n')}\n`;
}

export function registerStoreCommands(program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  program.option('--root <dir>', 'the local image store (a Docker data root) for store:NAME and bare NAME[:TAG] references (default: $BERTH_ROOT, else $XDG_DATA_HOME/berth, else ~/.local/share/berth)');
  program.option('--allow-write', 'let load, tag, rmi, gc and copy to store: change a data root berth did not create (never one a running dockerd uses)');
  program.hook('preAction', async () => {
    const { root, allowWrite } = program.opts() as { root?: string; allowWrite?: boolean };
    await configureStore({ ...(root !== undefined ? { root } : {}), env: io.env });
    await configureStoreWrites({ allowWrite: allowWrite === true });
  });

  program
    .command('images')
    .description('list the images of the local store, as `docker images` does (read offline from the data root)')
    .argument('[name]', 'only this repository or repository:tag (glob patterns as docker takes them)')
    .option('-a, --all', 'also show untagged intermediate images')
    .option('--no-trunc', 'show full image IDs')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((name: string | undefined, o: { format: string; all?: boolean; trunc?: boolean }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await listStoreImages({ ...(name !== undefined ? { name } : {}), all: o.all === true });
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderImages(result, Date.now(), { noTrunc: o.trunc === false }));
      for (const n of result.notes) io.stderr.write(`note: ${n}\n`);
    }));

  program
    .command('history')
    .description('show the steps that made an image of the local store, as `docker history` does')
    .argument('<name>', 'NAME[:TAG], an image ID or ID prefix, or store:[ROOT]NAME')
    .option('--no-trunc', 'do not truncate IDs and commands')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((name: string, o: { format: string; trunc?: boolean }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await storeHistory(name);
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderHistory(result, Date.now(), { noTrunc: o.trunc === false }));
    }));

  program
    .command('trace')
    .description('walk from a name to the files on disk: repositories.json → image ID → config → diff_ids → chainIDs → layerdb → driver dirs; with PATH, which layer provides it and which layers above delete or override it')
    .argument('<name>', 'NAME[:TAG], an image ID or ID prefix, or store:[ROOT]NAME')
    .argument('[path]', 'a path inside the image, e.g. /etc/passwd')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((name: string, file: string | undefined, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await traceStore(name, file !== undefined ? { path: file } : {});
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderTrace(result));
    }));

  registerSaveCommand(program, ctx);
  registerWriteCommands(program, ctx);
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function renderLoad(r: LoadResult): string {
  const out: string[] = [];
  for (const img of r.images) {
    for (const m of img.moved) out.push(`The image ${m.name} already exists, renaming the old one with ID ${m.from} to empty string`);
    if (img.names.length === 0) out.push(`Loaded image ID: ${img.id}`);
    for (const n of img.names) out.push(`Loaded image: ${n}`);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

export function renderRemove(r: RemoveResult): string {
  const out = r.events.map((e) => `${e.action === 'untagged' ? 'Untagged' : 'Deleted'}: ${e.ref}`);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

export function renderFsck(r: FsckResult): string {
  const out = r.problems.map((p) => `${p.kind}: ${p.message}`);
  const summary = `${r.images} image${r.images === 1 ? '' : 's'}, ${r.layers} layer${r.layers === 1 ? '' : 's'} (${r.layersVerified} rebuilt and hashed)`;
  out.push(r.problems.length === 0 ? `ok: ${summary}` : `${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} in ${summary}`);
  return `${out.join('\n')}\n`;
}

export function renderGc(r: GcResult): string {
  if (r.removed.length === 0) return 'nothing to remove\n';
  const verb = r.dryRun ? 'would remove' : 'removed';
  return `${r.removed.map((x) => `${verb} ${x.kind} ${x.path}`).join('\n')}\n`;
}

export function registerWriteCommands(program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  program
    .command('load')
    .description('load images into the local store, as `docker load` does: any archive, layout or reference berth reads; layers the store has are reused')
    .argument('[ref]', 'what to load (an archive, a layout, or any reference); or use -i')
    .option('-i, --input <file>', 'read from this archive or layout')
    .option('--platform <os/arch[/variant]>', 'for a multi-platform image: which one (default: this host\'s)')
    .option('-t, --tag <NAME[:TAG]>', 'name the image so instead of the names the source carries (repeatable; one image only)', collect)
    .option('--driver <overlay2|vfs>', 'storage driver when the store is created now (default overlay2)')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--format <format>', FORMAT_HELP, 'text')
    .addHelpText('after', '\nLimits (global options, also accepted after load): --max-bytes N and --max-entries N cap the uncompressed bytes\nand tar entries of all layers of this load (default 64G and 4000000); --max-path, --max-ratio, --max-config-bytes\nand --max-manifest-bytes apply too. A load stopped by a limit leaves the store unchanged.')
    .action((ref: string | undefined, o: { input?: string; platform?: string; tag?: string[]; driver?: string; quiet?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      if ((ref === undefined) === (o.input === undefined)) throw new UsageError('load: give what to load, either as an argument or with -i FILE (not both)');
      if (o.driver !== undefined && o.driver !== 'overlay2' && o.driver !== 'vfs') throw new UsageError(`--driver must be overlay2 or vfs, got "${o.driver}"`);
      const result = await loadImages((ref ?? o.input)!, {
        ...(o.platform !== undefined ? { platform: parsePlatform(o.platform) } : {}),
        ...(o.tag !== undefined ? { tags: o.tag } : {}),
        ...(o.driver !== undefined ? { driver: o.driver as 'overlay2' | 'vfs' } : {}),
      });
      if (format === 'json') return writeJson(io, result);
      if (o.quiet !== true) io.stdout.write(renderLoad(result));
      for (const n of result.notes) io.stderr.write(`note: ${n}\n`);
    }));

  program
    .command('tag')
    .description('give an image of the local store another name, as `docker tag` does')
    .argument('<source>', 'NAME[:TAG], an image ID or ID prefix')
    .argument('<target>', 'the new NAME[:TAG] (tag latest when omitted)')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((src: string, dst: string, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await tagStoreImage(src, dst);
      if (format === 'json') return writeJson(io, result);
    }));

  program
    .command('rmi')
    .description('remove images from the local store, as `docker rmi` does: a name is untagged; an image with no name left is deleted with the layers no other image uses')
    .argument('<name...>', 'NAME[:TAG], an image ID or ID prefix')
    .option('-f, --force', 'also remove images that containers use (their layers stay), and images named in several repositories')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((names: string[], o: { force?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await removeStoreImages(names, { force: o.force === true });
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderRemove(result));
    }));

  const store = program.command('store').description('maintain the local store: fsck, gc');
  store.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  store
    .command('fsck')
    .description('check the local store: names, images, every layer rebuilt from tar-split against its diff_id, overlay2 links; orphans; one line per problem, exit 1 when any')
    .option('--no-content', 'skip rebuilding and hashing the layers')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((o: { content?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await fsckStore({ content: o.content !== false });
      if (format === 'json') writeJson(io, result);
      else io.stdout.write(renderFsck(result));
      return result.problems.length > 0 ? 1 : 0;
    }));
  store
    .command('gc')
    .description('remove what no image or container needs: unreferenced layers, orphan driver directories, dead overlay2 links, leftovers of interrupted writes')
    .option('-n, --dry-run', 'list what would be removed, remove nothing')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((o: { dryRun?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await gcStore({ dryRun: o.dryRun === true });
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderGc(result));
    }));
  for (const cmd of store.commands) cmd.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
}

export function registerSaveCommand(program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;
  program
    .command('save')
    .description('write images of the local store to an archive, as `docker save` does (layers rebuilt byte-exact from tar-split)')
    .argument('<name...>', 'NAME[:TAG] (a repository without tag: all its tags), an image ID, or @ID')
    .requiredOption('-o, --output <file>', 'the archive to write')
    .option('--format <format>', 'docker (Docker 25+ layout, default), docker-legacy (what dockerd 20.10 writes) or oci (an oci-archive)', 'docker')
    .option('--overwrite', 'replace an existing file')
    .option('--json', 'print the result as JSON')
    .action((names: string[], o: { output: string; format: string; overwrite?: boolean; json?: boolean }) => ctx.run(async () => {
      if (o.format !== 'docker' && o.format !== 'docker-legacy' && o.format !== 'oci') {
        throw new UsageError(`--format must be docker, docker-legacy or oci, got "${o.format}"`);
      }
      const result = await saveStoreImages(names, o.output, { format: o.format, overwrite: o.overwrite === true });
      if (o.json === true) return writeJson(io, result);
      for (const img of result.images) {
        io.stdout.write(`saved ${short(img.id)}${img.names.length > 0 ? ` (${img.names.join(', ')})` : ''}\n`);
      }
      io.stdout.write(`wrote ${result.file} (${result.format}, ${result.images.length} image${result.images.length === 1 ? '' : 's'})\n`);
    }));
}
