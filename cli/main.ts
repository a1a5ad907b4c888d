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
import { reportError, type Io } from './output.js';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
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
  const program = new Command();
  program
    .name('berth')
    .description('container images made transparent: read, verify and explore OCI layouts and docker archives')
    .version(version())
    .option('--debug', 'print stack traces and error details')
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
