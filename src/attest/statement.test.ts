import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import {
  MAX_STATEMENT_BYTES,
  PREDICATE_TYPE_ANNOTATION,
  STATEMENT_TYPE_V01,
  STATEMENT_TYPE_V1,
  decodeStatement,
  type DecodeStatementOptions,
  type StatementSubject,
} from './statement.js';
import { repoRoot } from '../../test/support/paths.js';

// Compiled tests run from dist/src/attest/: walk up to the repository (the folder with package.json).
const REAL = path.resolve(repoRoot, '../shared/fixtures/real');
const MULTI = 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/hello-oci-multiplatform-gzip.tar';
const RECORD = 'docker__actions-toolkit/__tests__/.fixtures/oci-archive/docker~test-docker-action~COIO50.dockerbuild';
const SNYK = 'snyk__snyk-docker-plugin/test/fixtures/containerd-archives/busybox-single-arch-with-attestation-manifest.tar';
const SIGSTORE = 'docker__actions-toolkit/__tests__/.fixtures/sigstore/single/provenance.json';

/** One blob of a (possibly gzip-compressed) OCI archive, through GNU tar. */
function blob(archive: string, hex: string): Uint8Array {
  return execFileSync('tar', ['-xOf', path.join(REAL, archive), `blobs/sha256/${hex}`], { maxBuffer: 64 << 20 });
}

const AMD64_PROVENANCE = '26418efea0e73f6d53caec7094235ed1b16d6f7b31981fd7076760022c8e366d';
const SNYK_PROVENANCE = '4f62f95682318843696bbf8eb884d5c904c1f2fa70c0f0523bf2cac8f902db14';
const SNYK_IMAGE = 'cf7d823e4eea96316ae629fb9a45b4211869162a5f5dc1654928c7ca530ed810';
const RECORD_MANIFEST = 'ae5eb5cef8f241ea0518a4d6831a835b942bd4fc8ae3af8a730461716539b79a';
const RECORD_PROVENANCE = '23d23b89c07493ffeb86bc3bc72c90f456e0b9f7d2bce185c07aa9aaa8b77498';

