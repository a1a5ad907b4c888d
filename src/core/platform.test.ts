import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from './digest.js';
import { isBerthError } from './errors.js';
import type { Descriptor } from './descriptor.js';
import { DOCKER_MANIFEST, OCI_LAYER_GZIP, OCI_MANIFEST } from './media-types.js';
import {
  compatiblePlatforms, formatPlatform, normalizePlatform, parsePlatform, platformFromJson, platformFromNode, platformMatches, platformRank,
  selectPlatform, type Platform,
} from './platform.js';

test('parsePlatform returns the normalised platform', () => {
  const rows: { name: string; input: string; want: Platform }[] = [
    { name: 'os/arch', input: 'linux/amd64', want: { os: 'linux', architecture: 'amd64' } },
    { name: 'arm64/v8 drops the default variant', input: 'linux/arm64/v8', want: { os: 'linux', architecture: 'arm64' } },
    { name: 'aarch64 alias', input: 'linux/aarch64', want: { os: 'linux', architecture: 'arm64' } },
    { name: 'arm64 keeps v8.2', input: 'linux/arm64/v8.2', want: { os: 'linux', architecture: 'arm64', variant: 'v8.2' } },
    { name: 'arm gets v7', input: 'linux/arm', want: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { name: 'arm/6 gets the v', input: 'linux/arm/6', want: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { name: 'x86_64 alias', input: 'linux/x86_64', want: { os: 'linux', architecture: 'amd64' } },
    { name: 'amd64/v3 kept', input: 'linux/amd64/v3', want: { os: 'linux', architecture: 'amd64', variant: 'v3' } },
    { name: 'case folded', input: 'Linux/AMD64', want: { os: 'linux', architecture: 'amd64' } },
    { name: 'macos is darwin', input: 'macos/arm64', want: { os: 'darwin', architecture: 'arm64' } },
    { name: 'windows with os version', input: 'windows(10.0.17763)/amd64', want: { os: 'windows', architecture: 'amd64', osVersion: '10.0.17763' } },
    { name: 'other arch with variant kept', input: 'linux/ppc64le/power9', want: { os: 'linux', architecture: 'ppc64le', variant: 'power9' } },
  ];
  for (const row of rows) assert.deepEqual(parsePlatform(row.input), row.want, row.name);
});

test('parsePlatform rejects malformed text', () => {
  const rows = [
    { name: 'os only', input: 'linux', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'too many parts', input: 'linux/arm/v7/x', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'empty', input: '', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'empty architecture', input: 'linux/', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'empty os', input: '/amd64', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'space in arch', input: 'linux/amd 64', code: 'BERTH_INVALID_PLATFORM' },
    { name: 'bad os version', input: 'windows(10 0)/amd64', code: 'BERTH_INVALID_PLATFORM' },
  ];
  for (const row of rows) {
    assert.throws(() => parsePlatform(row.input), (err: unknown) => isBerthError(err, row.code as 'BERTH_INVALID_PLATFORM') && err.message.startsWith(`parsing platform ${JSON.stringify(row.input)}: `), row.name);
  }
});

test('formatPlatform is the inverse of parsePlatform on canonical text', () => {
  for (const text of ['linux/amd64', 'linux/arm/v7', 'linux/arm64/v8.2', 'windows(10.0.17763)/amd64', 'linux/riscv64']) {
    assert.equal(formatPlatform(parsePlatform(text)), text);
  }
  assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64/v8', 'formats as given');
});

test('normalizePlatform', () => {
  const rows: { name: string; input: Platform; want: Platform }[] = [
    { name: 'i386 drops variant', input: { os: 'linux', architecture: 'i386', variant: 'x' }, want: { os: 'linux', architecture: '386' } },
    { name: 'amd64 v1 dropped', input: { os: 'linux', architecture: 'amd64', variant: 'v1' }, want: { os: 'linux', architecture: 'amd64' } },
    { name: 'x86-64', input: { os: 'linux', architecture: 'x86-64' }, want: { os: 'linux', architecture: 'amd64' } },
    { name: 'arm64 8 dropped', input: { os: 'linux', architecture: 'arm64', variant: '8' }, want: { os: 'linux', architecture: 'arm64' } },
    { name: 'armhf', input: { os: 'linux', architecture: 'armhf' }, want: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { name: 'armel', input: { os: 'linux', architecture: 'armel' }, want: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { name: 'arm 5', input: { os: 'linux', architecture: 'arm', variant: '5' }, want: { os: 'linux', architecture: 'arm', variant: 'v5' } },
    { name: 'arm empty variant', input: { os: 'linux', architecture: 'arm', variant: '' }, want: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { name: 'unrecognised arm variant kept', input: { os: 'linux', architecture: 'arm', variant: 'armv7' }, want: { os: 'linux', architecture: 'arm', variant: 'armv7' } },
    { name: 'os fields kept', input: { os: 'Windows', architecture: 'amd64', osVersion: '10.0.1', osFeatures: ['win32k'] }, want: { os: 'windows', architecture: 'amd64', osVersion: '10.0.1', osFeatures: ['win32k'] } },
  ];
  for (const row of rows) assert.deepEqual(normalizePlatform(row.input), row.want, row.name);
});

test('compatiblePlatforms lists the preference order of formats.md 7.3', () => {
  const rows = [
    { name: 'amd64/v3', input: 'linux/amd64/v3', want: ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386'] },
    { name: 'amd64', input: 'linux/amd64', want: ['linux/amd64', 'linux/386'] },
    { name: 'arm64', input: 'linux/arm64', want: ['linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'] },
    { name: 'arm64/v8.2', input: 'linux/arm64/v8.2', want: ['linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'] },
    { name: 'arm64/v9.1', input: 'linux/arm64/v9.1', want: ['linux/arm64/v9.1', 'linux/arm64/v9', 'linux/arm64/v8.6', 'linux/arm64/v8.5', 'linux/arm64/v8.4', 'linux/arm64/v8.3', 'linux/arm64/v8.2', 'linux/arm64/v8.1', 'linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'] },
    { name: 'arm/v8', input: 'linux/arm/v8', want: ['linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'] },
    { name: 'arm/v7', input: 'linux/arm/v7', want: ['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5'] },
    { name: 'arm/v5', input: 'linux/arm/v5', want: ['linux/arm/v5'] },
    { name: 'other architecture', input: 'linux/s390x', want: ['linux/s390x'] },
  ];
  for (const row of rows) assert.deepEqual(compatiblePlatforms(parsePlatform(row.input)).map(formatPlatform), row.want, row.name);
});

test('platformMatches', () => {
  const P = (os: string, architecture: string, variant?: string, osVersion?: string): Platform => ({ os, architecture, ...(variant ? { variant } : {}), ...(osVersion ? { osVersion } : {}) });
  const rows: { name: string; want: Platform; have: Platform; match: boolean }[] = [
    { name: 'exact', want: P('linux', 'amd64'), have: P('linux', 'amd64'), match: true },
    { name: 'aliases on both sides', want: P('linux', 'x86_64'), have: P('Linux', 'amd64', 'v1'), match: true },
    { name: 'arm64 host runs arm64/v8 image', want: P('linux', 'arm64'), have: P('linux', 'arm64', 'v8'), match: true },
    { name: 'arm64 host runs arm/v7', want: P('linux', 'arm64'), have: P('linux', 'arm', 'v7'), match: true },
    { name: 'arm64 host runs arm with no variant (= v7)', want: P('linux', 'arm64'), have: P('linux', 'arm'), match: true },
    { name: 'arm/v6 host does not run arm/v7', want: P('linux', 'arm', 'v6'), have: P('linux', 'arm', 'v7'), match: false },
    { name: 'arm64/v8 host does not run v8.2 image', want: P('linux', 'arm64'), have: P('linux', 'arm64', 'v8.2'), match: false },
    { name: 'amd64 host runs 386', want: P('linux', 'amd64'), have: P('linux', '386'), match: true },
    { name: 'amd64 host does not run amd64/v3', want: P('linux', 'amd64'), have: P('linux', 'amd64', 'v3'), match: false },
    { name: 'os differs', want: P('linux', 'amd64'), have: P('windows', 'amd64'), match: false },
    { name: 'unrecognised variant never matches', want: P('linux', 'arm', 'v7'), have: P('linux', 'arm', 'unrecognized-present'), match: false },
    { name: 'windows same build', want: P('windows', 'amd64', undefined, '10.0.17763.1'), have: P('windows', 'amd64', undefined, '10.0.17763.2300'), match: true },
    { name: 'windows other build', want: P('windows', 'amd64', undefined, '10.0.17763.1'), have: P('windows', 'amd64', undefined, '10.0.20348.1'), match: false },
  ];
  for (const row of rows) assert.equal(platformMatches(row.want, row.have), row.match, row.name);
  assert.equal(platformRank(P('linux', 'arm64'), P('linux', 'arm', 'v6')), 3);
});

test('selectPlatform picks the best match, first among equals, never unknown/unknown', () => {
  const d = (n: number, platform?: Platform, mediaType = OCI_MANIFEST, annotations?: Record<string, string>): Descriptor => ({
    mediaType, digest: digestOf(String(n)), size: n, ...(platform ? { platform } : {}), ...(annotations ? { annotations } : {}),
  });
  const amd = d(1, { os: 'linux', architecture: 'amd64' });
  const amdZstd = d(2, { os: 'linux', architecture: 'amd64' }, OCI_MANIFEST, { 'io.github.containers.compression.zstd': 'true' });
  const v6 = d(3, { os: 'linux', architecture: 'arm', variant: 'v6' });
  const v7 = d(4, { os: 'linux', architecture: 'arm', variant: 'v7' });
  const arm64 = d(5, { os: 'linux', architecture: 'arm64', variant: 'v8' }, DOCKER_MANIFEST);
  const attestation = d(6, { os: 'unknown', architecture: 'unknown' }, OCI_MANIFEST, { 'vnd.docker.reference.type': 'attestation-manifest' });
  const noPlatform = d(7);
  const layer = d(8, { os: 'linux', architecture: 's390x' }, OCI_LAYER_GZIP);
  const entries = [noPlatform, amd, amdZstd, v6, v7, arm64, attestation, layer];
  const rows: { name: string; want: string; got: Descriptor | undefined }[] = [
    { name: 'first of two equal amd64 entries', want: 'linux/amd64', got: amd },
    { name: 'arm64 exact', want: 'linux/arm64', got: arm64 },
    { name: 'arm/v7 prefers v7 over v6', want: 'linux/arm/v7', got: v7 },
    { name: 'arm/v8 host falls back to v7', want: 'linux/arm/v8', got: v7 },
    { name: 'arm/v6 host gets v6', want: 'linux/arm/v6', got: v6 },
    { name: 'unknown/unknown is never selected', want: 'unknown/unknown', got: undefined },
    { name: 'no match', want: 'linux/ppc64le', got: undefined },
    { name: 'entries that are not manifests are skipped', want: 'linux/s390x', got: undefined },
  ];
  for (const row of rows) assert.equal(selectPlatform(entries, parsePlatform(row.want)), row.got, row.name);
  assert.equal(selectPlatform([v6, v7], parsePlatform('linux/arm64')), v7, 'arm64 host: arm/v7 ranks above arm/v6 whatever the order');
});

test('platformFromNode maps Node names', () => {
  const rows = [
    { name: 'linux x64', input: ['linux', 'x64'], want: 'linux/amd64' },
    { name: 'darwin arm64', input: ['darwin', 'arm64'], want: 'darwin/arm64' },
    { name: 'win32 ia32', input: ['win32', 'ia32'], want: 'windows/386' },
    { name: 'linux arm defaults to v7', input: ['linux', 'arm'], want: 'linux/arm/v7' },
    { name: 'linux arm with arm_version 6', input: ['linux', 'arm', '6'], want: 'linux/arm/v6' },
    { name: 'linux ppc64 is little-endian', input: ['linux', 'ppc64'], want: 'linux/ppc64le' },
    { name: 'aix ppc64 stays big-endian', input: ['aix', 'ppc64'], want: 'aix/ppc64' },
    { name: 'linux s390x', input: ['linux', 's390x'], want: 'linux/s390x' },
    { name: 'linux riscv64', input: ['linux', 'riscv64'], want: 'linux/riscv64' },
  ];
  for (const row of rows) assert.equal(formatPlatform(platformFromNode(row.input[0]!, row.input[1]!, row.input[2])), row.want, row.name);
});

test('platformFromJson reads the JSON keys and names bad fields', () => {
  assert.deepEqual(platformFromJson({ architecture: 'amd64', os: 'windows', 'os.version': '10', 'os.features': ['win32k'] }, 'platform'),
    { os: 'windows', architecture: 'amd64', osVersion: '10', osFeatures: ['win32k'] });
  const rows = [
    { name: 'variant not a string', input: { os: 'linux', architecture: 'arm', variant: 7 }, path: 'm[0].platform.variant' },
    { name: 'empty architecture', input: { os: 'linux', architecture: '' }, path: 'm[0].platform.architecture' },
    { name: 'os.version not a string', input: { os: 'linux', architecture: 'arm', 'os.version': 1 }, path: 'm[0].platform["os.version"]' },
  ];
  for (const row of rows) {
    assert.throws(() => platformFromJson(row.input, 'm[0].platform'), (err: unknown) => isBerthError(err, 'BERTH_INVALID_PLATFORM') && err.message.startsWith(`${row.path}: `), row.name);
  }
});
