/** Attestations: per platform image, the provenance summary and a searchable SBOM package table. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { AttestationsResponse, RawResponse } from '../../api.js';
import type { AttestationStatementInfo, ProvenanceAttestation, SbomAttestation } from '../../../src/index.js';
import { getJson } from './client.js';
import { JsonView, Show, VirtualList, useAsync } from './common.js';
import { humanSize, shortDigest } from './format.js';

export function AttestationsView({ reference }: { reference: string }): JSX.Element {
  const st = useAsync((s) => getJson<AttestationsResponse>('attestations', { ref: reference }, s), [reference]);
  return (
    <Show state={st} what="the attestations">
      {(r) => (
        <div class="attestations">
          {r.images.map((img) => (
            <section key={img.digest} class="att-image" aria-label={`Attestations of ${img.platform ?? img.digest}`}>
              <h2>{img.platform ?? 'image'} <code class="muted">{shortDigest(img.digest)}</code></h2>
              {img.attestations.length === 0 ? <p class="muted">No attestations are attached to this image.</p> : null}
              {img.attestations.map((a) => (
                <div key={a.digest} class="att-manifest">
                  <p class="muted">attestation manifest <code>{shortDigest(a.digest)}</code> · {humanSize(a.size)} · attached by {a.attachedBy}{a.present ? '' : ' · absent'}</p>
                  {a.statements.map((s) => <Statement key={s.digest} s={s} reference={reference} />)}
                </div>
              ))}
            </section>
          ))}
        </div>
      )}
    </Show>
  );
}

function Statement({ s, reference }: { s: AttestationStatementInfo; reference: string }): JSX.Element {
  const [raw, setRaw] = useState(false);
  const kind = s.summary?.kind ?? 'unknown';
  return (
    <details class={`statement ${kind}`} open={kind === 'provenance'}>
      <summary>
        <strong>{kind === 'provenance' ? 'Provenance' : kind === 'sbom' ? 'SBOM' : 'Statement'}</strong> <span class="muted">{s.predicateType} · {humanSize(s.size)} · layer {shortDigest(s.digest)}</span>
      </summary>
      {s.error ? <div class="error">{s.error}</div> : null}
      {s.subjectProblems.map((p) => <div key={p} class="error">{p}</div>)}
      {s.summary?.kind === 'provenance' ? <Provenance p={s.summary} /> : null}
      {s.summary?.kind === 'sbom' ? <Sbom sb={s.summary} /> : null}
      <button type="button" aria-expanded={raw} onClick={() => setRaw(!raw)}>{raw ? 'Hide' : 'Show'} the raw statement</button>
      {raw ? <RawStatement reference={reference} digest={s.digest} /> : null}
    </details>
  );
}

function RawStatement({ reference, digest }: { reference: string; digest: string }): JSX.Element {
  const st = useAsync((sig) => getJson<RawResponse>('raw', { ref: reference, digest }, sig), [reference, digest]);
  return <Show state={st} what="the statement">{(r) => <JsonView text={r.text ?? ''} label={`Statement ${digest}`} />}</Show>;
}

function Row({ k, v }: { k: string; v: string | JSX.Element | undefined }): JSX.Element | null {
  if (v === undefined || v === '') return null;
  return <tr><th scope="row">{k}</th><td>{v}</td></tr>;
}

function Provenance({ p }: { p: ProvenanceAttestation }): JSX.Element {
  const kv = (o: Readonly<Record<string, string>>): string | undefined => (Object.keys(o).length === 0 ? undefined : Object.entries(o).map(([k, v]) => `${k}=${v}`).join('\n'));
  return (
    <table class="kv provenance" aria-label="Provenance summary">
      <tbody>
        <Row k="SLSA version" v={p.slsaVersion} />
        <Row k="Builder" v={p.builderId || '(empty: a local build)'} />
        <Row k="Build type" v={p.buildType} />
        <Row k="Frontend" v={p.frontend} />
        <Row k="Source" v={p.source ? `${p.source.uri}${p.source.revision ? `  revision ${p.source.revision}` : ''}` : undefined} />
        <Row k="Entry point" v={p.entryPoint} />
        <Row k="Build args" v={kv(p.buildArgs)} />
        <Row k="Labels" v={kv(p.labels)} />
        <Row k="Frontend attributes" v={kv(p.frontendAttrs)} />
        <Row k="Locals" v={p.locals.join(', ')} />
        <Row k="Builder platform" v={p.builderPlatform} />
        <Row k="Started" v={p.startedOn} />
        <Row k="Finished" v={p.finishedOn} />
        <Row k="Reproducible" v={p.reproducible === undefined ? undefined : String(p.reproducible)} />
        <Row k="Invocation" v={p.invocationId} />
        <Row
          k={`Materials (${p.materials.length})`}
          v={p.materials.length === 0 ? undefined : <ul>{p.materials.map((m) => <li key={m.uri}><code>{m.uri}</code>{m.digest ? <span class="muted"> {Object.entries(m.digest).map(([a, h]) => `${a}:${h.slice(0, 12)}`).join(' ')}</span> : null}</li>)}</ul>}
        />
      </tbody>
    </table>
  );
}

function Sbom({ sb }: { sb: SbomAttestation }): JSX.Element {
  const [filter, setFilter] = useState('');
  const f = filter.trim().toLowerCase();
  const rows = f === '' ? sb.packages : sb.packages.filter((p) => [p.name, p.version, p.license, p.purl].some((x) => x?.toLowerCase().includes(f)));
  return (
    <div class="sbom">
      <p>{sb.format.toUpperCase()} {sb.specVersion} · {sb.packageCount} packages{sb.tools.length > 0 ? ` · made by ${sb.tools.join(', ')}` : ''}</p>
      <input type="search" placeholder="Filter packages…" aria-label="Filter SBOM packages" value={filter} onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)} />
      <div class="pkg-head"><span>name</span><span>version</span><span>license</span><span>purl</span></div>
      <VirtualList
        class="pkgs" label="SBOM packages" count={rows.length} rowHeight={24}
        row={(i) => {
          const p = rows[i]!;
          return <div class="pkg"><span>{p.name}</span><span>{p.version ?? ''}</span><span>{p.license ?? ''}</span><span class="muted" title={p.purl}>{p.purl ?? ''}</span></div>;
        }}
      />
      <p class="muted">{rows.length} shown</p>
    </div>
  );
}
