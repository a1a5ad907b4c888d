/**
 * Store: the images of the local store (a Docker data root) and, for one of them, the walk
 * `berth trace` prints, drawn as a vertical chain of boxes in the Structure view's visual
 * language: name → repositories.json → image config in imagedb → each layer (diff_id → chainID →
 * layerdb directory → the driver's directory), with the real paths and values. A path box asks
 * "where on disk is this file?": which layer provides it, where it lies, which layers above hide it.
 */
import type { JSX } from 'preact';
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { StoreImageRow, StoreImagesResponse, StorePathResponse, StoreTraceResponse } from '../../api.js';
import type { TraceLayer, TracePathEvent } from '../../../src/index.js';
import { getJson } from './client.js';
import { ErrorBox, Loading, Show, useAsync } from './common.js';
import { humanSize, shortDigest } from './format.js';

export interface StoreViewProps {
  /** The image selected (a name or ID of the store), if any. */
  readonly image?: string;
  /** The path looked up, if any. */
  readonly file?: string;
  readonly onSelect: (image: string) => void;
  readonly onFile: (file: string | undefined) => void;
}

export function StoreView(p: StoreViewProps): JSX.Element {
  const images = useAsync((s) => getJson<StoreImagesResponse>('store/images', {}, s), []);
  return (
    <div class="store">
      <Show state={images} what="the images of the store">
        {(data) => <ImageTable data={data} selected={p.image} onSelect={p.onSelect} />}
      </Show>
      {p.image === undefined
        ? <p class="muted">Select an image (click, or Tab to it and press Enter) to see how the store finds its files.</p>
        : <Trace key={p.image} name={p.image} file={p.file} onFile={p.onFile} />}
    </div>
  );
}

