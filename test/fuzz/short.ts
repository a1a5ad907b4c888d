/**
 * Short mode: each target with a fixed seed and a bounded number of cases, inside `npm test`.
 * A failure names the seed and path that replay it:
 * `npm run fuzz -- --target NAME --seed SEED --path PATH`.
 */
import fc from 'fast-check';
import { propertyOf, type Target } from './targets.js';

/** Fixed seeds, one per target name, so a failure reproduces on every machine. */
export function fixedSeed(name: string): number {
  let h = 0x811c9dc5;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h | 0;
}

/** A failure as one readable paragraph: target, seed, path, a shortened counterexample, the error. */
export function describeFailure(t: Target, details: fc.RunDetails<[unknown]>): string {
  const shown = details.counterexample === null ? '(none)' : fc.stringify(details.counterexample[0]);
  const cut = shown.length > 1500 ? `${shown.slice(0, 1500)}… (${shown.length} characters)` : shown;
  const err = details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance);
  return [
    `fuzz target ${t.name} failed after ${details.numRuns} cases`,
    `replay: npm run fuzz -- --target ${t.name} --seed ${details.seed} --path ${details.counterexamplePath ?? ''}`,
    `input: ${cut}`,
    `error: ${err.split('\n').slice(0, 14).join('\n')}`,
  ].join('\n');
}

export async function runShort(t: Target, runs = t.shortRuns): Promise<void> {
  const details = await fc.check(await propertyOf(t), { seed: fixedSeed(t.name), numRuns: runs });
  if (details.failed) throw new Error(describeFailure(t, details));
}
