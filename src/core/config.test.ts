import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Digest } from './digest.js';
import { isBerthError } from './errors.js';
import { chainIds, configDiffIds, configPlatform, historyForLayers, parseImageConfig, type ImageConfig } from './config.js';
import { repoRoot } from '../../test/support/paths.js';


const EXAMPLES = path.resolve(repoRoot, '../shared/docs/examples');
const enc = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));
const D = (c: string): Digest => `sha256:${c.repeat(64)}` as Digest;

// formats.md 8.6, verified on bb:3.
const BB3_DIFF_IDS = [
  'sha256:785f84f9bd3060fbae715b427508c316ec008492f86e542adac3f0f29bd7f723',
  'sha256:196c4be78980a4d3c69cc3c20da0086b6ee01ec98472a24bc23f457682180546',
  'sha256:506317340d2f6a5442fe53310cc8d3ea1497926f52a900872d4a4ac5117f227f',
] as Digest[];
const BB3_CHAIN_IDS = [
  'sha256:785f84f9bd3060fbae715b427508c316ec008492f86e542adac3f0f29bd7f723',
  'sha256:35a1a52f4670ef2937a386b9e6cda2e2b22bc5a0b0c3db2db24612053f4b6606',
  'sha256:59c218ade3792242674f7c4428c02f2dde48efd5ad6ad373ca3bf75a1c0765c5',
];

test('chainIds matches the values verified on dockerd (formats.md 8.6)', () => {
  const rows = [
    { name: 'no layers', input: [] as Digest[], want: [] as string[] },
    { name: 'one layer: chain = diff', input: BB3_DIFF_IDS.slice(0, 1), want: BB3_CHAIN_IDS.slice(0, 1) },
    { name: 'bb:3, three layers', input: BB3_DIFF_IDS, want: BB3_CHAIN_IDS },
  ];
  for (const row of rows) assert.deepEqual(chainIds(row.input), row.want, row.name);
});

test('real configs from dockerd and skopeo parse', () => {
  const rows = [
    { name: 'dockerd bb:3 (commit)', file: 'imagedb-config-bb3.json', want: { diffIds: 3, history: 3, platform: 'linux/amd64' } },
    { name: 'dockerd bb:1 (import)', file: 'imagedb-config-bb1-import.json', want: { diffIds: 1, history: 1, platform: 'linux/amd64' } },
    { name: 'skopeo OCI conversion of bb:3', file: 'oci-layout-skopeo/config-bb3-converted.json', want: { diffIds: 3, history: 3, platform: 'linux/amd64' } },
  ];
  for (const row of rows) {
    const cfg = parseImageConfig(readFileSync(path.join(EXAMPLES, row.file)), { what: row.file });
    const p = configPlatform(cfg);
    assert.deepEqual({ diffIds: configDiffIds(cfg).length, history: cfg.history?.length, platform: `${p.os}/${p.architecture}` }, row.want, row.name);
  }
  const bb3 = parseImageConfig(readFileSync(path.join(EXAMPLES, 'imagedb-config-bb3.json')), { what: 'bb3' });
  assert.deepEqual(chainIds(configDiffIds(bb3)), BB3_CHAIN_IDS);
  assert.deepEqual(bb3.config?.Labels, { 'org.example.layer': '2' });
  assert.equal(bb3.docker_version, '20.10.24+dfsg1', 'unknown Docker keys stay available');
  assert.equal(bb3.config?.Image, 'bb:2');
});

const valid = (): Record<string, unknown> => ({
  architecture: 'arm64', os: 'linux', variant: 'v8', rootfs: { type: 'layers', diff_ids: [D('a'), D('b')] },
});

