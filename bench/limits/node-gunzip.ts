/**
 * Physical-limit helper: gunzip files with Node's zlib and discard the output. With --hash it
 * also computes sha256 of the gzip bytes and of the tar bytes, which is what verifying an OCI
 * layer (digest and diff_id) cannot avoid. Usage: node-gunzip.js [--hash] FILE…
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

async function gunzipOne(file: string, hash: boolean): Promise<void> {
  const gz = createHash('sha256');
  const tar = createHash('sha256');
  const input = createReadStream(file, { highWaterMark: 1 << 20 });
  if (hash) input.on('data', (c) => gz.update(c));
  const out = input.pipe(createGunzip({ chunkSize: 1 << 20 }));
  for await (const chunk of out) if (hash) tar.update(chunk as Buffer);
  if (hash) console.log(`sha256:${gz.digest('hex')} sha256:${tar.digest('hex')} ${file}`);
}

const args = process.argv.slice(2);
const hash = args[0] === '--hash';
for (const file of hash ? args.slice(1) : args) await gunzipOne(file, hash);
