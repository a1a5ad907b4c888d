import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import { summarizeProvenance, type ProvenanceSummary } from './provenance.js';
import { decodeStatement, type Statement } from './statement.js';
import { repoRoot } from '../../test/support/paths.js';

const REAL = path.resolve(repoRoot, '../shared/fixtures/real');
const MULTI = 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar';
const RECORD = 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/docker~test-docker-action~COIO50.dockerbuild';
const SNYK = 'snyk__snyk-docker-plugin/test/fixtures/containerd-archives/busybox-single-arch-with-attestation-manifest.tar';
const SIGSTORE = 'docker__actions-toolkit/__tests__/.fixtures/sigstore/single/provenance.json';

function blob(archive: string, hex: string): Uint8Array {
  return execFileSync('tar', ['-xOf', path.join(REAL, archive), `blobs/sha256/${hex}`], { maxBuffer: 64 << 20 });
}

const fixtures = {
  amd64: () => decodeStatement(blob(MULTI, '26418efea0e73f6d53caec7094235ed1b16d6f7b31981fd7076760022c8e366d'), 'amd64 provenance'),
  arm64: () => decodeStatement(blob(MULTI, 'a659ccda8bbcce09842dfd7bf7fa0581e215564273bfc27718ca0eee18e16880'), 'arm64 provenance'),
  snyk: () => decodeStatement(blob(SNYK, '4f62f95682318843696bbf8eb884d5c904c1f2fa70c0f0523bf2cac8f902db14'), 'snyk provenance'),
  record: () => decodeStatement(blob(RECORD, '23d23b89c07493ffeb86bc3bc72c90f456e0b9f7d2bce185c07aa9aaa8b77498'), 'record provenance', {
    annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' },
  }),
  sigstore: () => decodeStatement(readFileSync(path.join(REAL, SIGSTORE)), 'provenance.json'),
};

const BUSYBOX_AMD64 = '5eef5ed34e1e1ff0a4ae850395cbf665c4de6b4b83a32a0bc7bcb998e24e7bbb';

