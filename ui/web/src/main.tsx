/** The explorer's shell: reference and platform pickers, the views, state kept in the URL hash. */
import { render, type JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { PlatformsResponse, RefsResponse } from '../../api.js';
import { AttestationsView } from './attestations.js';
import { getJson } from './client.js';
import { CompareView, type Side } from './compare.js';
import { Show, useAsync } from './common.js';
import { LayersView } from './layers.js';
import { StoreView } from './store.js';
import { StructureView } from './structure.js';
import './style.css';

type View = 'home' | 'structure' | 'layers' | 'attestations' | 'compare' | 'store';
const VIEWS: ReadonlyArray<{ id: Exclude<View, 'home'>; label: string }> = [
  { id: 'structure', label: 'Structure' },
  { id: 'layers', label: 'Layers' },
  { id: 'attestations', label: 'Attestations' },
  { id: 'compare', label: 'Compare' },
  { id: 'store', label: 'Store' },
];

/** Views that need no reference picked first. */
const FREE: ReadonlySet<View> = new Set(['compare', 'store']);

interface State {
  readonly view: View;
  readonly ref?: string;
  readonly platform?: string;
  /** Store view: the image traced and the path looked up. */
  readonly image?: string;
  readonly file?: string;
}

function readHash(): State {
  const p = new URLSearchParams(location.hash.replace(/^#\/?/, ''));
  const view = (p.get('view') ?? 'home') as View;
  return {
    view: ['home', 'structure', 'layers', 'attestations', 'compare', 'store'].includes(view) ? view : 'home',
    ...(p.get('ref') ? { ref: p.get('ref')! } : {}),
    ...(p.get('platform') ? { platform: p.get('platform')! } : {}),
    ...(p.get('image') ? { image: p.get('image')! } : {}),
    ...(p.get('file') ? { file: p.get('file')! } : {}),
  };
}

function writeHash(s: State): void {
  const p = new URLSearchParams();
  p.set('view', s.view);
  if (s.ref) p.set('ref', s.ref);
  if (s.platform) p.set('platform', s.platform);
  if (s.image) p.set('image', s.image);
  if (s.file) p.set('file', s.file);
  const h = `#/${p.toString()}`;
  if (location.hash !== h) history.pushState(null, '', h);
}

function App(): JSX.Element {
  const [state, setStateRaw] = useState<State>(readHash);
  const setState = (s: State): void => {
    writeHash(s);
    setStateRaw(s);
  };
  useEffect(() => {
    const on = (): void => setStateRaw(readHash());
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  const refs = useAsync((s) => getJson<RefsResponse>('refs', {}, s), []);
  // References given on the command line open at once.
  useEffect(() => {
    const first = refs.data?.refs.find((r) => r.source === 'argument');
    if (state.ref === undefined && first !== undefined) setState({ view: 'structure', ref: first.ref });
  }, [refs.data]);
  const platforms = useAsync(state.ref ? (s) => getJson<PlatformsResponse>('platforms', { ref: state.ref }, s) : undefined, [state.ref]);
  const present = (platforms.data?.platforms ?? []).filter((p) => p.present && p.platform !== undefined);
  const platform = state.platform ?? present[0]?.platform;
  const [draft, setDraft] = useState(state.ref ?? '');
  useEffect(() => setDraft(state.ref ?? ''), [state.ref]);

  const open = (ref: string, view: View = state.view === 'home' ? 'structure' : state.view): void => setState({ view, ref });
  const onTabKey = (e: KeyboardEvent): void => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = VIEWS.findIndex((v) => v.id === state.view);
    const next = VIEWS[(i + (e.key === 'ArrowRight' ? 1 : VIEWS.length - 1)) % VIEWS.length]!;
    setState({ ...state, view: next.id });
    requestAnimationFrame(() => document.getElementById(`tab-${next.id}`)?.focus());
  };
  const compareInitial = (): [Side, Side] => {
    const ref = state.ref ?? refs.data?.refs[0]?.ref ?? '';
    const ps = present.map((p) => p.platform);
    const other = refs.data?.refs.find((r) => r.ref !== ref)?.ref;
    if (ps.length >= 2) return [{ ref, platform: ps[0] }, { ref, platform: ps[1] }];
    return [{ ref, platform: ps[0] }, { ref: other ?? ref, platform: undefined }];
  };

  return (
    <div class="app">
      <header class="top">
        <button type="button" class="brand" onClick={() => setState({ view: 'home' })} aria-label="berth explorer: list of images">berth explorer</button>
        <form class="refform" onSubmit={(e) => { e.preventDefault(); if (draft.trim()) open(draft.trim()); }}>
          <input
            list="known-refs" value={draft} aria-label="Image reference (path, oci:, oci-archive:, docker-archive:, store name or docker://)" placeholder="Reference: path, oci:DIR, docker-archive:FILE, store name, docker://…"
            onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)}
          />
          <datalist id="known-refs">{(refs.data?.refs ?? []).map((r) => <option key={r.ref} value={r.ref}>{r.label}</option>)}</datalist>
          <button type="submit">Open</button>
        </form>
        {state.ref && (state.view === 'layers') ? (
          <select aria-label="Platform" value={platform ?? ''} onChange={(e) => setState({ ...state, platform: (e.currentTarget as HTMLSelectElement).value })}>
            {present.map((p) => <option key={p.digest} value={p.platform}>{p.platform}</option>)}
          </select>
        ) : null}
        <nav class="tabs" role="tablist" aria-label="Views" onKeyDown={onTabKey}>
          {VIEWS.map((v) => (
            <button
              key={v.id} id={`tab-${v.id}`} type="button" role="tab" aria-selected={state.view === v.id} tabIndex={state.view === v.id ? 0 : -1}
              disabled={!state.ref && !FREE.has(v.id)} onClick={() => setState({ ...state, view: v.id })}
            >
              {v.label}
            </button>
          ))}
        </nav>
      </header>
      <main class="content" aria-label={state.view}>
        {state.view === 'home' || !state.ref && !FREE.has(state.view) ? (
          <Show state={refs} what="the images">
            {(r) => <Home refs={r} onOpen={(ref) => open(ref, 'structure')} onStore={() => setState({ ...state, view: 'store' })} />}
          </Show>
        ) : null}
        {state.view === 'structure' && state.ref ? (
          <StructureView reference={state.ref} onOpenLayers={(p) => setState({ view: 'layers', ref: state.ref!, ...(p ? { platform: p } : {}) })} />
        ) : null}
        {state.view === 'layers' && state.ref ? (
          platforms.error !== undefined || platform !== undefined || (platforms.data && present.length === 0)
            ? <LayersView reference={state.ref} platform={platform} />
            : <p class="loading">Loading the platforms…</p>
        ) : null}
        {state.view === 'attestations' && state.ref ? <AttestationsView reference={state.ref} /> : null}
        {state.view === 'store' ? (
          <StoreView
            image={state.image} file={state.file}
            onSelect={(image) => setState({ ...state, image, file: undefined })}
            onFile={(file) => setState({ ...state, file })}
          />
        ) : null}
        {state.view === 'compare' && refs.data && (!state.ref || platforms.data || platforms.error) ? <CompareView refs={refs.data.refs} initial={compareInitial()} /> : null}
      </main>
    </div>
  );
}

function Home({ refs, onOpen, onStore }: { refs: RefsResponse; onOpen: (ref: string) => void; onStore: () => void }): JSX.Element {
  return (
    <div class="home">
      <h1>Images</h1>
      <p class="muted">Open one below, or type any reference above: an OCI layout, an oci-archive, a docker save archive, a store name{' '}
        or a docker:// reference.</p>
      <ul class="reflist">
        {refs.refs.map((r) => (
          <li key={r.ref}>
            <button type="button" onClick={() => onOpen(r.ref)} aria-label={`Open ${r.label}`}>{r.label}</button>
            <span class="muted"> {r.source}{r.detail ? ` · ${r.detail}` : ''}</span>
            <div><code class="muted">{r.ref}</code></div>
          </li>
        ))}
      </ul>
      <p class="muted">Local store: {refs.store.available ? refs.store.root : `not listed (${refs.store.note ?? 'unavailable'})`}{' '}
        <button type="button" onClick={onStore}>Open the Store view</button></p>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
