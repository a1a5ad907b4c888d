/** Compare: two images side by side — their config differences and the file-level diff. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { DiffResponse, PlatformsResponse, RefChoice } from '../../api.js';
import type { DiffEntry } from '../../../src/index.js';
import { getJson } from './client.js';
import { Show, VirtualList, useAsync } from './common.js';
import { humanSize, shortDigest } from './format.js';

export interface Side {
  ref: string;
  platform: string | undefined;
}

function SidePicker({ name, side, refs, onChange }: { name: string; side: Side; refs: readonly RefChoice[]; onChange: (s: Side) => void }): JSX.Element {
  const plats = useAsync(side.ref ? (s) => getJson<PlatformsResponse>('platforms', { ref: side.ref }, s) : undefined, [side.ref]);
  const listId = `refs-${name}`;
  return (
    <fieldset class="side-picker">
      <legend>Image {name}</legend>
      <input
        list={listId} aria-label={`Reference of image ${name}`} value={side.ref} size={40}
        onChange={(e) => onChange({ ref: (e.currentTarget as HTMLInputElement).value, platform: undefined })}
      />
      <datalist id={listId}>{refs.map((r) => <option key={r.ref} value={r.ref}>{r.label}</option>)}</datalist>
      <select aria-label={`Platform of image ${name}`} value={side.platform ?? ''} onChange={(e) => onChange({ ...side, platform: (e.currentTarget as HTMLSelectElement).value || undefined })}>
        <option value="">(default platform)</option>
        {(plats.data?.platforms ?? []).filter((p) => p.platform).map((p) => <option key={p.digest} value={p.platform}>{p.platform}</option>)}
      </select>
    </fieldset>
  );
}

export function CompareView({ refs, initial }: { refs: readonly RefChoice[]; initial: [Side, Side] }): JSX.Element {
  const [a, setA] = useState<Side>(initial[0]);
  const [b, setB] = useState<Side>(initial[1]);
  const [asked, setAsked] = useState<[Side, Side] | undefined>(undefined);
  const st = useAsync(asked ? (s) => getJson<DiffResponse>('diff', { a: asked[0].ref, platformA: asked[0].platform, b: asked[1].ref, platformB: asked[1].platform }, s) : undefined, [asked]);
  return (
    <div class="compare">
      <form class="compare-form" onSubmit={(e) => { e.preventDefault(); setAsked([a, b]); }}>
        <SidePicker name="A" side={a} refs={refs} onChange={setA} />
        <SidePicker name="B" side={b} refs={refs} onChange={setB} />
        <button type="submit" class="primary">Compare</button>
      </form>
      {asked ? <Show state={st} what="the differences">{(d) => <DiffResult d={d} />}</Show> : <p class="muted">Pick two images (or two platforms of one) and compare them.</p>}
    </div>
  );
}

function DiffResult({ d }: { d: DiffResponse }): JSX.Element {
  const [kind, setKind] = useState<'modified' | 'added' | 'removed'>('modified');
  const [filter, setFilter] = useState('');
  const list = d[kind].filter((e) => filter === '' || e.path.toLowerCase().includes(filter.toLowerCase()));
  return (
    <div class="diff">
      <table class="kv sides" aria-label="The two images">
        <thead><tr><th /><th>A</th><th>B</th></tr></thead>
        <tbody>
          <tr><th scope="row">reference</th><td>{d.a.reference}</td><td>{d.b.reference}</td></tr>
          <tr><th scope="row">platform</th><td>{d.a.platform ?? ''}</td><td>{d.b.platform ?? ''}</td></tr>
          <tr><th scope="row">manifest</th><td><code>{shortDigest(d.a.digest)}</code></td><td><code>{shortDigest(d.b.digest)}</code></td></tr>
          <tr><th scope="row">config</th><td><code>{shortDigest(d.a.configDigest)}</code></td><td><code>{shortDigest(d.b.configDigest)}</code></td></tr>
          <tr><th scope="row">layers</th><td>{d.a.layers} · {humanSize(d.a.totalSize)}</td><td>{d.b.layers} · {humanSize(d.b.totalSize)}</td></tr>
          <tr><th scope="row">created</th><td>{d.a.created ?? ''}</td><td>{d.b.created ?? ''}</td></tr>
        </tbody>
      </table>
      <h2>Config differences ({d.config.length})</h2>
      {d.config.length === 0 ? <p class="muted">The configs are the same.</p> : (
        <table class="config-diff" aria-label="Config differences">
          <thead><tr><th>field</th><th>A</th><th>B</th></tr></thead>
          <tbody>{d.config.map((c) => <tr key={c.path}><td><code>{c.path}</code></td><td class="del">{c.a ?? '(missing)'}</td><td class="add">{c.b ?? '(missing)'}</td></tr>)}</tbody>
        </table>
      )}
      <h2>Files</h2>
      <p>
        <span class="mod">~{d.summary.modified} modified</span> · <span class="add">+{d.summary.added} added ({humanSize(d.summary.bytesAdded)})</span> ·{' '}
        <span class="del">−{d.summary.removed} removed ({humanSize(d.summary.bytesRemoved)})</span> · {d.summary.unchanged} unchanged{d.truncated ? ' · lists cut short' : ''}
      </p>
      <div class="subtabs" role="tablist" aria-label="File differences">
        {(['modified', 'added', 'removed'] as const).map((k) => (
          <button key={k} type="button" role="tab" aria-selected={kind === k} onClick={() => setKind(k)}>{k} ({d[k].length})</button>
        ))}
        <input type="search" placeholder="Filter paths…" aria-label="Filter changed paths" value={filter} onInput={(e) => setFilter((e.currentTarget as HTMLInputElement).value)} />
      </div>
      <VirtualList
        class="difflist" label={`${kind} files`} count={list.length} rowHeight={24}
        row={(i) => <DiffRow e={list[i]!} kind={kind} />}
      />
    </div>
  );
}

function DiffRow({ e, kind }: { e: DiffEntry; kind: string }): JSX.Element {
  const side = e.after ?? e.before;
  const detail = kind === 'modified'
    ? `${(e.changes ?? []).join(', ')}: ${humanSize(e.before?.size)} → ${humanSize(e.after?.size)}`
    : `${side?.type ?? ''} ${side?.type === 'file' ? humanSize(side.size) : ''}`;
  return (
    <div class={`frow ${kind === 'added' ? 'add' : kind === 'removed' ? 'del' : 'mod'}`} data-path={e.path}>
      <span class="fname">{e.path}</span>
      <span class="fdetail">{detail}</span>
    </div>
  );
}
