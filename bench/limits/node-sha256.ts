/** Physical-limit helper: sha256 of whole files with 1 MiB reads, as berth would hash a blob. Usage: node-sha256.js FILE… */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

for (const file of process.argv.slice(2)) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  console.log(`${h.digest('hex')}  ${file}`);
}
