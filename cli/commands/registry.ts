/**
 * Registry commands (tags, catalog, digest, delete, referrers, login, logout) and the global
 * registry flags every command honours (--insecure, --ca-file, --creds): the read commands work
 * on docker:// references through the transport, these flags only say how to reach registries.
 */
import type { Command } from 'commander';
import {
  configureRegistry, copyReferences, deleteManifest, isRegistryName, listCatalog, listTags, loadImages, login, logout, manifestDigest, parsePlatform, referrersOf,
  shortDigest,
} from '../api.js';
import { humanSize, parseFormat, table, UsageError, writeJson, type Io } from '../output.js';
import { copyOptions, progressDisplay } from './copy.js';
import { renderLoad } from './store.js';
import type { CommandContext } from './read.js';

const FORMAT_HELP = 'output format: text or json';

interface GlobalRegistryOptions {
  insecure?: string[];
  caFile?: string[];
  creds?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerRegistryCommands(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .option('--insecure <host>', 'registry host[:port] that may use plain HTTP or unverified TLS (repeatable)', collect)
    .option('--ca-file <file>', 'extra trusted CA certificate (PEM) for registries (repeatable; SSL_CERT_FILE is read too)', collect)
    .option('--creds <user:password>', 'registry credentials (instead of those in the docker config.json)');
  // every run starts from the defaults, then the flags of this command line (set before each
  // action, in a small settings module: no command loads the registry client just for this)
  program.hook('preAction', async () => {
    const o = program.opts<GlobalRegistryOptions>();
    let creds;
    if (o.creds !== undefined) {
      const colon = o.creds.indexOf(':');
      if (colon <= 0) throw new UsageError('--creds must be USER:PASSWORD');
      creds = { username: o.creds.slice(0, colon), password: o.creds.slice(colon + 1) };
    }
    await configureRegistry({
      env: io.env,
      ...(o.insecure ? { insecure: o.insecure } : {}),
      ...(o.caFile ? { caFiles: o.caFile } : {}),
      ...(creds ? { creds } : {}),
    });
  });

  program
    .command('tags')
    .description('list the tags of a registry repository (follows pagination)')
    .argument('<ref>', 'docker://HOST/REPO')
    .option('--format <format>', FORMAT_HELP, 'text')
    .option('--page-size <n>', 'tags per request (default: the registry\'s)')
    .action((ref: string, o: { format: string; pageSize?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await listTags(ref, { ...pageSize(o.pageSize) });
      if (format === 'json') return writeJson(io, result);
      for (const t of result.tags) io.stdout.write(`${t}\n`);
    }));

  program
    .command('catalog')
    .description('list the repositories of a registry (when the registry allows it)')
    .argument('<registry>', 'docker://HOST[:PORT]')
    .option('--format <format>', FORMAT_HELP, 'text')
    .option('--page-size <n>', 'repositories per request (default: the registry\'s)')
    .action((registry: string, o: { format: string; pageSize?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await listCatalog(registry, { ...pageSize(o.pageSize) });
      if (format === 'json') return writeJson(io, result);
      for (const r of result.repositories) io.stdout.write(`${r}\n`);
    }));

  program
    .command('digest')
    .description('print the digest of the manifest or index a reference names (a HEAD request for registries)')
    .argument('<ref>', 'image reference')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await manifestDigest(ref);
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(`${result.digest}\n`);
    }));

  program
    .command('delete')
    .description('delete a manifest from a registry, by digest (every tag on it goes too)')
    .argument('<ref>', 'docker://HOST/REPO@DIGEST')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await deleteManifest(ref);
      if (format === 'json') return writeJson(io, result);
      io.stdout.write(`deleted ${result.reference}\n`);
    }));

  program
    .command('referrers')
    .description('list the OCI referrers of a manifest (the referrers API, else the sha256-<hex> fallback tag)')
    .argument('<ref>', 'docker://HOST/REPO:TAG or docker://HOST/REPO@DIGEST')
    .option('--artifact-type <type>', 'only referrers of this artifact type')
    .option('--format <format>', FORMAT_HELP, 'text')
    .action((ref: string, o: { format: string; artifactType?: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const result = await referrersOf(ref, o.artifactType === undefined ? {} : { artifactType: o.artifactType });
      if (format === 'json') return writeJson(io, result);
      const via = result.via === 'api' ? 'referrers API' : `fallback tag ${result.tag ?? ''}`;
      io.stdout.write(`referrers of ${result.subject} (${via}): ${result.manifests.length}\n`);
      if (result.manifests.length > 0) {
        io.stdout.write(table([
          ['DIGEST', 'ARTIFACT TYPE', 'MEDIA TYPE', 'SIZE', 'ANNOTATIONS'],
          ...result.manifests.map((d) => [
            shortDigest(d.digest), d.artifactType ?? '-', d.mediaType, humanSize(d.size),
            Object.entries(d.annotations ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '-',
          ]),
        ]));
      }
      for (const note of result.notes) io.stdout.write(`note: ${note}\n`);
    }));

  program
    .command('login')
    .description('check credentials against a registry and save them in the docker config.json (or its credential helper)')
    .argument('<registry>', 'HOST[:PORT]')
    .requiredOption('-u, --username <user>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .option('-p, --password <password>', 'the password (visible in the process list: prefer --password-stdin)')
    .action((registry: string, o: { username: string; passwordStdin?: boolean; password?: string }) => ctx.run(async () => {
      if (o.passwordStdin === true && o.password !== undefined) throw new UsageError('--password and --password-stdin are exclusive');
      let password = o.password;
      if (o.passwordStdin === true) password = await readStdin(io);
      if (password === undefined || password === '') throw new UsageError('a password is required: --password-stdin (or --password)');
      const result = await login(registry, { username: o.username, password }, { env: io.env });
      io.stdout.write(`Login Succeeded: ${result.registry} (${result.identityToken ? 'identity token' : 'stored'} in ${result.storedIn})\n`);
    }));

  registerTransfer(program, ctx, 'push');
  registerTransfer(program, ctx, 'pull');

  program
    .command('logout')
    .description('remove the saved credentials of a registry')
    .argument('<registry>', 'HOST[:PORT]')
    .action((registry: string) => ctx.run(async () => {
      const result = await logout(registry, { env: io.env });
      io.stdout.write(result.removed ? `Removed login credentials for ${result.registry}\n` : `Not logged in to ${result.registry}\n`);
    }));
}

interface TransferFlags {
  platform?: string[];
  format?: string;
  compression?: string;
  attestations: string;
  referrers: string;
  overwrite?: boolean;
  concurrency: string;
  quiet?: boolean;
}

function registerTransfer(program: Command, ctx: CommandContext, verb: 'push' | 'pull'): void {
  const { io } = ctx;
  program
    .command(verb)
    .description(verb === 'push'
      ? 'push an image to a registry: blobs already there are skipped, others mounted from a sibling repository or uploaded, manifests after their blobs, the tag last'
      : 'pull an image from a registry into the local store (as docker pull; --root), or into an OCI layout, oci-archive or docker-archive')
    .argument('<src>', verb === 'push' ? 'any readable image reference' : 'docker://HOST/REPO[:TAG][@DIGEST]')
    .argument(verb === 'push' ? '<dst>' : '[dst]', verb === 'push' ? 'docker://HOST/REPO[:TAG]' : 'oci:DIR[:NAME], oci-archive:FILE[:NAME] or docker-archive:FILE[:NAME:TAG] (default: the local store)')
    .option('--platform <os/arch[/variant]>', 'only this platform of an index (repeatable)', collect)
    .option('--format <oci|docker>', 'manifest format at the destination')
    .option('--compression <gzip|zstd|none>', 'recompress image layers')
    .option('--attestations <keep|drop>', 'attestation manifests of the images', 'keep')
    .option('--referrers <keep|drop>', 'OCI referrers of the images (signatures, SBOMs… naming them as subject); on a registry without the referrers API they are listed under the sha256-<hex> fallback tag', 'keep')
    .option('--overwrite', 'replace an existing archive, or an existing name in a layout')
    .option('--concurrency <n>', 'blobs at once', '3')
    .option('-q, --quiet', 'print nothing but errors')
    .action((src: string, dst: string | undefined, flags: TransferFlags) => ctx.run(async () => {
      if (verb === 'pull' && dst === undefined) {
        if (!(await isRegistryName(src))) throw new UsageError(`pull: the source must be a registry reference docker://HOST/REPO[:TAG] (got "${src}"; use berth load for other places)`);
        return pullToStore(io, src, flags);
      }
      if (dst === undefined) throw new UsageError(`${verb}: a destination is required`);
      if (verb === 'push' && !(await isRegistryName(dst))) throw new UsageError(`push: the destination must be a registry reference docker://HOST/REPO[:TAG] (got "${dst}"; use berth copy for other places)`);
      if (verb === 'pull' && !(await isRegistryName(src))) throw new UsageError(`pull: the source must be a registry reference docker://HOST/REPO[:TAG] (got "${src}"; use berth copy for other places)`);
      if (flags.referrers !== 'keep' && flags.referrers !== 'drop') throw new UsageError(`--referrers must be keep or drop, got "${flags.referrers}"`);
      const opts = { ...copyOptions({ ...flags }, dst), referrers: flags.referrers as 'keep' | 'drop' };
      const display = progressDisplay(io, flags.quiet !== true);
      let result;
      try {
        result = await copyReferences([src], dst, {
          ...opts,
          onEvent: (e) => {
            display.onEvent(e);
            if (e.type === 'note' && flags.quiet !== true) io.stderr.write(`note: ${e.message}\n`);
          },
        });
      } finally {
        display.done();
      }
      if (flags.quiet === true) return;
      for (const img of result.images) {
        io.stdout.write(`${verb === 'push' ? 'pushed' : 'pulled'} ${img.sourceReference} to ${result.destination}: ${img.root.digest}\n`);
        if (img.referrers > 0) io.stdout.write(`${img.referrers} referrer(s) ${verb === 'push' ? 'pushed' : 'pulled'} with it\n`);
      }
      io.stdout.write(`${result.copied} blob(s) ${verb === 'push' ? 'uploaded' : 'written'} (${humanSize(result.bytes)} read), ${result.skipped} already there or mounted\n`);
    }));
}

/**
 * `berth pull docker://…` with no destination: into the local store through `berth load`'s path
 * (one platform, the host's unless --platform says; layers the store has are reused), printing
 * what docker prints for a loaded image.
 */
async function pullToStore(io: Io, src: string, flags: TransferFlags): Promise<void> {
  const notFor = [
    ['--format', flags.format], ['--compression', flags.compression], ['--overwrite', flags.overwrite],
  ].filter(([, v]) => v !== undefined).map(([k]) => k);
  if (notFor.length > 0) throw new UsageError(`pull into the local store: ${notFor.join(', ')} apply to a destination (give one: oci:DIR, oci-archive:FILE, docker-archive:FILE)`);
  if ((flags.platform?.length ?? 0) > 1) throw new UsageError('pull into the local store: one --platform (the store keeps one image per name)');
  const display = progressDisplay(io, flags.quiet !== true);
  let result;
  try {
    result = await loadImages(src, {
      ...(flags.platform !== undefined ? { platform: parsePlatform(flags.platform[0]!) } : {}),
      onEvent: (e) => display.onEvent(e),
    });
  } finally {
    display.done();
  }
  if (flags.quiet !== true) {
    io.stdout.write(renderLoad(result));
    for (const n of result.notes) io.stderr.write(`note: ${n}\n`);
  }
}

function pageSize(text: string | undefined): { pageSize?: number } {
  if (text === undefined) return {};
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--page-size must be a positive integer, got "${text}"`);
  return { pageSize: n };
}

/** The password from stdin: the Io's stdin when the caller gave one (tests), else the process's; one trailing newline dropped. */
async function readStdin(io: Io): Promise<string> {
  const stdin = (io as Io & { stdin?: AsyncIterable<Uint8Array | string> }).stdin ?? process.stdin;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    total += b.length;
    if (total > 64 * 1024) throw new UsageError('--password-stdin: more than 64 KiB on standard input');
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