function ImageTable({ data, selected, onSelect }: { data: StoreImagesResponse; selected: string | undefined; onSelect: (name: string) => void }): JSX.Element {
  return (
    <section class="store-images" aria-label="Store images">
      <p class="muted store-root">Data root <code>{data.root}</code> · driver {data.driver} · {data.total} image{data.total === 1 ? '' : 's'}
        {data.truncated ? ` (the first ${data.images.length} shown)` : ''}</p>
      {data.notes.map((n) => <p key={n} class="muted">note: {n}</p>)}
      {data.images.length === 0 ? <p class="muted">This store holds no image. Load one with <code>berth load FILE</code>.</p> : (
        <div class="table-wrap">
          <table class="layer-table store-table" aria-label="Images of the store">
            <thead>
              <tr>
                <th>repository</th><th>tag</th><th title="sha256 of the image config (imagedb)">image ID</th><th>created</th>
                <th title="Sum of the layers' layerdb sizes">size</th><th>layers</th>
              </tr>
            </thead>
            <tbody>
              {data.images.map((r) => <ImageRow key={`${r.name}\0${r.id}`} row={r} selected={selected === r.name} onSelect={onSelect} />)}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ImageRow({ row, selected, onSelect }: { row: StoreImageRow; selected: boolean; onSelect: (name: string) => void }): JSX.Element {
  return (
    <tr
      class={selected ? 'selected' : ''}
      tabIndex={0}
      aria-selected={selected}
      aria-label={`Image ${row.repository}:${row.tag}`}
      onClick={() => onSelect(row.name)}
      onKeyDown={(e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onSelect(row.name);
        }
      }}
    >
      <td>{row.repository}</td>
      <td>{row.tag}</td>
      <td><code title={row.id}>{shortDigest(row.id)}</code></td>
      <td>{row.created ?? ''}</td>
      <td title={`${row.size} bytes`}>{humanSize(row.size)}</td>
      <td>{row.layers}{row.problems.length > 0 ? <span class="del" title={row.problems.join('\n')}> ⚠ {row.problems.length}</span> : null}</td>
    </tr>
  );
}

// ---------------------------------------------------------------------------------------------
// the chain

type BoxKind = 'name' | 'repos' | 'config' | 'layer';

interface Box {
  readonly id: string;
  readonly kind: BoxKind;
  readonly title: string;
  readonly lines: readonly string[];
  readonly layer?: TraceLayer;
  /** The label on the arrow into this box. */
  readonly via?: string;
  readonly problem: boolean;
}

const BOX_W = 780;
const LINE_H = 15;
const GAP = 34;
const MARGIN = 16;
const CLIP = 116;

function clip(l: string): string {
  return l.length > CLIP ? `${l.slice(0, CLIP - 1)}…` : l;
}

function boxesOf(t: StoreTraceResponse, found: StorePathResponse | undefined): Box[] {
  const boxes: Box[] = [];
  boxes.push({ id: 'name', kind: 'name', title: `name ${JSON.stringify(t.name)}`, lines: [`data root ${t.root}`, `driver ${t.driver}`], problem: false });
  const r = t.resolution;
  boxes.push(r.via === 'repositories.json'
    ? {
      id: 'repos', kind: 'repos', title: 'repositories.json', via: 'looked up in', problem: false,
      lines: [r.file, `Repositories[${JSON.stringify(r.repository)}][${JSON.stringify(r.reference)}]`, `= ${r.id}`],
    }
    : { id: 'repos', kind: 'repos', title: 'an image ID', via: 'is', lines: [r.id, 'matched in imagedb/content/sha256/'], problem: false });
  const img = t.image;
  const cfgLines = [`image ID ${img.id}`, img.config, `${img.configSize} bytes; their sha256 is the image ID`, `rootfs.diff_ids: ${t.layers.length} layer${t.layers.length === 1 ? '' : 's'}`];
  if (img.tags.length + img.digests.length > 0) cfgLines.push(`names: ${[...img.tags, ...img.digests].join(', ')}`);
  boxes.push({ id: 'config', kind: 'config', title: 'image config (imagedb)', via: 'image ID', lines: cfgLines, problem: t.problems.length > 0 });
  for (const l of t.layers) {
    const lines = [
      `diff_id ${l.diffId}`,
      `chainID ${l.chainId}${l.index === 0 ? '  (= diff_id)' : ''}`,
      `${l.layerdb}/${l.exists ? '' : '  MISSING'}`,
      `  size ${l.size ?? '(none)'} · cache-id ${l.cacheId ?? '(none)'}`,
      `  parent ${l.parent ?? '(none: base layer)'}`,
      l.files === undefined ? 'no driver directory' : `${l.files}/${l.filesExist ? '' : '  MISSING'}`,
    ];
    for (const e of found?.path.events.filter((x) => x.layer === l.index) ?? []) {
      lines.push(`/${found!.path.path}: ${ACTIONS[e.action] ?? e.action}${e.onDisk ? ` → ${e.onDisk}` : ''}`);
    }
    boxes.push({
      id: `layer${l.index}`, kind: 'layer', title: `layer ${l.index}`, layer: l, lines, problem: l.problems.length > 0 || !l.exists || !l.filesExist,
      via: l.index === 0 ? 'diff_ids[0]' : `diff_ids[${l.index}], parent = layer ${l.index - 1}`,
    });
  }
  return boxes;
}

const ACTIONS: Readonly<Record<string, string>> = {
  adds: 'adds it',
  overrides: 'overrides it (replaces the lower layer\'s entry)',
  deletes: 'deletes it (whiteout)',
  'deletes-parent': 'deletes a parent directory (whiteout)',
  'opaque-parent': 'makes a parent directory opaque',
  'replaces-parent': 'replaces a parent directory with a non-directory',
  opaque: 'makes it opaque (lower contents hidden)',
};

function pathClass(layer: number, found: StorePathResponse | undefined): string {
  if (found === undefined) return '';
  const p = found.path;
  if (p.visibleFrom === layer) return ' provides';
  const evs = p.events.filter((e) => e.layer === layer);
  if (evs.some((e) => e.action !== 'adds' && e.action !== 'overrides')) return ' hides';
  if (evs.length > 0) return ' touched';
  return '';
}

function Trace({ name, file, onFile }: { name: string; file: string | undefined; onFile: (f: string | undefined) => void }): JSX.Element {
  const trace = useAsync((s) => getJson<StoreTraceResponse>('store/trace', { name }, s), [name]);
  const where = useAsync(file ? (s) => getJson<StorePathResponse>('store/path', { name, path: file }, s) : undefined, [name, file]);
  return (
    <Show state={trace} what="the trace">
      {(t) => <TraceChain trace={t} found={where.data} where={where} file={file} onFile={onFile} />}
    </Show>
  );
}

function TraceChain({ trace, found, where, file, onFile }: {
  trace: StoreTraceResponse; found: StorePathResponse | undefined; where: { error?: unknown; loading: boolean }; file: string | undefined; onFile: (f: string | undefined) => void;
}): JSX.Element {
  const boxes = useMemo(() => boxesOf(trace, found), [trace, found]);
  const placed = useMemo(() => {
    let y = MARGIN;
    return boxes.map((b) => {
      const h = (b.lines.length + 1) * LINE_H + 14;
      const at = { box: b, y, h };
      y += h + GAP;
      return at;
    });
  }, [boxes]);
  const height = (placed.at(-1)?.y ?? 0) + (placed.at(-1)?.h ?? 0) + MARGIN;
  const width = BOX_W + 2 * MARGIN;
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const [scale, setScale] = useState(1);
  const paneRef = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const w = paneRef.current?.clientWidth ?? width;
    setScale(Math.max(0.4, Math.min(1, (w - 8) / width)));
  }, [width]);
  const move = (delta: number, from: Element): void => {
    const all = [...(paneRef.current?.querySelectorAll<SVGGElement>('[data-box]') ?? [])];
    all[Math.max(0, Math.min(all.length - 1, all.indexOf(from as SVGGElement) + delta))]?.focus();
  };
  const sel = boxes.find((b) => b.id === selected);
  return (
    <div class="structure store-trace">
      <div class="graph-pane">
        <div class="toolbar" role="toolbar" aria-label="Trace zoom">
          <span class="muted">berth trace {trace.name} · {trace.layers.length} layer{trace.layers.length === 1 ? '' : 's'}{trace.truncated ? ' (cut)' : ''}</span>
          <span class="spacer" />
          <button type="button" aria-label="Zoom out" onClick={() => setScale((s) => Math.max(0.3, s / 1.25))}>−</button>
          <button type="button" aria-label="Zoom in" onClick={() => setScale((s) => Math.min(3, s * 1.25))}>+</button>
        </div>
        <div class="graph" ref={paneRef}>
          <svg width={width * scale} height={height * scale} viewBox={`0 0 ${width} ${height}`} role="list" aria-label={`Trace of ${trace.name}`}>
            <defs>
              <marker id="trace-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
              </marker>
            </defs>
            {placed.slice(1).map((p, i) => {
              const from = placed[i]!;
              const x = MARGIN + 40;
              return (
                <g key={`e-${p.box.id}`}>
                  <path class="edge" d={`M${x},${from.y + from.h} L${x},${p.y}`} marker-end="url(#trace-arrow)" />
                  <text class="elabel" x={x + 8} y={p.y - GAP / 2 + 4}>{p.box.via}</text>
                </g>
              );
            })}
            {placed.map(({ box: b, y, h }) => (
              <g
                key={b.id}
                data-box={b.id}
                class={`node role-${b.kind === 'repos' ? 'index' : b.kind === 'config' ? 'config' : b.kind === 'name' ? 'entry' : 'layer'}${b.problem ? ' absent' : ''}${b.layer ? pathClass(b.layer.index, found) : ''}${selected === b.id ? ' selected' : ''}`}
                transform={`translate(${MARGIN},${y})`}
                tabindex={0}
                role="listitem"
                aria-label={[b.title, ...b.lines].join(', ')}
                onClick={() => setSelected(b.id)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    setSelected(b.id);
                  } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
                    e.preventDefault();
                    move(e.key === 'ArrowDown' ? 1 : -1, e.currentTarget as Element);
                  }
                }}
              >
                <rect width={BOX_W} height={h} rx="6" />
                <text x="10" y="20" class="nt">{b.title}</text>
                {b.lines.map((l, i) => <text key={i} x="10" y={20 + (i + 1) * LINE_H} class={l.startsWith('/') ? 'nl npath' : 'nl'}>{clip(l)}</text>)}
              </g>
            ))}
          </svg>
        </div>
      </div>
      <aside class="side" aria-label="Where on disk">
        <PathBox file={file} onFile={onFile} />
        {where.error !== undefined ? <ErrorBox error={where.error} /> : where.loading ? <Loading what="the path" /> : found ? <PathResult r={found} /> : null}
        {sel ? <BoxDetails box={sel} trace={trace} /> : <p class="muted">Select a box (click, or Tab to it and press Enter) for all its values.</p>}
      </aside>
    </div>
  );
}

