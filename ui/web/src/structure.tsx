/**
 * Structure: the object graph of a reference, laid out by dagre the way the image-spec diagrams
 * draw it — entry point → index → one manifest per platform → config, layers, attestation
 * manifests. Click (or Enter on) a node for its raw JSON; absent children are drawn dashed.
 */
import { Graph, layout } from '@dagrejs/dagre';
import type { JSX } from 'preact';
import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { RawResponse, TreeResponse } from '../../api.js';
import type { TreeNode } from '../../../src/index.js';
import { getJson } from './client.js';
import { FIELD_DOCS, JsonView, Show, useAsync } from './common.js';
import { humanSize, shortDigest, shortMediaType } from './format.js';

interface Placed {
  readonly id: string;
  readonly node: TreeNode;
  readonly lines: readonly string[];
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

interface Edge {
  readonly from: string;
  readonly to: string;
  readonly points: ReadonlyArray<{ x: number; y: number }>;
}

const NODE_W = 250;
const LINE_H = 15;

function title(n: TreeNode): string {
  switch (n.role) {
    case 'entry': return n.label ?? 'entry point';
    case 'layer': return `layer ${n.label ?? ''}`.trim();
    case 'image': return `image${n.platform ? `  ${n.platform}` : ''}`;
    case 'attestation': return 'attestation manifest';
    default: return n.role;
  }
}

function linesOf(n: TreeNode): string[] {
  const out = [title(n)];
  if (n.mediaType) out.push(shortMediaType(n.mediaType));
  if (n.digest) out.push(`${shortDigest(n.digest)}  ${humanSize(n.size)}`);
  else if (n.size !== undefined) out.push(humanSize(n.size));
  if (n.names && n.names.length > 0) out.push(`ref: ${n.names.join(', ')}`);
  if (n.predicateType) out.push(n.predicateType.replace(/^https?:\/\//, ''));
  if (n.role === 'attestation' && n.annotations?.['vnd.docker.reference.digest']) out.push(`describes ${shortDigest(n.annotations['vnd.docker.reference.digest'])}`);
  if (n.artifactType) out.push(`artifact: ${n.artifactType}`);
  if (n.absent) out.push('absent: listed, not stored here');
  if (n.synthesized) out.push('synthesised by berth');
  if (n.error) out.push(`error: ${n.error}`);
  return out;
}

function clip(l: string): string {
  return l.length > 38 ? `${l.slice(0, 37)}…` : l;
}

export function layoutTree(root: TreeNode): { nodes: Placed[]; edges: Edge[]; width: number; height: number } {
  const g = new Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 14, ranksep: 56, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const info = new Map<string, { node: TreeNode; lines: string[] }>();
  let next = 0;
  const walk = (n: TreeNode, parent: string | undefined): void => {
    const id = `n${next++}`;
    const lines = linesOf(n);
    info.set(id, { node: n, lines });
    g.setNode(id, { width: NODE_W, height: lines.length * LINE_H + 14 });
    if (parent !== undefined) g.setEdge(parent, id);
    for (const c of n.children) walk(c, id);
  };
  walk(root, undefined);
  layout(g);
  const nodes: Placed[] = [];
  for (const [id, { node, lines }] of info) {
    const p = g.node(id) as unknown as { x: number; y: number; width: number; height: number };
    nodes.push({ id, node, lines, x: p.x - p.width / 2, y: p.y - p.height / 2, w: p.width, h: p.height });
  }
  const edges: Edge[] = g.edges().map((e) => ({ from: e.v, to: e.w, points: (g.edge(e) as unknown as { points: Array<{ x: number; y: number }> }).points }));
  const gl = g.graph() as unknown as { width?: number; height?: number };
  return { nodes, edges, width: gl.width ?? 400, height: gl.height ?? 300 };
}

function edgePath(points: ReadonlyArray<{ x: number; y: number }>): string {
  if (points.length === 0) return '';
  const [first, ...rest] = points;
  return `M${first!.x},${first!.y} ${rest.map((p) => `L${p.x},${p.y}`).join(' ')}`;
}

export function StructureView({ reference, onOpenLayers }: { reference: string; onOpenLayers: (platform: string | undefined) => void }): JSX.Element {
  const tree = useAsync((s) => getJson<TreeResponse>('tree', { ref: reference }, s), [reference]);
  return (
    <Show state={tree} what="the structure">
      {(t) => <Graph2 tree={t} reference={reference} onOpenLayers={onOpenLayers} />}
    </Show>
  );
}

function Graph2({ tree, reference, onOpenLayers }: { tree: TreeResponse; reference: string; onOpenLayers: (platform: string | undefined) => void }): JSX.Element {
  const g = useMemo(() => layoutTree(tree.tree), [tree]);
  const [selected, setSelected] = useState<Placed | undefined>(undefined);
  const [scale, setScale] = useState(1);
  const box = useRef<HTMLDivElement>(null);
  const focusNode = (delta: number, from: Element): void => {
    const all = [...(box.current?.querySelectorAll<SVGGElement>('[data-node]') ?? [])];
    const i = all.indexOf(from as SVGGElement);
    const to = all[Math.max(0, Math.min(all.length - 1, i + delta))];
    to?.focus();
  };
  const onKey = (p: Placed) => (e: KeyboardEvent): void => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      setSelected(p);
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowRight') {
      e.preventDefault();
      focusNode(1, e.currentTarget as Element);
    } else if (e.key === 'ArrowUp' || e.key === 'ArrowLeft') {
      e.preventDefault();
      focusNode(-1, e.currentTarget as Element);
    }
  };
  const fit = (grow = true): void => {
    const w = box.current?.clientWidth ?? g.width;
    setScale(Math.max(0.2, Math.min(grow ? 1.5 : 1, (w - 8) / g.width)));
  };
  // Start with the whole graph in view (never larger than life).
  useLayoutEffect(() => fit(false), [g]);
  return (
    <div class="structure">
      <div class="graph-pane">
        <div class="toolbar" role="toolbar" aria-label="Graph zoom">
          <span class="muted">{tree.reference} · {tree.format}{tree.notes.length > 0 ? ` · ${tree.notes.join('; ')}` : ''}</span>
          <span class="spacer" />
          <button type="button" aria-label="Zoom out" onClick={() => setScale((s) => Math.max(0.2, s / 1.25))}>−</button>
          <button type="button" aria-label="Zoom in" onClick={() => setScale((s) => Math.min(3, s * 1.25))}>+</button>
          <button type="button" aria-label="Fit the graph to the width" onClick={() => fit()}>Fit</button>
        </div>
        <div class="graph" ref={box}>
          <svg width={g.width * scale} height={g.height * scale} viewBox={`0 0 ${g.width} ${g.height}`} role="tree" aria-label="Image structure graph">
            <defs>
              <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
                <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
              </marker>
            </defs>
            {g.edges.map((e) => <path key={`${e.from}-${e.to}`} class="edge" d={edgePath(e.points)} marker-end="url(#arrow)" />)}
            {g.nodes.map((p) => (
              <g
                key={p.id}
                data-node={p.id}
                class={`node role-${p.node.role}${p.node.absent ? ' absent' : ''}${selected?.id === p.id ? ' selected' : ''}`}
                transform={`translate(${p.x},${p.y})`}
                tabindex={0}
                role="treeitem"
                aria-selected={selected?.id === p.id}
                aria-label={`${p.lines.join(', ')}`}
                onClick={() => setSelected(p)}
                onKeyDown={onKey(p)}
              >
                <title>{p.node.digest ?? p.node.label ?? p.node.role}</title>
                <rect width={p.w} height={p.h} rx="6" />
                {p.lines.map((l, i) => <text key={i} x="10" y={20 + i * LINE_H} class={i === 0 ? 'nt' : 'nl'}>{clip(l)}</text>)}
              </g>
            ))}
          </svg>
        </div>
      </div>
      <aside class="side" aria-label="Selected object">
        {selected === undefined
          ? <p class="muted">Select a node (click, or Tab to it and press Enter) to see its descriptor and its raw JSON.</p>
          : <NodeDetails key={selected.id} node={selected.node} reference={reference} onOpenLayers={onOpenLayers} />}
      </aside>
    </div>
  );
}

function Field({ name, children }: { name: string; children: JSX.Element | string | undefined }): JSX.Element | null {
  if (children === undefined || children === '') return null;
  return <><dt title={FIELD_DOCS[name]} class={FIELD_DOCS[name] ? 'doc' : ''}>{name}</dt><dd>{children}</dd></>;
}

function NodeDetails({ node, reference, onOpenLayers }: { node: TreeNode; reference: string; onOpenLayers: (platform: string | undefined) => void }): JSX.Element {
  const canRead = !node.absent && (node.role === 'entry' || node.digest !== undefined);
  const raw = useAsync(canRead ? (s) => getJson<RawResponse>('raw', { ref: reference, digest: node.role === 'entry' ? undefined : node.digest }, s) : undefined, [reference, node]);
  return (
    <div class="details">
      <h2>{title(node)}</h2>
      <dl>
        <Field name="mediaType">{node.mediaType}</Field>
        <Field name="digest">{node.digest ? <code>{node.digest}</code> : undefined}</Field>
        <Field name="size">{node.size !== undefined ? `${node.size} bytes (${humanSize(node.size)})` : undefined}</Field>
        <Field name="platform">{node.platform}</Field>
        <Field name="artifactType">{node.artifactType}</Field>
        <Field name="predicateType">{node.predicateType}</Field>
        <Field name="org.opencontainers.image.ref.name">{node.names?.join(', ')}</Field>
        {Object.entries(node.annotations ?? {}).map(([k, v]) => <Field key={k} name={k}>{v}</Field>)}
      </dl>
      {node.absent ? <p class="absent-note">This blob is listed by its parent but not stored here (a sparse export keeps only some platforms).</p> : null}
      {node.role === 'image' ? <button type="button" onClick={() => onOpenLayers(node.platform)}>Open the layers and files of this image</button> : null}
      {canRead ? (
        <Show state={raw} what="the raw JSON">
          {(r) => r.kind === 'json'
            ? <JsonView text={r.text ?? ''} label={`Raw JSON of ${r.file ?? r.digest ?? ''}`} />
            : <p class="muted">{node.role === 'layer' ? 'A layer tar: open the Layers view to see its files.' : `Binary content (${r.mediaType ?? 'unknown type'}), not shown.`}</p>}
        </Show>
      ) : null}
    </div>
  );
}
