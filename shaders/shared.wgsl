// The functions every kernel shares: the one place for the activation (the epilogue every
// convolution and elementwise op ends in), the padded-tap read (clamp the address, select
// zero), the convolution geometry and the numbering of invocations.
//
// WGSL has no includes: the host prepends this file to every kernel's source
// (src/gpu/pipelines.rs, `wgsl!`), before the kernel family's fragment and the kernel's own
// file. Only the report's ceiling probes go without it.
//
// Bindings: every kernel binds its (first) input at 0, declared here:
//   0  input_data   array<Elem> (storage, read): the tensor `padded_read` reads
// It uses the kernel's WORKGROUP_SIZE (a const, or an override the host sets).
//
// Precision: the host puts two aliases before this file (`Storage::source` in
// src/gpu/pipelines.rs), `Elem` for the input tensors and the weights in storage buffers,
// `OutElem` for the output tensor: f32, or f16 after `enable f16;`. Every tensor load is
// widened to f32 (`f32(input_data[i])`) and every store rounded from f32 (`OutElem(y)`): sums,
// activations and workgroup tiles stay f32, indices u32 / i32, whatever the storage.

@group(0) @binding(0) var<storage, read> input_data: array<Elem>;

// The builtins a kernel's entry point takes: `fn main(id: Invocation)`. Kernels with barriers
// take the three one by one instead: WGSL's uniformity analysis counts a struct that holds
// local_invocation_index as non-uniform as a whole, and their barriers must stay in control
// flow that depends on the (uniform) workgroup builtins alone.
struct Invocation {
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
}

// Workgroups are numbered linearly over a grid the host may spread over x and y (past the
// 65,535 per dimension limit, src/gpu/dispatch.rs).
fn workgroup_index(wg: vec3<u32>, num_wg: vec3<u32>) -> u32 {
    return wg.y * num_wg.x + wg.x;
}

// Invocations likewise, WORKGROUP_SIZE per workgroup.
fn invocation_index(id: Invocation) -> u32 {
    return workgroup_index(id.wg, id.num_wg) * WORKGROUP_SIZE + id.local;
}

// Activation codes: `Activation::code` in src/spec.rs (0: none).
const ACTIVATION_RELU: u32 = 1u;
const ACTIVATION_RELU6: u32 = 2u;
const ACTIVATION_LEAKY_RELU: u32 = 3u;
const ACTIVATION_CLIP: u32 = 4u;
const ACTIVATION_SIGMOID: u32 = 5u;
const ACTIVATION_TANH: u32 = 6u;
const ACTIVATION_SILU: u32 = 7u;
const ACTIVATION_HARD_SIGMOID: u32 = 8u;
const ACTIVATION_HARD_SIGMOID_ONNX: u32 = 9u;
const ACTIVATION_HARD_SWISH: u32 = 10u;
const ACTIVATION_GELU: u32 = 11u;
const ACTIVATION_GELU_TANH: u32 = 12u;

// An activation as the kernels' uniforms carry it: its code and its parameters α and β
// (LeakyRelu's slope; Clip's min and max; ONNX HardSigmoid's α and β), which the host sends
// as f32 bits in u32 fields (`Activation::parameter_bits`).
struct Activation {
    code: u32,
    alpha: f32,
    beta: f32,
}

// The activation kind of a convolution's epilogue, and of the fused block's depthwise half:
// pipeline constants (`epilogue` in src/gpu/pipelines.rs), one pipeline per kind, so that the
// switch in `activate` folds to the one kind's code (a runtime switch inlined at every store
// of a register tile made the depthwise kernel 2.7× slower on lavapipe). Their parameters
// stay data. The elementwise op, one store per invocation, takes the kind at run time.
override ACTIVATION: u32 = 0u;
override DW_ACTIVATION: u32 = 0u;

fn activation(code: u32, alpha_bits: u32, beta_bits: u32) -> Activation {
    return Activation(code, bitcast<f32>(alpha_bits), bitcast<f32>(beta_bits));
}

// The identity, for stores that leave the activation to a later pass.
const NO_ACTIVATION: Activation = Activation(0u, 0.0, 0.0);

fn sigmoid(x: f32) -> f32 {
    // exp(-x) overflows to +inf for x < -88: 1 / inf = 0, the limit.
    return 1.0 / (1.0 + exp(-x));
}

// tanh, its argument clamped first: tanh(±10) rounds to ±1 in f32 already, and some
// drivers compute tanh through exp, which overflows (inf / inf) past ±44.
fn tanh_clamped(x: f32) -> f32 {
    return tanh(clamp(x, -10.0, 10.0));
}

