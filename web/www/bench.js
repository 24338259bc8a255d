// The browser benchmark: each of sepconv's 41 benchmark layers timed in one page, on one WebGPU
// adapter, for sepconv (wasm + WGSL), ONNX Runtime Web's WebGPU provider (a one-node Conv model
// per layer, as the native harness does) and TensorFlow.js's WebGPU backend (tf.fused.conv2d /
// depthwiseConv2d in its NHWC layout; grouped layers as split + convs + concat, TF.js having no
// groups). The same protocol for all three: the layer's input and weights resident on the GPU,
// `warmup` untimed calls, then `runs` timed calls, each from the call to the GPU's
// onSubmittedWorkDone; the median. Every library's output is read back once after timing and
// checked against sepconv's f64 CPU reference on the same seeded data (bench.check: worst
// |diff| / tolerance, at most 1 passes). sepconv's pointwise and grouped layers are timed with
// both kernels and the faster kept, as ConvKernel::Auto does natively (on the web Auto cannot
// measure, since timing needs an await).
import init, { Bench } from './pkg/sepconv_web.js';
import * as ort from '../node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs';

const params = new URLSearchParams(location.search);
const RUNS = Number(params.get('runs') ?? 7);
const WARMUP = Number(params.get('warmup') ?? 2);
const LIBS = (params.get('libs') ?? 'sepconv,ort,tfjs').split(',');
const $ = (id) => document.getElementById(id);
const status = (s) => { $('status').textContent = s; console.log(s); };
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---- A one-node ONNX model, written as protobuf by hand (onnx.proto3 field numbers). ----
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const bytes = (s) => [...new TextEncoder().encode(s)];
const field = (num, wire, payload) => [...varint((num << 3) | wire), ...payload];
const int = (num, v) => field(num, 0, varint(v));
const len = (num, payload) => field(num, 2, [...varint(payload.length), ...payload]);
const str = (num, s) => len(num, bytes(s));
const attrInt = (name, v) => len(5, [...str(1, name), ...int(20, 2), ...int(3, v)]);
const attrInts = (name, vs) => len(5, [...str(1, name), ...int(20, 7), ...vs.flatMap((v) => int(8, v))]);
function tensor(name, dims, data) {
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return [...dims.flatMap((d) => int(1, d)), ...int(2, 1), ...str(8, name), ...len(9, [...raw])];
}
function valueInfo(name, dims) {
  const shape = dims.flatMap((d) => len(1, int(1, d)));
  return [...str(1, name), ...len(2, len(1, [...int(1, 1), ...len(2, shape)]))];
}
function convModel(l, w, b, outDims) {
  const k = l.kernel;
  const node = [
    ...str(1, 'x'), ...str(1, 'w'), ...str(1, 'b'), ...str(2, 'y'), ...str(3, 'conv'), ...str(4, 'Conv'),
    ...attrInts('dilations', [l.dilation, l.dilation]), ...attrInt('group', l.groups),
    ...attrInts('kernel_shape', [k, k]), ...attrInts('pads', [l.pad, l.pad, l.pad, l.pad]),
    ...attrInts('strides', [l.stride, l.stride]),
  ];
  const graph = [
    ...len(1, node), ...str(2, l.name),
    ...len(5, tensor('w', [l.c_out, l.c_in / l.groups, k, k], w)), ...len(5, tensor('b', [l.c_out], b)),
    ...len(11, valueInfo('x', [l.n, l.c_in, l.h, l.w])), ...len(12, valueInfo('y', outDims)),
  ];
  return new Uint8Array([...int(1, 8), ...len(8, int(2, 17)), ...len(7, graph)]);
}

function outDims(l) {
  const o = (x) => Math.floor((x + 2 * l.pad - l.dilation * (l.kernel - 1) - 1) / l.stride) + 1;
  return [l.n, l.c_out, o(l.h), o(l.w)];
}

// ---- The three libraries, each: prepare once, then call() timed, then output() (NCHW). ----
async function timeCalls(call, done) {
  for (let i = 0; i < WARMUP; i++) { await call(); await done(); }
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await call();
    await done();
    times.push(performance.now() - t);
  }
  return times;
}

async function runOrt(bench, l) {
  const dims = outDims(l);
  const model = convModel(l, bench.weights(l.name), bench.bias(l.name), dims);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['webgpu'],
    preferredOutputLocation: 'gpu-buffer',
    graphOptimizationLevel: 'all',
  });
  const device = ort.env.webgpu.device;
  const input = bench.input(l.name);
  const buffer = device.createBuffer({
    size: input.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, input);
  const x = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims: [l.n, l.c_in, l.h, l.w] });
  let y = null;
  const call = async () => {
    if (y) y.dispose();
    y = (await session.run({ x })).y;
  };
  const times = await timeCalls(call, () => device.queue.onSubmittedWorkDone());
  const out = await y.getData();
  y.dispose();
  await session.release();
  buffer.destroy();
  return { times, out };
}

