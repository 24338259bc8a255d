// Fused depthwise + pointwise block, NCHW f32: Y = act_pw(b_pw + W_pw · D), where
// D[c][p] = act_dw(b_dw[c] + Σ_taps w_dw[c][tap] · X[c / multiplier][tap at p]) is computed
// into workgroup memory and never written to a buffer.
//
// Run by `SeparableBlock` (src/gpu/separable.rs, host code in src/gpu/fused.rs) when its
// fusion choice says so: one dispatch for the whole block.
//
// It is a tiled matrix product Y[TILE_OC × TILE_P] += W[TILE_OC × TILE_K] · D[TILE_K × TILE_P]
// per workgroup, whose D tile is made on the fly: for every step of TILE_K = 8 depthwise
// channels, the workgroup's 64 invocations first compute the 8 × 32 depthwise values of its 32
// pixels (4 each) and load the 8 × 64 pointwise weights (8 each, coalesced) into workgroup
// memory, then each invocation multiplies them into its 4-pixel × 8-channel register tile.
// A workgroup covers TILE_OC = 64 output channels, so the depthwise values of a pixel tile are
// computed once per 64 output channels (c_out / 64 times in all): K_H·K_W multiply-adds per
// value against 64 pointwise ones, in exchange for the intermediate tensor's write and reads.
//
// Bindings (src/gpu/pipelines.rs, `fused_layout`):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  dw_weights   [c_mid, K_H, K_W] (PyTorch's layout for a depthwise conv)
//   2  dw_bias      [c_mid] (zeros when the spec has none)
//   3  pw_weights   transposed and zero-padded: [c_mid rounded up to TILE_K][oc_vec4] vec4s,
//                   oc_vec4 = c_out rounded up to TILE_OC, over 4 (src/gpu/fused.rs)
//   4  pw_bias      [oc_vec4] vec4s, zero-padded
//   5  output_data  [n, c_out, h_out, w_out]
//   6  params       FusedParams (mirrors `FusedParams` in src/gpu/fused.rs field for field)
//
// Workgroups are numbered linearly (the grid may be spread over x and y, src/gpu/dispatch.rs):
// workgroup t covers output channels (t % oc_tiles)·64 onwards and flattened (n, oh, ow) pixels
// (t / oc_tiles)·32 onwards, so neighbouring workgroups share their input pixels.

struct FusedParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_mid: u32, h_mid: u32, w_mid: u32, multiplier: u32,
    c_out: u32, h_out: u32, w_out: u32, oc_vec4: u32,
    pad_top: u32, pad_left: u32, pw_stride_h: u32, pw_stride_w: u32,
    dw_activation: u32, pw_activation: u32, oc_tiles: u32, pixels: u32,
}

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<storage, read> dw_weights: array<f32>;
@group(0) @binding(2) var<storage, read> dw_bias: array<f32>;
@group(0) @binding(3) var<storage, read> pw_weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> pw_bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(6) var<uniform> params: FusedParams;

// The depthwise kernel's geometry, specialised per pipeline so that the tap loops unroll.
override K_H: u32 = 3u;
override K_W: u32 = 3u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;

const WORKGROUP_SIZE: u32 = 64u;
const TILE_OC: u32 = 64u;
const TILE_P: u32 = 32u;
const TILE_K: u32 = 8u;

// The step's depthwise values, [TILE_K][TILE_P] as vec4s of 4 consecutive pixels, and its
// pointwise weights, [TILE_K][TILE_OC] as vec4s of 4 consecutive output channels.
var<workgroup> mid_tile: array<vec4<f32>, 64>;
var<workgroup> weight_tile: array<vec4<f32>, 128>;

fn activate(y: f32, activation: u32) -> f32 {
    switch activation {
        case 1u: { return max(y, 0.0); }
        case 2u: { return clamp(y, 0.0, 6.0); }
        default: { return y; }
    }
}

// Where the depthwise taps of one block-output pixel start: its top-left input row and column
// (before dilation) and the offset of its input plane.
struct Origin {
    row: i32,
    col: i32,
    plane: u32,
}

// The origin of flattened block-output pixel q in depthwise channel c; pixels past the end
// take the last pixel's (their values are computed but never stored).
fn origin(c: u32, q: u32) -> Origin {
    let plane = params.h_out * params.w_out;
    let qc = min(q, params.pixels - 1u);
    let n = qc / plane;
    let p = qc % plane;
    // The pointwise stride picks every pw_stride-th depthwise output.
    let oh = (p / params.w_out) * params.pw_stride_h;
    let ow = (p % params.w_out) * params.pw_stride_w;
    return Origin(
        i32(oh * STRIDE_H) - i32(params.pad_top),
        i32(ow * STRIDE_W) - i32(params.pad_left),
        (n * params.c_in + c / params.multiplier) * params.h_in * params.w_in,
    );
}

