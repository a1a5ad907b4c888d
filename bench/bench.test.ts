// The harness's pure parts: command detection, option parsing, statistics and goal verdicts.
// (Running cases needs the multi-GiB datasets: that is `npm run bench`, not a unit test.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCommands } from './detect.js';
import { parseOptions } from './options.js';
import { addDaemon, parseProcStat, parseVmHwm } from './procstat.js';
import { registryConfig } from './registry.js';
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

test('parseProcStat: utime+cutime and stime+cstime, counted after the last parenthesis of the name', () => {
  // Fields 14-17 are 240 121 132 166; the name holds a space and a ')'.
  const line = '4242 (docker d) x) S 1 4242 4242 0 -1 4194560 9000 100 0 0 240 121 132 166 20 0 12 0 500 900000 20000';
  assert.deepEqual(parseProcStat(line), { user: 240 + 132, sys: 121 + 166 });
  assert.throws(() => parseProcStat('4242 dockerd S 1'), /no '\)'/);
  assert.throws(() => parseProcStat('4242 (dockerd) S 1 2 3'), /fields 14-17/);
});

test('parseVmHwm reads the peak RSS line of /proc/PID/status', () => {
  assert.equal(parseVmHwm('Name:\tdockerd\nVmPeak:\t  900 kB\nVmHWM:\t   88328 kB\nVmRSS:\t 80000 kB\n'), 88328);
  assert.throws(() => parseVmHwm('Name:\tdockerd\n'), /VmHWM/);
});

test('addDaemon adds the daemon CPU over the run and keeps the larger peak RSS', () => {
  const client = { wall: 9, user: 0.03, sys: 0.2, rssKiB: 37_000 };
  const s = addDaemon(client, { user: 1, sys: 2 }, { user: 4, sys: 6.5 }, 88_000);
  assert.equal(s.wall, 9);
  assert.ok(Math.abs(s.user - 3.03) < 1e-9 && Math.abs(s.sys - 4.7) < 1e-9);
  assert.equal(s.rssKiB, 88_000);
  assert.equal(addDaemon(client, { user: 1, sys: 1 }, { user: 1, sys: 1 }, 10).rssKiB, 37_000);
});

test('registryConfig: plain HTTP on the given address, storage dir, and no blob descriptor cache', () => {
  const c = registryConfig('127.0.0.1:5000', '/s/storage');
  assert.match(c, /^ {2}addr: 127\.0\.0\.1:5000$/m);
  assert.match(c, /^ {4}rootdirectory: "\/s\/storage"$/m);
  // A cache would remember blobs whose files the push case deletes between runs.
  assert.doesNotMatch(c, /cache|tls/);
});
