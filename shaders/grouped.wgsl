// Grouped convolution, the general case (groups = 1, i.e. standard convolution, included),
// NCHW f32, any kernel, stride, per-side padding and dilation.
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Grouped`. All
// groups run in this one dispatch.
//
// Bindings (shared by every conv shader, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      [c_out, c_in_per_group, k_h, k_w]   (PyTorch OIHW)
//   2  bias         [c_out]                             (zeros when the spec has no bias)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Thread → output: one invocation per output element, flat NCHW index, grid possibly spread
// over x and y (src/gpu/dispatch.rs). Output channel oc belongs to group
// g = oc / c_out_per_group (PyTorch's rule; not oc % groups) and reads input channels
// g·c_in_per_group .. (g+1)·c_in_per_group.

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
    let g = oc / params.c_out_per_group;

    let plane = params.h_in * params.w_in;
    let taps = params.k_h * params.k_w;
    let ih0 = i32(oh * params.stride_h) - i32(params.pad_top);
    let iw0 = i32(ow * params.stride_w) - i32(params.pad_left);

    var acc = bias[oc];
    for (var icg = 0u; icg < params.c_in_per_group; icg++) {
        let ic = g * params.c_in_per_group + icg;
        let in_base = (n * params.c_in + ic) * plane;
        let w_base = (oc * params.c_in_per_group + icg) * taps;
        for (var ky = 0u; ky < params.k_h; ky++) {
            let ih = ih0 + i32(ky * params.dilation_h);
            if ih < 0 || ih >= i32(params.h_in) {
                continue;
            }
            let row = in_base + u32(ih) * params.w_in;
            for (var kx = 0u; kx < params.k_w; kx++) {
                let iw = iw0 + i32(kx * params.dilation_w);
                if iw < 0 || iw >= i32(params.w_in) {
                    continue;
                }
                acc += input_data[row + u32(iw)] * weights[w_base + ky * params.k_w + kx];
            }
        }
    }
    output_data[index] = activate(acc);
}
