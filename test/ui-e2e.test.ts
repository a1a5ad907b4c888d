/**
 * The explorer end to end in a real headless Chromium (Debian's): open the sample, see both
 * platforms and their attestations in the structure graph, read a node's raw JSON, open a layer's
 * changes, walk the file tree to a file and read it, open the provenance summary and filter the
 * SBOM, compare the two platforms; in the Store view (a data root loaded here from the sample),
 * pick the image, walk its trace chain and ask where a file lies on disk. Screenshots go to a
 * folder under the OS temp dir (and to $BERTH_UI_SCREENSHOTS when set, which is how docs/ui/*.png
 * are made): the sample is opened by a relative reference from the package root and the store is
 * a temp directory, so no screenshot shows where this checkout lies.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile as readFs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { fileURLToPath } from 'node:url';
import { loadImages, parsePlatform, readFile } from '../src/index.js';
import { sampleReference, startExplorer, type Explorer } from '../ui/server.js';
import { CHROMIUM_ARGS, chromiumPath, needChromium, removeDir } from './support/ui.js';

const SAMPLE = sampleReference();
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function text(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

describe('explorer in Chromium', () => {
  let explorer: Explorer | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let profile: string | undefined;
  let shots: string;
  let store: string | undefined;
  const errors: string[] = [];

  async function shot(name: string): Promise<void> {
    const file = path.join(shots, `${name}.png`);
    await page.screenshot({ path: file });
    const extra = process.env.BERTH_UI_SCREENSHOTS;
    if (extra) {
      await mkdir(extra, { recursive: true });
      await page.screenshot({ path: path.join(extra, `${name}.png`) });
    }
  }

  before(async () => {
    if (chromiumPath() === undefined) return;
    // Relative references from the package root, and a store in a temp dir: nothing in the page names this checkout.
    process.chdir(PACKAGE_ROOT);
    store = await mkdtemp(path.join(os.tmpdir(), 'berth-store-'));
    await loadImages(SAMPLE, { root: path.join(store, 'root'), fsync: false, platform: parsePlatform('linux/amd64') });
    explorer = await startExplorer({ sample: 'oci:examples/sample', storeRoot: path.join(store, 'root') });
    shots = await mkdtemp(path.join(os.tmpdir(), 'berth-ui-e2e-'));
    profile = await mkdtemp(path.join(os.tmpdir(), 'berth-ui-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath()!, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 800 },
    });
    // Nothing but the explorer itself may be reached.
    await context.route('**/*', (route) => (route.request().url().startsWith(explorer!.url) ? route.continue() : route.abort()));
    page = await context.newPage();
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  });

  after(async () => {
    await context?.close();
    await explorer?.close();
    if (profile) await removeDir(profile);
    if (store) await removeDir(store);
    if (shots) console.log(`# screenshots: ${shots}`);
  });

  test('home lists the sample; the structure shows both platforms and their attestations', async (t) => {
    if (!needChromium(t)) return;
    await page.goto(explorer!.url);
    await page.getByRole('button', { name: /Open berth sample/ }).click();
    assert.equal(await page.getByRole('combobox', { name: /Image reference/ }).inputValue(), 'oci:examples/sample');
    const graph = page.getByRole('tree', { name: 'Image structure graph' });
    await graph.waitFor();
    const nodes = graph.getByRole('treeitem');
    await page.locator('[data-node]').nth(10).waitFor();
    const labels = await nodes.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    assert.equal(labels.filter((l) => l.startsWith('image  linux/amd64,')).length, 1, labels.join('\n'));
    assert.equal(labels.filter((l) => l.startsWith('image  linux/arm64/v8,')).length, 1);
    assert.equal(labels.filter((l) => l.startsWith('attestation manifest,')).length, 2);
    assert.equal(labels.filter((l) => l.startsWith('config,')).length, 4, 'two image configs and two attestation configs');
    assert.ok(labels.some((l) => l.startsWith('index,') && l.includes('ref: docker.io/library/berth-sample:latest')));
    // keyboard: Tab to the first node, arrow to the amd64 image, Enter opens its JSON
    await nodes.first().focus();
    for (let i = 0; i < 40; i++) {
      const focused = await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } | null } }).document.activeElement?.getAttribute('aria-label') ?? '');
      if (focused.startsWith('image  linux/amd64,')) break;
      await page.keyboard.press('ArrowDown');
    }
    await page.keyboard.press('Enter');
    const side = page.getByRole('complementary', { name: 'Selected object' });
    await side.getByText('"application/vnd.oci.image.manifest.v1+json"').first().waitFor();
    const json = await side.locator('pre.json').innerText();
    assert.equal(JSON.parse(json).config.mediaType, 'application/vnd.oci.image.config.v1+json');
    // descriptor fields explain themselves on hover
    assert.match((await side.locator('.jk.doc', { hasText: '"digest"' }).first().getAttribute('title'))!, /Content address/);
    await shot('structure');
  });

  test('layers: open a layer, walk the file tree to a file and read it', async (t) => {
    if (!needChromium(t)) return;
    await page.getByRole('button', { name: 'Open the layers and files of this image' }).click();
    const table = page.getByRole('table', { name: 'Layers' });
    await table.waitFor();
    assert.equal(await table.locator('tbody tr').count(), 3);
    await table.getByRole('row', { name: 'Layer 2' }).click();
    const changes = page.getByRole('list', { name: 'Changes of layer 2' });
    await changes.locator('[data-path="/data/old/a.txt"]').waitFor();
    assert.match(await changes.innerText(), /Deleted \(3\)/);
    await shot('layer-changes');

    await page.getByRole('tab', { name: 'Files (all layers)' }).click();
    const tree = page.getByRole('tree', { name: 'Files of the image' });
    await tree.getByRole('treeitem', { name: '/etc', exact: true }).click();
    await tree.getByRole('treeitem', { name: '/etc/greeting', exact: true }).click();
    const want = await readFile(SAMPLE, '/etc/greeting', { platform: parsePlatform('linux/amd64') });
    const content = page.getByLabel('Content of /etc/greeting');
    await content.waitFor();
    assert.equal(await content.textContent(), await text(want.stream));
    assert.match(await page.getByRole('region', { name: 'File preview' }).innerText(), new RegExp(`from layer ${want.layer}`));
    // keyboard: down to the next entry in /etc and open it
    await tree.focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await page.getByLabel('Content of /etc/os-release').waitFor();
    // search by path
    await page.getByRole('searchbox', { name: 'Search paths in the image' }).fill('README');
    const results = page.getByRole('list', { name: 'Search results' });
    await results.locator('[data-path="/usr/share/doc/berth/README"]').waitFor();
    await results.locator('[data-path="/usr/share/doc/berth/README"]').click();
    await page.getByLabel('Content of /usr/share/doc/berth/README').waitFor();
    await page.getByRole('tab', { name: 'Files (all layers)' }).click();
    await tree.getByRole('treeitem', { name: '/etc/greeting', exact: true }).click();
    await content.waitFor();
    await shot('layers');
  });

  test('attestations: the provenance summary and a searchable SBOM', async (t) => {
    if (!needChromium(t)) return;
    await page.getByRole('tab', { name: 'Attestations' }).click();
    const amd = page.getByRole('region', { name: 'Attestations of linux/amd64' });
    const prov = amd.getByRole('table', { name: 'Provenance summary' });
    await prov.waitFor();
    const summary = await prov.innerText();
    assert.match(summary, /https:\/\/example\.com\/berth\/builders\/sample/);
    assert.match(summary, /GREETING=hello from berth/);
    assert.match(summary, /revision 3f4b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b/);
    await amd.getByText('SBOM', { exact: true }).click();
    await amd.getByRole('searchbox', { name: 'Filter SBOM packages' }).fill('busybox');
    const pkgs = amd.getByRole('list', { name: 'SBOM packages' });
    await pkgs.getByText('busybox', { exact: true }).waitFor();
    assert.equal(await pkgs.locator('.pkg').count(), 1);
    assert.ok(await page.getByRole('region', { name: 'Attestations of linux/arm64/v8' }).isVisible());
    await pkgs.scrollIntoViewIfNeeded();
    await shot('attestations');
  });

  test('compare: the two platforms of the sample', async (t) => {
    if (!needChromium(t)) return;
    await page.getByRole('tab', { name: 'Compare' }).click();
    await page.getByRole('button', { name: 'Compare', exact: true }).click();
    const config = page.getByRole('table', { name: 'Config differences' });
    await config.waitFor();
    const rows = await config.innerText();
    assert.match(rows, /architecture\s+"amd64"\s+"arm64"/);
    const files = page.getByRole('list', { name: 'modified files' });
    await files.locator('[data-path="/etc/os-release"]').waitFor();
    await shot('compare');
  });

  test('store: pick the image, walk its trace chain, find where a file lies on disk', async (t) => {
    if (!needChromium(t)) return;
    const root = path.join(store!, 'root');
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.getByRole('tab', { name: 'Store' }).click();
    const images = page.getByRole('table', { name: 'Images of the store' });
    await images.waitFor();
    assert.match(await page.getByRole('region', { name: 'Store images' }).innerText(), new RegExp(`Data root ${root}`));
    await images.getByRole('row', { name: 'Image berth-sample:latest' }).focus();
    await page.keyboard.press('Enter');
    const chain = page.getByRole('list', { name: 'Trace of berth-sample:latest' });
    await chain.waitFor();
    const boxes = chain.getByRole('listitem');
    assert.equal(await boxes.count(), 6, 'name, repositories.json, config, three layers');
    const labels = await boxes.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
    assert.match(labels[1]!, /^repositories\.json, image\/overlay2\/repositories\.json, Repositories\["berth-sample"\]\["berth-sample:latest"\]/);
    assert.match(labels[2]!, /image\/overlay2\/imagedb\/content\/sha256\/[0-9a-f]{64}/);
    for (const l of labels.slice(3)) assert.match(l, /layerdb\/sha256\/[0-9a-f]{64}\/.*cache-id [0-9a-f]{64}.*overlay2\/[0-9a-f]{64}\/diff\//, l);
    // keyboard: down the chain to layer 0, Enter shows its values
    await boxes.first().focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    const details = page.getByRole('region', { name: 'Details of layer 0' });
    await details.waitFor();
    const cacheId = /cache-id \(file\)\s*([0-9a-f]{64})/.exec(await details.innerText())?.[1];
    assert.ok(cacheId !== undefined);
    assert.equal(await readFs(path.join(root, 'image', 'overlay2', 'layerdb', 'sha256', /chainID\s*sha256:([0-9a-f]{64})/.exec(await details.innerText())![1]!, 'cache-id'), 'utf8'), cacheId);
    // a file deleted by an upper layer
    const input = page.getByLabel('Where on disk is a file of this image?');
    await input.fill('/data/remove-me.txt');
    await input.press('Enter');
    const gone = page.getByRole('region', { name: 'Where /data/remove-me.txt is' });
    await gone.waitFor();
    assert.match(await gone.innerText(), /does not see \/data\/remove-me\.txt: layer 2 deletes it \(whiteout\)/);
    // a file overridden by layer 1: that layer provides it, and the file on disk has its bytes
    await input.fill('etc/greeting');
    await input.press('Enter');
    const where = page.getByRole('region', { name: 'Where /etc/greeting is' });
    await where.waitFor();
    const want = await readFile(SAMPLE, '/etc/greeting', { platform: parsePlatform('linux/amd64') });
    assert.match(await where.innerText(), new RegExp(`sees /etc/greeting from layer ${want.layer}`));
    const onDisk = await where.locator('code.ondisk').innerText();
    assert.ok(onDisk.startsWith(`${root}/overlay2/`), onDisk);
    assert.equal(await readFs(onDisk, 'utf8'), await text(want.stream));
    assert.match((await chain.locator(`[data-box="layer${want.layer}"]`).getAttribute('class'))!, /provides/);
    assert.match(page.url(), /view=store&.*image=berth-sample%3Alatest&file=%2Fetc%2Fgreeting/);
    await shot('store');
  });

  test('no errors in the page, nothing fetched from elsewhere', (t) => {
    if (!needChromium(t)) return;
    assert.deepEqual(errors, []);
  });
});
