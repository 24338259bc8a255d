// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32, as a register-blocked
// matrix product: Y[n][oc][p] = act(b[oc] + Σ_ic W[oc][ic] · X[n][ic][p·stride]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Pointwise`, as one
// or more slices (one dispatch each, all in one compute pass): each slice covers a range of
// output-channel blocks and of input channels whose weights fit one uniform-buffer window.
//
// The host prepends conv_common.wgsl (ConvParams, the `finish` epilogue) and
// channel_tile.wgsl (Sums, Tile, load_weights, load_bias, accumulate) to this file.
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
// invocation computes PIXELS pixels, local + i·WORKGROUP_SIZE for i < PIXELS, for
// OC_TILE = 4·OC_VEC4 output channels: per input channel it loads one input value per pixel
// (consecutive pixels across the workgroup: coalesced) and OC_VEC4 weight vec4s, each used for
// every pixel, then does PIXELS · OC_TILE multiply-adds from registers (a PIXELS × OC_TILE
// register tile).
// Slices that split the input channels add their partial sums (slice_flags, see `finish`).

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<uniform> weights: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

// Invocations per workgroup (chosen by the host per adapter: 32, one GPU SIMD group; 16 on CPU
// adapters, where twice the workgroups balance better over the threads).
override WORKGROUP_SIZE: u32 = 32u;
// Output channels per invocation, in vec4s: 1, 2, 4 or 8 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;
// Pixels per invocation: 1, 2 or 4 (chosen by the host per layer).
override PIXELS: u32 = 1u;

fn store(base: u32, oc: u32, plane: u32, acc: vec4<f32>, b: vec4<f32>) {
    // Output channels past c_out are padding of the last block: skipped.
    for (var j = 0u; j < 4u; j++) {
        if oc + j < params.c_out {
            finish(base + (oc + j) * plane, acc[j], b[j]);
        }
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
