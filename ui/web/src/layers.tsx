/**
 * Layers: per-layer sizes, diff_id, history step, files added/modified/deleted and wasted bytes;
 * the flattened file tree (lazy, one directory at a time, virtualised) with the layer each entry
 * comes from; one layer's changeset; search by path; file preview as text or hex.
 */
import type { JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { ChangeEntry, ChangesResponse, FileEntry, FilesResponse, LayersResponse, SearchResponse } from '../../api.js';
import { ApiFailure, getFile, getJson, type FileBytes } from './client.js';
import { ErrorBox, Loading, Show, VirtualList, useAsync } from './common.js';
import { errorText, humanSize, modeString, shortDigest } from './format.js';

const ROW = 24;

export function LayersView({ reference, platform }: { reference: string; platform: string | undefined }): JSX.Element {
  const layers = useAsync((s) => getJson<LayersResponse>('layers', { ref: reference, platform }, s), [reference, platform]);
  const [layer, setLayer] = useState<number | undefined>(undefined);
  const [tab, setTab] = useState<'files' | 'changes' | 'search'>('files');
  const [preview, setPreview] = useState<string | undefined>(undefined);
  const [query, setQuery] = useState('');
  useEffect(() => {
    setLayer(undefined);
    setPreview(undefined);
    setTab('files');
  }, [reference, platform]);
  const pick = (i: number): void => {
    setLayer(i);
    setTab('changes');
  };
  return (
    <div class="layers">
      <Show state={layers} what="the layers">
        {(l) => <LayerTable data={l} selected={layer} onSelect={pick} />}
      </Show>
      <div class="fs">
        <div class="fs-left">
          <div class="subtabs" role="tablist" aria-label="File views">
            <button type="button" role="tab" aria-selected={tab === 'files'} onClick={() => setTab('files')}>Files (all layers)</button>
            <button type="button" role="tab" aria-selected={tab === 'changes'} disabled={layer === undefined} onClick={() => setTab('changes')}>
              {layer === undefined ? 'Layer changes (pick a layer)' : `Layer ${layer} changes`}
            </button>
            <label class="search">
              <span class="sr-only">Search paths</span>
              <input
                type="search" placeholder="Search paths…" aria-label="Search paths in the image" value={query}
                onInput={(e) => {
                  setQuery((e.currentTarget as HTMLInputElement).value);
                  setTab('search');
                }}
              />
            </label>
          </div>
          <div class="tabbody" hidden={tab !== 'files'}>
            <FileTree key={`${reference}|${platform ?? ''}`} reference={reference} platform={platform} onPreview={setPreview} />
          </div>
          {tab === 'changes' && layer !== undefined ? <Changes reference={reference} platform={platform} layer={layer} onPreview={setPreview} /> : null}
          {tab === 'search' ? <Search reference={reference} platform={platform} query={query} onPreview={setPreview} /> : null}
        </div>
        <section class="fs-right" aria-label="File preview">
          {preview === undefined ? <p class="muted">Pick a file to see its content.</p> : <Preview key={preview} reference={reference} platform={platform} path={preview} />}
        </section>
      </div>
    </div>
  );
}

function LayerTable({ data, selected, onSelect }: { data: LayersResponse; selected: number | undefined; onSelect: (i: number) => void }): JSX.Element {
  return (
    <div class="table-wrap">
      <table class="layer-table" aria-label="Layers">
        <thead>
          <tr>
            <th>#</th><th title="Digest of the compressed layer blob">digest</th><th>size</th><th>uncompressed</th>
            <th title="Digest of the uncompressed tar (config rootfs.diff_ids)">diff_id</th>
            <th title="Paths added, modified and deleted">files</th><th title="Bytes this layer stores that a later layer overwrites or deletes">wasted</th>
            <th title="The history step that made the layer">created by</th>
          </tr>
        </thead>
        <tbody>
          {data.layers.map((l) => (
            <tr
              key={l.index}
              class={selected === l.index ? 'selected' : ''}
              tabIndex={0}
              aria-selected={selected === l.index}
              aria-label={`Layer ${l.index}`}
              onClick={() => onSelect(l.index)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  onSelect(l.index);
                }
              }}
            >
              <td>{l.index}</td>
              <td><code title={l.digest}>{shortDigest(l.digest)}</code></td>
              <td>{humanSize(l.size)}</td>
              <td>{humanSize(l.uncompressedSize)}</td>
              <td><code title={l.diffId}>{shortDigest(l.diffId)}</code></td>
              <td><span class="add">+{l.filesAdded}</span> <span class="mod">~{l.filesModified}</span> <span class="del">−{l.filesDeleted}</span></td>
              <td>{l.wastedBytes > 0 ? <span class="del">{humanSize(l.wastedBytes)}</span> : '0'}</td>
              <td class="created" title={l.history?.createdBy ?? l.history?.comment ?? ''}>{(l.history?.createdBy ?? l.history?.comment ?? '').replace(/\s+/g, ' ')}</td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <td />
            <td>{data.layers.length} layers</td><td>{humanSize(data.totals.size)}</td><td>{humanSize(data.totals.uncompressedSize)}</td><td />
            <td>{data.totals.files} paths</td><td>{humanSize(data.totals.wastedBytes)}</td><td />
          </tr>
        </tfoot>
      </table>
    </div>
  );
}

interface Dir {
  readonly entries: readonly FileEntry[];
  readonly total: number;
  readonly loading: boolean;
  readonly error?: string;
}

type Row =
  | { kind: 'entry'; entry: FileEntry; depth: number }
  | { kind: 'more'; dir: string; depth: number; left: number }
  | { kind: 'note'; text: string; depth: number };

function FileTree({ reference, platform, onPreview }: { reference: string; platform: string | undefined; onPreview: (p: string) => void }): JSX.Element {
  const [dirs, setDirs] = useState<ReadonlyMap<string, Dir>>(new Map());
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set(['/']));
  const [active, setActive] = useState(0);

  const load = (dir: string, offset: number): void => {
    setDirs((m) => {
      const was = m.get(dir);
      if (was?.loading) return m;
      const n = new Map(m);
      n.set(dir, { entries: was?.entries ?? [], total: was?.total ?? 0, loading: true });
      return n;
    });
    getJson<FilesResponse>('files', { ref: reference, platform, path: dir, offset }).then(
      (r) => setDirs((m) => {
        const n = new Map(m);
        const was = m.get(dir);
        n.set(dir, { entries: [...(offset === 0 ? [] : was?.entries ?? []), ...r.entries], total: r.total, loading: false });
        return n;
      }),
      (err: unknown) => setDirs((m) => new Map(m).set(dir, { entries: [], total: 0, loading: false, error: errorText(err) })),
    );
  };
  useEffect(() => load('/', 0), []);

  const rows = useMemo(() => {
    const out: Row[] = [];
    const add = (dir: string, depth: number): void => {
      const d = dirs.get(dir);
      if (d === undefined) return;
      for (const e of d.entries) {
        out.push({ kind: 'entry', entry: e, depth });
        if (e.type === 'directory' && open.has(e.path)) add(e.path, depth + 1);
      }
      if (d.error) out.push({ kind: 'note', text: d.error, depth });
      else if (d.loading) out.push({ kind: 'note', text: 'loading…', depth });
      else if (d.entries.length < d.total) out.push({ kind: 'more', dir, depth, left: d.total - d.entries.length });
      else if (d.total === 0) out.push({ kind: 'note', text: '(empty)', depth });
    };
    add('/', 0);
    return out;
  }, [dirs, open]);

  const toggle = (e: FileEntry): void => {
    const n = new Set(open);
    if (n.has(e.path)) n.delete(e.path);
    else {
      n.add(e.path);
      if (!dirs.has(e.path)) load(e.path, 0);
    }
    setOpen(n);
  };
  const act = (i: number): void => {
    const r = rows[i];
    if (r === undefined) return;
    setActive(i);
    if (r.kind === 'more') load(r.dir, dirs.get(r.dir)?.entries.length ?? 0);
    else if (r.kind === 'entry') {
      if (r.entry.type === 'directory') toggle(r.entry);
      else if (r.entry.type === 'file' || r.entry.type === 'symlink') onPreview(r.entry.path);
    }
  };
  const onKey = (e: KeyboardEvent): void => {
    const r = rows[active];
    const move = (i: number): void => setActive(Math.max(0, Math.min(rows.length - 1, i)));
    switch (e.key) {
      case 'ArrowDown': move(active + 1); break;
      case 'ArrowUp': move(active - 1); break;
      case 'Home': move(0); break;
      case 'End': move(rows.length - 1); break;
      case 'PageDown': move(active + 15); break;
      case 'PageUp': move(active - 15); break;
      case 'ArrowRight':
        if (r?.kind === 'entry' && r.entry.type === 'directory' && !open.has(r.entry.path)) toggle(r.entry);
        else move(active + 1);
        break;
      case 'ArrowLeft':
        if (r?.kind === 'entry' && r.entry.type === 'directory' && open.has(r.entry.path)) toggle(r.entry);
        else if (r !== undefined) {
          for (let i = active - 1; i >= 0; i--) {
            const p = rows[i];
            if (p?.kind === 'entry' && p.depth < r.depth) {
              move(i);
              break;
            }
          }
        }
        break;
      case 'Enter': case ' ': act(active); break;
      default: return;
    }
    e.preventDefault();
  };
  return (
    <VirtualList
      class="filetree" role="tree" label="Files of the image" count={rows.length} rowHeight={ROW} active={active} activeId={`ft-${active}`} onKeyDown={onKey}
      row={(i) => {
        const r = rows[i]!;
        const pad = { paddingLeft: `${8 + r.depth * 16}px` };
        if (r.kind === 'note') return <div class="frow note" style={pad}>{r.text}</div>;
        if (r.kind === 'more') {
          return <div id={`ft-${i}`} role="treeitem" class={`frow more${i === active ? ' active' : ''}`} style={pad} onClick={() => act(i)}>… {r.left} more (load)</div>;
        }
        const e = r.entry;
        const isDir = e.type === 'directory';
        return (
          <div
            id={`ft-${i}`} role="treeitem" aria-level={r.depth + 1} aria-expanded={isDir ? open.has(e.path) : undefined} aria-label={e.path}
            class={`frow${i === active ? ' active' : ''} t-${e.type}`} style={pad} onClick={() => act(i)} data-path={e.path}
          >
            <span class="twist">{isDir ? (open.has(e.path) ? '▾' : '▸') : ''}</span>
            <span class="fname">{e.name}{e.type === 'symlink' ? <span class="muted"> → {e.linkTarget}</span> : null}</span>
            <span class="fmode">{modeString(e.type, e.mode)}</span>
            <span class="fsize">{e.type === 'file' ? humanSize(e.size) : ''}</span>
            <span class={`badge l${e.layer % 6}`} title={e.layer >= 0 ? `from layer ${e.layer}` : 'root'}>{e.layer >= 0 ? `L${e.layer}` : ''}</span>
          </div>
        );
      }}
    />
  );
}

type ChangeRow = { kind: 'head'; text: string } | { kind: 'change'; mark: '+' | '~' | '−'; entry: ChangeEntry };

function Changes({ reference, platform, layer, onPreview }: { reference: string; platform: string | undefined; layer: number; onPreview: (p: string) => void }): JSX.Element {
  const st = useAsync((s) => getJson<ChangesResponse>('changes', { ref: reference, platform, layer }, s), [reference, platform, layer]);
  return (
    <Show state={st} what={`the changes of layer ${layer}`}>
      {(c) => {
        const rows: ChangeRow[] = [];
        const section = (name: string, mark: '+' | '~' | '−', list: readonly ChangeEntry[], count: number): void => {
          rows.push({ kind: 'head', text: `${name} (${count}${count > list.length ? `, first ${list.length} shown` : ''})` });
          for (const entry of list) rows.push({ kind: 'change', mark, entry });
        };
        section('Added', '+', c.added, c.counts.added);
        section('Modified', '~', c.modified, c.counts.modified);
        section('Deleted', '−', c.deleted, c.counts.deleted);
        return (
          <VirtualList
            class="changes" label={`Changes of layer ${layer}`} count={rows.length} rowHeight={ROW}
            row={(i) => {
              const r = rows[i]!;
              if (r.kind === 'head') return <div class="frow head">{r.text}</div>;
              const e = r.entry;
              const cls = r.mark === '+' ? 'add' : r.mark === '~' ? 'mod' : 'del';
              const canOpen = r.mark !== '−' && e.type === 'file';
              return (
                <div class={`frow ${cls}${canOpen ? ' link' : ''}`} onClick={canOpen ? () => onPreview(e.path) : undefined} data-path={e.path}>
                  <span class="mark">{r.mark}</span>
                  <span class="fname">{e.path}{e.linkTarget !== undefined ? ` → ${e.linkTarget}` : ''}</span>
                  <span class="fmode">{modeString(e.type, e.mode)}</span>
                  <span class="fsize">{e.type === 'file' ? humanSize(e.size) : ''}</span>
                </div>
              );
            }}
          />
        );
      }}
    </Show>
  );
}

function Search({ reference, platform, query, onPreview }: { reference: string; platform: string | undefined; query: string; onPreview: (p: string) => void }): JSX.Element {
  const [q, setQ] = useState(query);
  useEffect(() => {
    const t = setTimeout(() => setQ(query.trim()), 250);
    return () => clearTimeout(t);
  }, [query]);
  const st = useAsync(q === '' ? undefined : (s) => getJson<SearchResponse>('search', { ref: reference, platform, q }, s), [reference, platform, q]);
  if (q === '') return <p class="muted">Type part of a path to search the whole image.</p>;
  return (
    <Show state={st} what="matching paths">
      {(r) => (
        <div class="search-results">
          <p class="muted">{r.total} paths match{r.total > r.entries.length ? ` (first ${r.entries.length} shown)` : ''}</p>
          <VirtualList
            class="results" label="Search results" count={r.entries.length} rowHeight={ROW}
            row={(i) => {
              const e = r.entries[i]!;
              return (
                <div class={`frow t-${e.type}${e.type === 'file' ? ' link' : ''}`} onClick={e.type === 'file' ? () => onPreview(e.path) : undefined} data-path={e.path}>
                  <span class="fname">{e.path}</span>
                  <span class="fsize">{e.type === 'file' ? humanSize(e.size) : e.type}</span>
                  <span class={`badge l${e.layer % 6}`}>L{e.layer}</span>
                </div>
              );
            }}
          />
        </div>
      )}
    </Show>
  );
}

function isText(bytes: Uint8Array): string | undefined {
  if (bytes.subarray(0, 8192).includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function hexLine(bytes: Uint8Array, line: number): string {
  const at = line * 16;
  const part = bytes.subarray(at, at + 16);
  const hex = [...part].map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(47, ' ');
  const ascii = [...part].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${at.toString(16).padStart(8, '0')}  ${hex}  ${ascii}`;
}

function Preview({ reference, platform, path }: { reference: string; platform: string | undefined; path: string }): JSX.Element {
  const [partial, setPartial] = useState(false);
  const st = useAsync((s) => getFile({ ref: reference, platform, path, partial: partial ? 1 : undefined }, s), [reference, platform, path, partial]);
  if (st.error instanceof ApiFailure && st.error.code === 'TOO_LARGE') {
    return (
      <div class="preview">
        <h3>{path}</h3>
        <ErrorBox error={st.error} />
        <button type="button" onClick={() => setPartial(true)}>Show the first 64 KiB</button>
      </div>
    );
  }
  if (st.error !== undefined) return <div class="preview"><h3>{path}</h3><ErrorBox error={st.error} /></div>;
  if (st.loading || st.data === undefined) return <Loading what={path} />;
  return <FileContent file={st.data} />;
}

function FileContent({ file }: { file: FileBytes }): JSX.Element {
  const text = useMemo(() => isText(file.bytes), [file]);
  return (
    <div class="preview">
      <h3>{file.path}</h3>
      <p class="muted">{humanSize(file.size)} · from layer {file.layer}{file.truncated ? ` · first ${humanSize(file.bytes.length)} shown` : ''} · {text !== undefined ? 'text' : 'binary (hex)'}</p>
      {text !== undefined
        ? <pre class="filetext" tabIndex={0} aria-label={`Content of ${file.path}`}>{text}</pre>
        : <VirtualList class="hex" label={`Hex dump of ${file.path}`} count={Math.ceil(file.bytes.length / 16)} rowHeight={18} row={(i) => <code>{hexLine(file.bytes, i)}</code>} />}
    </div>
  );
}
