import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isBerthError, type ErrorCode } from '../core/errors.js';
import { summarizeSbom, type SbomSummary } from './sbom.js';
import { decodeStatement, type Statement } from './statement.js';

// No real SBOM attestation exists among the fixtures (CATALOG.md lists it as a gap), so these are
// small statements shaped like BuildKit's syft scanner output (SPDX) and syft's CycloneDX 1.5 / 1.4.
const IMAGE = 'cf7d823e4eea96316ae629fb9a45b4211869162a5f5dc1654928c7ca530ed810';

function spdxPackage(name: string, version: string, license: string, id: string): Record<string, unknown> {
  return {
    name,
    SPDXID: `SPDXRef-Package-apk-${name}-${id}`,
    versionInfo: version,
    supplier: 'Person: Natanael Copa <ncopa@alpinelinux.org>',
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    sourceInfo: 'acquired package info from APK DB: /lib/apk/db/installed',
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: license,
    copyrightText: 'NOASSERTION',
    externalRefs: [
      { referenceCategory: 'SECURITY', referenceType: 'cpe23Type', referenceLocator: `cpe:2.3:a:${name}:${name}:${version}:*:*:*:*:*:*:*` },
      { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:apk/alpine/${name}@${version}?arch=x86_64&distro=alpine-3.19.1` },
    ],
  };
}

function spdxStatement(): Record<string, unknown> {
  return {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://spdx.dev/Document',
    subject: [{ name: 'pkg:docker/foo/bar@v3?platform=linux%2Famd64', digest: { sha256: IMAGE } }],
    predicate: {
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: '/run/src/core/sbom',
      documentNamespace: 'https://anchore.com/syft/dir/run/src/core/sbom-7f3c1a2e-0e4b-4a43-9d1e-3a5c2f1d8b90',
      creationInfo: {
        licenseListVersion: '3.22',
        creators: ['Organization: Anchore, Inc', 'Tool: syft-v0.105.0', 'Tool: buildkit-v0.13.2'],
        created: '2024-05-15T16:15:50Z',
      },
      packages: [
        spdxPackage('musl', '1.2.4_git20230717-r4', 'MIT', '6d0b0c2a'),
        spdxPackage('busybox', '1.36.1-r15', 'GPL-2.0-only', '1e3f9d7c'),
        {
          name: '/run/src/core/sbom',
          SPDXID: 'SPDXRef-DocumentRoot-Directory--run-src-core-sbom',
          downloadLocation: 'NOASSERTION',
          filesAnalyzed: false,
          licenseConcluded: 'NOASSERTION',
          licenseDeclared: 'NOASSERTION',
          copyrightText: 'NOASSERTION',
          primaryPackagePurpose: 'FILE',
        },
        spdxPackage('alpine-baselayout', '3.4.3-r2', 'GPL-2.0-only', '9a8b7c6d'),
        { ...spdxPackage('ca-certificates-bundle', '20240226-r0', 'NOASSERTION', '4c5d6e7f'), licenseConcluded: 'MPL-2.0 AND MIT' },
      ],
      relationships: [{ spdxElementId: 'SPDXRef-DOCUMENT', relatedSpdxElement: 'SPDXRef-DocumentRoot-Directory--run-src-core-sbom', relationshipType: 'DESCRIBES' }],
    },
  };
}

function cdxComponent(name: string, version: string, license: string, size?: number): Record<string, unknown> {
  return {
    'bom-ref': `pkg:apk/alpine/${name}@${version}?arch=aarch64&distro=alpine-3.20.0&package-id=0123`,
    type: 'library',
    publisher: 'Natanael Copa <ncopa@alpinelinux.org>',
    name,
    version,
    licenses: [{ license: { id: license } }],
    cpe: `cpe:2.3:a:${name}:${name}:${version}:*:*:*:*:*:*:*`,
    purl: `pkg:apk/alpine/${name}@${version}?arch=aarch64&distro=alpine-3.20.0`,
    properties: [
      { name: 'syft:package:foundBy', value: 'apk-db-cataloger' },
      { name: 'syft:package:type', value: 'apk' },
      ...(size === undefined ? [] : [{ name: 'syft:metadata:installedSize', value: String(size) }]),
    ],
  };
}

function cycloneDxStatement(): Record<string, unknown> {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    predicateType: 'https://cyclonedx.org/bom',
    subject: [{ name: '_', digest: { sha256: IMAGE } }],
    predicate: {
      $schema: 'http://cyclonedx.org/schema/bom-1.5.schema.json',
      bomFormat: 'CycloneDX',
      specVersion: '1.5',
      serialNumber: 'urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427',
      version: 1,
      metadata: {
        timestamp: '2024-06-01T10:00:00Z',
        tools: { components: [{ type: 'application', author: 'anchore', name: 'syft', version: '1.4.1' }] },
        component: { 'bom-ref': 'af63bd4c8601b7f1', type: 'container', name: 'foo/bar', version: 'sha256:cf7d823e' },
      },
      components: [
        cdxComponent('busybox', '1.36.1-r29', 'GPL-2.0-only', 946176),
        { ...cdxComponent('ssl_client', '1.36.1-r29', 'GPL-2.0-only', 28672), licenses: [{ license: { id: 'GPL-2.0-only' } }, { license: { name: 'custom' } }] },
        { ...cdxComponent('musl', '1.2.5-r0', 'MIT', 403456), components: [cdxComponent('musl-utils', '1.2.5-r0', 'MIT')] },
        { type: 'operating-system', name: 'alpine', version: '3.20.0', description: 'Alpine Linux v3.20' },
        { type: 'file', name: '/bin/busybox', hashes: [{ alg: 'SHA-256', content: IMAGE }] },
      ],
    },
  };
}

function decode(doc: Record<string, unknown>, what = 'sbom layer'): Statement {
  return decodeStatement(Buffer.from(JSON.stringify(doc)), what);
}

describe('summarizeSbom', () => {
  const rows: Array<{ name: string; statement: () => Statement; want: SbomSummary }> = [
    {
      name: 'spdx 2.3 from buildkit syft scanner',
      statement: () => decode(spdxStatement()),
      want: {
        format: 'spdx',
        specVersion: '2.3',
        tools: ['syft-v0.105.0', 'buildkit-v0.13.2'],
        packageCount: 4,
        packages: [
          { name: 'alpine-baselayout', version: '3.4.3-r2', purl: 'pkg:apk/alpine/alpine-baselayout@3.4.3-r2?arch=x86_64&distro=alpine-3.19.1', license: 'GPL-2.0-only' },
          { name: 'busybox', version: '1.36.1-r15', purl: 'pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1', license: 'GPL-2.0-only' },
          { name: 'ca-certificates-bundle', version: '20240226-r0', purl: 'pkg:apk/alpine/ca-certificates-bundle@20240226-r0?arch=x86_64&distro=alpine-3.19.1', license: 'MPL-2.0 AND MIT' },
          { name: 'musl', version: '1.2.4_git20230717-r4', purl: 'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1', license: 'MIT' },
        ],
      },
    },
    {
      name: 'cyclonedx 1.5 from syft, nested components, sizes',
      statement: () => decode(cycloneDxStatement()),
      want: {
        format: 'cyclonedx',
        specVersion: '1.5',
        tools: ['syft-1.4.1'],
        packageCount: 5,
        packages: [
          { name: 'alpine', version: '3.20.0' },
          { name: 'busybox', version: '1.36.1-r29', purl: 'pkg:apk/alpine/busybox@1.36.1-r29?arch=aarch64&distro=alpine-3.20.0', license: 'GPL-2.0-only', size: 946176 },
          { name: 'musl', version: '1.2.5-r0', purl: 'pkg:apk/alpine/musl@1.2.5-r0?arch=aarch64&distro=alpine-3.20.0', license: 'MIT', size: 403456 },
          { name: 'musl-utils', version: '1.2.5-r0', purl: 'pkg:apk/alpine/musl-utils@1.2.5-r0?arch=aarch64&distro=alpine-3.20.0', license: 'MIT' },
          { name: 'ssl_client', version: '1.36.1-r29', purl: 'pkg:apk/alpine/ssl_client@1.36.1-r29?arch=aarch64&distro=alpine-3.20.0', license: 'GPL-2.0-only, custom', size: 28672 },
        ],
        largestPackages: [
          { name: 'busybox', version: '1.36.1-r29', purl: 'pkg:apk/alpine/busybox@1.36.1-r29?arch=aarch64&distro=alpine-3.20.0', license: 'GPL-2.0-only', size: 946176 },
          { name: 'musl', version: '1.2.5-r0', purl: 'pkg:apk/alpine/musl@1.2.5-r0?arch=aarch64&distro=alpine-3.20.0', license: 'MIT', size: 403456 },
          { name: 'ssl_client', version: '1.36.1-r29', purl: 'pkg:apk/alpine/ssl_client@1.36.1-r29?arch=aarch64&distro=alpine-3.20.0', license: 'GPL-2.0-only, custom', size: 28672 },
        ],
      },
    },
    {
      name: 'cyclonedx 1.4 tools array, versioned predicate type, no sizes',
      statement: () => {
        const doc = cycloneDxStatement();
        const predicate = doc['predicate'] as Record<string, unknown>;
        predicate['specVersion'] = '1.4';
        predicate['metadata'] = { tools: [{ vendor: 'anchore', name: 'syft', version: '0.98.0' }, { vendor: 'x', name: 'custom' }] };
        predicate['components'] = [cdxComponent('zlib', '1.3.1-r1', 'Zlib')];
        return decode({ ...doc, predicateType: 'https://cyclonedx.org/bom/v1.4' });
      },
      want: {
        format: 'cyclonedx',
        specVersion: '1.4',
        tools: ['syft-0.98.0', 'custom'],
        packageCount: 1,
        packages: [{ name: 'zlib', version: '1.3.1-r1', purl: 'pkg:apk/alpine/zlib@1.3.1-r1?arch=aarch64&distro=alpine-3.20.0', license: 'Zlib' }],
      },
    },
    {
      name: 'spdx document with no packages',
      statement: () => {
        const doc = spdxStatement();
        delete (doc['predicate'] as Record<string, unknown>)['packages'];
        return decode(doc);
      },
      want: { format: 'spdx', specVersion: '2.3', tools: ['syft-v0.105.0', 'buildkit-v0.13.2'], packageCount: 0, packages: [] },
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.deepEqual(summarizeSbom(row.statement()), row.want);
    });
  }

  test('largestPackages keeps the ten largest', () => {
    const doc = cycloneDxStatement();
    (doc['predicate'] as Record<string, unknown>)['components'] = Array.from({ length: 12 }, (_, i) =>
      cdxComponent(`pkg${String(i).padStart(2, '0')}`, '1.0', 'MIT', (i + 1) * 1000));
    const s = summarizeSbom(decode(doc));
    assert.equal(s.packageCount, 12);
    assert.equal(s.largestPackages?.length, 10);
    assert.equal(s.largestPackages?.[0]?.name, 'pkg11');
    assert.equal(s.largestPackages?.[0]?.size, 12000);
    assert.equal(s.largestPackages?.[9]?.name, 'pkg02');
  });
});

describe('summarizeSbom rejects', () => {
  const withPredicate = (base: () => Record<string, unknown>, edit: (p: Record<string, unknown>) => void) => () => {
    const doc = base();
    edit(doc['predicate'] as Record<string, unknown>);
    return decode(doc);
  };
  const rows: Array<{ name: string; statement: () => Statement; code: ErrorCode; path?: string; message: RegExp }> = [
    {
      name: 'not an sbom predicate type',
      statement: () => decode({ ...spdxStatement(), predicateType: 'https://slsa.dev/provenance/v0.2' }),
      code: 'BERTH_UNSUPPORTED',
      message: /^summarize sbom sbom layer: predicate type "https:\/\/slsa.dev\/provenance\/v0.2" is not an sbom/,
    },
    {
      name: 'spdx 3 json-ld',
      statement: () => decode({ ...spdxStatement(), predicate: { '@context': 'https://spdx.org/rdf/3.0.1/spdx-context.jsonld', '@graph': [] } }),
      code: 'BERTH_UNSUPPORTED',
      path: 'predicate["@context"]',
      message: /^predicate\["@context"\]: spdx 3 json-ld documents are not supported/,
    },
    {
      name: 'spdxVersion missing',
      statement: withPredicate(spdxStatement, (p) => { delete p['spdxVersion']; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.spdxVersion',
      message: /^predicate\.spdxVersion: missing \(in sbom layer\)$/,
    },
    {
      name: 'spdxVersion malformed',
      statement: withPredicate(spdxStatement, (p) => { p['spdxVersion'] = '2.3'; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.spdxVersion',
      message: /^predicate\.spdxVersion: "2\.3" is not of the form SPDX-2\.N/,
    },
    {
      name: 'spdx package without a name',
      statement: withPredicate(spdxStatement, (p) => { delete (p['packages'] as Array<Record<string, unknown>>)[1]!['name']; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.packages[1].name',
      message: /^predicate\.packages\[1\]\.name: missing/,
    },
    {
      name: 'spdx creators not strings',
      statement: withPredicate(spdxStatement, (p) => { (p['creationInfo'] as Record<string, unknown>)['creators'] = [{ tool: 'syft' }]; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.creationInfo.creators[0]',
      message: /^predicate\.creationInfo\.creators\[0\]: must be a string, got object/,
    },
    {
      name: 'cyclonedx bomFormat wrong',
      statement: withPredicate(cycloneDxStatement, (p) => { p['bomFormat'] = 'SPDX'; }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.bomFormat',
      message: /^predicate\.bomFormat: want "CycloneDX", got "SPDX"/,
    },
    {
      name: 'cyclonedx nested component without a name',
      statement: withPredicate(cycloneDxStatement, (p) => {
        const musl = (p['components'] as Array<Record<string, unknown>>)[2]!;
        musl['components'] = [{ type: 'library', version: '1' }];
      }),
      code: 'BERTH_INVALID_JSON',
      path: 'predicate.components[2].components[0].name',
      message: /^predicate\.components\[2\]\.components\[0\]\.name: missing/,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      assert.throws(
        () => summarizeSbom(row.statement()),
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
