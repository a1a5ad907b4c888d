import assert from 'node:assert/strict';
import { test } from 'node:test';
import { subjectFromTag } from './tree.js';

const HEX = 'b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9';

test('tags that name a subject by convention', () => {
  const rows: ReadonlyArray<{ name: string; input: string; want: ReturnType<typeof subjectFromTag> }> = [
    { name: 'referrers fallback tag (distribution-spec 1.1)', input: `sha256-${HEX}`, want: { digest: `sha256:${HEX}`, role: 'referrer' } },
    { name: 'cosign signature tag', input: `sha256-${HEX}.sig`, want: { digest: `sha256:${HEX}`, role: 'signature' } },
    { name: 'cosign attestation tag', input: `sha256-${HEX}.att`, want: { digest: `sha256:${HEX}`, role: 'attestation' } },
    { name: 'cosign sbom tag', input: `sha256-${HEX}.sbom`, want: { digest: `sha256:${HEX}`, role: 'attestation' } },
    { name: 'a full name ending in the tag', input: `example.com/app:sha256-${HEX}.sig`, want: { digest: `sha256:${HEX}`, role: 'signature' } },
    { name: 'an ordinary tag is not one', input: 'latest', want: undefined },
    { name: 'a short hex is not one', input: 'sha256-abc', want: undefined },
    { name: 'another suffix is not one', input: `sha256-${HEX}.tar`, want: undefined },
  ];
  for (const row of rows) assert.deepEqual(subjectFromTag(row.input), row.want, row.name);
});
