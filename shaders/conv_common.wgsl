// The window kernels' fragment (depthwise.wgsl, pointwise.wgsl, grouped.wgsl): their
// parameters, the bindings they share, and their epilogue `finish` (bias or partial sums,
// then the activation), for kernels whose weights come as 64 KiB uniform windows, one
// dispatch per window. The host puts it after shared.wgsl and before the kernel's file
// (src/gpu/pipelines.rs, `Shader::source`).
//
// Bindings (the conv layout, `Pipelines::new` in src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]  (declared in shared.wgsl)
//   1  weights      this slice's window of the weights, as the kernel lays it out (f32 even
//                   for an f16 conv, whose weights the host rounds to f16 first: WGSL's
//                   uniform arrays need 16-byte strides, see src/gpu/window.rs)
//   2  bias         declared by each kernel (f32 or vec4 elements, f16-rounded for f16)
//   3  output_data  [n, c_out, h_out, w_out], OutElem (an f16 output also holds the partial
//                   sums between slices, rounded to f16)
//   4  params       ConvParams

// Mirrors `ConvParams` in src/gpu/params.rs field for field (checked by a naga test).
struct ConvParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_out: u32, h_out: u32, w_out: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, dilation_h: u32, dilation_w: u32,
    c_in_per_group: u32, c_out_per_group: u32, activation: u32, out_len: u32,
    tiles_x: u32, tiles_y: u32, oc_blocks_per_group: u32, work_items: u32,
    slice_first: u32, k_begin: u32, k_count: u32, slice_flags: u32,
    act_alpha: u32, act_beta: u32, pad0: u32, pad1: u32,
}

// A uniform buffer: filters are small and read by many invocations at once (a broadcast from
// uniform/constant memory).
@group(0) @binding(1) var<uniform> weights: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(4) var<uniform> params: ConvParams;

// Bit 0 of slice_flags: this slice adds to partial sums an earlier slice wrote (no bias);
// bit 1: this slice finishes the sums (apply the activation and add the skip tensor).
const ACCUMULATE: u32 = 1u;
const FINISH: u32 = 2u;

fn finish(index: u32, partial: f32, bias_value: f32) {
    var y = partial;
    if (params.slice_flags & ACCUMULATE) != 0u {
        y += f32(output_data[index]);
    } else {
        y += bias_value;
    }
    if (params.slice_flags & FINISH) != 0u {
        y = finish_sum(index, y, activation(ACTIVATION, params.act_alpha, params.act_beta));
    }
    output_data[index] = OutElem(y);
}
