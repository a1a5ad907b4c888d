// The harness's pure parts: command detection, option parsing, statistics and goal verdicts.
// (Running cases needs the multi-GiB datasets: that is `npm run bench`, not a unit test.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommands } from './detect.js';
import { parseOptions } from './options.js';
import { markdown, stats, verdict } from './report.js';

const HELP = `Usage: berth [options] [command]

Options:
  -V, --version              output the version number

Commands:
  tree [options] <ref>       draw the structure of an image: entry point → index
                             → manifests → config and layers
  copy [options] <src> <dst> copy an image
  verify [options] <ref>     check everything reachable
  help [command]             display help for command
`;

test('parseCommands reads commander help, continuation lines and help itself excluded', () => {
  assert.deepEqual([...parseCommands(HELP)], ['tree', 'copy', 'verify']);
  assert.equal(parseCommands('no commands here').size, 0);
});

test('parseOptions: defaults, --only as a list of regexes, --runs', () => {
  const o = parseOptions(['--only', 'verify-oci/debian,meta/', '--runs=3', '--data', '/x/data'], '/repo');
  assert.equal(o.runs, 3);
  assert.equal(o.warmup, 1);
  assert.equal(o.slowRuns, 3);
  assert.equal(o.data, '/x/data');
  assert.equal(o.out, '/repo/bench/results/latest.json');
  assert.ok(o.only?.test('verify-oci/debian'));
  assert.ok(o.only?.test('meta/huge/tree'));
  assert.ok(!o.only?.test('verify-da/debian'));
  assert.throws(() => parseOptions(['--runs', '0'], '/repo'), /--runs/);
  assert.throws(() => parseOptions(['--bogus'], '/repo'), /unknown option/);
});

const sample = (wall: number, rssKiB = 1024) => ({ wall, user: wall / 2, sys: 0, rssKiB });

test('stats: median of odd and even counts, spread, largest RSS', () => {
  const s = stats([sample(3), sample(1), sample(2, 4096)]);
  assert.deepEqual({ median: s?.median, min: s?.min, max: s?.max, rss: s?.rssMiB }, { median: 2, min: 1, max: 3, rss: 4 });
  assert.equal(stats([sample(1), sample(2), sample(4), sample(3)])?.median, 2.5);
  assert.equal(stats([]), undefined);
});

test('verdict: ratio goals compare medians, second goals are absolute', () => {
  const b = stats([sample(0.7)]);
  const p = stats([sample(1)]);
  assert.equal(verdict({ ratio: 0.8 }, b, p), 'met');
  assert.equal(verdict({ ratio: 0.5 }, b, p), 'missed');
  assert.equal(verdict({ seconds: 0.3 }, b, p), 'missed');
  assert.equal(verdict(undefined, b, p), 'n/a');
});

test('markdown lists skipped cases with their reason', () => {
  const md = markdown([], [{ id: 'unpack/debian', reason: 'berth has no `unpack` command yet' }], 'header');
  assert.match(md, /- unpack\/debian: berth has no `unpack` command yet/);
});