test('parseImageConfig accepts lenient but valid shapes', () => {
  const rows: { name: string; input: Record<string, unknown>; diffIds: number }[] = [
    { name: 'minimal', input: valid(), diffIds: 2 },
    { name: 'every optional null', input: { ...valid(), created: null, author: null, variant: null, 'os.version': null, 'os.features': null, config: null, history: null }, diffIds: 2 },
    { name: 'config keys null', input: { ...valid(), config: { User: null, Env: null, Cmd: null, Entrypoint: null, ExposedPorts: null, Volumes: null, Labels: null, Healthcheck: null } }, diffIds: 2 },
    { name: 'full config', input: { ...valid(), created: '2024-01-02T03:04:05.123456789+01:00', config: { User: '1000', ExposedPorts: { '80/tcp': {} }, Env: ['A=1'], Entrypoint: ['/bin/sh'], Cmd: ['-c', 'x'], Volumes: { '/data': {} }, WorkingDir: '/w', Labels: { a: 'b' }, StopSignal: 'SIGTERM', ArgsEscaped: true, Memory: 0, Healthcheck: { Test: ['CMD', 'true'], Interval: 1e9, Retries: 3 } } }, diffIds: 2 },
    { name: 'no layers: diff_ids missing (moby omitempty)', input: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }, diffIds: 0 },
    { name: 'no layers: diff_ids null', input: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: null } }, diffIds: 0 },
    { name: 'empty os and architecture (ggcr random image)', input: { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } }, diffIds: 0 },
    { name: 'fewer history entries than layers', input: { ...valid(), history: [{ created_by: 'one' }] }, diffIds: 2 },
    { name: 'empty_layer entries do not count', input: { ...valid(), history: [{ created_by: 'a' }, { empty_layer: true }, { created_by: 'b' }, { empty_layer: true }] }, diffIds: 2 },
  ];
  for (const row of rows) assert.equal(configDiffIds(parseImageConfig(enc(row.input), { what: 'cfg' })).length, row.diffIds, row.name);
});

