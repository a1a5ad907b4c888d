import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import {
  ATTESTATION_REFERENCE_TYPE,
  IN_TOTO_LAYER_MEDIA_TYPE,
  PREDICATE_SLSA_PROVENANCE_V02,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  STATEMENT_TYPE_V1,
  checkSubjects,
  decodeStatement,
  summarizeStatement,
  type Statement,
} from './index.js';
import { repoRoot } from '../../test/support/paths.js';

const REAL = path.resolve(repoRoot, '../shared/fixtures/real');
const MULTI = 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar';
const SNYK = 'snyk__snyk-docker-plugin/test/fixtures/containerd-archives/busybox-single-arch-with-attestation-manifest.tar';
const SIGSTORE = 'docker__actions-toolkit/__tests__/.fixtures/sigstore/single/provenance.json';

function blob(archive: string, digest: string): Uint8Array {
  const hex = digest.replace(/^sha256:/, '');
  return execFileSync('tar', ['-xOf', path.join(REAL, archive), `blobs/sha256/${hex}`], { maxBuffer: 64 << 20 });
}

interface Desc {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}

function readJson<T>(archive: string, digest: string): T {
  return JSON.parse(Buffer.from(blob(archive, digest)).toString('utf8')) as T;
}

/** Follows the index as a reader would: attestation entries → their manifest → in-toto layers. */
function attestations(archive: string, indexDigest: string): Array<{ imageDigest: string; statement: Statement }> {
  const index = readJson<{ manifests: Desc[] }>(archive, indexDigest);
  const out: Array<{ imageDigest: string; statement: Statement }> = [];
  for (const entry of index.manifests) {
    if (entry.annotations?.[REFERENCE_TYPE_ANNOTATION] !== ATTESTATION_REFERENCE_TYPE) continue;
    const imageDigest = entry.annotations[REFERENCE_DIGEST_ANNOTATION] ?? '';
    const manifest = readJson<{ layers: Desc[] }>(archive, entry.digest);
    for (const layer of manifest.layers) {
      if (layer.mediaType !== IN_TOTO_LAYER_MEDIA_TYPE) continue;
      const statement = decodeStatement(blob(archive, layer.digest), `layer ${layer.digest}`, {
        ...(layer.annotations === undefined ? {} : { annotations: layer.annotations }),
      });
      out.push({ imageDigest, statement });
    }
  }
  return out;
}

const SNYK_INDEX = 'sha256:183b1c266030c632d6d7decc62be45b72509c6a48c81b32a31d5ab58e91cb92a';
const SNYK_IMAGE = 'sha256:cf7d823e4eea96316ae629fb9a45b4211869162a5f5dc1654928c7ca530ed810';
const MULTI_INDEX = 'sha256:5ac2d3ac39878329a6328eba5b2a6e5e7a06279244eea0f2ea893f76cefff26c';
const MULTI_AMD64 = 'sha256:0f90b7af6b2fef777963e3e1ca4fd66f378af93f5fe46304886943a4c0c7a46b';
const MULTI_ARM64 = 'sha256:6b2a0dfca3903c0a2022f224f818eedd9d055ebbef7c8208b35cd7d3b4f54088';

describe('attestations found through real indexes', () => {
  test('snyk: one provenance attestation whose subject is the arm64 manifest', () => {
    const found = attestations(SNYK, SNYK_INDEX);
    assert.equal(found.length, 1);
    const [{ imageDigest, statement }] = found as [{ imageDigest: string; statement: Statement }];
    assert.equal(imageDigest, SNYK_IMAGE);
    assert.deepEqual(checkSubjects(statement, imageDigest), []);
    const summary = summarizeStatement(statement);
    assert.equal(summary.kind, 'provenance');
    assert.ok(summary.kind === 'provenance');
    assert.equal(summary.predicateType, PREDICATE_SLSA_PROVENANCE_V02);
    assert.equal(summary.size, 993);
    assert.equal(summary.slsaVersion, '0.2');
    assert.equal(summary.frontend, 'dockerfile.v0');
    assert.equal(summary.materials[0]?.uri, 'pkg:docker/busybox@latest?platform=linux%2Farm64');
  });

  test('actions-toolkit: two provenance attestations, empty subjects reported as notes', () => {
    const found = attestations(MULTI, MULTI_INDEX);
    assert.deepEqual(found.map((f) => f.imageDigest), [MULTI_AMD64, MULTI_ARM64]);
    for (const { imageDigest, statement } of found) {
      assert.deepEqual(checkSubjects(statement, imageDigest), [
        `note: subject: empty (as buildkit writes in-toto v0.1 provenance), so it cannot confirm it describes ${imageDigest}`,
      ]);
      const summary = summarizeStatement(statement);
      assert.ok(summary.kind === 'provenance');
      assert.equal(summary.invocationId, 'r25j5158gyqxlqukqaig2q4iu');
      assert.equal(summary.size, 1265);
    }
  });
});

