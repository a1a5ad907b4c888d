/**
 * Every crash the fuzzers found, as a named test with its input built in code. Each must now end
 * in a BerthError with the right code (before its fix it threw another exception type).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseImageConfig } from '../../src/core/config.js';
import { parseDescriptor } from '../../src/core/descriptor.js';
import { parseDigest } from '../../src/core/digest.js';
import { isBerthError, type ErrorCode } from '../../src/core/errors.js';
import { parseJsonBytes } from '../../src/core/json.js';
import { parseImageIndex, parseImageManifest, parseManifestOrIndex } from '../../src/core/manifest.js';

function throwsBerth(fn: () => unknown, code: ErrorCode, fragment?: string): void {
  try {
    fn();
  } catch (err) {
    assert.ok(isBerthError(err), `want a BerthError, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`);
    assert.equal(err.code, code, err.message);
    if (fragment !== undefined) assert.ok(err.message.includes(fragment), err.message);
    return;
  }
  assert.fail('want an error, got a result');
}

const enc = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

describe('fuzz regressions', () => {
  // json-documents, seed 162545580: findJsonSyntaxError recursed once per "[" and overflowed the
  // stack (RangeError) at about 9000 levels, before its own 10 000-level guard.
  test('deeply nested unclosed JSON is BERTH_INVALID_JSON, not a RangeError (stack overflow)', () => {
    for (const depth of [9_000, 50_000, 200_000]) {
      throwsBerth(() => parseJsonBytes(enc('['.repeat(depth)), 'deep.json'), 'BERTH_INVALID_JSON', 'nesting too deep');
      throwsBerth(() => parseManifestOrIndex(enc(`{"manifests":${'['.repeat(depth)}`), { what: 'index.json' }), 'BERTH_INVALID_JSON');
    }
  });

  test('deeply nested but closed JSON still parses (the cap is only on locating errors)', () => {
    const depth = 20_000;
    assert.ok(Array.isArray(parseJsonBytes(enc(`${'['.repeat(depth)}${']'.repeat(depth)}`), 'deep.json')));
  });

  // digest-platform, seed 1638510443: String(value) on an object with an own "toString" key
  // throws TypeError "Cannot convert object to primitive value" while the error message is built.
  test('parseDigest of an object with a "toString" key is BERTH_INVALID_DIGEST, not a TypeError', () => {
    throwsBerth(() => parseDigest({ toString: 'JV' }, 'field'), 'BERTH_INVALID_DIGEST', 'must be a string');
    throwsBerth(() => parseDigest(Object.create(null) as unknown, 'field'), 'BERTH_INVALID_DIGEST');
  });

  test('a descriptor whose digest is {"toString":1} fails as an invalid manifest / index / descriptor, not a TypeError', () => {
    const desc = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: { toString: 1 }, size: 2 };
    throwsBerth(() => parseDescriptor(desc, 'config'), 'BERTH_INVALID_DESCRIPTOR', 'config.digest');
    throwsBerth(() => parseImageManifest(enc({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: desc, layers: [] }), { what: 'manifest' }), 'BERTH_INVALID_MANIFEST', 'config.digest');
    throwsBerth(() => parseImageIndex(enc({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...desc, mediaType: OCI_MANIFEST }] }), { what: 'index.json' }), 'BERTH_INVALID_INDEX', 'manifests[0].digest');
    throwsBerth(
      () => parseImageConfig(enc({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [{ toString: 1 }] } }), { what: 'config' }),
      'BERTH_INVALID_CONFIG', 'rootfs.diff_ids[0]',
    );
  });
});
