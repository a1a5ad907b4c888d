/**
 * Where tests find things: the repository root (found from this file, compiled or not) and the
 * shared folder beside it with the real fixtures and the format docs.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'berth') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('the berth repository root was not found above the test file');
    dir = up;
  }
}

/** The repository root (the folder of berth's package.json). */
export const repoRoot = findRepoRoot();
/** The real-world fixtures, in the shared folder beside the repository. */
export const realFixtures = path.resolve(repoRoot, '../shared/fixtures/real');
/** The verified format captures (formats.md's examples). */
export const docExamples = path.resolve(repoRoot, '../shared/docs/examples');