function PathBox({ file, onFile }: { file: string | undefined; onFile: (f: string | undefined) => void }): JSX.Element {
  const [draft, setDraft] = useState(file ?? '');
  return (
    <form class="pathbox" onSubmit={(e) => {
      e.preventDefault();
      const v = draft.trim();
      const f = v === '' ? undefined : v.startsWith('/') ? v : `/${v}`;
      setDraft(f ?? '');
      onFile(f);
    }}>
      <label for="store-path">Where on disk is a file of this image?</label>
      <div class="pathrow">
        <input id="store-path" type="text" value={draft} placeholder="/etc/os-release" spellcheck={false}
          onInput={(e) => setDraft((e.currentTarget as HTMLInputElement).value)} />
        <button type="submit" class="primary">Find</button>
      </div>
    </form>
  );
}

function diskText(e: TracePathEvent): string {
  const d = e.disk;
  if (d === undefined) return e.action === 'deletes' || e.action === 'deletes-parent' ? 'nothing (the driver applied the deletion)' : '';
  switch (d.kind) {
    case 'absent': return 'not on disk';
    case 'whiteout': return 'a whiteout (char device 0/0)';
    case 'file': return `a file, ${d.size ?? 0} bytes`;
    case 'symlink': return `a symlink → ${d.target ?? '?'}`;
    default: return d.kind === 'directory' && (e.action === 'opaque' || e.action === 'opaque-parent') ? 'a directory marked opaque (xattr)' : `a ${d.kind}`;
  }
}

