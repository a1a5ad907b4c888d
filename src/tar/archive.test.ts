import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { isBerthError } from '../core/errors.js';
import { toBytes } from '../io/stream.js';
import { normalizeMemberName, openTarArchive, type TarArchive } from './archive.js';
import { repoRoot } from '../../test/support/paths.js';

const REAL = resolve(repoRoot, '../shared/fixtures/real');
const have = (rel: string): boolean => existsSync(join(REAL, rel));

function gnuTar(args: string[], cwd?: string): Buffer {
  const r = spawnSync('tar', args, { cwd, maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, `tar ${args.join(' ')}: ${r.stderr?.toString()}`);
  return r.stdout;
}

async function withArchive<T>(file: string, fn: (a: TarArchive) => Promise<T>): Promise<T> {
  const a = await openTarArchive(file);
  try {
    return await fn(a);
  } finally {
    await a.close();
  }
}

describe('normalizeMemberName', () => {
  const rows: [string, string | undefined][] = [
    ['./', '.'], ['.', '.'], ['./a/b/', 'a/b'], ['a//b/./c', 'a/b/c'], ['/etc/passwd', undefined], ['a/../b', undefined], ['..', undefined],
  ];
  for (const [input, want] of rows) test(JSON.stringify(input), () => assert.equal(normalizeMemberName(input), want));
});

describe('openTarArchive on real image archives', () => {
  const rows: {
    name: string; file: string; compression: string; entries: number;
    resolve?: [string, string]; read?: [string, number]; first?: string;
  }[] = [
    {
      name: 'gzip-compressed OCI archive', file: 'snyk__snyk-docker-plugin/test/fixtures/oci-archives/oci-with-manifest.tar',
      compression: 'gzip', entries: 19, read: ['index.json', 0],
    },
    {
      name: 'xz docker-archive with a symlinked layer.tar', file: 'containers__skopeo/systemtest/testdata/docker-two-images.tar.xz',
      compression: 'xz', entries: 12,
      resolve: ['ae5358a87748d60c757d7a41e7dffefda59d7b043dd4c0fa522ed37eef8cf7d3/layer.tar', '9e716152053e039ca3e6d9bbdfb8c5fe346182f630428ba1b5be31929f167c2d/layer.tar'],
    },
    {
      name: 'ggcr test_link.tar', file: 'google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar', compression: 'none', entries: -1,
    },
    {
      name: './-prefixed OCI layout', file: 'oras-project__oras-go/content/oci/testdata/hello-world-prefixed-path.tar',
      compression: 'none', entries: 10, first: '.', read: ['oci-layout', 30],
    },
    {
      name: 'skopeo mode-0000 symlinks', file: 'snyk__snyk-docker-plugin/test/fixtures/docker-archives/skopeo-copy/nodes-fake-multi.tar',
      compression: 'none', entries: 11,
      resolve: ['./95075af2d2be9802805aeaa7e7648b6d3ddc1ab80d74a42ca14844c03c2ad67f/layer.tar', '1ec0a1574e1b795732f45c4f2eb9e447d7052a176f4c97bb1c68d78b17a72b25.tar'],
    },
    { name: 'zstd tar', file: 'google__go-containerregistry/pkg/crane/testdata/content.tar.zst', compression: 'zstd', entries: 3, read: ['./bat', 4] },
  ];
  for (const r of rows) {
    test(r.name, { skip: !have(r.file) && 'fixture missing' }, async () => {
      const file = join(REAL, r.file);
      await withArchive(file, async (a) => {
        assert.equal(a.compression, r.compression);
        if (r.entries >= 0) assert.equal(a.entries.length, r.entries);
        if (r.first !== undefined) assert.equal(a.entries[0]!.normalizedName, r.first);
        // Names and sizes agree with GNU tar's listing.
        const listing = gnuTar(['-tvf', file, '--numeric-owner', '--quoting-style=literal']).toString().trimEnd().split('\n');
        assert.equal(a.entries.length, listing.length);
        for (const [i, line] of listing.entries()) {
          const e = a.entries[i]!;
          assert.ok(line.includes(` ${e.name}`), `${line} has ${e.name}`);
          if (e.type === 'file') assert.match(line, new RegExp(`\\s${e.size}\\s`));
        }
        // Every file's bytes equal what GNU tar extracts.
        for (const e of a.entries.filter((x) => x.type === 'file').slice(0, 8)) {
          const want = gnuTar(['-xOf', file, e.name]);
          assert.ok(Buffer.from(await a.readBytes(e, 1 << 24)).equals(want), e.name);
          assert.ok(Buffer.from(await toBytes(a.open(e, { chunkSize: 1000 }))).equals(want), e.name);
        }
        if (r.resolve !== undefined) {
          const link = a.get(r.resolve[0])!;
          assert.equal(link.type, 'symlink');
          const target = a.resolve(r.resolve[0]);
          assert.equal(target.normalizedName, r.resolve[1]);
          assert.ok(target.size > 0);
        }
        if (r.read !== undefined) {
          const e = a.resolve(r.read[0]);
          if (r.read[1] > 0) assert.equal(e.size, r.read[1]);
          assert.equal((await a.readBytes(e, 1 << 20)).length, e.size);
        }
      });
    });
  }

  test('ggcr test_link.tar: every layer.tar resolves to a file', { skip: !have('google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar') && 'fixture missing' }, async () => {
    await withArchive(join(REAL, 'google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar'), async (a) => {
      const layers = a.entries.filter((e) => e.normalizedName.endsWith('/layer.tar'));
      assert.ok(layers.some((e) => e.type === 'symlink' || e.type === 'link'));
      for (const l of layers) assert.equal(a.resolve(l.name).type, 'file');
    });
  });

  test('a compressed archive is spooled to a temp dir that close() removes', { skip: !have(rows[0]!.file) && 'fixture missing' }, async () => {
    const tempDir = mkdtempSync(join(tmpdir(), 'berth-archive-test-'));
    try {
      const a = await openTarArchive(join(REAL, rows[0]!.file), { tempDir });
      assert.equal(readdirSync(tempDir).length, 1);
      await a.close();
      assert.equal(readdirSync(tempDir).length, 0);
    } finally {
      rmSync(tempDir, { recursive: true, force: true });
    }
  });
});

describe('openTarArchive on crafted archives', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-archive-'));
    const src = join(dir, 'src');
    mkdirSync(join(src, 'a/b'), { recursive: true });
    writeFileSync(join(src, 'a/b/file.txt'), 'content\n');
    symlinkSync('b', join(src, 'a/dirlink'));
    symlinkSync('../a/b/file.txt', join(src, 'a/rel'));
    symlinkSync('loop2', join(src, 'a/loop1'));
    symlinkSync('loop1', join(src, 'a/loop2'));
    symlinkSync('../../outside', join(src, 'a/escape'));
    symlinkSync('/etc/passwd', join(src, 'a/absolute'));
    symlinkSync('missing', join(src, 'a/dangling'));
    gnuTar(['-cf', join(dir, 'links.tar'), '--format=gnu', '-C', src, 'a']);
    gnuTar(['-cf', join(dir, 'hard.tar'), '--format=gnu', '--hard-dereference', '-C', src, 'a/b']);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const resolveRows: { name: string; path: string; want?: string; code?: string; message?: RegExp }[] = [
    { name: 'plain file', path: 'a/b/file.txt', want: 'a/b/file.txt' },
    { name: 'relative symlink', path: 'a/rel', want: 'a/b/file.txt' },
    { name: 'through a symlinked directory', path: 'a/dirlink/file.txt', want: 'a/b/file.txt' },
    { name: 'directory with ./ and slash', path: './a/b/', want: 'a/b' },
    { name: 'symlink loop', path: 'a/loop1', code: 'BERTH_UNSAFE_PATH', message: /too many links .* member "a\/loop[12]"/ },
    { name: 'escaping symlink', path: 'a/escape', code: 'BERTH_UNSAFE_PATH', message: /member "a\/escape" links outside the archive/ },
    { name: 'absolute symlink', path: 'a/absolute', code: 'BERTH_UNSAFE_PATH', message: /member "a\/absolute" links outside/ },
    { name: 'dangling symlink', path: 'a/dangling', code: 'BERTH_NOT_FOUND', message: /no such member \(resolved to "a\/missing"\)/ },
    { name: 'missing member', path: 'nope', code: 'BERTH_NOT_FOUND', message: /^resolving "nope" in .*: no such member$/ },
    { name: 'absolute request', path: '/a/rel', code: 'BERTH_UNSAFE_PATH' },
  ];
  for (const r of resolveRows) {
    test(`resolve: ${r.name}`, async () => {
      await withArchive(join(dir, 'links.tar'), async (a) => {
        if (r.want !== undefined) {
          assert.equal(a.resolve(r.path).normalizedName, r.want);
          return;
        }
        assert.throws(() => a.resolve(r.path), (err) => {
          assert.ok(isBerthError(err), String(err));
          assert.equal(err.code, r.code);
          if (r.message !== undefined) assert.match(err.message, r.message);
          return true;
        });
      });
    });
  }

  test('hard links resolve relative to the archive root', async () => {
    const src = join(dir, 'hl');
    mkdirSync(join(src, 'x'), { recursive: true });
    writeFileSync(join(src, 'x/one'), 'same');
    spawnSync('ln', [join(src, 'x/one'), join(src, 'x/two')]);
    gnuTar(['-cf', join(dir, 'hl.tar'), '-C', src, 'x']);
    await withArchive(join(dir, 'hl.tar'), async (a) => {
      const links = a.entries.filter((e) => e.type === 'link');
      assert.equal(links.length, 1);
      const target = a.resolve(links[0]!.name);
      assert.equal(target.type, 'file');
      assert.equal(Buffer.from(await a.readBytes(target, 100)).toString(), 'same');
    });
  });

  const rejectRows: { name: string; make: () => string; code: string; message: RegExp }[] = [
    {
      name: 'absolute member name',
      make: () => {
        const f = join(dir, 'abs.tar');
        gnuTar(['-cPf', f, '--format=gnu', '--transform=s,^,/abs/,', '-C', join(dir, 'src'), 'a/b/file.txt']);
        return f;
      },
      code: 'BERTH_UNSAFE_PATH', message: /reading tar entry 0 "\/abs\/a\/b\/file.txt": member name is absolute or contains "\.\."/,
    },
    {
      name: 'dot-dot member name',
      make: () => {
        const f = join(dir, 'dotdot.tar');
        gnuTar(['-cPf', f, '--transform=s,^,x/../../,', '-C', join(dir, 'src'), 'a/b/file.txt']);
        return f;
      },
      code: 'BERTH_UNSAFE_PATH', message: /member name is absolute or contains/,
    },
    {
      name: 'truncated archive names the last entry',
      make: () => {
        const f = join(dir, 'trunc.tar');
        writeFileSync(f, readFileSync(join(dir, 'hard.tar')));
        const size = readFileSync(f).indexOf(Buffer.from('content\n'));
        truncateSync(f, size + 3);
        return f;
      },
      code: 'BERTH_INVALID_TAR', message: /reading tar entry \d+ "a\/b\/file.txt": truncated body \(want 8 bytes, got 3\)/,
    },
    {
      name: 'not a tar at all',
      make: () => {
        const f = join(dir, 'notes.txt');
        writeFileSync(f, 'just some text, definitely not a tar archive\n'.repeat(40));
        return f;
      },
      code: 'BERTH_INVALID_TAR', message: /"[^"]*notes.txt" is not a tar archive/,
    },
    {
      name: 'empty file',
      make: () => {
        const f = join(dir, 'empty.tar');
        writeFileSync(f, '');
        return f;
      },
      code: 'BERTH_INVALID_TAR', message: /is not a tar archive \(the file is empty\)/,
    },
    {
      name: 'corrupt gzip',
      make: () => {
        const f = join(dir, 'bad.tar.gz');
        const gz = gzipSync(readFileSync(join(dir, 'links.tar')));
        writeFileSync(f, gz.subarray(0, gz.length - 30));
        return f;
      },
      code: 'BERTH_COMPRESSION', message: /decompressing the archive \(gzip\): truncated input/,
    },
    {
      name: 'too many entries',
      make: () => join(dir, 'links.tar'),
      code: 'BERTH_LIMIT', message: /too many entries \(want at most 3\)/,
    },
  ];
  for (const r of rejectRows) {
    test(`rejects: ${r.name}`, async () => {
      const file = r.make();
      await assert.rejects(openTarArchive(file, { maxEntries: r.code === 'BERTH_LIMIT' ? 3 : undefined }), (err) => {
        assert.ok(isBerthError(err), String(err));
        assert.equal(err.code, r.code, err.message);
        assert.match(err.message, r.message);
        assert.match(err.message, /^opening tar archive "/);
        return true;
      });
    });
  }

  test('an all-zero archive has no entries', async () => {
    const f = join(dir, 'zeros.tar');
    writeFileSync(f, Buffer.alloc(10240));
    await withArchive(f, async (a) => assert.equal(a.entries.length, 0));
  });

  test('indexing skips bodies: a sparse 3 GiB member is indexed without reading it', async () => {
    const big = join(dir, 'big.tar');
    // Header for a 3 GiB file, then a hole, then the end blocks: the body is never read.
    const small = gnuTar(['-cf', '-', '--format=ustar', '-C', join(dir, 'src'), 'a/b/file.txt']);
    const header = Buffer.from(small.subarray(0, 512));
    const size = 3 * 1024 ** 3;
    header.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of header) sum += c;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    writeFileSync(big, header);
    truncateSync(big, 512 + size + 1024);
    try {
      await withArchive(big, async (a) => {
        assert.equal(a.entries.length, 1);
        assert.equal(a.entries[0]!.size, size);
        assert.equal(a.entries[0]!.dataOffset, 512);
      });
    } finally {
      rmSync(big);
    }
  });
});
