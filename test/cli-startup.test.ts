/**
 * Start-up stays cheap by structure, not by a clock: bin/berth runs in a subprocess with a module
 * hook that reports every file the loader loads, and `--version`, `--help` and a read command
 * must not load the parts of the library they never use (transports, the store, the registry
 * client, the copy engine, the explorer, the zstd native binding).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot } from './support/paths.js';
import { makeRandomDockerArchive } from './support/registry-image.js';
import { tempDir } from './support/tamper.js';

const MARK = 'berth-startup-loaded ';

/** Hooks run off the main thread: each loaded file URL goes to stderr on a marked line. */
const HOOKS = `export async function load(url, context, next) {
  if (url.startsWith('file:')) process.stderr.write(${JSON.stringify(MARK)} + url + '\\n');
  return next(url, context);
}`;
const REGISTER = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(HOOKS)}`)});`;

/** Runs bin/berth and returns the repository-relative paths of the files it loaded. */
async function loadedBy(argv: readonly string[]): Promise<string[]> {
  const bin = path.join(repoRoot, 'bin', 'berth');
  const child = spawn(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(REGISTER)}`, bin, ...argv], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const root = pathToFileURL(repoRoot).href + '/';
  const files = stderr.split('\n').filter((l) => l.startsWith(MARK)).map((l) => l.slice(MARK.length)).map((u) => (u.startsWith(root) ? u.slice(root.length) : u));
  const other = stderr.split('\n').filter((l) => l !== '' && !l.startsWith(MARK));
  assert.equal(code, 0, `berth ${argv.join(' ')}: exit ${code}: ${other.join('\n')}`);
  // the hook works: it saw the CLI itself (otherwise every absence below would prove nothing)
  assert.ok(files.includes('dist/cli/main.js'), `berth ${argv.join(' ')}: the hook saw no dist/cli/main.js (got ${files.length} files)`);
  return files;
}

/** Files no metadata-free run needs: transports, facades with I/O, the copy engine, the explorer, zstd. */
const NOT_AT_STARTUP: ReadonlyArray<[string, RegExp]> = [
  ['a transport', /^dist\/src\/transports\//],
  ['the copy engine', /^dist\/src\/copy\//],
  ['the store facade', /^dist\/src\/store\.js$/],
  ['the registry facade', /^dist\/src\/registry\.js$/],
  ['the image facade', /^dist\/src\/images\.js$/],
  ['the layer code', /^dist\/src\/(layers\.js$|layer\/)/],
  ['the whole API', /^dist\/src\/index\.js$/],
  ['the explorer', /^dist\/ui\//],
  ['the zstd native binding', /node_modules\/zstd-napi\//],
];

for (const argv of [['--version'], ['--help'], ['tree', '--help'], ['store', '--help']]) {
  test(`berth ${argv.join(' ')} loads no library code beyond the basics`, async () => {
    const files = await loadedBy(argv);
    for (const [what, re] of NOT_AT_STARTUP) {
      const hit = files.filter((f) => re.test(f));
      assert.deepEqual(hit, [], `berth ${argv.join(' ')} loads ${what}`);
    }
  });
}

test('berth tree loads the image facade but not the explorer, containers, mutate or attestations', async () => {
  const files = await loadedBy(['tree', `oci:${path.join(repoRoot, 'examples', 'sample')}`]);
  assert.ok(files.includes('dist/src/images.js'), 'tree runs through src/images.ts');
  for (const [what, re] of [
    ['the explorer', /^dist\/ui\//],
    ['the containers facade', /^dist\/src\/containers\.js$/],
    ['the mutate facade', /^dist\/src\/mutate\.js$/],
    ['the attestations facade', /^dist\/src\/attestations\.js$/],
    ['the whole API', /^dist\/src\/index\.js$/],
  ] as const) {
    assert.deepEqual(files.filter((f) => re.test(f)), [], `berth tree loads ${what}`);
  }
});

test('berth tree of a docker-archive loads neither the store nor the registry implementation nor the copy engine', async () => {
  const dir = await tempDir('berth-startup-');
  try {
    const img = await makeRandomDockerArchive(dir, [1024], 'startup:1');
    const files = await loadedBy(['tree', img.reference]);
    assert.ok(files.includes('dist/src/transports/docker-archive/source.js'), 'tree reads the archive through its source');
    for (const [what, re] of [
      ['the store facade', /^dist\/src\/store\.js$/],
      ['the registry facade', /^dist\/src\/registry\.js$/],
      // reference.ts parses store: and docker:// names; nothing else of either loads before one is opened
      ['the store transport implementation', /^dist\/src\/transports\/store\/(?!reference\.js$|transport\.js$)/],
      ['the registry transport implementation', /^dist\/src\/transports\/docker\/(?!reference\.js$|transport\.js$|settings\.js$)/],
      ['the copy engine', /^dist\/src\/(copy\/|copying\.js$)/],
      ['the containers facade', /^dist\/src\/containers\.js$/],
      // the archive's layer is plain tar: sniffing it must not load the zstd addon
      ['the zstd native binding', /node_modules\/zstd-napi\//],
    ] as const) {
      assert.deepEqual(files.filter((f) => re.test(f)), [], `berth tree docker-archive: loads ${what}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
