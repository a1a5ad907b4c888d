/**
 * Mutating images without a container (like crane append / mutate): `berth append`,
 * `berth config-set`, `berth retag`. The result goes to a transport reference (oci:, oci-archive:,
 * docker-archive:, docker://) through the copy engine.
 */
import type { Command } from 'commander';
import { appendLayer, retagImage, setImageConfig, type MutateOptions, type MutateResult } from '../api.js';
import { UsageError, writeJson, type Io } from '../output.js';
import type { CommandContext } from './read.js';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

interface CommonFlags {
  target: string;
  sourcePlatform?: string;
  sourceDateEpoch?: string;
  name?: string[];
  overwrite?: boolean;
  message?: string;
  author?: string;
  json?: boolean;
}

interface ConfigFlags {
  env?: string[];
  entrypoint?: string;
  cmd?: string;
  workdir?: string;
  user?: string;
  label?: string[];
  expose?: string[];
  volume?: string[];
  stopSignal?: string;
  platform?: string;
  change?: string[];
}

function epoch(flag: string | undefined, env: NodeJS.ProcessEnv): number | undefined {
  const text = flag ?? env.SOURCE_DATE_EPOCH;
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag !== undefined ? '--source-date-epoch' : 'SOURCE_DATE_EPOCH'} must be whole seconds since 1970, got "${text}"`);
  return Number(text);
}

function common(f: CommonFlags, env: NodeJS.ProcessEnv): MutateOptions {
  const e = epoch(f.sourceDateEpoch, env);
  return {
    ...(f.sourcePlatform !== undefined ? { sourcePlatform: f.sourcePlatform } : {}),
    ...(e !== undefined ? { sourceDateEpoch: e } : {}),
    ...(f.name !== undefined ? { names: f.name } : {}),
    ...(f.overwrite === true ? { overwrite: true } : {}),
    ...(f.message !== undefined ? { message: f.message } : {}),
    ...(f.author !== undefined ? { author: f.author } : {}),
  };
}

function configChanges(f: ConfigFlags) {
  return {
    ...(f.env ? { env: f.env } : {}),
    ...(f.entrypoint !== undefined ? { entrypoint: f.entrypoint } : {}),
    ...(f.cmd !== undefined ? { cmd: f.cmd } : {}),
    ...(f.workdir !== undefined ? { workdir: f.workdir } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    ...(f.label ? { labels: f.label } : {}),
    ...(f.expose ? { expose: f.expose } : {}),
    ...(f.volume ? { volumes: f.volume } : {}),
    ...(f.stopSignal !== undefined ? { stopSignal: f.stopSignal } : {}),
    ...(f.platform !== undefined ? { platform: f.platform } : {}),
    ...(f.change ? { changes: f.change } : {}),
  };
}

function report(io: Io, r: MutateResult, json: boolean | undefined): void {
  if (json === true) return writeJson(io, r);
  io.stdout.write(`wrote ${r.target}${r.names.length > 0 ? ` (${r.names.join(', ')})` : ''}\n`);
  io.stdout.write(`manifest ${r.manifest}\n`);
  if (r.config !== undefined) io.stdout.write(`config   ${r.config}\n`);
  if (r.layer !== undefined) io.stdout.write(`layer    ${r.layer.digest} (diff_id ${r.layer.diffId}, ${r.layer.entries} entries)\n`);
  for (const h of r.history) io.stdout.write(`history  + ${h}\n`);
}

function targetOptions(cmd: Command): Command {
  return cmd
    .requiredOption('-t, --target <ref>', 'where to write the result: oci:DIR[:NAME], oci-archive:FILE[:NAME], docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO:TAG')
    .option('--name <name>', 'a name at the target (repeatable; default the target\'s :NAME)', collect)
    .option('--source-platform <os/arch[/variant]>', 'which image of a multi-platform source (default: this host\'s)')
    .option('--source-date-epoch <seconds>', 'date of the new history entries and config (default $SOURCE_DATE_EPOCH, else now); fixes file mtimes of a directory layer too')
    .option('--message <text>', 'history comment')
    .option('--author <text>', 'history author')
    .option('--overwrite', 'replace an existing archive or name')
    .option('--json', 'print the result as JSON');
}

function configOptions(cmd: Command): Command {
  return cmd
    .option('--env <K=V>', 'set an environment variable (repeatable)', collect)
    .option('--entrypoint <cmd>', 'entrypoint: a JSON array (exec form) or a shell command; "" clears it')
    .option('--cmd <cmd>', 'command: a JSON array (exec form) or a shell command; "" clears it')
    .option('--workdir <dir>', 'working directory')
    .option('--user <user>', 'user[:group]')
    .option('--label <k=v>', 'set a label (repeatable)', collect)
    .option('--expose <port[/proto]>', 'expose a port, e.g. 8080/tcp (repeatable)', collect)
    .option('--volume <dir>', 'declare a volume (repeatable)', collect)
    .option('--stop-signal <signal>', 'stop signal')
    .option('--platform <os/arch[/variant]>', 'set the config\'s platform')
    .option('--change <instruction>', 'a Dockerfile instruction as `docker commit --change` takes it: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)', collect);
}

export function registerMutateCommands(program: Command, ctx: CommandContext): void {
  const io: Io = ctx.io;

  configOptions(targetOptions(program
    .command('append')
    .description('add a layer to an image, made from a directory (deterministic: sorted, uid/gid 0, fixed mtimes with --source-date-epoch) or taken from a layer tar')
    .argument('<image>', 'the image to start from (any reference berth reads)')
    .requiredOption('--layer <dir|tar>', 'a directory, or a layer tar (plain, gzip or zstd)')
    .option('--keep-owner', 'keep files\' uid/gid (default 0/0)')
    .option('--created-by <text>', 'history created_by of the layer')))
    .action((image: string, o: CommonFlags & ConfigFlags & { layer: string; keepOwner?: boolean; createdBy?: string }) => ctx.run(async () => {
      const r = await appendLayer(image, o.layer, o.target, {
        ...common(o, io.env), keepOwner: o.keepOwner === true, ...(o.createdBy !== undefined ? { createdBy: o.createdBy } : {}), config: configChanges(o),
      });
      report(io, r, o.json);
    }));

  configOptions(targetOptions(program
    .command('config-set')
    .description('change an image\'s execution defaults (env, entrypoint, cmd, workdir, user, labels, ports, volumes, platform) without running it; one history entry per change')
    .argument('<image>', 'the image to start from')))
    .action((image: string, o: CommonFlags & ConfigFlags) => ctx.run(async () => {
      const r = await setImageConfig(image, o.target, configChanges(o), common(o, io.env));
      report(io, r, o.json);
    }));

  targetOptions(program
    .command('retag')
    .description('write an image under another name (unchanged where the target format allows)')
    .argument('<image>', 'the image'))
    .action((image: string, o: CommonFlags) => ctx.run(async () => {
      const r = await retagImage(image, o.target, common(o, io.env));
      report(io, r, o.json);
    }));
}