function recordLayerAnnotations(): Record<string, string> {
  const manifest = JSON.parse(Buffer.from(blob(RECORD, RECORD_MANIFEST)).toString('utf8')) as {
    layers: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const layer = manifest.layers.find((l) => l.digest === `sha256:${RECORD_PROVENANCE}`);
  assert.ok(layer?.annotations);
  return layer.annotations;
}

function json(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

function snykAsV1(): Record<string, unknown> {
  const doc = JSON.parse(Buffer.from(blob(SNYK, SNYK_PROVENANCE)).toString('utf8')) as Record<string, unknown>;
  return { ...doc, _type: STATEMENT_TYPE_V1 };
}

describe('decodeStatement on real attestations', () => {
  const rows: Array<{
    name: string;
    bytes: () => Uint8Array;
    opts?: () => DecodeStatementOptions;
    type: string;
    predicateType: string;
    subjects: StatementSubject[];
    bare: boolean;
    size: number;
    envelope?: 'dsse';
  }> = [
    {
      name: 'buildkit v0.1 statement with an empty subject (actions-toolkit amd64)',
      bytes: () => blob(MULTI, AMD64_PROVENANCE),
      type: STATEMENT_TYPE_V01,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [],
      bare: false,
      size: 1265,
    },
    {
      name: 'v0.1 statement whose subject is a purl (snyk containerd archive)',
      bytes: () => blob(SNYK, SNYK_PROVENANCE),
      type: STATEMENT_TYPE_V01,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [{ name: 'pkg:docker/foo/bar@v3?platform=linux%2Farm64', digests: { sha256: SNYK_IMAGE } }],
      bare: false,
      size: 993,
    },
    {
      name: 'v0.1 statement with a slsa v1 predicate (sigstore provenance.json)',
      bytes: () => readFileSync(path.join(REAL, SIGSTORE)),
      type: STATEMENT_TYPE_V01,
      predicateType: 'https://slsa.dev/provenance/v1',
      subjects: [{ name: 'hello.txt', digests: { sha256: '1b37929e66644beb58b3d28d44fba0d82aa90cab03c55a492adb81fe6e833ec8' } }],
      bare: false,
      size: readFileSync(path.join(REAL, SIGSTORE)).length,
    },
    {
      name: 'bare slsa v0.2 predicate typed by the layer annotation (.dockerbuild record)',
      bytes: () => blob(RECORD, RECORD_PROVENANCE),
      opts: () => ({ annotations: recordLayerAnnotations() }),
      type: '',
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [],
      bare: true,
      size: 6912,
    },
    {
      name: 'bare slsa v0.2 predicate without annotation: type guessed from its shape',
      bytes: () => blob(RECORD, RECORD_PROVENANCE),
      type: '',
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [],
      bare: true,
      size: 6912,
    },
    {
      name: 'snyk statement rewritten as in-toto v1',
      bytes: () => json(snykAsV1()),
      type: STATEMENT_TYPE_V1,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [{ name: 'pkg:docker/foo/bar@v3?platform=linux%2Farm64', digests: { sha256: SNYK_IMAGE } }],
      bare: false,
      size: json(snykAsV1()).length,
    },
    {
      name: 'snyk statement inside a dsse envelope',
      bytes: () => json({
        payloadType: 'application/vnd.in-toto+json',
        payload: Buffer.from(blob(SNYK, SNYK_PROVENANCE)).toString('base64'),
        signatures: [{ keyid: '', sig: 'AAAA' }],
      }),
      type: STATEMENT_TYPE_V01,
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subjects: [{ name: 'pkg:docker/foo/bar@v3?platform=linux%2Farm64', digests: { sha256: SNYK_IMAGE } }],
      bare: false,
      size: json({
        payloadType: 'application/vnd.in-toto+json',
        payload: Buffer.from(blob(SNYK, SNYK_PROVENANCE)).toString('base64'),
        signatures: [{ keyid: '', sig: 'AAAA' }],
      }).length,
      envelope: 'dsse',
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const st = decodeStatement(row.bytes(), `layer ${row.name}`, row.opts?.());
      assert.equal(st.type, row.type);
      assert.equal(st.predicateType, row.predicateType);
      assert.deepEqual(st.subjects, row.subjects);
      assert.equal(st.bare, row.bare);
      assert.equal(st.size, row.size);
      assert.equal(st.envelope, row.envelope);
      assert.equal(st.what, `layer ${row.name}`);
      assert.equal(typeof st.predicate, 'object');
    });
  }

  test('the bare predicate is the whole document', () => {
    const st = decodeStatement(blob(RECORD, RECORD_PROVENANCE), 'record');
    assert.equal((st.predicate as { buildType: string }).buildType, 'https://mobyproject.org/buildkit@v1');
    assert.equal(recordLayerAnnotations()[PREDICATE_TYPE_ANNOTATION], 'https://slsa.dev/provenance/v0.2');
  });

  test('a v1 subject may carry a uri and no name', () => {
    const st = decodeStatement(json({
      _type: STATEMENT_TYPE_V1,
      predicateType: 'https://example.com/p',
      subject: [{ uri: 'https://example.com/a.tar', digest: { sha256: SNYK_IMAGE, gitCommit: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe' } }],
    }), 'v1 sample');
    assert.deepEqual(st.subjects, [{
      name: '',
      uri: 'https://example.com/a.tar',
      digests: { sha256: SNYK_IMAGE, gitCommit: 'bdb96fcfe8cc9e3a54800bc2537a4d4a14f0c5fe' },
    }]);
    assert.equal(st.predicate, undefined);
  });
});

describe('decodeStatement rejects', () => {
  const real = (): Record<string, unknown> =>
    JSON.parse(Buffer.from(blob(SNYK, SNYK_PROVENANCE)).toString('utf8')) as Record<string, unknown>;
  const rows: Array<{
    name: string;
    bytes: () => Uint8Array;
    opts?: DecodeStatementOptions;
    code: ErrorCode;
    path?: string;
    message: RegExp;
  }> = [
    {
      name: 'truncated statement',
      bytes: () => blob(SNYK, SNYK_PROVENANCE).subarray(0, 500),
      code: 'BERTH_INVALID_JSON',
      message: /^read in-toto statement layer x: invalid json: /,
    },
    {
      name: 'not utf-8',
      bytes: () => Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]),
      code: 'BERTH_INVALID_JSON',
      message: /^read in-toto statement layer x: not valid UTF-8$/,
    },
    {
      name: 'json array instead of an object',
      bytes: () => json([1, 2]),
      code: 'BERTH_INVALID_JSON',
      message: /^statement must be a JSON object, got array \(in layer x\)$/,
    },
    {
      name: 'wrong _type',
      bytes: () => json({ ...real(), _type: 'https://in-toto.io/Statement/v2' }),
      code: 'BERTH_UNSUPPORTED',
      path: '_type',
      message: /^_type: unsupported statement type "https:\/\/in-toto.io\/Statement\/v2"/,
    },
    {
      name: '_type not a string',
      bytes: () => json({ ...real(), _type: 1 }),
      code: 'BERTH_INVALID_JSON',
      path: '_type',
      message: /^_type: must be a string, got number \(in layer x\)$/,
    },
    {
      name: 'missing _type on a statement',
      bytes: () => json({ ...real(), _type: undefined }),
      code: 'BERTH_INVALID_JSON',
      path: '_type',
      message: /^_type: missing \(in layer x\)$/,
    },
    {
      name: 'bare document that is no known predicate',
      bytes: () => json({ hello: 'world' }),
      code: 'BERTH_INVALID_JSON',
      path: '_type',
      message: /^_type: missing, and the document is not a recognised bare predicate/,
    },
    {
      name: 'bad subject digest (short hex)',
      bytes: () => json({ ...real(), subject: [{ name: 'x', digest: { sha256: 'cf7d823e' } }] }),
      code: 'BERTH_INVALID_DIGEST',
      path: 'subject[0].digest.sha256',
      message: /^subject\[0\]\.digest\.sha256: "cf7d823e" is not a valid sha256 digest \(hex must be 64 characters, got 8\)/,
    },
    {
      name: 'uppercase sha1 subject digest',
      bytes: () => json({ ...real(), subject: [{ name: 'x', digest: { sha1: 'BDB96FCFE8CC9E3A54800BC2537A4D4A14F0C5FE' } }] }),
      code: 'BERTH_INVALID_DIGEST',
      path: 'subject[0].digest.sha1',
      message: /^subject\[0\]\.digest\.sha1: .* \(hex must be lowercase \[a-f0-9\] for sha1\)/,
    },
    {
      name: 'subject digest not an object',
      bytes: () => json({ ...real(), subject: [{ name: 'x', digest: `sha256:${SNYK_IMAGE}` }] }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject[0].digest',
      message: /^subject\[0\]\.digest: must be an object, got string/,
    },
    {
      name: 'v0.1 subject without digest',
      bytes: () => json({ ...real(), subject: [{ name: 'x' }] }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject[0].digest',
      message: /^subject\[0\]\.digest: missing/,
    },
    {
      name: 'v0.1 subject without name',
      bytes: () => json({ ...real(), subject: [{ digest: { sha256: SNYK_IMAGE } }] }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject[0].name',
      message: /^subject\[0\]\.name: missing/,
    },
    {
      name: 'v1 subject with neither uri, digest nor content',
      bytes: () => json({ ...real(), _type: STATEMENT_TYPE_V1, subject: [{ name: 'x' }] }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject[0]',
      message: /^subject\[0\]: needs at least one of uri, digest or content/,
    },
    {
      name: 'subject missing',
      bytes: () => json({ ...real(), subject: undefined }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject',
      message: /^subject: missing \(an empty list is allowed\)/,
    },
    {
      name: 'subject not an array',
      bytes: () => json({ ...real(), subject: {} }),
      code: 'BERTH_INVALID_JSON',
      path: 'subject',
      message: /^subject: must be an array, got object/,
    },
    {
      name: 'predicateType missing',
      bytes: () => json({ ...real(), predicateType: undefined }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicateType',
      message: /^predicateType: missing or empty/,
    },
    {
      name: 'v0.1 predicate missing',
      bytes: () => json({ ...real(), predicate: undefined }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate',
      message: /^predicate: missing/,
    },
    {
      name: 'predicate not an object',
      bytes: () => json({ ...real(), predicate: 'x' }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate',
      message: /^predicate: must be an object, got string/,
    },
    {
      name: 'dsse envelope with another payload type',
      bytes: () => json({ payloadType: 'text/plain', payload: 'aGk=', signatures: [] }),
      code: 'BERTH_UNSUPPORTED',
      path: 'payloadType',
      message: /^payloadType: unsupported dsse payload type "text\/plain"/,
    },
    {
      name: 'over the caller size cap',
      bytes: () => blob(SNYK, SNYK_PROVENANCE),
      opts: { maxBytes: 100 },
      code: 'BERTH_TOO_LARGE',
      message: /^read in-toto statement layer x: 993 bytes is over the limit of 100 bytes$/,
    },
    {
      name: 'over 64 MiB',
      bytes: () => new Uint8Array(MAX_STATEMENT_BYTES + 1),
      opts: { maxBytes: MAX_STATEMENT_BYTES * 2 },
      code: 'BERTH_TOO_LARGE',
      message: /: 67108865 bytes is over the limit of 67108864 bytes$/,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.throws(
        () => decodeStatement(row.bytes(), 'layer x', row.opts),
        (err: unknown) => {
          assert.ok(isBerthError(err, row.code), `want ${row.code}, got ${String(err)}`);
          assert.match(err.message, row.message);
          assert.equal(err.path, row.path);
          assert.equal(err.subject, 'layer x');
          return true;
        },
      );
    });
  }
});
