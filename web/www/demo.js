// The demo page: MobileNet v1 1.0-224 on WebGPU through sepconv's wasm module (www/pkg, made
// by web/build.sh). `?image=URL` runs on that image at once, `&check=1` also runs the CPU
// reference in wasm and shows the worst difference relative to its bound. The page's state
// (body[data-state]: loading, ready, running, done, error, no-webgpu) is what tests wait for.
import init, { Classifier, hasWebGpu } from './pkg/sepconv_web.js';

const RES = 224;
const SEED = 1;
const MEAN = [0.485, 0.456, 0.406]; // ImageNet normalisation (torchvision's)
const STD = [0.229, 0.224, 0.225];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

function state(s, text, error = false) {
  document.body.dataset.state = s;
  $('status').textContent = text;
  $('status').className = error ? 'error' : '';
}

/** Centre-crops `img` to a square, draws it at RES×RES, returns NCHW normalised floats. */
function pixels(img) {
  const canvas = $('view');
  const ctx = canvas.getContext('2d');
  const side = Math.min(img.naturalWidth, img.naturalHeight);
  const sx = (img.naturalWidth - side) / 2, sy = (img.naturalHeight - side) / 2;
  ctx.drawImage(img, sx, sy, side, side, 0, 0, RES, RES);
  const rgba = ctx.getImageData(0, 0, RES, RES).data;
  const out = new Float32Array(3 * RES * RES);
  for (let i = 0; i < RES * RES; i++) {
    for (let c = 0; c < 3; c++) out[c * RES * RES + i] = (rgba[4 * i + c] / 255 - MEAN[c]) / STD[c];
  }
  return out;
}

function softmax(logits) {
  const max = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

function show(result) {
  const p = softmax(result.logits);
  const top = [...p.keys()].sort((a, b) => p[b] - p[a]).slice(0, 5);
  $('top5').tBodies[0].innerHTML = top
    .map((k) => `<tr><td>class ${k}</td><td>${p[k].toFixed(4)}</td></tr>`).join('');
  const most = Math.max(...result.layers.map((l) => l.ms));
  $('layers').tBodies[0].innerHTML = result.layers
    .map((l) => `<tr><td>${l.name}</td><td>${l.kind}</td><td>${l.ms.toFixed(2)}</td>` +
      `<td><span class="bar" style="width:${Math.round(120 * l.ms / most)}px"></span></td></tr>`)
    .join('') + `<tr><th>total</th><th></th><th>${result.total_ms.toFixed(1)}</th><th></th></tr>`;
  return top;
}

let classifier = null;

async function run(img) {
  state('running', 'Running on WebGPU…');
  const x = pixels(img);
  const result = JSON.parse(await classifier.classify(x));
  const top = show(result);
  let text = `Done: ${result.layers.length} layers in ${result.total_ms.toFixed(1)} ms ` +
    `(each timed from submit to onSubmittedWorkDone) on ${classifier.adapter()}.`;
  if (params.get('check')) {
    const ratio = classifier.checkAgainstCpu(x, Float32Array.from(result.logits));
    const pass = ratio !== undefined && ratio <= 1;
    $('check').textContent = `CPU reference check: worst |GPU − CPU| / bound = ${ratio.toExponential(2)} ` +
      (pass ? '(pass)' : '(FAIL)');
    document.body.dataset.check = pass ? 'pass' : 'fail';
  }
  document.body.dataset.top5 = top.join(',');
  state('done', text);
}

function load(src) {
  const img = new Image();
  img.onload = () => run(img).catch((e) => state('error', `Error: ${e.message ?? e}`, true));
  img.onerror = () => state('error', `Could not read the image ${src}.`, true);
  img.src = src;
}

async function main() {
  await init();
  if (!hasWebGpu()) {
    state('no-webgpu', 'This browser has no WebGPU (navigator.gpu is missing). Use a recent ' +
      'Chrome or Edge, or Chromium with --enable-unsafe-webgpu.', true);
    return;
  }
  state('loading', 'Opening WebGPU and building MobileNet v1…');
  try {
    classifier = await Classifier.create(1.0, RES, SEED);
  } catch (e) {
    state('no-webgpu', 'This browser exposes WebGPU but gives it no adapter: it may be turned ' +
      'off or the GPU blocklisted (Chromium on Linux: --enable-unsafe-webgpu). ' +
      `Details: ${e.message ?? e}`, true);
    return;
  }
  // The first run compiles every pipeline; time the runs after it.
  state('loading', 'Compiling the shaders (one untimed run)…');
  await classifier.classify(new Float32Array(3 * RES * RES));
  state('ready', `Ready on ${classifier.adapter()}: pick or drop a photo.`);
  $('file').onchange = (e) => e.target.files[0] && load(URL.createObjectURL(e.target.files[0]));
  const drop = $('drop');
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) load(URL.createObjectURL(f));
  };
  if (params.get('image')) load(params.get('image'));
}

main().catch((e) => state('error', `Error: ${e.message ?? e}`, true));