test('parseImageConfig rejects, naming the field', () => {
  const rows: { name: string; input: unknown; code: 'BERTH_INVALID_CONFIG' | 'BERTH_INVALID_JSON'; path?: string }[] = [
    { name: 'not an object', input: [], code: 'BERTH_INVALID_CONFIG', path: '' },
    { name: 'architecture missing', input: { os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, code: 'BERTH_INVALID_CONFIG', path: 'architecture' },
    { name: 'os a number', input: { ...valid(), os: 1 }, code: 'BERTH_INVALID_CONFIG', path: 'os' },
    { name: 'rootfs missing', input: { architecture: 'amd64', os: 'linux' }, code: 'BERTH_INVALID_CONFIG', path: 'rootfs' },
    { name: 'rootfs type other than layers', input: { ...valid(), rootfs: { type: 'layered', diff_ids: [] } }, code: 'BERTH_INVALID_CONFIG', path: 'rootfs.type' },
    { name: 'bad diff_id', input: { ...valid(), rootfs: { type: 'layers', diff_ids: [D('a'), D('b'), D('c'), 'sha256:xyz'] } }, code: 'BERTH_INVALID_CONFIG', path: 'rootfs.diff_ids[3]' },
    { name: 'diff_ids not an array', input: { ...valid(), rootfs: { type: 'layers', diff_ids: 'x' } }, code: 'BERTH_INVALID_CONFIG', path: 'rootfs.diff_ids' },
    { name: 'created not RFC 3339', input: { ...valid(), created: 'yesterday' }, code: 'BERTH_INVALID_CONFIG', path: 'created' },
    { name: 'Env entry not a string', input: { ...valid(), config: { Env: ['A=1', 2] } }, code: 'BERTH_INVALID_CONFIG', path: 'config.Env[1]' },
    { name: 'Cmd a string', input: { ...valid(), config: { Cmd: 'sh' } }, code: 'BERTH_INVALID_CONFIG', path: 'config.Cmd' },
    { name: 'ExposedPorts value not an object', input: { ...valid(), config: { ExposedPorts: { '80/tcp': true } } }, code: 'BERTH_INVALID_CONFIG', path: 'config.ExposedPorts["80/tcp"]' },
    { name: 'Labels value not a string', input: { ...valid(), config: { Labels: { a: 1 } } }, code: 'BERTH_INVALID_CONFIG', path: 'config.Labels.a' },
    { name: 'Healthcheck Retries a string', input: { ...valid(), config: { Healthcheck: { Retries: '3' } } }, code: 'BERTH_INVALID_CONFIG', path: 'config.Healthcheck.Retries' },
    { name: 'history entry not an object', input: { ...valid(), history: ['x'] }, code: 'BERTH_INVALID_CONFIG', path: 'history[0]' },
    { name: 'history created bad', input: { ...valid(), history: [{ created: '2024-01-01' }] }, code: 'BERTH_INVALID_CONFIG', path: 'history[0].created' },
    { name: 'empty_layer a string', input: { ...valid(), history: [{ empty_layer: 'true' }] }, code: 'BERTH_INVALID_CONFIG', path: 'history[0].empty_layer' },
    { name: 'more non-empty history entries than layers', input: { ...valid(), history: [{}, {}, {}] }, code: 'BERTH_INVALID_CONFIG', path: 'history' },
    { name: 'not JSON', input: undefined, code: 'BERTH_INVALID_JSON' },
  ];
  for (const row of rows) {
    const bytes = row.input === undefined ? new TextEncoder().encode('{"architecture":') : enc(row.input);
    assert.throws(() => parseImageConfig(bytes, { what: 'config x' }), (err: unknown) => {
      assert.ok(isBerthError(err, row.code), `${row.name}: ${String(err)}`);
      if (row.path !== undefined) {
        assert.equal(err.path, row.path, row.name);
        assert.ok(err.message.startsWith(`${row.path === '' ? 'config x' : row.path}: `), `${row.name}: ${err.message}`);
      }
      return true;
    });
  }
  assert.throws(() => parseImageConfig(enc({ ...valid(), rootfs: { type: 'layers', diff_ids: [D('a'), D('b'), D('c'), 'sha256:xyz'] } }), { what: 'c' }),
    { message: 'rootfs.diff_ids[3]: "sha256:xyz" is not a valid digest (hex must be lowercase [a-f0-9] for sha256)' });
});

test('historyForLayers pairs non-empty entries with layers in order', () => {
  const cfg = (history: unknown[] | undefined, layers: number): ImageConfig => parseImageConfig(enc({
    architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: ['a', 'b', 'c'].slice(0, layers).map(D) }, ...(history ? { history } : {}),
  }), { what: 'cfg' });
  const rows = [
    { name: 'empty layers interleaved', input: cfg([{ created_by: 'FROM' }, { created_by: 'ENV', empty_layer: true }, { created_by: 'RUN' }], 2),
      want: [[0, 0, D('a')], [1, undefined, undefined], [2, 1, D('b')]] },
    { name: 'no history', input: cfg(undefined, 2), want: [[undefined, 0, D('a')], [undefined, 1, D('b')]] },
    { name: 'history shorter than layers', input: cfg([{ created_by: 'x' }], 3), want: [[0, 0, D('a')], [undefined, 1, D('b')], [undefined, 2, D('c')]] },
    { name: 'only empty entries', input: cfg([{ empty_layer: true }], 0), want: [[0, undefined, undefined]] },
  ];
  for (const row of rows) {
    assert.deepEqual(historyForLayers(row.input).map((r) => [r.historyIndex, r.layerIndex, r.diffId]), row.want, row.name);
  }
  const [first] = historyForLayers(rows[0]!.input);
  assert.equal(first?.entry?.created_by, 'FROM');
});

test('configPlatform', () => {
  const cfg = parseImageConfig(enc({ ...valid(), 'os.version': '10.0.1', 'os.features': ['win32k'] }), { what: 'c' });
  assert.deepEqual(configPlatform(cfg), { os: 'linux', architecture: 'arm64', variant: 'v8', osVersion: '10.0.1', osFeatures: ['win32k'] });
});
