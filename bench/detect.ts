/**
 * What the harness can compare: berth's commands (from `berth --help`, so cases appear as other
 * work lands) and the peer tools on PATH.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export interface Available {
  /** berth command names, e.g. tree, inspect, verify, copy. */
  readonly berth: ReadonlySet<string>;
  /** Help text per berth command, for cases that depend on an option (asked lazily). */
  readonly berthHelp: (command: string) => string;
  readonly tools: ReadonlySet<string>;
}

/** Command names from commander's "Commands:" section: two spaces, a name, then arguments or text. */
export function parseCommands(help: string): Set<string> {
  const at = help.indexOf('\nCommands:');
  const names = new Set<string>();
  if (at < 0) return names;
  for (const line of help.slice(at).split('\n').slice(1)) {
    const m = /^ {2}([a-z][\w-]*)(?:\|\S+)?(?:\s|$)/.exec(line);
    if (m !== null && m[1] !== 'help') names.add(m[1]!);
  }
  return names;
}

function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    try {
      accessSync(path.join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

const PEER_TOOLS = ['skopeo', 'umoci', 'docker', 'dockerd', 'docker-registry', 'sha256sum', 'openssl', 'zstd', 'gzip', 'tar', 'cat'];

export function detect(berthBin: string): Available {
  const help = (args: string[]): string => execFileSync(process.execPath, [berthBin, ...args], { encoding: 'utf8' });
  const cache = new Map<string, string>();
  return {
    berth: parseCommands(help(['--help'])),
    berthHelp: (command) => {
      if (!cache.has(command)) cache.set(command, help([command, '--help']));
      return cache.get(command)!;
    },
    tools: new Set(PEER_TOOLS.filter(onPath)),
  };
}
