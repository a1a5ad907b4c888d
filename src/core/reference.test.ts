import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBerthError } from './errors.js';
import { familiarName, formatReference, isLoopbackHost, parseDockerReference, referenceName, type DockerReference } from './reference.js';

const H = 'a'.repeat(64);
const DIGEST = `sha256:${H}`;

test('parseDockerReference normalises like the docker CLI', () => {
  const rows: { name: string; input: string; want: DockerReference }[] = [
    { name: 'official image gets library/ and latest', input: 'alpine', want: { domain: 'docker.io', path: 'library/alpine', tag: 'latest' } },
    { name: 'user repo on docker hub', input: 'user/app:1.2', want: { domain: 'docker.io', path: 'user/app', tag: '1.2' } },
    { name: 'explicit docker.io', input: 'docker.io/alpine:3', want: { domain: 'docker.io', path: 'library/alpine', tag: '3' } },
    { name: 'legacy index.docker.io', input: 'index.docker.io/library/alpine', want: { domain: 'docker.io', path: 'library/alpine', tag: 'latest' } },
    { name: 'host with port', input: 'localhost:5000/team/app:v1', want: { domain: 'localhost:5000', path: 'team/app', tag: 'v1' } },
    { name: 'bare localhost is a host', input: 'localhost/app', want: { domain: 'localhost', path: 'app', tag: 'latest' } },
    { name: 'dotted host', input: 'ghcr.io/org/sub/app', want: { domain: 'ghcr.io', path: 'org/sub/app', tag: 'latest' } },
    { name: 'uppercase first component is a host', input: 'Registry/app', want: { domain: 'Registry', path: 'app', tag: 'latest' } },
    { name: 'ipv6 host with port', input: '[::1]:5000/app:x', want: { domain: '[::1]:5000', path: 'app', tag: 'x' } },
    { name: 'digest only: no default tag', input: `alpine@${DIGEST}`, want: { domain: 'docker.io', path: 'library/alpine', digest: DIGEST as never } },
    { name: 'tag and digest', input: `quay.io/a/b:t@${DIGEST}`, want: { domain: 'quay.io', path: 'a/b', tag: 't', digest: DIGEST as never } },
    { name: 'separators in path', input: 'a.b/c__d-e--f.g_h', want: { domain: 'a.b', path: 'c__d-e--f.g_h', tag: 'latest' } },
    { name: 'bare host:port reads as name:tag', input: 'localhost:5000', want: { domain: 'docker.io', path: 'library/localhost', tag: '5000' } },
    { name: 'longest tag', input: `app:${'t'.repeat(128)}`, want: { domain: 'docker.io', path: 'library/app', tag: 't'.repeat(128) } },
  ];
  for (const row of rows) assert.deepEqual(parseDockerReference(row.input), row.want, row.name);
  assert.deepEqual(parseDockerReference('alpine', { defaultTag: false }), { domain: 'docker.io', path: 'library/alpine' }, 'defaultTag false');
});

