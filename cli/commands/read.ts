/** The read commands: tree, inspect, manifest, config, blob, platforms. */
import type { Command } from 'commander';
import {
  inspectReference, openBlobByDigest, parseDigest, parsePlatform, platformsOf, rawConfigOf, rawManifestOf, shortDigest, treeOf,
  type InspectResult, type Platform,
} from '../api.js';
import { humanSize, parseFormat, renderTree, table, UsageError, writeJson, type Io } from '../output.js';

export interface CommandContext {
  readonly io: Io;
  /** Runs an action, turning errors into exit codes. */
  run(action: () => Promise<number | void>): Promise<void>;
}

/** Parses --platform; a malformed value is a usage error (exit 2). */
export function platformOption(value: string | undefined): Platform | undefined {
  if (value === undefined) return undefined;
  try {
    return parsePlatform(value);
  } catch (err) {
    throw new UsageError(`--platform: ${(err as Error).message}`);
  }
}

const FORMAT_HELP = 'output format: text or json';
const PLATFORM_HELP = 'os/arch[/variant] to pick from a multi-platform index (default: this host)';

const FORMAT_NAMES: Record<string, string> = {
  'oci-layout': 'OCI image layout',
  'docker-archive': 'docker-archive, legacy layout',
  'docker-archive-oci': 'docker-archive that is an OCI layout too: Docker 25+ or containerd',
  'docker-store': 'local image store: a Docker data root',
  registry: 'registry',
};

export function registerReadCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;

  program
    .command('tree')
    .description('draw the structure of an image: entry point → index → manifests → config and layers, attestations under their image')
    .argument('<ref>', 'image reference (oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG|:@N], or a path)')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await treeOf(ref);
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderTree(result.tree, `${result.reference}  (${FORMAT_NAMES[result.format] ?? result.format})`));
      for (const note of result.notes) io.stdout.write(`note: ${note}\n`);
    }));

  program
    .command('inspect')
    .description('summarise one image: digests, platform, config (env, entrypoint, cmd, …), history and layers')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string; platform?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const result = await inspectReference(ref, platform ? { platform } : {});
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(renderInspect(result));
    }));

  program
    .command('manifest')
    .description('print the raw bytes of the manifest or index, exactly as stored')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch[/variant]>', 'print the manifest of this platform instead of the index')
    .option('--pretty', 'indent the JSON (the bytes shown are then not the bytes hashed)')
    .action((ref: string, o: { platform?: string; pretty?: boolean }) => ctx.run(async () => {
      const platform = platformOption(o.platform);
      const { bytes } = await rawManifestOf(ref, platform ? { platform } : {});
      writeRaw(io, bytes, o.pretty === true);
    }));

  program
    .command('config')
    .description('print the raw bytes of the image config, exactly as stored')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch[/variant]>', PLATFORM_HELP)
    .option('--pretty', 'indent the JSON')
    .action((ref: string, o: { platform?: string; pretty?: boolean }) => ctx.run(async () => {
      const platform = platformOption(o.platform);
      const { bytes } = await rawConfigOf(ref, platform ? { platform } : {});
      writeRaw(io, bytes, o.pretty === true);
    }));

  program
    .command('blob')
    .description('write one blob to stdout, verified against its digest and size as it streams')
    .argument('<ref>', 'image reference')
    .argument('<digest>', 'digest of a blob reachable from the reference')
    .action((ref: string, digest: string) => ctx.run(async () => {
      try {
        parseDigest(digest, 'DIGEST');
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const { stream } = await openBlobByDigest(ref, digest);
      for await (const chunk of stream) {
        if (!io.stdout.write(chunk)) await new Promise((r) => io.stdout.once('drain', r));
      }
    }));

  program
    .command('platforms')
    .description('list the platforms an image index offers, with their attestations')
    .argument('<ref>', 'image reference')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await platformsOf(ref);
      if (format === 'json') return writeJson(io, result);
      const rows = [['PLATFORM', 'MANIFEST', 'SIZE', 'PRESENT', 'ATTESTATIONS']];
      for (const p of result.platforms) {
        rows.push([p.platform ?? '-', shortDigest(p.digest), humanSize(p.size), p.present ? 'yes' : 'no (absent)', p.attestations.map((a) => shortDigest(a.digest) + (a.present ? '' : ' (absent)')).join(', ') || '-']);
      }
      io.stdout.write(table(rows));
    }));
}

function writeRaw(io: Io, bytes: Uint8Array, pretty: boolean): void {
  if (!pretty) {
    io.stdout.write(bytes);
    return;
  }
  io.stdout.write(`${JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2)}\n`);
}

export function renderInspect(r: InspectResult): string {
  const rows: string[][] = [];
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') rows.push([k, v]);
  };
  add('Reference', r.reference);
  add('Names', r.names.join(', '));
  add('Digest', r.digest + (r.synthesized ? '  (synthesised manifest)' : ''));
  add('MediaType', r.mediaType);
  if (r.kind === 'artifact') add('Kind', `artifact, not an image (config ${r.configMediaType}${r.artifactType ? `, artifactType ${r.artifactType}` : ''})`);
  add('Index', r.indexDigest);
  add('Config', r.configDigest);
  add('Created', r.created);
  add('Author', r.author);
  add('Platform', r.platform);
  r.env.forEach((e, i) => add(i === 0 ? 'Env' : '', e));
  add('Entrypoint', r.entrypoint ? JSON.stringify(r.entrypoint) : undefined);
  add('Cmd', r.cmd ? JSON.stringify(r.cmd) : undefined);
  add('WorkingDir', r.workingDir);
  add('User', r.user);
  Object.entries(r.labels).forEach(([k, v], i) => add(i === 0 ? 'Labels' : '', `${k}=${v}`));
  add('ExposedPorts', r.exposedPorts.join(', '));
  add('Volumes', r.volumes.join(', '));
  add('StopSignal', r.stopSignal);
  Object.entries(r.annotations).forEach(([k, v], i) => add(i === 0 ? 'Annotations' : '', `${k}=${v}`));
  let out = table(rows.map(([k, v]) => [k === '' ? '' : `${k}:`, v!]));
  if (r.history.length > 0) {
    out += '\nHistory:\n';
    out += table([['CREATED', 'EMPTY', 'CREATED BY'], ...r.history.map((h) => [h.created ?? '-', h.emptyLayer ? 'yes' : '', (h.createdBy ?? h.comment ?? '').slice(0, 100)])]);
  }
  out += `\nLayers (${r.layers.length}, ${humanSize(r.totalSize)}):\n`;
  out += table([['#', 'DIGEST', 'SIZE', 'MEDIA TYPE', 'DIFF_ID'], ...r.layers.map((l) => [String(l.index), shortDigest(l.digest), humanSize(l.size), l.mediaType, l.diffId ? shortDigest(l.diffId) : '-'])]);
  return out;
}

