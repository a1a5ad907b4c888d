/** `berth ui`: the explorer, a local server and a single-page app over the public API. */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { UsageError } from '../output.js';
import type { CommandContext } from './read.js';

/** The part of ui/server.ts this command uses. */
interface ExplorerModule {
  startExplorer(opts: { refs: readonly string[]; host: string; port: number }): Promise<{ url: string; close(): Promise<void> }>;
  isLoopbackHost(host: string): boolean;
}

/**
 * ui/ sits beside cli/, not below it (both import only src/index.ts), so the command finds the
 * explorer by its place in the package and loads it only when `berth ui` runs.
 */
async function loadExplorer(): Promise<ExplorerModule> {
  const where = new URL('../../ui/server.js', import.meta.url);
  return (await import(where.href)) as ExplorerModule;
}

function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new UsageError(`--port must be a port number (0-65535), got "${value}"`);
  return Number(value);
}

/** Opens the URL in the desktop's browser, if there is one; failing quietly is fine. */
function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  try {
    const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no browser here: the URL is printed anyway
  }
}

export function registerUiCommand(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('ui')
    .description('explore images in the browser: structure graph, layers and files, attestations, compare, the local store trace walk (a local server; loopback only unless --host says otherwise)')
    .argument('[refs...]', 'images to show first (default: the bundled sample and the local store)')
    .option('--port <n>', 'port to listen on (0: any free port)', '0')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--open', 'open the explorer in the default browser')
    .action((refs: string[], o: { port: string; host: string; open?: boolean }) => ctx.run(async () => {
      const port = parsePort(o.port);
      const explorer = await loadExplorer();
      const server = await explorer.startExplorer({ refs, host: o.host, port });
      if (!explorer.isLoopbackHost(o.host)) {
        io.stderr.write(`warning: listening on ${o.host}: anyone who can reach this address can read the images and files this machine can\n`);
      }
      io.stdout.write(`berth explorer: ${server.url}  (Ctrl-C to stop)\n`);
      if (o.open === true) openBrowser(server.url);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
      return 0;
    }));
}
