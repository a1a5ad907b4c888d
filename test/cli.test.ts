/**
 * CLI basics over real fixtures: help for every command, JSON output of the read commands,
 * --platform selection, exact manifest/config/blob bytes, every reference form, ambiguous
 * references, and (in a real subprocess) no stack traces from bin/berth.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertCleanError, berth, berthProcess, fixture, json, repoRoot, STACK_LINE, type CliResult } from './support/cli.js';
import { sha256 } from './support/tamper.js';

const MP = fixture('anchore__stereoscope/pkg/image/oci/testdata/multiplatform_oci_dir');
const MP_INDEX = 'sha256:a1a8d08faa5fe3d2ccc0ba54874e39dede9a17120f883c5cb56f2fd9309067c8';
const MP_AMD64 = { manifest: 'sha256:e7c26a4b4d156fd9947ee82295b7b78acf7aa54b93b8f3e4b9f608179ffb20e8', config: 'sha256:549248a7ac95478805d9248e4ffdc778fc2404257d8c071848746e0100e08099', layer: 'sha256:9795e995b4d86eb9409970bc5bff940f0d67a54e8f52dd39abb8c6504187af89' };
const MP_ARM64 = { manifest: 'sha256:5ed07065bcbc6c52e3ad28526557d7b6833613fc79257b1a786de85e37c03b05', config: 'sha256:3cd6022503cef24ee80dc156bf171c8d1d588c2ea1904bcd8ef2728c36341594', layer: 'sha256:1803d4b442b422fa8380e13687da6cc408e6db8f173baa89c95d08539083e8dd' };
const VALID_DIR = fixture('anchore__stereoscope/pkg/image/oci/testdata/valid_oci_dir');
const VALID_TAR = fixture('anchore__stereoscope/pkg/image/oci/testdata/valid-oci.tar');
const VALID_MANIFEST = 'sha256:c1ed04a3da941a5dd09b58b16c37f065557863d382ef97995ddac885a8452ebb';
const TWO = fixture('containers__skopeo/systemtest/testdata/docker-two-images.tar.xz');
const TWO_0 = 'sha256:bb2f20bd49a554571b609d7da986233682477cb5b10ad6e939e1e31a926bf4e3';
const TWO_1 = 'sha256:1bb2bdf06cebf20d6839ea1899a41ed13b042e84713ccd72c367475157a4e47a';
const DOCKER25 = fixture('snyk__snyk-docker-plugin/test/fixtures/docker-archives/docker-save/hello-world.tar');
const LEGACY = fixture('containers__image/docker/archive/fixtures/almostempty.tar');
const BUSYBOX25 = fixture('snyk__snyk-docker-plugin/test/fixtures/docker-oci-archives/busybox.armv7.tar');

interface InspectJson {
  reference: string;
  digest: string;
  configDigest: string;
  platform?: string;
  names: string[];
  layers: Array<{ digest: string; size: number; diffId?: string }>;
}

function ok(r: CliResult, what: string): CliResult {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr, '', `${what}: stderr should be empty`);
  return r;
}

async function inspect(...argv: string[]): Promise<InspectJson> {
  const r = ok(await berth('inspect', '--format', 'json', ...argv), `inspect ${argv.join(' ')}`);
  return json<InspectJson>(r, 'inspect');
}

describe('--help', () => {
  const KNOWN_OPTIONS: Record<string, readonly string[]> = {
    tree: ['--format <format>'],
    inspect: ['--platform <os/arch[/variant]>', '--format <format>'],
    manifest: ['--platform <os/arch[/variant]>', '--pretty'],
    config: ['--platform <os/arch[/variant]>', '--pretty'],
    blob: [],
    platforms: ['--format <format>'],
    verify: ['--strict', '--quiet', '--format <format>'],
  };

  test('the program: exit 0, usage, global options and the read commands', async () => {
    for (const argv of [['--help'], ['-h'], ['help']]) {
      const r = ok(await berth(...argv), argv.join(' '));
      assert.match(r.stdout, /^Usage: berth \[options\] \[command\]/m);
      assert.match(r.stdout, /--debug/);
      assert.match(r.stdout, /-V, --version/);
      for (const cmd of Object.keys(KNOWN_OPTIONS)) assert.match(r.stdout, new RegExp(`^  ${cmd} `, 'm'), `${argv.join(' ')} lists ${cmd}`);
    }
  });

  test('every listed command: exit 0, its usage line, its options', async () => {
    const top = ok(await berth('--help'), '--help').stdout;
    const section = top.slice(top.indexOf('Commands:'));
    const commands = [...section.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    assert.ok(commands.length >= Object.keys(KNOWN_OPTIONS).length, `commands found: ${commands.join(', ')}`);
    for (const cmd of commands) {
      for (const argv of [[cmd, '--help'], ['help', cmd]]) {
        const r = ok(await berth(...argv), argv.join(' '));
        assert.match(r.stdout, new RegExp(`^Usage: berth ${cmd} `, 'm'), argv.join(' '));
        assert.match(r.stdout, /-h, --help/, `${argv.join(' ')} lists its options`);
        for (const opt of KNOWN_OPTIONS[cmd] ?? []) assert.ok(r.stdout.includes(opt), `${argv.join(' ')} lists ${opt}`);
      }
    }
  });

  test('--version prints the package version', async () => {
    const r = ok(await berth('--version'), '--version');
    assert.match(r.stdout, /^\d+\.\d+\.\d+/);
  });
});

describe('--format json emits valid JSON', () => {
  const refs = [MP, `${TWO}:@0`, DOCKER25, VALID_TAR];
  for (const cmd of ['tree', 'inspect', 'platforms', 'verify']) {
    test(cmd, async () => {
      for (const ref of refs) {
        const r = ok(await berth(cmd, '--format', 'json', ref), `${cmd} ${ref}`);
        const v = json<Record<string, unknown>>(r, `${cmd} ${ref}`);
        assert.equal(typeof v, 'object');
        assert.ok(v !== null && 'reference' in v, `${cmd}: has a reference field`);
      }
    });
  }

  test('platforms --format json lists both platforms of the multi-platform layout', async () => {
    const r = ok(await berth('platforms', '--format', 'json', MP), 'platforms');
    const p = json<{ index: string; platforms: Array<{ platform: string; digest: string; present: boolean }> }>(r, 'platforms');
    assert.equal(p.index, MP_INDEX);
    assert.deepEqual(p.platforms.map((x) => [x.platform, x.digest, x.present]), [
      ['linux/amd64', MP_AMD64.manifest, true],
      ['linux/arm64', MP_ARM64.manifest, true],
    ]);
  });

  test('verify --format json of a damaged fixture still is JSON, with ok false', async () => {
    const r = await berth('verify', '--format', 'json', fixture('snyk__snyk-docker-plugin/test/fixtures/oci-archives/oci-with-manifest.tar'));
    assert.equal(r.code, 1);
    const v = json<{ ok: boolean; problems: unknown[] }>(r, 'verify');
    assert.equal(v.ok, false);
    assert.ok(v.problems.length > 0);
  });
});

describe('--platform', () => {
  test('inspect picks the right image of the stereoscope multi-platform layout', async () => {
    const amd = await inspect('--platform', 'linux/amd64', MP);
    const arm = await inspect('--platform', 'linux/arm64', MP);
    assert.equal(amd.digest, MP_AMD64.manifest);
    assert.equal(amd.configDigest, MP_AMD64.config);
    assert.equal(amd.platform, 'linux/amd64');
    assert.equal(arm.digest, MP_ARM64.manifest);
    assert.equal(arm.configDigest, MP_ARM64.config);
    assert.equal(arm.platform, 'linux/arm64');
    assert.notEqual(amd.configDigest, arm.configDigest);
  });

  test('config and manifest follow --platform too', async () => {
    const cfg = ok(await berth('config', '--platform', 'linux/arm64', MP), 'config arm64');
    assert.equal(sha256(cfg.bytes), MP_ARM64.config);
    const man = ok(await berth('manifest', '--platform', 'linux/arm64', MP), 'manifest arm64');
    assert.equal(sha256(man.bytes), MP_ARM64.manifest);
  });

  test('a platform that is not there: exit 1 and the list of platforms', async () => {
    const r = await berth('inspect', '--platform', 'linux/s390x', MP);
    assert.equal(r.code, 1);
    assertCleanError(r, 'inspect --platform linux/s390x');
    assert.match(r.stderr, /linux\/s390x/);
    assert.match(r.stderr, /linux\/amd64, linux\/arm64/);
    assert.equal(r.stdout, '');
  });
});

describe('exact bytes', () => {
  test('manifest prints the root index of a layout byte for byte', async () => {
    const r = ok(await berth('manifest', MP), 'manifest');
    assert.equal(sha256(r.bytes), MP_INDEX);
  });

  test('manifest of an image prints bytes whose sha256 is the digest inspect reports', async () => {
    for (const ref of [VALID_TAR, `${TWO}:@1`, DOCKER25, LEGACY]) {
      const i = await inspect(ref);
      const r = ok(await berth('manifest', ref), `manifest ${ref}`);
      assert.equal(sha256(r.bytes), i.digest, ref);
    }
  });

  test('manifest --pretty is indented JSON of the same document', async () => {
    const raw = ok(await berth('manifest', VALID_TAR), 'manifest');
    const pretty = ok(await berth('manifest', '--pretty', VALID_TAR), 'manifest --pretty');
    assert.match(pretty.stdout, /\n {2}"/);
    assert.deepEqual(JSON.parse(pretty.stdout), JSON.parse(raw.stdout));
  });

  test('config prints bytes whose sha256 is the config digest', async () => {
    for (const ref of [VALID_TAR, `${TWO}:@0`, DOCKER25, LEGACY, BUSYBOX25]) {
      const i = await inspect(ref);
      const r = ok(await berth('config', ref), `config ${ref}`);
      assert.equal(sha256(r.bytes), i.configDigest, ref);
    }
  });

  test('blob REF DIGEST streams a layer whose sha256 is the digest', async () => {
    for (const [ref, digest] of [[MP, MP_AMD64.layer], [MP, MP_ARM64.layer], [MP, MP_ARM64.config]] as const) {
      const r = ok(await berth('blob', ref, digest), `blob ${digest}`);
      assert.equal(sha256(r.bytes), digest);
    }
    for (const ref of [LEGACY, DOCKER25, BUSYBOX25, `${TWO}:@1`]) {
      const i = await inspect(ref);
      const layer = i.layers[0]!;
      const r = ok(await berth('blob', ref, layer.digest), `blob ${ref} ${layer.digest}`);
      assert.equal(r.bytes.length, layer.size, `${ref}: size`);
      assert.equal(sha256(r.bytes), layer.digest, ref);
    }
  });

  test('blob with a digest that is not reachable: exit 1 naming the digest', async () => {
    const missing = `sha256:${'0'.repeat(64)}`;
    const r = await berth('blob', MP, missing);
    assert.equal(r.code, 1);
    assertCleanError(r, 'blob of an unknown digest');
    assert.ok(r.stderr.includes(missing), r.stderr);
  });

  test('blob with a malformed digest is a usage error', async () => {
    const r = await berth('blob', MP, 'sha256:xyz');
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });
});

describe('references', () => {
  const rows: ReadonlyArray<{ ref: string; digest: string; names?: string[]; todo?: string }> = [
    { ref: `oci:${VALID_DIR}:1.0`, digest: VALID_MANIFEST, names: ['1.0'] },
    { ref: `oci:${VALID_DIR}:latest`, digest: VALID_MANIFEST, names: ['latest'] },
    { ref: `oci:${MP}`, digest: MP_AMD64.manifest },
    { ref: `oci:${MP}@${MP_INDEX}`, digest: MP_AMD64.manifest },
    { ref: `oci-archive:${VALID_TAR}`, digest: VALID_MANIFEST, names: ['sample:latest'] },
    { ref: `oci-archive:${VALID_TAR}:@0`, digest: VALID_MANIFEST, names: ['sample:latest'] },
    {
      ref: `oci-archive:${VALID_TAR}:sample:latest`,
      digest: VALID_MANIFEST,
      names: ['sample:latest'],
    },
    { ref: `docker-archive:${TWO}:@1`, digest: TWO_1, names: ['example.com/empty/but:different'] },
    { ref: `docker-archive:${TWO}:@0`, digest: TWO_0, names: ['example.com/empty:latest'] },
    { ref: `docker-archive:${TWO}:example.com/empty/but:different`, digest: TWO_1, names: ['example.com/empty/but:different'] },
    { ref: `docker-archive:${TWO}:example.com/empty:latest`, digest: TWO_0, names: ['example.com/empty:latest'] },
    { ref: `docker-archive:${LEGACY}`, digest: 'sha256:642b9d39405d219a3c6d9ef9a67a7bdd57f5ed9ca1e561acfb8cc7bad4609976' },
    {
      ref: `docker-archive:${DOCKER25}`,
      digest: 'sha256:8876a860b8c40b280440ed7678ba677f5a3cb972fddde4198a9a5e159184732f',
    },
    { ref: LEGACY, digest: 'sha256:642b9d39405d219a3c6d9ef9a67a7bdd57f5ed9ca1e561acfb8cc7bad4609976' },
    { ref: MP, digest: MP_AMD64.manifest },
    { ref: VALID_TAR, digest: VALID_MANIFEST },
    { ref: `${MP}:latest`, digest: MP_AMD64.manifest },
    { ref: `${VALID_DIR}:1.0`, digest: VALID_MANIFEST, names: ['1.0'] },
    { ref: `${TWO}:example.com/empty/but:different`, digest: TWO_1 },
    { ref: path.relative(process.cwd(), VALID_DIR) || '.', digest: VALID_MANIFEST },
  ];
  for (const row of rows) {
    test(row.ref.replace(repoRoot, '…').replace(path.resolve(repoRoot, '..'), '…'), row.todo ? { todo: row.todo } : {}, async () => {
      const i = await inspect('--platform', 'linux/amd64', row.ref);
      assert.equal(i.digest, row.digest);
      if (row.names) assert.deepEqual(i.names, row.names);
    });
  }

  test('docker-archive: on a Docker 25 archive reads it through manifest.json', async () => {
    const r = ok(await berth('tree', '--format', 'json', `docker-archive:${DOCKER25}`), 'tree');
    assert.equal(json<{ format: string }>(r, 'tree').format, 'docker-archive-oci');
  });

  test('a name that is not there: exit 1, listing what is', async () => {
    const r = await berth('inspect', `oci:${MP}:nope`);
    assert.equal(r.code, 1);
    assertCleanError(r, 'no such name');
    assert.match(r.stderr, /no image "nope"/);
    assert.match(r.stderr, /@0 \(docker\.io\/library\/multi-platform:latest, latest\) sha256:a1a8d08faa5f/);
  });

  test('an ambiguous reference lists what is there', async () => {
    const rows: ReadonlyArray<[string, readonly string[]]> = [
      [TWO, ['holds 2 images', '@0 (example.com/empty:latest) sha256:bb2f20bd49a5', '@1 (example.com/empty/but:different) sha256:1bb2bdf06ceb']],
      [fixture('google__go-containerregistry/pkg/v1/tarball/testdata/test_link.tar'), ['holds 2 images', '@0 (bazel/v1/tarball:test_image_1)', '@1 (bazel/v1/tarball:test_image_3)']],
      [fixture('notaryproject__notation/test/e2e/testdata/registry/oci_layout/e2e-with-timestamped-signature'), ['holds 2 images', '@0 (v1) sha256:53b0191218ae', '@1 sha256:6a5cd3a88670']],
    ];
    for (const [ref, says] of rows) {
      for (const cmd of ['inspect', 'manifest', 'config', 'platforms']) {
        const r = await berth(cmd, ref);
        assert.equal(r.code, 1, `${cmd} ${ref}: ${r.stderr}`);
        assertCleanError(r, `${cmd} ${ref}`);
        for (const s of says) assert.ok(r.stderr.includes(s), `${cmd}: want "${s}" in: ${r.stderr}`);
        assert.match(r.stderr, /say which one with :NAME or :@N/);
      }
    }
  });

  test('tree and verify take an ambiguous place whole', async () => {
    ok(await berth('tree', TWO), 'tree');
    ok(await berth('verify', TWO), 'verify');
  });
});

describe('bin/berth as a real process', () => {
  test('an error is one line on stderr, exit 1, no stack trace', async () => {
    const r = await berthProcess(['inspect', fixture('google__go-containerregistry/pkg/v1/tarball/testdata/null_manifest.tar')]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^berth: manifest\.json: is null/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  test('a usage error exits 2', async () => {
    const r = await berthProcess(['inspect', '--bogus', MP]);
    assert.equal(r.code, 2, r.stderr);
    assert.doesNotMatch(r.stderr, STACK_LINE);
  });

  test('a reader that closes the pipe early (like `| head`) gets no stack trace', async () => {
    const i = await inspect(BUSYBOX25);
    const stderr = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin/berth'), 'blob', BUSYBOX25, i.layers[0]!.digest], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('bin/berth did not exit after its reader went away'));
      }, 20_000);
      child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
      child.stdout.once('data', () => child.stdout.destroy());
      child.on('close', () => {
        clearTimeout(timer);
        resolve(err);
      });
    });
    assert.doesNotMatch(stderr, STACK_LINE, stderr);
  });
});