async function runTfjs(bench, l) {
  const [n, c, h, w] = [l.n, l.c_in, l.h, l.w];
  const k = l.kernel;
  const cg = l.c_in / l.groups, og = l.c_out / l.groups;
  const wt = bench.weights(l.name); // [c_out, c_in/g, k, k]
  const depthwise = l.groups === l.c_in;
  // Filters in TF.js's layout: conv2d [k, k, in, out] per group; depthwise [k, k, c_in, mult].
  const filters = [];
  if (depthwise) {
    const mult = l.c_out / l.c_in;
    const f = new Float32Array(k * k * l.c_in * mult);
    for (let o = 0; o < l.c_out; o++) for (let i = 0; i < k * k; i++)
      f[i * l.c_in * mult + Math.floor(o / mult) * mult + (o % mult)] = wt[o * k * k + i];
    filters.push(tf.tensor4d(f, [k, k, l.c_in, mult]));
  } else {
    for (let g = 0; g < l.groups; g++) {
      const f = new Float32Array(k * k * cg * og);
      for (let o = 0; o < og; o++) for (let i = 0; i < cg; i++) for (let t = 0; t < k * k; t++)
        f[(t * cg + i) * og + o] = wt[((g * og + o) * cg + i) * k * k + t];
      filters.push(tf.tensor4d(f, [k, k, cg, og]));
    }
  }
  const bias = tf.tensor1d(bench.bias(l.name));
  const biases = depthwise || l.groups === 1 ? [bias] : tf.split(bias, l.groups);
  const nchw = bench.input(l.name);
  const nhwc = new Float32Array(nchw.length);
  for (let b = 0; b < n; b++) for (let ci = 0; ci < c; ci++) for (let p = 0; p < h * w; p++)
    nhwc[(b * h * w + p) * c + ci] = nchw[(b * c + ci) * h * w + p];
  const x = tf.tensor4d(nhwc, [n, h, w, c]);
  const opts = { strides: l.stride, pad: l.pad, dilations: l.dilation };
  const conv = () => {
    if (depthwise) return tf.fused.depthwiseConv2d({ x, filter: filters[0], bias, ...opts });
    if (l.groups === 1) return tf.fused.conv2d({ x, filter: filters[0], bias, ...opts });
    const xs = tf.split(x, l.groups, 3);
    const ys = xs.map((xg, g) => tf.fused.conv2d({ x: xg, filter: filters[g], bias: biases[g], ...opts }));
    const y = tf.concat(ys, 3);
    xs.forEach((t) => t.dispose());
    ys.forEach((t) => t.dispose());
    return y;
  };
  const backend = tf.backend();
  let y = null;
  const call = async () => {
    if (y) y.dispose();
    y = conv();
  };
  const done = async () => {
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.submitQueue();
    await backend.device.queue.onSubmittedWorkDone();
  };
  const times = await timeCalls(call, done);
  const [, ho, wo, co] = y.shape;
  const got = await y.data();
  const out = new Float32Array(got.length);
  for (let b = 0; b < n; b++) for (let p = 0; p < ho * wo; p++) for (let ci = 0; ci < co; ci++)
    out[(b * co + ci) * ho * wo + p] = got[(b * ho * wo + p) * co + ci];
  [y, x, bias, ...filters, ...(biases.length > 1 ? biases : [])].forEach((t) => t.dispose());
  return { times, out };
}

async function runSepconv(bench, l) {
  const kernels = l.kind.startsWith('depthwise') ? ['auto'] : ['windows', 'gemm'];
  let best = null;
  for (const kernel of kernels) {
    const r = JSON.parse(await bench.time(l.name, kernel, WARMUP, RUNS));
    r.kernel = kernel;
    if (!best || r.median_ms < best.median_ms) best = r;
    if (!(r.check <= 1)) return r; // a failed check is reported whatever its speed
  }
  return best;
}

async function main() {
  await init();
  if (!navigator.gpu) throw new Error('no WebGPU in this browser');
  const bench = await Bench.create();
  ort.env.wasm.wasmPaths = new URL('../node_modules/onnxruntime-web/dist/', location.href).href;
  ort.env.wasm.numThreads = 1;
  await tf.setBackend('webgpu');
  await tf.ready();
  const all = JSON.parse(Bench.layers());
  const wanted = params.get('layers')?.split(',');
  const layers = wanted ? all.filter((l) => wanted.includes(l.name)) : all;
  const adapter = bench.adapter();
  const results = { adapter, userAgent: navigator.userAgent, runs: RUNS, warmup: WARMUP, layers: [] };
  status(`adapter ${adapter}; ${layers.length} layers`);
  for (const l of layers) {
    const row = { name: l.name, kind: l.kind, macs: l.macs };
    for (const lib of LIBS) {
      try {
        if (lib === 'sepconv') {
          const r = await runSepconv(bench, l);
          row.sepconv = { median_ms: r.median_ms, check: r.check, kernel: r.kernel };
        } else {
          const r = await (lib === 'ort' ? runOrt : runTfjs)(bench, l);
          row[lib] = { median_ms: median(r.times), check: bench.check(l.name, r.out) };
        }
      } catch (e) {
        row[lib] = { error: String(e.message ?? e) };
      }
    }
    results.layers.push(row);
    const cell = (r) => (r ? (r.error ? 'error' : r.median_ms.toFixed(2) + (r.check <= 1 ? '' : ' (WRONG)')) : '');
    $('table').tBodies[0].insertAdjacentHTML('beforeend',
      `<tr><td>${l.name}</td><td>${l.kind}</td><td>${cell(row.sepconv)}</td><td>${cell(row.ort)}</td><td>${cell(row.tfjs)}</td></tr>`);
    status(`${l.name}: ${JSON.stringify(row)}`);
  }
  $('results').textContent = JSON.stringify(results);
  document.body.dataset.state = 'done';
}

main().catch((e) => {
  status(`Error: ${e.message ?? e}`);
  document.body.dataset.state = 'error';
});