// The input under tap (i, j) of a pixel with origin o, 0 in the padding: the load index is
// clamped into the plane and the value selected, without a branch.
fn tap(o: Origin, i: u32, j: u32) -> f32 {
    let row = o.row + i32(i * DILATION_H);
    let col = o.col + i32(j * DILATION_W);
    let inside = row >= 0 && row < i32(params.h_in) && col >= 0 && col < i32(params.w_in);
    let r = u32(clamp(row, 0, i32(params.h_in) - 1));
    let k = u32(clamp(col, 0, i32(params.w_in) - 1));
    return select(0.0, input_data[o.plane + r * params.w_in + k], inside);
}

// The depthwise outputs of channel c at flattened block-output pixels q .. q+3: each weight is
// loaded once for the four (0 past the channels, which the zero-padded weights make harmless).
fn depthwise_quad(c: u32, q: u32) -> vec4<f32> {
    if c >= params.c_mid {
        return vec4<f32>(0.0);
    }
    let o0 = origin(c, q);
    let o1 = origin(c, q + 1u);
    let o2 = origin(c, q + 2u);
    let o3 = origin(c, q + 3u);
    let taps = c * K_H * K_W;
    var sum = vec4<f32>(dw_bias[c]);
    for (var i = 0u; i < K_H; i++) {
        for (var j = 0u; j < K_W; j++) {
            let w = dw_weights[taps + i * K_W + j];
            sum += w * vec4<f32>(tap(o0, i, j), tap(o1, i, j), tap(o2, i, j), tap(o3, i, j));
        }
    }
    switch params.dw_activation {
        case 1u: { sum = max(sum, vec4<f32>(0.0)); }
        case 2u: { sum = clamp(sum, vec4<f32>(0.0), vec4<f32>(6.0)); }
        default: {}
    }
    return sum;
}

// Stores one pixel's 8 output channels (oc onwards) past the pointwise bias and activation.
fn store_pixel(q: u32, oc: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if q >= params.pixels {
        return;
    }
    let plane = params.h_out * params.w_out;
    let base = (q / plane) * params.c_out * plane + q % plane;
    let bias_lo = pw_bias[oc / 4u];
    let bias_hi = pw_bias[oc / 4u + 1u];
    for (var j = 0u; j < 4u; j++) {
        if oc + j < params.c_out {
            output_data[base + (oc + j) * plane] = activate(lo[j] + bias_lo[j], params.pw_activation);
        }
        if oc + 4u + j < params.c_out {
            output_data[base + (oc + 4u + j) * plane] =
                activate(hi[j] + bias_hi[j], params.pw_activation);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = wg.y * num_wg.x + wg.x;
    let oc_tile = t % params.oc_tiles;
    let q_first = (t / params.oc_tiles) * TILE_P;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if q_first >= params.pixels {
        return;
    }
    // Loading role: depthwise channel k0 + row of the step, pixel quad / weight pair col.
    let row = local / 8u;
    let col = local % 8u;
    // Multiplying role: pixels q_first + 4·px .. +4, output channels oc_tile·64 + 8·oc8 .. +8.
    let px = local % 8u;
    let oc8 = local / 8u;

    // Sums for the 4 pixels, output channels 0–3 (lo) and 4–7 (hi) of the invocation's 8.
    var lo0 = vec4<f32>(0.0);
    var lo1 = vec4<f32>(0.0);
    var lo2 = vec4<f32>(0.0);
    var lo3 = vec4<f32>(0.0);
    var hi0 = vec4<f32>(0.0);
    var hi1 = vec4<f32>(0.0);
    var hi2 = vec4<f32>(0.0);
    var hi3 = vec4<f32>(0.0);

    let q_load = q_first + col * 4u;
    let weight_col = oc_tile * (TILE_OC / 4u) + col * 2u;
    for (var k0 = 0u; k0 < params.c_mid; k0 += TILE_K) {
        let c = k0 + row;
        mid_tile[row * 8u + col] = depthwise_quad(c, q_load);
        let w = c * params.oc_vec4 + weight_col;
        weight_tile[row * 16u + col * 2u] = pw_weights[w];
        weight_tile[row * 16u + col * 2u + 1u] = pw_weights[w + 1u];
        workgroupBarrier();

        for (var k = 0u; k < TILE_K; k++) {
            let x = mid_tile[k * 8u + px];
            let w_lo = weight_tile[k * 16u + oc8 * 2u];
            let w_hi = weight_tile[k * 16u + oc8 * 2u + 1u];
            lo0 += w_lo * x.x;
            hi0 += w_hi * x.x;
            lo1 += w_lo * x.y;
            hi1 += w_hi * x.y;
            lo2 += w_lo * x.z;
            hi2 += w_hi * x.z;
            lo3 += w_lo * x.w;
            hi3 += w_hi * x.w;
        }
        workgroupBarrier();
    }

    let oc = oc_tile * TILE_OC + oc8 * 8u;
    let q = q_first + px * 4u;
    store_pixel(q, oc, lo0, hi0);
    store_pixel(q + 1u, oc, lo1, hi1);
    store_pixel(q + 2u, oc, lo2, hi2);
    store_pixel(q + 3u, oc, lo3, hi3);
}