test('parseDockerReference rejects invalid references', () => {
  const rows = [
    { name: 'empty', input: '', code: 'BERTH_INVALID_REFERENCE' },
    { name: 'uppercase repository', input: 'Alpine', code: 'BERTH_INVALID_REFERENCE', detail: 'must be lowercase' },
    { name: 'uppercase repository under a host', input: 'ghcr.io/Org/app', code: 'BERTH_INVALID_REFERENCE', detail: 'must be lowercase' },
    { name: 'tag with a bad character', input: 'alpine:a+b', code: 'BERTH_INVALID_REFERENCE', detail: 'tag' },
    { name: 'tag starting with a dot', input: 'alpine:.x', code: 'BERTH_INVALID_REFERENCE', detail: 'tag' },
    { name: 'tag too long', input: `alpine:${'t'.repeat(129)}`, code: 'BERTH_INVALID_REFERENCE', detail: 'tag' },
    { name: 'empty tag', input: 'alpine:', code: 'BERTH_INVALID_REFERENCE', detail: 'tag' },
    { name: 'bad digest', input: 'alpine@sha256:abc', code: 'BERTH_INVALID_REFERENCE', detail: 'not a valid digest' },
    { name: 'empty digest', input: 'alpine@', code: 'BERTH_INVALID_REFERENCE', detail: 'not a valid digest' },
    { name: 'double slash', input: 'a.io//b', code: 'BERTH_INVALID_REFERENCE' },
    { name: 'trailing slash', input: 'a.io/b/', code: 'BERTH_INVALID_REFERENCE' },
    { name: 'leading separator in component', input: 'a.io/-b', code: 'BERTH_INVALID_REFERENCE' },
    { name: 'bad host', input: 'a-.io/b', code: 'BERTH_INVALID_REFERENCE', detail: 'registry host' },
    { name: 'name too long', input: `a.io/${'b'.repeat(260)}`, code: 'BERTH_INVALID_REFERENCE', detail: 'longer than 255' },
    { name: '64-hex image id', input: H, code: 'BERTH_INVALID_REFERENCE', detail: 'image ID' },
    { name: 'only a tag', input: ':tag', code: 'BERTH_INVALID_REFERENCE' },
    { name: 'whitespace', input: 'alpine latest', code: 'BERTH_INVALID_REFERENCE' },
  ];
  for (const row of rows) {
    assert.throws(() => parseDockerReference(row.input), (err: unknown) => {
      assert.ok(isBerthError(err, row.code as 'BERTH_INVALID_REFERENCE'), `${row.name}: ${String(err)}`);
      assert.ok(err.message.startsWith(`parsing reference ${JSON.stringify(row.input)}: `), row.name);
      if (row.detail !== undefined) assert.ok(err.message.includes(row.detail), `${row.name}: ${err.message}`);
      return true;
    });
  }
});

test('formatReference and familiarName', () => {
  const rows = [
    { name: 'official image', input: 'alpine', full: 'docker.io/library/alpine:latest', familiar: 'alpine:latest' },
    { name: 'user image', input: 'user/app:1', full: 'docker.io/user/app:1', familiar: 'user/app:1' },
    { name: 'library with a sub path keeps library/', input: 'library/a/b:1', full: 'docker.io/library/a/b:1', familiar: 'library/a/b:1' },
    { name: 'other registry', input: `localhost:5000/app@${DIGEST}`, full: `localhost:5000/app@${DIGEST}`, familiar: `localhost:5000/app@${DIGEST}` },
    { name: 'tag and digest', input: `alpine:3@${DIGEST}`, full: `docker.io/library/alpine:3@${DIGEST}`, familiar: `alpine:3@${DIGEST}` },
  ];
  for (const row of rows) {
    const ref = parseDockerReference(row.input);
    assert.equal(formatReference(ref), row.full, `${row.name}: full`);
    assert.equal(familiarName(ref), row.familiar, `${row.name}: familiar`);
    assert.deepEqual(parseDockerReference(formatReference(ref)), ref, `${row.name}: round trip`);
  }
  assert.equal(referenceName(parseDockerReference('alpine')), 'docker.io/library/alpine');
});

test('isLoopbackHost', () => {
  const rows = [
    { name: 'localhost', input: 'localhost', want: true },
    { name: 'localhost with port', input: 'localhost:5000', want: true },
    { name: 'sub.localhost', input: 'reg.localhost:80', want: true },
    { name: '127.0.0.1 with port', input: '127.0.0.1:5000', want: true },
    { name: '127.1.2.3', input: '127.1.2.3', want: true },
    { name: 'ipv6 loopback bracketed', input: '[::1]:5000', want: true },
    { name: 'ipv6 loopback bare', input: '::1', want: true },
    { name: 'uppercase', input: 'LOCALHOST', want: true },
    { name: 'private address is not loopback', input: '192.168.1.1:5000', want: false },
    { name: 'bad octet', input: '127.0.0.256', want: false },
    { name: 'lookalike', input: 'localhost.example.com', want: false },
    { name: 'docker hub', input: 'docker.io', want: false },
    { name: 'other ipv6', input: '[fe80::1]:5000', want: false },
  ];
  for (const row of rows) assert.equal(isLoopbackHost(row.input), row.want, row.name);
});