function PathResult({ r }: { r: StorePathResponse }): JSX.Element {
  const p = r.path;
  const summary = p.visibleFrom !== undefined
    ? `The container sees /${p.path} from layer ${p.visibleFrom}${p.mergedFrom.length > 1 ? ` (a directory merged from layers ${p.mergedFrom.join(', ')})` : ''}.`
    : p.removedBy !== undefined
      ? `The container does not see /${p.path}: layer ${p.removedBy.layer} ${ACTIONS[p.removedBy.action] ?? p.removedBy.action} (${p.removedBy.member}).`
      : `The container does not see /${p.path}: no layer has it.`;
  return (
    <section class="pathresult" aria-label={`Where /${p.path} is`} role="region">
      <p class={p.visibleFrom !== undefined ? 'add' : 'del'}>{summary}</p>
      {r.file !== undefined ? <p>On disk: <code class="ondisk">{r.file}</code></p> : null}
      {p.events.length > 0 ? (
        <table class="pathevents" aria-label="Layers that touch the path">
          <thead><tr><th>layer</th><th>what it does</th><th>tar member · on disk</th></tr></thead>
          <tbody>
            {p.events.map((e, i) => (
              <tr key={i} class={e.action === 'adds' || e.action === 'overrides' ? '' : 'del'}>
                <td>{e.layer}</td>
                <td>{ACTIONS[e.action] ?? e.action}</td>
                <td><code>{e.member}</code> ({e.type}{e.size > 0 ? `, ${e.size} bytes` : ''}{e.linkname ? ` → ${e.linkname}` : ''})
                  {e.onDisk ? <><br /><code>{e.onDisk}</code> <span class="muted">{diskText(e)}</span></> : <span class="muted"> {diskText(e)}</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {r.truncated ? <p class="muted">Only the first {p.events.length} events are shown.</p> : null}
    </section>
  );
}

function Row({ k, v }: { k: string; v: string | undefined }): JSX.Element | null {
  if (v === undefined || v === '') return null;
  return <><dt>{k}</dt><dd><code>{v}</code></dd></>;
}

function BoxDetails({ box, trace }: { box: Box; trace: StoreTraceResponse }): JSX.Element {
  const l = box.layer;
  const img = trace.image;
  const r = trace.resolution;
  return (
    <div class="details" aria-label={`Details of ${box.title}`} role="region">
      <h2>{box.title}</h2>
      <dl>
        {box.kind === 'name' ? <><Row k="data root" v={trace.root} /><Row k="driver" v={trace.driver} /><Row k="name" v={trace.name} /></> : null}
        {box.kind === 'repos' && r.via === 'repositories.json'
          ? <><Row k="file" v={`${trace.root}/${r.file}`} /><Row k="repository" v={r.repository} /><Row k="reference" v={r.reference} /><Row k="image ID" v={r.id} /></>
          : null}
        {box.kind === 'repos' && r.via === 'id' ? <Row k="image ID" v={r.id} /> : null}
        {box.kind === 'config' ? <>
          <Row k="image ID" v={img.id} /><Row k="config" v={`${trace.root}/${img.config}`} /><Row k="config size" v={`${img.configSize} bytes`} />
          <Row k="names" v={[...img.tags, ...img.digests].join(', ')} /><Row k="metadata parent" v={img.parent} /><Row k="lastUpdated" v={img.lastUpdated} />
        </> : null}
        {l !== undefined ? <>
          <Row k="diff_id" v={l.diffId} /><Row k="chainID" v={l.chainId} /><Row k="chainID rule" v={l.chainRule} />
          <Row k="layerdb" v={`${trace.root}/${l.layerdb}`} /><Row k="diff (file)" v={l.diff === undefined ? undefined : `${l.diff}${l.diffMatches ? '' : '  (differs from the config)'}`} />
          <Row k="size (file)" v={l.size} /><Row k="cache-id (file)" v={l.cacheId} /><Row k="parent (file)" v={l.parent ?? '(none: base layer)'} />
          <Row k="tar-split" v={l.tarSplit === undefined ? 'missing: the tar cannot be rebuilt' : `${l.members ?? '?'} members, rebuilds a ${l.tarSize ?? '?'} byte tar`} />
          <Row k="files" v={l.files === undefined ? undefined : `${trace.root}/${l.files}${l.filesExist ? '' : '  (missing)'}`} />
          {l.overlay ? <>
            <Row k="link" v={l.overlay.link === undefined ? undefined : `${l.overlay.link} (overlay2/l/${l.overlay.link} → ${l.overlay.linkTarget ?? 'missing'})`} />
            <Row k="lower" v={l.overlay.lower.join(':')} /><Row k="committed" v={l.overlay.committed ? 'yes' : 'no'} />
          </> : null}
        </> : null}
      </dl>
      {[...(l?.problems ?? []), ...(box.kind === 'config' ? trace.problems : [])].map((p) => <p key={p} class="error">{p}</p>)}
    </div>
  );
}
