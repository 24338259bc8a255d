// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32: per output pixel, a dot
// product over input channels, i.e. the matrix product W[c_out, c_in] · X[c_in, pixels].
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Pointwise`.
//
// Bindings (shared by every conv shader, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      [c_out, c_in, 1, 1]
//   2  bias         [c_out]                    (zeros when the spec has no bias)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Thread → output: one invocation per output element, flat NCHW index, grid possibly spread
// over x and y (src/gpu/dispatch.rs). Stride may be > 1: output (oh, ow) reads input
// (oh·stride_h, ow·stride_w).

struct ConvParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_out: u32, h_out: u32, w_out: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, dilation_h: u32, dilation_w: u32,
    c_in_per_group: u32, c_out_per_group: u32, activation: u32, out_len: u32,
}

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

const WORKGROUP_SIZE: u32 = 256u;

fn activate(x: f32) -> f32 {
    switch params.activation {
        case 1u: { return max(x, 0.0); }
        case 2u: { return clamp(x, 0.0, 6.0); }
        default: { return x; }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = (wg.y * num_wg.x + wg.x) * WORKGROUP_SIZE + local;
    if index >= params.out_len {
        return;
    }
    let ow = index % params.w_out;
    let oh = (index / params.w_out) % params.h_out;
    let oc = (index / (params.w_out * params.h_out)) % params.c_out;
    let n = index / (params.w_out * params.h_out * params.c_out);

    let plane = params.h_in * params.w_in;
    var x = n * params.c_in * plane + (oh * params.stride_h) * params.w_in + ow * params.stride_w;
    var w = oc * params.c_in;
    var acc = bias[oc];
    for (var ic = 0u; ic < params.c_in; ic++) {
        acc += input_data[x] * weights[w];
        x += plane;
        w += 1u;
    }
    output_data[index] = activate(acc);
}
