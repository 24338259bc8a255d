// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32, as a register-blocked
// matrix product: Y[n][oc][p] = act(b[oc] + Σ_ic W[oc][ic] · X[n][ic][p·stride]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Pointwise`, as one
// or more slices (one dispatch each, all in one compute pass): each slice covers a range of
// output-channel blocks and of input channels whose weights fit one uniform-buffer window.
//
// Bindings (shared by the pointwise and grouped shaders, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's window of the weights packed once by the host
//                   (src/gpu/pack.rs): [block in slice][k in slice][OC_TILE] as vec4s,
//                   OC_TILE = 4·OC_VEC4 output channels per block, zero-padded past c_out.
//                   A uniform buffer: every invocation of a workgroup reads the same weight at
//                   the same time, which uniform/constant memory serves as a broadcast.
//   2  bias         [block][OC_TILE] as vec4s, zero-padded (zeros when the spec has none)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Thread → output: workgroups are numbered linearly (the grid may be spread over x and y,
// src/gpu/dispatch.rs); workgroup t covers block slice_first + t / tiles_x and pixels
// (t % tiles_x)·WORKGROUP_SIZE·PIXELS onwards of the flattened (n, oh, ow) range. Each
// invocation computes PIXELS pixels, local + i·32 for i < PIXELS, for OC_TILE = 4·OC_VEC4
// output channels: per input channel it loads one input value per pixel (consecutive pixels
// across the workgroup: coalesced) and OC_VEC4 weight vec4s, each used for every pixel, then
// does PIXELS · OC_TILE multiply-adds from registers (a PIXELS × OC_TILE register tile).
// Slices that split the input channels add their partial sums (slice_flags, see `finish`).

struct ConvParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_out: u32, h_out: u32, w_out: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, dilation_h: u32, dilation_w: u32,
    c_in_per_group: u32, c_out_per_group: u32, activation: u32, out_len: u32,
    tiles_x: u32, tiles_y: u32, oc_blocks_per_group: u32, work_items: u32,
    slice_first: u32, k_begin: u32, k_count: u32, slice_flags: u32,
}

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<uniform> weights: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

const WORKGROUP_SIZE: u32 = 32u;
// Output channels per invocation, in vec4s: 1, 2, 4 or 8 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;
// Pixels per invocation: 1, 2 or 4 (chosen by the host per layer).
override PIXELS: u32 = 1u;

// Bit 0 of slice_flags: this slice adds to partial sums an earlier slice wrote (no bias);
// bit 1: this slice finishes the sums (apply the activation).
const ACCUMULATE: u32 = 1u;
const FINISH: u32 = 2u;

fn finish(index: u32, partial: f32, bias_value: f32) {
    var y = partial;
    if (params.slice_flags & ACCUMULATE) != 0u {
        y += output_data[index];
    } else {
        y += bias_value;
    }
    if (params.slice_flags & FINISH) != 0u {
        switch params.activation {
            case 1u: { y = max(y, 0.0); }
            case 2u: { y = clamp(y, 0.0, 6.0); }
            default: {}
        }
    }
    output_data[index] = y;
}

fn store(base: u32, oc: u32, plane: u32, acc: vec4<f32>, b: vec4<f32>) {
    // Output channels past c_out are padding of the last block: skipped.
    for (var j = 0u; j < 4u; j++) {
        if oc + j < params.c_out {
            finish(base + (oc + j) * plane, acc[j], b[j]);
        }
    }
}

// The OC_TILE sums of one pixel, four channels per field (fields past OC_VEC4 stay unused).
struct Sums {
    s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32>,
    s4: vec4<f32>, s5: vec4<f32>, s6: vec4<f32>, s7: vec4<f32>,
}

// OC_TILE values, four per field: one input channel's weights for the tile (loaded once and
// used for every pixel), or the tile's bias.
struct Tile {
    w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>,
    w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32>,
}

fn load_weights(w: u32) -> Tile {
    var t: Tile;
    t.w0 = weights[w];
    if OC_VEC4 > 1u { t.w1 = weights[w + 1u]; }
    if OC_VEC4 > 2u { t.w2 = weights[w + 2u]; t.w3 = weights[w + 3u]; }
    if OC_VEC4 > 4u {
        t.w4 = weights[w + 4u]; t.w5 = weights[w + 5u];
        t.w6 = weights[w + 6u]; t.w7 = weights[w + 7u];
    }
    return t;
}

