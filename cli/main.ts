/**
 * berth's command line. Commands are thin: they parse flags, call the public API and format
 * the result. Errors become one line on stderr and an exit code (2 usage, 1 everything else).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerReadCommands, type CommandContext } from './commands/read.js';
import { registerVerifyCommand } from './commands/verify.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerCopyCommand } from './commands/copy.js';
import { registerLayerCommands } from './commands/layer.js';
import { registerAttestationsCommand } from './commands/attestations.js';
import { registerStoreCommands } from './commands/store.js';
import { registerRegistryCommands } from './commands/registry.js';
import { registerUiCommand } from './commands/ui.js';
import { registerContainerCommands } from './commands/container.js';
import { registerMutateCommands } from './commands/mutate.js';
import { configureLimits, DEFAULT_LIMITS, resetLimits, type Limits } from './api.js';
import { reportError, UsageError, type Io } from './output.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** The global limit options: flag, the limit it sets, help. */
const LIMIT_OPTIONS: ReadonlyArray<{ flag: string; keys: ReadonlyArray<keyof Limits>; help: string }> = [
  { flag: '--max-manifest-bytes', keys: ['maxManifestBytes'], help: `largest manifest, index, index.json or manifest.json to read (default ${size(DEFAULT_LIMITS.maxManifestBytes)})` },
  { flag: '--max-config-bytes', keys: ['maxConfigBytes'], help: `largest image config to read (default ${size(DEFAULT_LIMITS.maxConfigBytes)})` },
  { flag: '--max-entries', keys: ['maxEntries', 'maxStreamEntries'], help: `most tar entries over all layers of one unpack or load, and in any one tar read (default ${DEFAULT_LIMITS.maxEntries} over all layers, ${DEFAULT_LIMITS.maxStreamEntries} per tar)` },
  { flag: '--max-bytes', keys: ['maxBytes'], help: `most uncompressed layer bytes over all layers of one unpack or load (default ${size(DEFAULT_LIMITS.maxBytes)})` },
  { flag: '--max-path', keys: ['maxPathBytes'], help: `longest tar entry name or link target, in bytes (default ${DEFAULT_LIMITS.maxPathBytes})` },
  { flag: '--max-ratio', keys: ['maxRatio'], help: 'most decompressed bytes per compressed byte of a layer, beyond 1 MiB (default: no ratio limit; --max-bytes still applies)' },
];

function size(n: number): string {
  for (const [unit, m] of [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) if (n % m === 0) return `${n / m}${unit}`;
  return String(n);
}

/** A positive whole number with an optional K/M/G/T (×1024) suffix; --max-ratio: a positive number. */
function parseLimit(flag: string, value: string): number {
  if (flag === '--max-ratio') {
    const r = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
    if (!(r > 0)) throw new UsageError(`${flag} must be a positive number, got "${value}"`);
    return r;
  }
  const m = /^(\d+)([KMGT]i?B?)?$/i.exec(value.trim());
  const n = m === null ? NaN : Number(m[1]) * 1024 ** ('KMGT'.indexOf((m[2] ?? ' ').charAt(0).toUpperCase()) + 1);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive whole number (optionally with K, M, G or T), got "${value}"`);
  return n;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  let exitCode = 0;
  const debug = argv.includes('--debug');
  // `berth … | head` closes the pipe early: that is the reader's choice, not an error
  const onPipeError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(exitCode);
    throw err;
  };
  if (io.stdout === process.stdout) process.stdout.on('error', onPipeError);
  // every run starts from the default limits, then the flags of this command line
  resetLimits();
  const program = new Command();
  program
    .name('berth')
    .description('container images made transparent and portable: read, verify, explore and move images between OCI layouts, docker archives, the local store and registries')
    .version(version())
    .option('--debug', 'print stack traces and error details');
  for (const o of LIMIT_OPTIONS) program.option(`${o.flag} <n>`, o.help);
  program.hook('preAction', () => {
    const given = program.opts<Record<string, string | undefined>>();
    const partial: Record<string, number> = {};
    for (const o of LIMIT_OPTIONS) {
      const value = given[o.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())];
      if (value === undefined) continue;
      const n = parseLimit(o.flag, value);
      for (const k of o.keys) partial[k] = n;
    }
    configureLimits(partial as Partial<Limits>);
  });
  program
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  const ctx: CommandContext = {
    io,
    async run(action) {
      try {
        const code = await action();
        exitCode = typeof code === 'number' ? code : 0;
      } catch (err) {
        exitCode = reportError(io, err, debug);
      }
    },
  };
  registerReadCommands(program, ctx);
  registerVerifyCommand(program, ctx);
  registerDemoCommand(program, ctx);
  registerCopyCommand(program, ctx);
  registerLayerCommands(program, ctx);
  registerAttestationsCommand(program, ctx);
  registerStoreCommands(program, ctx);
  registerRegistryCommands(program, ctx);
  registerUiCommand(program, ctx);
  registerContainerCommands(program, ctx);
  registerMutateCommands(program, ctx);
  for (const cmd of program.commands) {
    cmd.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  }
  try {
    await program.parseAsync(['node', 'berth', ...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportError(io, err, debug);
  }
  if (argv.length === 0) {
    program.outputHelp();
    return 2;
  }
  return exitCode;
}
