/**
 * Fuzzing the document parsers (manifests, indexes, configs, manifest.json, descriptors,
 * platforms), the reference parser, digests and platforms (short mode, fixed seeds).
 */
import { describe, test } from 'node:test';
import { runShort } from './short.js';
import { findTarget } from './targets.js';

describe('fuzz: parsers', () => {
  for (const name of ['json-documents', 'reference', 'digest-platform']) {
    test(name, async () => runShort(findTarget(name)));
  }
});
