// Runs the browser benchmark (www/bench.html) in headless Chromium with WebGPU on and prints a
// Markdown table: per layer, the median ms of sepconv, ONNX Runtime Web (WebGPU provider) and
// TensorFlow.js (WebGPU backend), and each one's ratio to sepconv. Every output is checked
// against sepconv's CPU reference in the page; a failed check is marked and not ranked.
// Needs www/pkg (./build.sh) and node_modules (npm ci).
// Usage: node bench/run.mjs [query, e.g. "runs=5&warmup=3&layers=mbv1_dw1,mbv1_pw1"] [results.json]
//        node bench/run.mjs results.json     (the table again, from a results file)
import fs from 'node:fs';
import puppeteer from 'puppeteer-core';
import { serve } from '../serve.mjs';

const arg = process.argv[2] ?? '';
const out = process.argv[3] ?? 'target/bench.json';

/** Prints the Markdown table and the per-kind summary of a results object. */
function report(results) {
  const ok = (r) => r && !r.error && r.check <= 1;
  const ms = (r) => (!r ? '' : r.error ? `error: ${r.error.slice(0, 40)}` : `${r.median_ms.toFixed(2)}${r.check <= 1 ? '' : ' (wrong)'}`);
  const ratio = (r, s) => (ok(r) && ok(s) ? `${(r.median_ms / s.median_ms).toFixed(2)}×` : '–');
  console.log(`${results.chromium}, ${results.adapter}; warm-up ${results.warmup}, median of ${results.runs}; ${results.wall_s.toFixed(0)} s\n`);
  console.log('| layer | kind | sepconv ms (kernel) | ORT Web ms | TF.js ms | ORT / sepconv | TF.js / sepconv |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const l of results.layers) {
    const k = l.sepconv?.kernel ? ` (${l.sepconv.kernel})` : '';
    console.log(`| ${l.name} | ${l.kind} | ${ms(l.sepconv)}${k} | ${ms(l.ort)} | ${ms(l.tfjs)} | ${ratio(l.ort, l.sepconv)} | ${ratio(l.tfjs, l.sepconv)} |`);
  }
  // Per kind: total of medians, geometric mean of the ratios, layers where sepconv is faster.
  const kinds = [...new Set(results.layers.map((l) => l.kind.split(' ')[0]))];
  console.log('\n| kind | layers | sepconv total ms | ORT Web total ms | TF.js total ms | ORT / sepconv (geo. mean, sepconv faster on) | TF.js / sepconv (geo. mean, sepconv faster on) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const kind of [...kinds, 'all']) {
    const ls = results.layers.filter((l) => kind === 'all' || l.kind.startsWith(kind));
    const total = (lib) => (ls.every((l) => ok(l[lib])) ? ls.reduce((a, l) => a + l[lib].median_ms, 0).toFixed(0) : '–');
    const summary = (lib) => {
      const both = ls.filter((l) => ok(l[lib]) && ok(l.sepconv));
      if (!both.length) return '–';
      const geo = Math.exp(both.reduce((a, l) => a + Math.log(l[lib].median_ms / l.sepconv.median_ms), 0) / both.length);
      const wins = both.filter((l) => l.sepconv.median_ms < l[lib].median_ms).length;
      return `${geo.toFixed(2)}× (${wins} of ${both.length})`;
    };
    console.log(`| ${kind} | ${ls.length} | ${total('sepconv')} | ${total('ort')} | ${total('tfjs')} | ${summary('ort')} | ${summary('tfjs')} |`);
  }
  const wrong = results.layers.filter((l) => ['sepconv', 'ort', 'tfjs'].some((k) => l[k] && !ok(l[k])));
  for (const l of wrong) console.log(`\n${l.name}: ${JSON.stringify(l)}`);
  return wrong.some((l) => !ok(l.sepconv));
}

if (arg.endsWith('.json')) {
  // Only the report, from a results file written earlier.
  process.exitCode = report(JSON.parse(fs.readFileSync(arg, 'utf8'))) ? 1 : 0;
  process.exit();
}

const server = await serve(0);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  protocolTimeout: 0,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--enable-unsafe-webgpu'],
});
const t0 = Date.now();
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/www/bench.html?${arg}`);
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state),
    { timeout: 0, polling: 1000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state !== 'done') throw new Error('the benchmark page failed (see [page] lines)');
  const results = JSON.parse(await page.evaluate(() => document.getElementById('results').textContent));
  results.chromium = await browser.version();
  results.wall_s = (Date.now() - t0) / 1000;
  fs.writeFileSync(out, JSON.stringify(results, null, 1));
  if (report(results)) process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
}
