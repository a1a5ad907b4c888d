/** `berth verify`: the deep check; exit 1 with one line per problem. */
import type { Command } from 'commander';
import { verifyReference } from '../api.js';
import { humanSize, parseFormat, progress, writeJson } from '../output.js';
import type { CommandContext } from './read.js';

export function registerVerifyCommand(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('verify')
    .description('check everything reachable: digests, sizes, JSON, schemas, media types, diff_ids, missing and unreferenced blobs')
    .argument('<ref>', 'image reference (all images of the place unless it names one)')
    .option('--strict', 'treat warnings (sparse indexes, unreferenced blobs) as errors')
    .option('--quiet', 'no progress display')
    .option('--format <format>', 'output format: text or json', 'text')
    .action((ref: string, o: { strict?: boolean; quiet?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const bar = progress(io, 'verifying', !o.quiet && format === 'text');
      let report;
      try {
        report = await verifyReference(ref, { strict: o.strict === true, onBytes: (n) => bar.add(n) });
      } finally {
        bar.done();
      }
      const errors = report.problems.filter((p) => p.severity === 'error');
      const warnings = report.problems.filter((p) => p.severity === 'warning');
      const failed = errors.length > 0 || (o.strict === true && warnings.length > 0);
      if (format === 'json') {
        writeJson(io, { ...report, ok: !failed });
      } else {
        for (const p of report.problems) io.stdout.write(`${p.severity}: ${p.subject}: ${p.message}\n`);
        io.stdout.write(`${failed ? 'FAILED' : 'OK'}: ${report.reference}: checked ${report.manifests} manifests/indexes, ${report.layers} layers, ${report.blobs} blobs (${humanSize(report.bytes)}): ${errors.length} errors, ${warnings.length} warnings\n`);
      }
      return failed ? 1 : 0;
    }));
}
