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
// (t % tiles_x)·64 .. +64 of the flattened (n, oh, ow) range (WORKGROUP_SIZE · PIXELS).
// Each invocation computes PIXELS pixels, local and local + 32, for OC_TILE = 4·OC_VEC4
// output channels: per input channel it loads one input value per pixel (consecutive pixels
// across the workgroup: coalesced) and OC_VEC4 weight vec4s, each used for every pixel, then
// does PIXELS · OC_TILE multiply-adds from registers. Slices that split the input channels
// add their partial sums (slice_flags, see `finish`).

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
// Pixels per invocation: 1 or 2 (chosen by the host per layer).
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let tile = wg.y * num_wg.x + wg.x;
    let block_in_slice = tile / params.tiles_x;
    let first_q = (tile % params.tiles_x) * WORKGROUP_SIZE * PIXELS + local;
    if block_in_slice >= params.tiles_y || first_q >= params.work_items {
        return;
    }
    let block = params.slice_first + block_in_slice;
    let plane_out = params.h_out * params.w_out;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels: first_q and, when PIXELS = 2, first_q + WORKGROUP_SIZE, so that
    // at every step the workgroup reads consecutive pixels. A second pixel past the end reads
    // the first one again (in bounds) and is not stored.
    let q1 = first_q + WORKGROUP_SIZE;
    let second = PIXELS > 1u && q1 < params.work_items;
    let n0 = first_q / plane_out;
    let p0 = first_q % plane_out;
    let q1c = select(first_q, q1, second);
    let n1 = q1c / plane_out;
    let p1 = q1c % plane_out;
    var x0 = (n0 * params.c_in + params.k_begin) * plane_in
        + (p0 / params.w_out) * params.stride_h * params.w_in + (p0 % params.w_out) * params.stride_w;
    var x1 = (n1 * params.c_in + params.k_begin) * plane_in
        + (p1 / params.w_out) * params.stride_h * params.w_in + (p1 % params.w_out) * params.stride_w;

    var w = block_in_slice * params.k_count * OC_VEC4;
    var a0 = vec4(0.0); var a1 = vec4(0.0); var a2 = vec4(0.0); var a3 = vec4(0.0);
    var a4 = vec4(0.0); var a5 = vec4(0.0); var a6 = vec4(0.0); var a7 = vec4(0.0);
    var b0 = vec4(0.0); var b1 = vec4(0.0); var b2 = vec4(0.0); var b3 = vec4(0.0);
    var b4 = vec4(0.0); var b5 = vec4(0.0); var b6 = vec4(0.0); var b7 = vec4(0.0);
    for (var k = 0u; k < params.k_count; k++) {
        let u = input_data[x0];
        var v = 0.0;
        if PIXELS > 1u {
            v = input_data[x1];
        }
        let w0 = weights[w];
        a0 += w0 * u;
        if PIXELS > 1u { b0 += w0 * v; }
        if OC_VEC4 > 1u {
            let w1 = weights[w + 1u];
            a1 += w1 * u;
            if PIXELS > 1u { b1 += w1 * v; }
        }
        if OC_VEC4 > 2u {
            let w2 = weights[w + 2u];
            let w3 = weights[w + 3u];
            a2 += w2 * u;
            a3 += w3 * u;
            if PIXELS > 1u { b2 += w2 * v; b3 += w3 * v; }
        }
        if OC_VEC4 > 4u {
            let w4 = weights[w + 4u];
            let w5 = weights[w + 5u];
            let w6 = weights[w + 6u];
            let w7 = weights[w + 7u];
            a4 += w4 * u;
            a5 += w5 * u;
            a6 += w6 * u;
            a7 += w7 * u;
            if PIXELS > 1u { b4 += w4 * v; b5 += w5 * v; b6 += w6 * v; b7 += w7 * v; }
        }
        x0 += plane_in;
        x1 += plane_in;
        w += OC_VEC4;
    }

    let o0 = n0 * params.c_out * plane_out + p0;
    let o1 = n1 * params.c_out * plane_out + p1;
    let oc = block * OC_VEC4 * 4u;
    let b = block * OC_VEC4;
    store(o0, oc, plane_out, a0, bias[b]);
    if second { store(o1, oc, plane_out, b0, bias[b]); }
    if OC_VEC4 > 1u {
        store(o0, oc + 4u, plane_out, a1, bias[b + 1u]);
        if second { store(o1, oc + 4u, plane_out, b1, bias[b + 1u]); }
    }
    if OC_VEC4 > 2u {
        store(o0, oc + 8u, plane_out, a2, bias[b + 2u]);
        store(o0, oc + 12u, plane_out, a3, bias[b + 3u]);
        if second {
            store(o1, oc + 8u, plane_out, b2, bias[b + 2u]);
            store(o1, oc + 12u, plane_out, b3, bias[b + 3u]);
        }
    }
    if OC_VEC4 > 4u {
        store(o0, oc + 16u, plane_out, a4, bias[b + 4u]);
        store(o0, oc + 20u, plane_out, a5, bias[b + 5u]);
        store(o0, oc + 24u, plane_out, a6, bias[b + 6u]);
        store(o0, oc + 28u, plane_out, a7, bias[b + 7u]);
        if second {
            store(o1, oc + 16u, plane_out, b4, bias[b + 4u]);
            store(o1, oc + 20u, plane_out, b5, bias[b + 5u]);
            store(o1, oc + 24u, plane_out, b6, bias[b + 6u]);
            store(o1, oc + 28u, plane_out, b7, bias[b + 7u]);
        }
    }
}
