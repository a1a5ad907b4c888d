/** Shared pieces: async loading, a virtualised list, the JSON view with field explanations. */
import type { AriaRole, ComponentChildren, JSX } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './format.js';

export interface Async<T> {
  readonly data?: T;
  readonly error?: unknown;
  readonly loading: boolean;
}

/** Runs `load` whenever `deps` change; a newer run wins over an older one. */
export function useAsync<T>(load: ((signal: AbortSignal) => Promise<T>) | undefined, deps: readonly unknown[]): Async<T> {
  const [state, setState] = useState<Async<T>>({ loading: load !== undefined });
  useEffect(() => {
    if (load === undefined) {
      setState({ loading: false });
      return undefined;
    }
    const ctl = new AbortController();
    setState({ loading: true });
    load(ctl.signal).then(
      (data) => { if (!ctl.signal.aborted) setState({ data, loading: false }); },
      (error: unknown) => { if (!ctl.signal.aborted) setState({ error, loading: false }); },
    );
    return () => ctl.abort();
  }, deps);
  return state;
}

export function ErrorBox({ error }: { error: unknown }): JSX.Element {
  return <div class="error" role="alert">{errorText(error)}</div>;
}

export function Loading({ what }: { what: string }): JSX.Element {
  return <div class="loading" role="status">Loading {what}…</div>;
}

export function Show<T>({ state, what, children }: { state: Async<T>; what: string; children: (data: T) => ComponentChildren }): JSX.Element {
  if (state.error !== undefined) return <ErrorBox error={state.error} />;
  if (state.loading || state.data === undefined) return <Loading what={what} />;
  return <>{children(state.data)}</>;
}

export interface VirtualListProps {
  readonly count: number;
  readonly rowHeight: number;
  /** Rendered row i; the list positions it. */
  readonly row: (i: number) => ComponentChildren;
  readonly label: string;
  readonly class?: string;
  readonly role?: AriaRole;
  readonly active?: number;
  readonly onKeyDown?: (e: KeyboardEvent) => void;
  readonly activeId?: string;
  readonly onNearEnd?: () => void;
}

