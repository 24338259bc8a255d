// Grouped convolution, the general case (groups = 1, i.e. standard convolution, included),
// NCHW f32, any kernel, stride, per-side padding and dilation, as an implicit matrix product
// per group with all groups in the same dispatch.
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Grouped`, as one or
// more slices (one dispatch each, all in one compute pass): each slice covers a range of global
// output-channel blocks and of input channels per group whose weights fit one uniform-buffer
// window.
//
// Bindings (shared by the pointwise and grouped shaders, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's window of the weights packed once by the host
//                   (src/gpu/pack.rs): [block in slice][k in slice][k_h][k_w][OC_TILE] vec4s,
//                   OC_TILE = 4·OC_VEC4 output channels of one group, zero-padded past
//                   c_out_per_group. A uniform buffer: the whole workgroup reads the same
//                   weight at once (a broadcast from uniform/constant memory).
//   2  bias         [group][oc_block][OC_TILE] as vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Kernel size, stride and dilation are pipeline-overridable constants (tap loops unroll).
//
// Thread → output: workgroups are numbered linearly (grid possibly spread over x and y,
// src/gpu/dispatch.rs); workgroup t covers global block slice_first + t / tiles_x
// (group = block / oc_blocks_per_group; PyTorch's rule, oc / c_out_per_group) and pixels
// (t % tiles_x)·64 .. +64 of the flattened (n, oh, ow) range (WORKGROUP_SIZE · PIXELS).
// Each invocation computes PIXELS pixels, local and local + 32, for OC_TILE = 4·OC_VEC4
// output channels: every input tap is loaded once per pixel and used for OC_TILE
// multiply-adds, and every weight vec4 read from the window serves each pixel. Padded taps
// read a clamped address and are zeroed by a select.

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
override K_H: u32 = 3u;
override K_W: u32 = 3u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;

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

fn store(base: u32, oc: u32, first_in_group: u32, plane: u32, acc: vec4<f32>, b: vec4<f32>) {
    // Channels past c_out_per_group are padding of the group's last block: skipped.
    for (var j = 0u; j < 4u; j++) {
        if first_in_group + j < params.c_out_per_group {
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
    let q0 = (tile % params.tiles_x) * WORKGROUP_SIZE * PIXELS + local;
    if block_in_slice >= params.tiles_y || q0 >= params.work_items {
        return;
    }
    let block = params.slice_first + block_in_slice; // global output-channel block
    let g = block / params.oc_blocks_per_group;
    let block_in_group = block % params.oc_blocks_per_group;
    let plane_out = params.h_out * params.w_out;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels: q0 and, when PIXELS = 2, q0 + WORKGROUP_SIZE (consecutive
    // pixels across the workgroup at every step). A second pixel past the end recomputes the
    // first (in bounds) and is not stored.
    let q1 = q0 + WORKGROUP_SIZE;
    let second = PIXELS > 1u && q1 < params.work_items;
    let q1c = select(q0, q1, second);
    let n0 = q0 / plane_out;
    let p0 = q0 % plane_out;
    let n1 = q1c / plane_out;
    let p1 = q1c % plane_out;
    let ih0_0 = i32((p0 / params.w_out) * STRIDE_H) - i32(params.pad_top);
    let iw0_0 = i32((p0 % params.w_out) * STRIDE_W) - i32(params.pad_left);
    let ih0_1 = i32((p1 / params.w_out) * STRIDE_H) - i32(params.pad_top);
    let iw0_1 = i32((p1 % params.w_out) * STRIDE_W) - i32(params.pad_left);
    let h_in = i32(params.h_in);
    let w_in = i32(params.w_in);

    let first_channel = g * params.c_in_per_group + params.k_begin;
    var x0 = (n0 * params.c_in + first_channel) * plane_in;
    var x1 = (n1 * params.c_in + first_channel) * plane_in;
    var w = block_in_slice * params.k_count * K_H * K_W * OC_VEC4;
    var a0 = vec4(0.0); var a1 = vec4(0.0); var a2 = vec4(0.0); var a3 = vec4(0.0);
    var a4 = vec4(0.0); var a5 = vec4(0.0); var a6 = vec4(0.0); var a7 = vec4(0.0);
    var b0 = vec4(0.0); var b1 = vec4(0.0); var b2 = vec4(0.0); var b3 = vec4(0.0);
    var b4 = vec4(0.0); var b5 = vec4(0.0); var b6 = vec4(0.0); var b7 = vec4(0.0);
    for (var k = 0u; k < params.k_count; k++) {
        for (var ky = 0u; ky < K_H; ky++) {
            let ih_0 = ih0_0 + i32(ky * DILATION_H);
            let ih_1 = ih0_1 + i32(ky * DILATION_H);
            let row_ok_0 = ih_0 >= 0 && ih_0 < h_in;
            let row_ok_1 = ih_1 >= 0 && ih_1 < h_in;
            let row_0 = x0 + u32(clamp(ih_0, 0, h_in - 1)) * params.w_in;
            let row_1 = x1 + u32(clamp(ih_1, 0, h_in - 1)) * params.w_in;
            for (var kx = 0u; kx < K_W; kx++) {
                // One path for interior and border taps (divergent branches run both sides
                // on SIMD hardware): a clamped, always-valid address, zeroed when padded.
                let iw_0 = iw0_0 + i32(kx * DILATION_W);
                let u = select(0.0, input_data[row_0 + u32(clamp(iw_0, 0, w_in - 1))],
                    row_ok_0 && iw_0 >= 0 && iw_0 < w_in);
                var v = 0.0;
                if PIXELS > 1u {
                    let iw_1 = iw0_1 + i32(kx * DILATION_W);
                    v = select(0.0, input_data[row_1 + u32(clamp(iw_1, 0, w_in - 1))],
                        row_ok_1 && iw_1 >= 0 && iw_1 < w_in);
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
                w += OC_VEC4;
            }
        }
        x0 += plane_in;
        x1 += plane_in;
    }

    let o0 = n0 * params.c_out * plane_out + p0;
    let o1 = n1 * params.c_out * plane_out + p1;
    let first = block_in_group * OC_VEC4 * 4u;
    let oc = g * params.c_out_per_group + first;
    let b = block * OC_VEC4;
    store(o0, oc, first, plane_out, a0, bias[b]);
    if second { store(o1, oc, first, plane_out, b0, bias[b]); }
    if OC_VEC4 > 1u {
        store(o0, oc + 4u, first + 4u, plane_out, a1, bias[b + 1u]);
        if second { store(o1, oc + 4u, first + 4u, plane_out, b1, bias[b + 1u]); }
    }
    if OC_VEC4 > 2u {
        store(o0, oc + 8u, first + 8u, plane_out, a2, bias[b + 2u]);
        store(o0, oc + 12u, first + 12u, plane_out, a3, bias[b + 3u]);
        if second {
            store(o1, oc + 8u, first + 8u, plane_out, b2, bias[b + 2u]);
            store(o1, oc + 12u, first + 12u, plane_out, b3, bias[b + 3u]);
        }
    }
    if OC_VEC4 > 4u {
        store(o0, oc + 16u, first + 16u, plane_out, a4, bias[b + 4u]);
        store(o0, oc + 20u, first + 20u, plane_out, a5, bias[b + 5u]);
        store(o0, oc + 24u, first + 24u, plane_out, a6, bias[b + 6u]);
        store(o0, oc + 28u, first + 28u, plane_out, a7, bias[b + 7u]);
        if second {
            store(o1, oc + 16u, first + 16u, plane_out, b4, bias[b + 4u]);
            store(o1, oc + 20u, first + 20u, plane_out, b5, bias[b + 5u]);
            store(o1, oc + 24u, first + 24u, plane_out, b6, bias[b + 6u]);
            store(o1, oc + 28u, first + 28u, plane_out, b7, bias[b + 7u]);
        }
    }
}
