/** `berth attestations`: the BuildKit / in-toto attestations attached to each platform image. */
import type { Command } from 'commander';
import {
  BerthError, attestationsOf, shortDigest,
  type AttestationManifestInfo, type AttestationStatementInfo, type AttestationsResult, type ProvenanceAttestation, type SbomAttestation,
} from '../api.js';
import { humanSize, parseFormat, table, writeJson } from '../output.js';
import { platformOption, type CommandContext } from './read.js';

/** SBOM packages shown in the text summary (all of them are in --format json). */
export const SHOWN_PACKAGES = 10;

export function registerAttestationsCommand(program: Command, ctx: CommandContext): void {
  const { io } = ctx;
  program
    .command('attestations')
    .description('show the attestations (SLSA provenance, SBOMs) attached to each platform image: buildkit attestation manifests and OCI referrers')
    .argument('<ref>', 'image reference')
    .option('--platform <os/arch[/variant]>', 'only the image for this platform (default: every platform of the index)')
    .option('--predicate-type <type>', 'only statements of this predicate type: a URI, or provenance, sbom, spdx, cyclonedx')
    .option('--raw', 'print the statements themselves (indented JSON, one document after another)')
    .option('--format <format>', 'output format: text or json', 'text')
    .action((ref: string, o: { platform?: string; predicateType?: string; raw?: boolean; format: string }) => ctx.run(async () => {
      const format = parseFormat(o.format);
      const platform = platformOption(o.platform);
      const raw = o.raw === true;
      const result = await attestationsOf(ref, {
        ...(platform ? { platform } : {}),
        ...(o.predicateType !== undefined ? { predicateType: o.predicateType } : {}),
        raw,
      });
      if (format === 'json') return writeJson(io, result);
      if (raw) {
        const docs = result.images.flatMap((i) => i.attestations.flatMap((a) => a.statements.filter((s) => s.document !== undefined).map((s) => s.document)));
        if (docs.length === 0) {
          throw new BerthError('BERTH_NOT_FOUND', `${result.reference}: no attestation statements${o.predicateType !== undefined ? ` of predicate type ${o.predicateType}` : ''}`, { subject: result.reference });
        }
        for (const doc of docs) io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
        return;
      }
      io.stdout.write(renderAttestations(result));
    }));
}

function indent(text: string, prefix: string): string {
  return text.split('\n').map((l) => (l === '' ? l : prefix + l)).join('\n');
}

/** The text summary: one block per platform image, one per attestation manifest, one per statement. */
export function renderAttestations(r: AttestationsResult): string {
  const out: string[] = [`${r.reference}${r.index ? `  (index ${shortDigest(r.index)})` : ''}\n`];
  for (const image of r.images) {
    out.push(`\n${image.platform ?? 'image'}  ${shortDigest(image.digest)}${image.present ? '' : '  (absent)'}\n`);
    if (image.attestations.length === 0) {
      out.push(`  no attestations${r.predicateType !== undefined ? ` of predicate type ${r.predicateType}` : ''}\n`);
      continue;
    }
    for (const a of image.attestations) out.push(renderManifest(a));
  }
  return out.join('');
}

function renderManifest(a: AttestationManifestInfo): string {
  const how = a.attachedBy === 'annotation' ? 'buildkit index entry' : 'OCI referrer via subject';
  const form = a.form === 'oci-artifact' ? ', artifact form' : a.form === 'image-config' ? ', image-config form' : '';
  let s = `  attestation manifest ${shortDigest(a.digest)}  ${humanSize(a.size)}  (${how}${form})${a.present ? '' : '  (absent)'}\n`;
  for (const p of a.problems) s += `    problem: ${p}\n`;
  if (a.present && a.statements.length === 0 && a.problems.length === 0) s += '    no in-toto statements\n';
  for (const st of a.statements) s += renderStatement(st);
  for (const l of a.otherLayers) s += `    ignored layer ${shortDigest(l.digest)}  ${l.mediaType}  ${humanSize(l.size)}\n`;
  return s;
}

