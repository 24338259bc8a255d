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
// (t % tiles_x)·64 .. +64 of the flattened (n, oh, ow) range. Each invocation computes one
// pixel for OC_TILE output channels: every input tap is loaded once and used for OC_TILE
// multiply-adds. Padded taps read a clamped address and are zeroed by a select.

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

const WORKGROUP_SIZE: u32 = 64u;
// Output channels per invocation, in vec4s: 1, 2, 4 or 8 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;
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
    let q = (tile % params.tiles_x) * WORKGROUP_SIZE + local;
    if block_in_slice >= params.tiles_y || q >= params.work_items {
        return;
    }
    let block = params.slice_first + block_in_slice; // global output-channel block
    let g = block / params.oc_blocks_per_group;
    let block_in_group = block % params.oc_blocks_per_group;
    let plane_out = params.h_out * params.w_out;
    let plane_in = params.h_in * params.w_in;
    let n = q / plane_out;
    let p = q % plane_out;
    let oh = p / params.w_out;
    let ow = p % params.w_out;

    let ih0 = i32(oh * STRIDE_H) - i32(params.pad_top);
    let iw0 = i32(ow * STRIDE_W) - i32(params.pad_left);

    var x_channel = (n * params.c_in + g * params.c_in_per_group + params.k_begin) * plane_in;
    var w = block_in_slice * params.k_count * K_H * K_W * OC_VEC4;
    var acc0 = vec4(0.0);
    var acc1 = vec4(0.0);
    var acc2 = vec4(0.0);
    var acc3 = vec4(0.0);
    var acc4 = vec4(0.0);
    var acc5 = vec4(0.0);
    var acc6 = vec4(0.0);
    var acc7 = vec4(0.0);
    for (var k = 0u; k < params.k_count; k++) {
        for (var ky = 0u; ky < K_H; ky++) {
            let ih = ih0 + i32(ky * DILATION_H);
            let row_ok = ih >= 0 && ih < i32(params.h_in);
            let row = x_channel + u32(clamp(ih, 0, i32(params.h_in) - 1)) * params.w_in;
            for (var kx = 0u; kx < K_W; kx++) {
                let iw = iw0 + i32(kx * DILATION_W);
                // One path for interior and border taps (divergent branches run both sides
                // on SIMD hardware): a clamped, always-valid address, zeroed when padded.
                let v = input_data[row + u32(clamp(iw, 0, i32(params.w_in) - 1))];
                let xv = select(0.0, v, row_ok && iw >= 0 && iw < i32(params.w_in));
                acc0 += weights[w] * xv;
                if OC_VEC4 > 1u {
                    acc1 += weights[w + 1u] * xv;
                }
                if OC_VEC4 > 2u {
                    acc2 += weights[w + 2u] * xv;
                    acc3 += weights[w + 3u] * xv;
                }
                if OC_VEC4 > 4u {
                    acc4 += weights[w + 4u] * xv;
                    acc5 += weights[w + 5u] * xv;
                    acc6 += weights[w + 6u] * xv;
                    acc7 += weights[w + 7u] * xv;
                }
                w += OC_VEC4;
            }
        }
        x_channel += plane_in;
    }

    let out_base = n * params.c_out * plane_out + p;
    let first = block_in_group * OC_VEC4 * 4u;
    let oc = g * params.c_out_per_group + first;
    let b = block * OC_VEC4;
    store(out_base, oc, first, plane_out, acc0, bias[b]);
    if OC_VEC4 > 1u {
        store(out_base, oc + 4u, first + 4u, plane_out, acc1, bias[b + 1u]);
    }
    if OC_VEC4 > 2u {
        store(out_base, oc + 8u, first + 8u, plane_out, acc2, bias[b + 2u]);
        store(out_base, oc + 12u, first + 12u, plane_out, acc3, bias[b + 3u]);
    }
    if OC_VEC4 > 4u {
        store(out_base, oc + 16u, first + 16u, plane_out, acc4, bias[b + 4u]);
        store(out_base, oc + 20u, first + 20u, plane_out, acc5, bias[b + 5u]);
        store(out_base, oc + 24u, first + 24u, plane_out, acc6, bias[b + 6u]);
        store(out_base, oc + 28u, first + 28u, plane_out, acc7, bias[b + 7u]);
    }
}