describe('checkSubjects', () => {
  const snyk = (): Statement => attestations(SNYK, SNYK_INDEX)[0]!.statement;
  const rows: Array<{ name: string; statement: () => Statement; digest: string; want: string[] }> = [
    {
      name: 'attached to another manifest',
      statement: snyk,
      digest: MULTI_AMD64,
      want: [
        `subject[0].digest.sha256: ${SNYK_IMAGE} is not the image manifest ${MULTI_AMD64}`,
      ],
    },
    {
      name: 'no digest of the wanted algorithm',
      statement: () => ({ ...snyk(), subjects: [{ name: 'x', digests: { sha1: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe' } }] }),
      digest: SNYK_IMAGE,
      want: [`subject[0].digest: no sha256 digest to compare with ${SNYK_IMAGE} (has sha1)`],
    },
    {
      name: 'one of two subjects differs',
      statement: () => ({
        ...snyk(),
        subjects: [
          { name: 'a', digests: { sha256: SNYK_IMAGE.slice(7) } },
          { name: 'b', digests: { sha256: MULTI_ARM64.slice(7) } },
        ],
      }),
      digest: SNYK_IMAGE,
      want: [`subject[1].digest.sha256: ${MULTI_ARM64} is not the image manifest ${SNYK_IMAGE}`],
    },
    {
      name: 'empty subject on an in-toto v1 statement is a problem',
      statement: () => ({ ...snyk(), type: STATEMENT_TYPE_V1, subjects: [] }),
      digest: SNYK_IMAGE,
      want: [`subject: empty, want a subject with digest ${SNYK_IMAGE}`],
    },
    {
      name: 'slsa v1 statement from sigstore: subject is a file, not a manifest',
      statement: () => decodeStatement(readFileSync(path.join(REAL, SIGSTORE)), 'provenance.json'),
      digest: SNYK_IMAGE,
      want: [`subject[0].digest.sha256: sha256:1b37929e66644beb58b3d28d44fba0d82aa90cab03c55a492adb81fe6e833ec8 is not the image manifest ${SNYK_IMAGE}`],
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.deepEqual(checkSubjects(row.statement(), row.digest), row.want);
    });
  }

  test('a malformed image digest is BERTH_INVALID_DIGEST', () => {
    assert.throws(
      () => checkSubjects(snyk(), 'sha256:cf7d'),
      (err: unknown) => isBerthError(err, 'BERTH_INVALID_DIGEST') && err.message.startsWith('subjectDigest: '),
    );
  });
});

describe('summarizeStatement', () => {
  test('sbom predicate', () => {
    const st = decodeStatement(Buffer.from(JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://spdx.dev/Document',
      subject: [{ name: '_', digest: { sha256: SNYK_IMAGE.slice(7) } }],
      predicate: {
        spdxVersion: 'SPDX-2.3',
        creationInfo: { creators: ['Tool: syft-v0.105.0', 'Tool: buildkit-v0.13.2'] },
        packages: [{ name: 'busybox', versionInfo: '1.36.1-r15' }],
      },
    })), 'sbom');
    const summary = summarizeStatement(st);
    assert.ok(summary.kind === 'sbom');
    assert.equal(summary.format, 'spdx');
    assert.equal(summary.packageCount, 1);
    assert.deepEqual(summary.packages, [{ name: 'busybox', version: '1.36.1-r15' }]);
    assert.deepEqual(checkSubjects(st, SNYK_IMAGE), []);
  });

  test('unknown predicate type keeps its type and size', () => {
    const bytes = Buffer.from(JSON.stringify({
      _type: STATEMENT_TYPE_V1,
      predicateType: 'https://in-toto.io/attestation/vulns/v0.1',
      subject: [{ digest: { sha256: SNYK_IMAGE.slice(7) } }],
      predicate: { scanner: { uri: 'pkg:github/aquasecurity/trivy@0.50.0' } },
    }));
    assert.deepEqual(summarizeStatement(decodeStatement(bytes, 'vulns')), {
      kind: 'unknown',
      predicateType: 'https://in-toto.io/attestation/vulns/v0.1',
      size: bytes.length,
      bare: false,
    });
  });
});
