// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32, as a register-blocked
// matrix product: Y[n][oc][p] = act(b[oc] + Σ_ic W[oc][ic] · X[n][ic][p·stride]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Pointwise`.
//
// Bindings (shared by every conv shader, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      packed once by the host (src/gpu/pack.rs): [oc_block][c_in][OC_TILE]
//                   vec4s, OC_TILE = 4·OC_VEC4 output channels per block, zero-padded past c_out
//   2  bias         [oc_block][OC_TILE] as vec4s, zero-padded (zeros when the spec has none)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Thread → output: workgroups are numbered linearly (the grid may be spread over x and y,
// src/gpu/dispatch.rs); workgroup t covers output-channel block t / tiles_x and pixels
// (t % tiles_x)·64 .. +64 of the flattened (n, oh, ow) range. Each invocation computes one
// pixel for OC_TILE output channels: per input channel it loads one input value (consecutive
// pixels across the workgroup: coalesced) and OC_VEC4 weight vec4s (the same address for the
// whole workgroup: a broadcast), then does OC_TILE multiply-adds from registers.

struct ConvParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_out: u32, h_out: u32, w_out: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, dilation_h: u32, dilation_w: u32,
    c_in_per_group: u32, c_out_per_group: u32, activation: u32, out_len: u32,
    tiles_x: u32, tiles_y: u32, oc_blocks_per_group: u32, work_items: u32,
}

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

const WORKGROUP_SIZE: u32 = 64u;
// Output channels per invocation, in vec4s: 1, 2 or 4 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;

fn activate(x: vec4<f32>) -> vec4<f32> {
    switch params.activation {
        case 1u: { return max(x, vec4(0.0)); }
        case 2u: { return clamp(x, vec4(0.0), vec4(6.0)); }
        default: { return x; }
    }
}

fn store(base: u32, oc: u32, plane: u32, v: vec4<f32>) {
    // Output channels past c_out are padding of the last block: skipped.
    for (var j = 0u; j < 4u; j++) {
        if oc + j < params.c_out {
            output_data[base + (oc + j) * plane] = v[j];
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
    let oc_block = tile / params.tiles_x;
    let q = (tile % params.tiles_x) * WORKGROUP_SIZE + local;
    if oc_block >= params.tiles_y || q >= params.work_items {
        return;
    }
    let plane_out = params.h_out * params.w_out;
    let plane_in = params.h_in * params.w_in;
    let n = q / plane_out;
    let p = q % plane_out;
    let oh = p / params.w_out;
    let ow = p % params.w_out;

    var x = n * params.c_in * plane_in + oh * params.stride_h * params.w_in + ow * params.stride_w;
    var w = oc_block * params.c_in * OC_VEC4;
    var acc0 = vec4(0.0);
    var acc1 = vec4(0.0);
    var acc2 = vec4(0.0);
    var acc3 = vec4(0.0);
    for (var ic = 0u; ic < params.c_in; ic++) {
        let xv = input_data[x];
        acc0 += weights[w] * xv;
        if OC_VEC4 > 1u {
            acc1 += weights[w + 1u] * xv;
        }
        if OC_VEC4 > 2u {
            acc2 += weights[w + 2u] * xv;
            acc3 += weights[w + 3u] * xv;
        }
        x += plane_in;
        w += OC_VEC4;
    }

    let out_base = n * params.c_out * plane_out + p;
    let oc = oc_block * OC_VEC4 * 4u;
    let b = oc_block * OC_VEC4;
    store(out_base, oc, plane_out, activate(acc0 + bias[b]));
    if OC_VEC4 > 1u {
        store(out_base, oc + 4u, plane_out, activate(acc1 + bias[b + 1u]));
    }
    if OC_VEC4 > 2u {
        store(out_base, oc + 8u, plane_out, activate(acc2 + bias[b + 2u]));
        store(out_base, oc + 12u, plane_out, activate(acc3 + bias[b + 3u]));
    }
}
