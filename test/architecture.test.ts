/**
 * Enforces the dependency direction rules of the design (section 2.2) on import specifiers, as
 * ggcr's internal/depcheck does: core ← io ← {tar, content} ← {image, layer} ← attest ←
 * transports ← copy ← src/index.ts ← {cli, ui}. Imports point only toward core.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { repoRoot } from './support/paths.js';

/** Rank of each module: an import may only reach a strictly lower rank (or its own module). */
const RANK: Readonly<Record<string, number>> = {
  core: 0,
  io: 1,
  tar: 2,
  content: 2,
  image: 3,
  layer: 3,
  attest: 4,
  transports: 5,
  copy: 6,
  index: 7, // src/index.ts and any other file directly under src/
  cli: 8,
  ui: 8,
};

const CORE_FORBIDDEN_BUILTINS = new Set(['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'child_process', 'dgram', 'tls', 'cluster', 'worker_threads']);
const BUILTINS = new Set(builtinModules);

interface Where {
  /** Repo-relative, "/"-separated, .ts */
  readonly file: string;
  /** core, io, …, index, cli, ui, test, or "?" for anything unclassified. */
  readonly module: string;
  /** For transports: the folder (oci, docker, …); "shared" for transports/shared/ and the files
   * directly in transports/ (transport.ts, lookup.ts, all.ts). */
  readonly transport?: string;
}

export interface Violation {
  readonly from: string;
  readonly specifier: string;
  readonly rule: string;
}

function classify(file: string): Where {
  const parts = file.split('/');
  if (parts[0] === 'src') {
    if (parts.length === 2) return { file, module: 'index' };
    const mod = parts[1]!;
    if (!(mod in RANK) || mod === 'index' || mod === 'cli' || mod === 'ui') return { file, module: '?' };
    if (mod === 'transports') {
      const transport = parts.length === 3 || parts[2] === 'shared' ? 'shared' : parts[2]!;
      return { file, module: mod, transport };
    }
    return { file, module: mod };
  }
  if (parts[0] === 'cli' || parts[0] === 'ui') return { file, module: parts[0] };
  if (parts[0] === 'test') return { file, module: 'test' };
  return { file, module: '?' };
}

function isTestFile(file: string): boolean {
  return file.endsWith('.test.ts') || file.startsWith('test/');
}

/** Every module specifier in a TypeScript source: imports, re-exports, import types, dynamic imports. */
export function importSpecifiers(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  const out = info.importedFiles.map((f) => f.fileName);
  // preProcessFile skips `import('x')` inside type positions; catch those too.
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1]!);
  return [...new Set(out)];
}

/** Resolves a relative specifier to the repo-relative .ts file it names. */
function resolveRelative(from: string, spec: string): string {
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  return joined.replace(/\.js$/, '.ts');
}

function checkEdge(from: Where, spec: string): string | undefined {
  const fromTest = isTestFile(from.file);
  if (from.module === '?') return `${from.file} is in no module of the layering table (add it to the design and to RANK)`;

  if (!spec.startsWith('.')) {
    const bare = spec.replace(/^node:/, '');
    const isBuiltin = spec.startsWith('node:') || BUILTINS.has(bare);
    if (from.module === 'core' && !fromTest) {
      if (!isBuiltin) return `core imports nothing outside core (got package "${spec}")`;
      if (CORE_FORBIDDEN_BUILTINS.has(bare)) return `core must not use ${spec} (no file system, network or processes)`;
    }
    return undefined;
  }

  const toFile = resolveRelative(from.file, spec);
  if (toFile.startsWith('..')) return `import leaves the repository (${toFile})`;
  const to = classify(toFile);

  if (to.module === 'test') return fromTest ? undefined : `only tests may import test support (${toFile})`;
  if (to.module === '?') return `imports ${toFile}, which is in no module of the layering table`;

  if (from.module === 'cli' || from.module === 'ui') {
    if (to.module === from.module) return undefined;
    // the facades directly under src/ are public API too; the CLI loads each one when a command needs it
    if (to.module === 'index') return undefined;
    return `${from.module} imports only src/index.ts or a facade beside it, as any outside user would (got ${toFile})`;
  }
  if (from.module === to.module) {
    if (from.module === 'transports') return checkTransportEdge(from, to);
    return undefined;
  }
  if (from.module === 'layer' && to.module === 'image') return 'layer must not import image';
  if (from.module === 'copy' && to.module === 'transports') {
    const parts = toFile.split('/');
    if (parts.length === 3 && parts[2] !== 'all.ts') return undefined;
    return `copy depends only on transports/transport.ts-level interfaces, never a concrete transport (got ${toFile})`;
  }
  const rf = RANK[from.module]!;
  const rt = RANK[to.module]!;
  if (rt >= rf) return `${from.module} must not import ${to.module} (imports point toward core: core ← io ← {tar, content} ← {image, layer} ← attest ← transports ← copy ← index ← {cli, ui})`;
  return undefined;
}