// The tile's bias, read once per invocation (a storage read is a per-lane loop on some
// drivers): only the slice that starts the sums adds it.
fn load_bias(b: u32) -> Tile {
    var t: Tile;
    if (params.slice_flags & ACCUMULATE) == 0u {
        t.w0 = bias[b];
        if OC_VEC4 > 1u { t.w1 = bias[b + 1u]; }
        if OC_VEC4 > 2u { t.w2 = bias[b + 2u]; t.w3 = bias[b + 3u]; }
        if OC_VEC4 > 4u {
            t.w4 = bias[b + 4u]; t.w5 = bias[b + 5u];
            t.w6 = bias[b + 6u]; t.w7 = bias[b + 7u];
        }
    }
    return t;
}

fn accumulate(sums: ptr<function, Sums>, t: Tile, x: f32) {
    (*sums).s0 += t.w0 * x;
    if OC_VEC4 > 1u { (*sums).s1 += t.w1 * x; }
    if OC_VEC4 > 2u { (*sums).s2 += t.w2 * x; (*sums).s3 += t.w3 * x; }
    if OC_VEC4 > 4u {
        (*sums).s4 += t.w4 * x; (*sums).s5 += t.w5 * x;
        (*sums).s6 += t.w6 * x; (*sums).s7 += t.w7 * x;
    }
}

fn store_sums(sums: Sums, base: u32, oc: u32, plane: u32, b: Tile) {
    store(base, oc, plane, sums.s0, b.w0);
    if OC_VEC4 > 1u { store(base, oc + 4u, plane, sums.s1, b.w1); }
    if OC_VEC4 > 2u {
        store(base, oc + 8u, plane, sums.s2, b.w2);
        store(base, oc + 12u, plane, sums.s3, b.w3);
    }
    if OC_VEC4 > 4u {
        store(base, oc + 16u, plane, sums.s4, b.w4);
        store(base, oc + 20u, plane, sums.s5, b.w5);
        store(base, oc + 24u, plane, sums.s6, b.w6);
        store(base, oc + 28u, plane, sums.s7, b.w7);
    }
}

// Input offset of channel k_begin at flattened output pixel q (clamped to the last pixel, so
// that pixels past the end read in bounds), and its output offset.
fn input_at(q: u32) -> u32 {
    let qc = min(q, params.work_items - 1u);
    let plane_out = params.h_out * params.w_out;
    let n = qc / plane_out;
    let p = qc % plane_out;
    return (n * params.c_in + params.k_begin) * params.h_in * params.w_in
        + (p / params.w_out) * params.stride_h * params.w_in + (p % params.w_out) * params.stride_w;
}

fn output_at(q: u32) -> u32 {
    let plane_out = params.h_out * params.w_out;
    return (q / plane_out) * params.c_out * plane_out + q % plane_out;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let tile = wg.y * num_wg.x + wg.x;
    let block_in_slice = tile / params.tiles_x;
    let q0 = (tile % params.tiles_x) * WORKGROUP_SIZE * PIXELS + local;
    if block_in_slice >= params.tiles_y || q0 >= params.work_items {
        return;
    }
    let block = params.slice_first + block_in_slice;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels: q0 + i · WORKGROUP_SIZE for i < PIXELS, so that at every step
    // the workgroup reads consecutive pixels. Pixels past the end read the last pixel (in
    // bounds) and are not stored.
    let q1 = q0 + WORKGROUP_SIZE;
    let q2 = q0 + 2u * WORKGROUP_SIZE;
    let q3 = q0 + 3u * WORKGROUP_SIZE;
    var x0 = input_at(q0);
    var x1 = input_at(q1);
    var x2 = input_at(q2);
    var x3 = input_at(q3);

    var w = block_in_slice * params.k_count * OC_VEC4;
    var a: Sums;
    var b: Sums;
    var c: Sums;
    var d: Sums;
    for (var k = 0u; k < params.k_count; k++) {
        let t = load_weights(w);
        accumulate(&a, t, input_data[x0]);
        if PIXELS > 1u { accumulate(&b, t, input_data[x1]); }
        if PIXELS > 2u {
            accumulate(&c, t, input_data[x2]);
            accumulate(&d, t, input_data[x3]);
        }
        x0 += plane_in;
        x1 += plane_in;
        x2 += plane_in;
        x3 += plane_in;
        w += OC_VEC4;
    }

    let oc = block * OC_VEC4 * 4u;
    let bias_tile = load_bias(block * OC_VEC4);
    let plane_out = params.h_out * params.w_out;
    store_sums(a, output_at(q0), oc, plane_out, bias_tile);
    if PIXELS > 1u && q1 < params.work_items { store_sums(b, output_at(q1), oc, plane_out, bias_tile); }
    if PIXELS > 2u && q2 < params.work_items { store_sums(c, output_at(q2), oc, plane_out, bias_tile); }
    if PIXELS > 2u && q3 < params.work_items { store_sums(d, output_at(q3), oc, plane_out, bias_tile); }
}