// The normal CDF Φ(x) = erfc(-x/√2) / 2, erfc(z) for z ≥ 0 by Abramowitz & Stegun 7.1.26
// (|error| ≤ 1.5e-7; Handbook of Mathematical Functions, 1964): the tail comes straight from
// erfc, so no 1 - erf cancellation below 0.
fn normal_cdf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
        + t * (-1.453152027 + t * 1.061405429))));
    let tail = 0.5 * poly * exp(-z * z);
    return select(1.0 - tail, tail, x < 0.0);
}

// The activation `a` of x: every kernel's epilogue goes through here, so a new activation is
// added here (and in `Activation` on the host) alone. Products with a factor in [0, 1] keep x
// outside, so that x near ±f32::MAX does not overflow on the way.
fn activate(x: f32, a: Activation) -> f32 {
    var y = x;
    switch a.code {
        case ACTIVATION_RELU: { y = max(x, 0.0); }
        case ACTIVATION_RELU6: { y = clamp(x, 0.0, 6.0); }
        case ACTIVATION_LEAKY_RELU: { y = select(x, a.alpha * x, x < 0.0); }
        case ACTIVATION_CLIP: { y = min(max(x, a.alpha), a.beta); }
        case ACTIVATION_SIGMOID: { y = sigmoid(x); }
        case ACTIVATION_TANH: { y = tanh_clamped(x); }
        case ACTIVATION_SILU: { y = x * sigmoid(x); }
        case ACTIVATION_HARD_SIGMOID: { y = clamp(x + 3.0, 0.0, 6.0) / 6.0; }
        case ACTIVATION_HARD_SIGMOID_ONNX: { y = clamp(a.alpha * x + a.beta, 0.0, 1.0); }
        case ACTIVATION_HARD_SWISH: { y = x * (clamp(x + 3.0, 0.0, 6.0) / 6.0); }
        case ACTIVATION_GELU: { y = x * normal_cdf(x); }
        case ACTIVATION_GELU_TANH: {
            let inner = 0.7978845608 * (x + 0.044715 * x * x * x);
            y = (0.5 * x) * (1.0 + tanh_clamped(inner));
        }
        default: {}
    }
    // NaN in, NaN out: max, min and clamp may return the other operand. Tested on the bits,
    // which no fast-math folding can assume away.
    let nan = (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
    return select(y, x, nan);
}

// The residual add: where a skip tensor (the output's shape) joins the epilogue, a pipeline
// constant (`Residual::code` in src/activation.rs; `epilogue` in src/gpu/pipelines.rs). A
// pipeline with a residual also gets skip.wgsl (the skip binding, `skip_at`); one without
// gets no_skip.wgsl, so that it binds nothing more.
const RESIDUAL_NONE: u32 = 0u;
const RESIDUAL_BEFORE_ACTIVATION: u32 = 1u;
const RESIDUAL_AFTER_ACTIVATION: u32 = 2u;
override RESIDUAL: u32 = RESIDUAL_NONE;

// The end of every convolution's epilogue: the finished sums y (bias included) of output
// element `index`, through the activation `a`, with the skip tensor's element added before
// or after it as RESIDUAL says.
fn finish_sum(index: u32, y: f32, a: Activation) -> f32 {
    if RESIDUAL == RESIDUAL_BEFORE_ACTIVATION {
        return activate(y + skip_at(index), a);
    }
    if RESIDUAL == RESIDUAL_AFTER_ACTIVATION {
        return activate(y, a) + skip_at(index);
    }
    return activate(y, a);
}

// `activate` lane by lane.
fn activate4(x: vec4<f32>, a: Activation) -> vec4<f32> {
    return vec4<f32>(activate(x.x, a), activate(x.y, a), activate(x.z, a), activate(x.w, a));
}

// The convolution's geometry, specialised per pipeline so that the tap arithmetic folds and
// the tap loops unroll. The host sets them for the depthwise, grouped and tiled kernels
// (`geometry` in src/gpu/pipelines.rs; the fused block's are its depthwise half's); the
// others leave them unused.
override K_H: u32 = 1u;
override K_W: u32 = 1u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;

// One input row of a padded plane: the offset of the row (clamped into the plane, so that a
// read is always in bounds), whether the unclamped row lies inside, and the row's width.
struct PaddedRow {
    offset: u32,
    inside: bool,
    width: u32,
}

// Row `row` (negative or past h: in the padding) of the h × w plane at offset `plane`.
fn padded_row(plane: u32, row: i32, h: u32, w: u32) -> PaddedRow {
    return PaddedRow(plane + u32(clamp(row, 0, i32(h) - 1)) * w, row >= 0 && row < i32(h), w);
}

// The input at column `col` of a padded row, 0 in the padding. One path for interior and
// border taps (divergent branches run both sides on SIMD hardware): a clamped, always-valid
// address, zeroed by a select.
fn padded_read(row: PaddedRow, col: i32) -> f32 {
    let w = i32(row.width);
    let v = f32(input_data[row.offset + u32(clamp(col, 0, w - 1))]);
    return select(0.0, v, row.inside && col >= 0 && col < w);
}