function checkTransportEdge(from: Where, to: Where): string | undefined {
  if (from.transport === to.transport) return undefined;
  if (to.transport === 'shared') return undefined;
  // Only transports/all.ts names every transport.
  if (from.file === 'src/transports/all.ts') return undefined;
  if (from.transport === 'shared') return `shared transport code must not import the concrete transport ${to.transport} (${to.file})`;
  return `transport ${from.transport} must not import transport ${to.transport} (${to.file}); move shared code to transports/shared/`;
}

/** All forbidden edges among the given files (pure: works on in-memory sources too). */
export function findViolations(files: ReadonlyArray<{ file: string; text: string }>): Violation[] {
  const out: Violation[] = [];
  for (const { file, text } of files) {
    const from = classify(file);
    for (const spec of importSpecifiers(text)) {
      const rule = checkEdge(from, spec);
      if (rule !== undefined) out.push({ from: file, specifier: spec, rule });
    }
  }
  return out;
}


function sourceFiles(root: string, top: string): string[] {
  const dir = path.join(root, top);
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) continue;
    const abs = path.join(entry.parentPath, entry.name);
    const rel = path.relative(root, abs).split(path.sep).join('/');
    if (rel.split('/').includes('node_modules')) continue;
    out.push(rel);
  }
  return out.sort();
}