/** Only the rows in view are in the DOM, so a list of 200k entries stays responsive. */
export function VirtualList(p: VirtualListProps): JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(400);
  useLayoutEffect(() => {
    const el = box.current;
    if (el === null) return undefined;
    const measure = (): void => setHeight(el.clientHeight || 400);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  useEffect(() => {
    const el = box.current;
    if (el === null || p.active === undefined || p.active < 0) return;
    const y = p.active * p.rowHeight;
    if (y < el.scrollTop) el.scrollTop = y;
    else if (y + p.rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = y + p.rowHeight - el.clientHeight;
  }, [p.active]);
  const first = Math.max(0, Math.floor(top / p.rowHeight) - 10);
  const last = Math.min(p.count, Math.ceil((top + height) / p.rowHeight) + 10);
  useEffect(() => {
    if (p.onNearEnd && last >= p.count - 5 && p.count > 0) p.onNearEnd();
  }, [last, p.count]);
  const rows: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    rows.push(<div class="vrow" key={i} style={{ top: `${i * p.rowHeight}px`, height: `${p.rowHeight}px` }}>{p.row(i)}</div>);
  }
  return (
    <div
      ref={box}
      class={`vlist ${p.class ?? ''}`}
      tabIndex={0}
      role={p.role ?? 'list'}
      aria-label={p.label}
      aria-activedescendant={p.activeId}
      onScroll={(e) => setTop((e.currentTarget as HTMLDivElement).scrollTop)}
      onKeyDown={p.onKeyDown}
    >
      <div class="vspace" style={{ height: `${p.count * p.rowHeight}px` }}>{rows}</div>
    </div>
  );
}

/** What each field of descriptors, manifests, indexes, configs and statements means (shown on hover). */
export const FIELD_DOCS: Readonly<Record<string, string>> = {
  schemaVersion: 'Schema version of the manifest or index: 2 for OCI and Docker v2 schema 2.',
  mediaType: 'Media type: of this document, or (in a descriptor) of the content the descriptor points to. Readers decide how to parse by it.',
  digest: 'Content address of the referenced bytes (algorithm:hex). berth checks it on every read.',
  size: 'Exact byte length of the referenced content; checked before the bytes are trusted.',
  urls: 'Other places the content may be fetched from (foreign layers).',
  annotations: 'Arbitrary string metadata; the org.opencontainers.image.* keys are predefined.',
  data: 'The content itself, base64, embedded in the descriptor.',
  artifactType: 'Type of an artifact when the manifest carries one instead of an image (OCI 1.1).',
  platform: 'The platform the manifest runs on: lets a client pick its image from an index.',
  architecture: 'CPU architecture (GOARCH values: amd64, arm64, …).',
  os: 'Operating system (GOOS values: linux, windows, …).',
  'os.version': 'Operating system version (Windows builds).',
  'os.features': 'Required operating system features.',
  variant: 'CPU variant (v8 for arm64, v7 for arm, …).',
  features: 'Reserved (formerly CPU features).',
  manifests: 'The descriptors an index lists: one manifest per platform, attestations, nested indexes.',
  config: 'In a manifest: the descriptor of the image configuration. In a config: the defaults for running a container.',
  layers: 'Descriptors of the layer tars, base first, applied in order to build the filesystem.',
  subject: 'The manifest this one is about (OCI 1.1 referrers), or in an in-toto statement: the artifacts the statement covers.',
  rootfs: 'The filesystem: the uncompressed digests of the layers (diff_ids).',
  diff_ids: 'Digests of the uncompressed layer tars, in order; each layer must match after decompression.',
  history: 'One entry per build step; steps with empty_layer made no layer.',
  created: 'When the image (or the step) was created, RFC 3339.',
  created_by: 'The build command of the step.',
  empty_layer: 'This step made no layer (ENV, CMD, LABEL, …).',
  author: 'Who made the image or step.',
  comment: 'A comment on the step.',
  Env: 'Environment variables, NAME=value.',
  Entrypoint: 'The command run when the container starts.',
  Cmd: 'Default arguments to the entrypoint (or the command without one).',
  WorkingDir: 'Working directory of the container process.',
  User: 'User (and group) the process runs as.',
  Labels: 'Key-value metadata of the image.',
  ExposedPorts: 'Ports the container listens on.',
  Volumes: 'Directories meant to be volumes.',
  StopSignal: 'Signal that stops the container.',
  _type: 'in-toto statement type.',
  predicateType: 'What kind of claim the statement makes (SLSA provenance, SPDX or CycloneDX SBOM, …).',
  predicate: 'The claim itself.',
  'org.opencontainers.image.ref.name': 'Name (tag) of this entry of an OCI layout\'s index.json.',
  'io.containerd.image.name': 'Full image name containerd recorded for this entry.',
  'org.opencontainers.image.created': 'When the image was created.',
  'vnd.docker.reference.digest': 'BuildKit: the image manifest this attestation manifest describes.',
  'vnd.docker.reference.type': 'BuildKit: "attestation-manifest" marks an attestation manifest.',
  'in-toto.io/predicate-type': 'Predicate type of the in-toto statement this layer holds.',
};

const TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

/** Indented JSON with colours; keys berth knows explain themselves on hover. */
export function JsonView({ text, label }: { text: string; label: string }): JSX.Element {
  if (text.length > 400_000) return <pre class="json" aria-label={label} tabIndex={0}>{text}</pre>;
  const out: ComponentChildren[] = [];
  let at = 0;
  for (const m of text.matchAll(TOKEN)) {
    const i = m.index ?? 0;
    if (i > at) out.push(text.slice(at, i));
    if (m[1] !== undefined && m[2] !== undefined) {
      const key = m[1].slice(1, -1);
      const doc = FIELD_DOCS[key];
      out.push(doc ? <span class="jk doc" title={doc}>{m[1]}</span> : <span class="jk">{m[1]}</span>, m[2]);
    } else if (m[1] !== undefined) out.push(<span class="js">{m[1]}</span>);
    else if (m[3] !== undefined) out.push(<span class="jn">{m[3]}</span>);
    else out.push(<span class="jl">{m[4]}</span>);
    at = i + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return <pre class="json" aria-label={label} tabIndex={0}>{out}</pre>;
}