describe('summarizeProvenance on real provenance', () => {
  const rows: Array<{ name: string; statement: () => Statement; want: ProvenanceSummary }> = [
    {
      name: 'slsa v0.2, gateway frontend, vcs metadata (actions-toolkit amd64)',
      statement: fixtures.amd64,
      want: {
        slsaVersion: '0.2',
        builderId: '',
        buildType: 'https://mobyproject.org/buildkit@v1',
        frontend: 'gateway.v0',
        buildArgs: {},
        labels: {},
        frontendAttrs: { cmdline: 'docker/dockerfile:1', source: 'docker/dockerfile:1' },
        source: {
          uri: 'https://github.com/crazy-max/docker-actions-toolkit.git',
          revision: '66c00b9bbdd345a37d086780d645b4aff8fe3a0d',
        },
        entryPoint: 'hello.Dockerfile',
        locals: ['context', 'dockerfile'],
        materials: [
          { uri: 'pkg:docker/docker/dockerfile@1', digest: { sha256: 'a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e' } },
          { uri: 'pkg:docker/busybox@latest?platform=linux%2Famd64', digest: { sha256: BUSYBOX_AMD64 } },
        ],
        builderPlatform: 'linux/amd64',
        startedOn: '2024-05-15T16:15:49.712135355Z',
        finishedOn: '2024-05-15T16:15:51.154322345Z',
        reproducible: false,
        invocationId: 'r25j5158gyqxlqukqaig2q4iu',
        completeness: { parameters: true, environment: true, materials: false },
      },
    },
    {
      name: 'slsa v0.2 without vcs metadata or args (snyk busybox arm64)',
      statement: fixtures.snyk,
      want: {
        slsaVersion: '0.2',
        builderId: '',
        buildType: 'https://mobyproject.org/buildkit@v1',
        frontend: 'dockerfile.v0',
        buildArgs: {},
        labels: {},
        frontendAttrs: {},
        entryPoint: 'Dockerfile',
        locals: ['context', 'dockerfile'],
        materials: [
          { uri: 'pkg:docker/busybox@latest?platform=linux%2Farm64', digest: { sha256: 'f85340bf132ae937d2c2a763b8335c9bab35d6e8293f70f606b9c6178d84f42b' } },
        ],
        builderPlatform: 'linux/arm64',
        startedOn: '2025-07-08T20:19:05.941455719Z',
        finishedOn: '2025-07-08T20:19:06.773470261Z',
        reproducible: false,
        invocationId: '8wtmhv3xzwgofm4x4rjkfllvj',
        completeness: { parameters: true, environment: true, materials: false },
      },
    },
    {
      name: 'bare slsa v0.2 predicate with label args (.dockerbuild record)',
      statement: fixtures.record,
      want: {
        slsaVersion: '0.2',
        builderId: '',
        buildType: 'https://mobyproject.org/buildkit@v1',
        frontend: 'dockerfile.v0',
        buildArgs: {},
        labels: {
          'org.opencontainers.image.created': '2024-05-15T08:46:08.981Z',
          'org.opencontainers.image.description': 'Test "Docker" Actions',
          'org.opencontainers.image.licenses': 'MIT',
          'org.opencontainers.image.revision': '0cc1946822ab5fae02bd40f30b2e41fbad489513',
          'org.opencontainers.image.source': 'https://github.com/docker/test-docker-action',
          'org.opencontainers.image.title': 'test-docker-action',
          'org.opencontainers.image.url': 'https://github.com/docker/test-docker-action',
          'org.opencontainers.image.version': 'master',
        },
        frontendAttrs: {},
        source: { uri: 'https://github.com/docker/test-docker-action', revision: '0cc1946822ab5fae02bd40f30b2e41fbad489513' },
        entryPoint: 'summary.Dockerfile',
        locals: ['context', 'dockerfile'],
        materials: [{ uri: 'pkg:docker/busybox@latest?platform=linux%2Famd64', digest: { sha256: BUSYBOX_AMD64 } }],
        builderPlatform: 'linux/amd64',
        startedOn: '2024-05-15T08:46:10.204060131Z',
        finishedOn: '2024-05-15T08:46:12.008237462Z',
        reproducible: false,
        invocationId: 'szbk6x8ef6kr71wrq3sx8bfs7',
        completeness: { parameters: true, environment: true, materials: false },
      },
    },
    {
      name: 'slsa v1 from a git context (sigstore provenance.json)',
      statement: fixtures.sigstore,
      want: {
        slsaVersion: '1',
        builderId: 'https://github.com/docker/github-builder-test/actions/runs/18937328894/attempts/1',
        buildType: 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md',
        frontend: 'dockerfile.v0',
        buildArgs: {},
        labels: {},
        frontendAttrs: {},
        source: {
          uri: 'https://github.com/docker/github-builder-test.git#bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe',
          revision: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe',
          digest: { sha1: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe' },
        },
        entryPoint: 'hello.Dockerfile',
        locals: [],
        materials: [
          { uri: 'pkg:docker/docker/buildkit-syft-scanner@stable-1', digest: { sha256: 'e930c2697be77cb7271d316ecfa78768b5eac73de3b16018ed38eb0ea0b5a7cb' } },
          { uri: 'pkg:docker/alpine@latest?platform=linux%2Famd64', digest: { sha256: '4b7ce07002c69e8f3d704a9c5d6fd3053be500b7f1c69fc0d80990c2ad8dd412' } },
          { uri: 'https://github.com/docker/github-builder-test.git#bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe', digest: { sha1: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe' } },
        ],
        builderPlatform: 'linux/amd64',
        startedOn: '2025-10-30T10:19:52.868710505Z',
        finishedOn: '2025-10-30T10:19:57.635810119Z',
        invocationId: '7qg2yuux3iklv02ktbmbtwgeb',
        completeness: { request: true, resolvedDependencies: true },
      },
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.deepEqual(summarizeProvenance(row.statement()), row.want);
    });
  }

  test('the arm64 attestation of the same build names the arm64 busybox', () => {
    const arm64 = summarizeProvenance(fixtures.arm64());
    assert.equal(arm64.materials[1]?.uri, 'pkg:docker/busybox@latest?platform=linux%2Farm64');
    // BuildKit records the builder's platform, not the target's: amd64 built both.
    assert.equal(arm64.builderPlatform, 'linux/amd64');
  });
});

function edited(base: () => Statement, edit: (predicate: Record<string, unknown>) => void): () => Statement {
  return () => {
    const st = base();
    const predicate = structuredClone(st.predicate) as Record<string, unknown>;
    edit(predicate);
    return { ...st, predicate };
  };
}

describe('summarizeProvenance build args', () => {
  test('build-arg:, label: and other args are split and sorted (v0.2)', () => {
    const st = edited(fixtures.snyk, (p) => {
      const invocation = p['invocation'] as { parameters: Record<string, unknown> };
      invocation.parameters['args'] = {
        'build-arg:VERSION': '1.2.3',
        'build-arg:ALPINE': '3.20',
        'label:maintainer': 'me',
        target: 'release',
      };
    })();
    const s = summarizeProvenance(st);
    assert.deepEqual(s.buildArgs, { ALPINE: '3.20', VERSION: '1.2.3' });
    assert.deepEqual(Object.keys(s.buildArgs), ['ALPINE', 'VERSION']);
    assert.deepEqual(s.labels, { maintainer: 'me' });
    assert.deepEqual(s.frontendAttrs, { target: 'release' });
  });

  test('request.args and buildkit vcs metadata are read (v1)', () => {
    const st = edited(fixtures.sigstore, (p) => {
      const def = p['buildDefinition'] as { externalParameters: { request: Record<string, unknown> } };
      def.externalParameters.request['args'] = { 'build-arg:GO_VERSION': '1.22', filename: 'hello.Dockerfile' };
      const run = p['runDetails'] as { metadata: { buildkit_metadata: Record<string, unknown> } };
      run.metadata.buildkit_metadata['vcs'] = { source: 'https://github.com/docker/github-builder-test.git', revision: 'abc123' };
      (run.metadata as Record<string, unknown>)['buildkit_reproducible'] = true;
    })();
    const s = summarizeProvenance(st);
    assert.deepEqual(s.buildArgs, { GO_VERSION: '1.22' });
    assert.deepEqual(s.frontendAttrs, { filename: 'hello.Dockerfile' });
    assert.equal(s.source?.revision, 'abc123');
    assert.equal(s.reproducible, true);
  });
});

describe('summarizeProvenance rejects', () => {
  const rows: Array<{ name: string; statement: () => Statement; code: ErrorCode; path?: string; message: RegExp }> = [
    {
      name: 'not a provenance predicate type',
      statement: () => ({ ...fixtures.snyk(), predicateType: 'https://spdx.dev/Document' }),
      code: 'BERTH_UNSUPPORTED',
      message: /^summarize provenance snyk provenance: predicate type "https:\/\/spdx.dev\/Document" is not slsa provenance/,
    },
    {
      name: 'builder.id is a number',
      statement: edited(fixtures.snyk, (p) => { p['builder'] = { id: 7 }; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.builder.id',
      message: /^predicate\.builder\.id: must be a string, got number \(in snyk provenance\)$/,
    },
    {
      name: 'material digest value is not a string',
      statement: edited(fixtures.amd64, (p) => { (p['materials'] as Array<Record<string, unknown>>)[1]!['digest'] = { sha256: 1 }; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.materials[1].digest.sha256',
      message: /^predicate\.materials\[1\]\.digest\.sha256: must be a string, got number/,
    },
    {
      name: 'bare predicate paths have no predicate. prefix',
      statement: edited(fixtures.record, (p) => { p['materials'] = 'busybox'; }),
      code: 'BERTH_INVALID_JSON',
      path: 'materials',
      message: /^materials: must be an array, got string \(in record provenance\)$/,
    },
    {
      name: 'v1 resolvedDependencies entry not an object',
      statement: edited(fixtures.sigstore, (p) => {
        (p['buildDefinition'] as Record<string, unknown>)['resolvedDependencies'] = ['pkg:docker/alpine'];
      }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.buildDefinition.resolvedDependencies[0]',
      message: /^predicate\.buildDefinition\.resolvedDependencies\[0\]: must be an object, got string/,
    },
    {
      name: 'v0.2 args value not a string',
      statement: edited(fixtures.amd64, (p) => {
        (p['invocation'] as { parameters: Record<string, unknown> }).parameters['args'] = { 'build-arg:N': 3 };
      }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.invocation.parameters.args["build-arg:N"]',
      message: /^predicate\.invocation\.parameters\.args\["build-arg:N"\]: must be a string, got number/,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.throws(
        () => summarizeProvenance(row.statement()),
        (err: unknown) => {
          assert.ok(isBerthError(err, row.code), `want ${row.code}, got ${String(err)}`);
          assert.match(err.message, row.message);
          assert.equal(err.path, row.path);
          return true;
        },
      );
    });
  }
});