test('the checker catches forbidden edges (in-memory examples)', async (t) => {
  const rows: Array<{ name: string; file: string; text: string; want: RegExp | undefined }> = [
    { name: 'core → io is forbidden', file: 'src/core/x.ts', text: "import { peek } from '../io/stream.js';", want: /core must not import io/ },
    { name: 'core → node:fs is forbidden', file: 'src/core/x.ts', text: "import { readFileSync } from 'node:fs';", want: /core must not use node:fs/ },
    { name: 'core → fs/promises (bare) is forbidden', file: 'src/core/x.ts', text: "import { readFile } from 'fs/promises';", want: /core must not use/ },
    { name: 'core → npm package is forbidden', file: 'src/core/x.ts', text: "import { Command } from 'commander';", want: /outside core/ },
    { name: 'core → node:crypto is fine', file: 'src/core/x.ts', text: "import { createHash } from 'node:crypto';", want: undefined },
    { name: 'io → core is fine', file: 'src/io/x.ts', text: "import { BerthError } from '../core/errors.js';", want: undefined },
    { name: 'tar → content (siblings) is forbidden', file: 'src/tar/x.ts', text: "export { a } from '../content/store.js';", want: /tar must not import content/ },
    { name: 'layer → image is forbidden', file: 'src/layer/x.ts', text: "import type { Image } from '../image/types.js';", want: /layer must not import image/ },
    { name: 'image → transports is forbidden', file: 'src/image/x.ts', text: "const m = await import('../transports/lookup.js');", want: /image must not import transports/ },
    { name: 'transport → other transport is forbidden', file: 'src/transports/oci/source.ts', text: "import { x } from '../docker-archive/source.js';", want: /transport oci must not import transport docker-archive/ },
    { name: 'transport → shared is fine', file: 'src/transports/oci/source.ts', text: "import { x } from '../shared/layout.js'; import type { T } from '../transport.js';", want: undefined },
    { name: 'shared → concrete transport is forbidden', file: 'src/transports/shared/layout.ts', text: "import { x } from '../oci/source.js';", want: /shared transport code/ },
    { name: 'lookup.ts → concrete transport is forbidden', file: 'src/transports/lookup.ts', text: "import { x } from './oci/transport.js';", want: /shared transport code/ },
    { name: 'all.ts → concrete transports is fine', file: 'src/transports/all.ts', text: "import './oci/transport.js'; import './docker/transport.js';", want: undefined },
    { name: 'copy → concrete transport is forbidden', file: 'src/copy/copy.ts', text: "import { x } from '../transports/oci/source.js';", want: /never a concrete transport/ },
    { name: 'copy → all.ts is forbidden', file: 'src/copy/copy.ts', text: "import '../transports/all.js';", want: /never a concrete transport/ },
    { name: 'copy → transport.ts is fine', file: 'src/copy/copy.ts', text: "import type { ImageSource } from '../transports/transport.js';", want: undefined },
    { name: 'index → copy is fine', file: 'src/index.ts', text: "export { copyImage } from './copy/copy.js';", want: undefined },
    { name: 'cli → src/index.ts is fine', file: 'cli/main.ts', text: "import { x } from '../src/index.js'; import { Command } from 'commander'; import fs from 'node:fs';", want: undefined },
    { name: 'cli → a facade under src/ is fine', file: 'cli/api.ts', text: "const images = () => import('../src/images.js');", want: undefined },
    { name: 'cli → deep src file is forbidden', file: 'cli/commands/read.ts', text: "import { parseDigest } from '../../src/core/digest.js';", want: /cli imports only src\/index\.ts or a facade/ },
    { name: 'ui → deep src file is forbidden', file: 'ui/server.ts', text: "import { x } from '../src/io/stream.js';", want: /ui imports only src\/index\.ts or a facade/ },
    { name: 'src → cli is forbidden', file: 'src/index.ts', text: "import { main } from '../cli/main.js';", want: /index must not import cli/ },
    { name: 'production code → test support is forbidden', file: 'src/io/x.ts', text: "import { peerPath } from '../../test/support/peers.js';", want: /only tests may import test support/ },
    { name: 'a test → test support is fine', file: 'src/io/x.test.ts', text: "import { peerPath } from '../../test/support/peers.js';", want: undefined },
    { name: 'an unclassified src folder is flagged', file: 'src/util/x.ts', text: "import { a } from '../core/errors.js';", want: /no module of the layering table/ },
  ];
  for (const row of rows) {
    await t.test(row.name, () => {
      const got = findViolations([{ file: row.file, text: row.text }]);
      if (row.want === undefined) {
        assert.deepEqual(got, []);
      } else {
        assert.equal(got.length >= 1, true, `no violation found for ${row.file}`);
        assert.match(got.map((v) => v.rule).join('\n'), row.want);
      }
    });
  }
});

test('the source tree follows the dependency rules', () => {
  const root = repoRoot;
  const files = ['src', 'cli', 'ui'].flatMap((top) => sourceFiles(root, top));
  assert.ok(files.some((f) => f === 'src/core/errors.ts'), 'the scan found no sources: wrong repository root?');
  const violations = findViolations(files.map((file) => ({ file, text: readFileSync(path.join(root, file), 'utf8') })));
  const report = violations.map((v) => `  ${v.from}: "${v.specifier}": ${v.rule}`).join('\n');
  assert.equal(violations.length, 0, `forbidden imports:\n${report}`);
});
