// Shared by every convolution kernel (depthwise.wgsl, pointwise.wgsl, grouped.wgsl): the
// host prepends this file to each (src/gpu/pipelines.rs, `Shader::source`). It uses the
// kernel's `params` and `output_data` bindings, which each kernel declares with the others.

// Mirrors `ConvParams` in src/gpu/params.rs field for field (checked by a naga test).
struct ConvParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    c_out: u32, h_out: u32, w_out: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, dilation_h: u32, dilation_w: u32,
    c_in_per_group: u32, c_out_per_group: u32, activation: u32, out_len: u32,
    tiles_x: u32, tiles_y: u32, oc_blocks_per_group: u32, work_items: u32,
    slice_first: u32, k_begin: u32, k_count: u32, slice_flags: u32,
}


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

