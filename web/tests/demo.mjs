// The demo page in headless Chromium (puppeteer-core, the system's /usr/bin/chromium):
// 1. with WebGPU on (--enable-unsafe-webgpu): loads www/index.html?image=test.png&check=1,
//    waits for the run, checks the top-5 (five distinct classes, probabilities falling), the
//    per-layer table (one row per MobileNet v1 node but the input: 29), the CPU reference
//    check (pass), and that a screenshot was written;
// 2. with WebGPU off: checks that the page says so.
// Needs www/pkg (./build.sh). Usage: node tests/demo.mjs [screenshot.png]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { serve } from '../serve.mjs';

const WEB = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const SHOT = path.resolve(process.argv[2] ?? path.join(WEB, 'target', 'demo.png'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT_MS = 300_000;

function fail(msg) {
  console.error(`demo test FAILED: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}

async function open(base, args, query) {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', ...args],
  });
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`  [page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  await page.setViewport({ width: 1100, height: 1100 });
  await page.goto(`${base}/www/index.html${query}`);
  await page.waitForFunction(
    () => ['done', 'error', 'no-webgpu'].includes(document.body.dataset.state)
      || (document.body.dataset.state === 'ready' && !location.search.includes('image=')),
    { timeout: TIMEOUT_MS, polling: 200 },
  );
  return { browser, page };
}

const server = await serve(0);
const base = `http://127.0.0.1:${server.address().port}`;
const t0 = Date.now();
try {
  // 1. WebGPU on.
  {
    const { browser, page } = await open(base, ['--enable-unsafe-webgpu'], '?image=test.png&check=1');
    try {
      const r = await page.evaluate(() => ({
        state: document.body.dataset.state,
        status: document.getElementById('status').textContent,
        check: document.body.dataset.check,
        checkText: document.getElementById('check').textContent,
        top: [...document.querySelectorAll('#top5 tbody tr')].map((tr) =>
          [tr.cells[0].textContent, Number(tr.cells[1].textContent)]),
        layers: [...document.querySelectorAll('#layers tbody tr')].map((tr) =>
          [tr.cells[0].textContent, tr.cells[2].textContent]),
      }));
      console.log(`status: ${r.status}`);
      console.log(`check: ${r.checkText}`);
      console.log(`top-5: ${JSON.stringify(r.top)}`);
      if (r.state !== 'done') fail(`page state ${r.state}: ${r.status}`);
      if (r.top.length !== 5) fail(`top-5 has ${r.top.length} rows`);
      if (new Set(r.top.map((t) => t[0])).size !== 5) fail('top-5 classes repeat');
      for (let i = 0; i < 5; i++) {
        const p = r.top[i][1];
        if (!(p > 0 && p < 1)) fail(`top-5 probability ${p} out of (0, 1)`);
        if (i > 0 && p > r.top[i - 1][1]) fail('top-5 not in falling order');
      }
      // 29 nodes after the input (stem, 13 depthwise + 13 pointwise, pool, classifier), then
      // the total row.
      if (r.layers.length !== 30) fail(`layer table has ${r.layers.length} rows, want 29 + total`);
      for (const [name, ms] of r.layers) {
        if (!(Number(ms) >= 0)) fail(`layer ${name}: time ${ms}`);
      }
      if (r.check !== 'pass') fail(`CPU reference check: ${r.checkText}`);
      fs.mkdirSync(path.dirname(SHOT), { recursive: true });
      if (fs.existsSync(SHOT)) fs.unlinkSync(SHOT);
      await page.screenshot({ path: SHOT, fullPage: true });
      const size = fs.existsSync(SHOT) ? fs.statSync(SHOT).size : 0;
      if (size < 10_000) fail(`screenshot ${SHOT} missing or too small (${size} bytes)`);
      console.log(`screenshot: ${SHOT} (${size} bytes)`);
    } finally {
      await browser.close();
    }
  }
  // 2. WebGPU off: the page must say so.
  {
    const { browser, page } = await open(base, ['--disable-features=WebGPU'], '?image=test.png');
    try {
      const r = await page.evaluate(() => ({
        state: document.body.dataset.state,
        status: document.getElementById('status').textContent,
      }));
      console.log(`without WebGPU: ${r.state}: ${r.status}`);
      if (r.state !== 'no-webgpu' || !/WebGPU/.test(r.status)) fail(`no clear message without WebGPU: ${r.state}`);
    } finally {
      await browser.close();
    }
  }
  console.log(`demo test passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
} finally {
  server.close();
}