function renderStatement(st: AttestationStatementInfo): string {
  const kind = st.summary?.kind ?? (st.present ? 'unreadable' : 'absent');
  let s = `    ${kind === 'unknown' ? 'other' : kind}  ${st.predicateType || '(no predicate type)'}  ${humanSize(st.size)}  layer ${shortDigest(st.digest)}\n`;
  const rows: string[][] = [];
  const add = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') rows.push([k, v]);
  };
  if (st.error !== undefined) add('Error:', st.error);
  if (st.summary?.kind === 'provenance') provenanceRows(st.summary, add);
  let packages = '';
  if (st.summary?.kind === 'sbom') packages = sbomRows(st.summary, add);
  if (st.summary !== undefined) {
    add('Statement:', st.statementType ? st.statementType : 'bare predicate (no in-toto statement around it)');
    add('Subjects:', st.subjects.map((x) => `${x.name || '(no name)'}${x.digests.sha256 ? `  sha256:${shortDigest(x.digests.sha256)}` : ''}`).join('\n') || '(none)');
  }
  for (const p of st.subjectProblems) add('Problem:', p);
  for (const n of st.notes) add('Note:', n);
  s += indent(renderRows(rows), '      ');
  if (packages !== '') s += indent(packages, '        ');
  return s;
}

/** Key/value rows; a value with newlines continues on the next rows with an empty key. */
function renderRows(rows: readonly string[][]): string {
  const flat: string[][] = [];
  for (const [k, v] of rows) v!.split('\n').forEach((line, i) => flat.push([i === 0 ? k! : '', line]));
  return flat.length === 0 ? '' : table(flat);
}

function pairs(m: Readonly<Record<string, string>>): string {
  return Object.entries(m).map(([k, v]) => `${k}=${v}`).join('\n');
}

function provenanceRows(p: ProvenanceAttestation, add: (k: string, v: string | undefined) => void): void {
  add('SLSA:', `v${p.slsaVersion}`);
  add('Builder:', p.builderId === '' ? '(empty)' : p.builderId);
  add('Build type:', p.buildType);
  add('Frontend:', p.frontend);
  if (p.source) add('Source:', `${p.source.uri}${p.source.revision ? `  revision ${p.source.revision}` : ''}`);
  add('Dockerfile:', p.entryPoint);
  add('Build args:', pairs(p.buildArgs));
  add('Labels:', pairs(p.labels));
  add('Frontend attrs:', pairs(p.frontendAttrs));
  add('Locals:', p.locals.join(', '));
  add('Materials:', p.materials.map((m) => {
    const d = m.digest ? Object.entries(m.digest).map(([alg, hex]) => shortDigest(`${alg}:${hex}`)).join(' ') : '';
    return d === '' ? m.uri : `${m.uri}  ${d}`;
  }).join('\n'));
  add('Builder platform:', p.builderPlatform);
  add('Invocation:', p.invocationId);
  add('Started:', p.startedOn);
  add('Finished:', p.finishedOn);
  if (p.reproducible !== undefined) add('Reproducible:', p.reproducible ? 'yes' : 'no');
}

/** Adds the SBOM rows and returns the package table (empty when there are no packages). */
function sbomRows(b: SbomAttestation, add: (k: string, v: string | undefined) => void): string {
  add('Format:', `${b.format === 'spdx' ? 'SPDX' : 'CycloneDX'} ${b.specVersion}`);
  add('Tools:', b.tools.join(', ') || '-');
  add('Packages:', String(b.packageCount));
  if (b.packages.length === 0) return '';
  const shown = b.packages.slice(0, SHOWN_PACKAGES);
  let t = table([['NAME', 'VERSION', 'LICENSE', 'PURL'], ...shown.map((p) => [p.name, p.version ?? '-', p.license ?? '-', p.purl ?? '-'])]);
  if (b.packages.length > shown.length) t += `… and ${b.packages.length - shown.length} more (all of them with --format json)\n`;
  return t;
}
