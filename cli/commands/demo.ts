/** `berth demo` (what `npm start` runs): tree, inspect and verify on the bundled sample image. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { inspectReference, treeOf, verifyReference } from '../api.js';
import { renderTree } from '../output.js';
import { renderInspect } from './read.js';
import type { CommandContext } from './read.js';

/** The sample ships in the package: examples/sample, next to dist/. */
export function samplePath(): string {
  return fileURLToPath(new URL('../../../examples/sample', import.meta.url));
}

export function registerDemoCommand(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('demo')
    .description('show what berth does, on the bundled sample image (a two-platform OCI layout with provenance)')
    .argument('[ref]', 'image to show instead of the sample')
    .action((ref: string | undefined) => ctx.run(async () => {
      const target = ref ?? `oci:${samplePath()}`;
      if (ref === undefined && !existsSync(samplePath())) {
        throw new Error('the bundled sample is missing: run `npm run make-sample`');
      }
      const shown = ref ?? 'oci:examples/sample';
      const say = (title: string) => io.stdout.write(`\n\x1b[1m$ berth ${title}\x1b[0m\n`.replace(/\x1b\[[0-9]*m/g, io.stdout.isTTY ? '$&' : ''));
      say(`tree ${shown}`);
      const tree = await treeOf(target);
      io.stdout.write(renderTree(tree.tree, `${shown}  (${tree.format})`));
      say(`inspect --platform linux/amd64 ${shown}`);
      io.stdout.write(renderInspect(await inspectReference(target, { platform: { os: 'linux', architecture: 'amd64' } }).then((r) => ({ ...r, reference: shown }))));
      say(`verify ${shown}`);
      const report = await verifyReference(target);
      for (const p of report.problems) io.stdout.write(`${p.severity}: ${p.subject}: ${p.message}\n`);
      const errors = report.problems.filter((p) => p.severity === 'error').length;
      io.stdout.write(`${errors > 0 ? 'FAILED' : 'OK'}: checked ${report.manifests} manifests/indexes, ${report.layers} layers, ${report.blobs} blobs: ${errors} errors\n`);
      return errors > 0 ? 1 : 0;
    }));
}
