//! The uniform block every conv shader reads.

use crate::spec::{Conv2dSpec, Shape};

/// Mirrors `struct ConvParams` in every conv shader, field for field (checked by the naga
/// unit tests in `pipelines.rs`). 32 `u32`s = 128 bytes, a multiple of 16 as uniform blocks
/// require.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ConvParams {
    pub n: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub groups: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub dilation_h: u32,
    pub dilation_w: u32,
    pub c_in_per_group: u32,
    pub c_out_per_group: u32,
    pub activation: u32,
    pub out_len: u32,
    /// Workgroups along the fast (pixel) axis of the kernel's tiling.
    pub tiles_x: u32,
    /// Tiles along the slow (output-channel block) axis.
    pub tiles_y: u32,
    /// Output-channel blocks per group (grouped kernel).
    pub oc_blocks_per_group: u32,
    /// Invocations that do work along the fast axis (the rest of the last tile idles).
    pub work_items: u32,
    /// First output channel (depthwise) or global output-channel block of this slice.
    pub slice_first: u32,
    /// First input channel (within the group) this slice sums over.
    pub k_begin: u32,
    /// Input channels (within the group) this slice sums over.
    pub k_count: u32,
    /// Bit 0: add to partial sums already in the output; bit 1: apply the activation.
    pub slice_flags: u32,
    /// The activation's parameters α and β as f32 bits (`Activation::parameter_bits`).
    pub act_alpha: u32,
    pub act_beta: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// Field names in declaration order, for the test that compares them with the WGSL struct.
#[cfg(test)]
pub(crate) const CONV_PARAMS_FIELDS: [&str; 32] = [
    "n",
    "c_in",
    "h_in",
    "w_in",
    "c_out",
    "h_out",
    "w_out",
    "groups",
    "k_h",
    "k_w",
    "stride_h",
    "stride_w",
    "pad_top",
    "pad_left",
    "dilation_h",
    "dilation_w",
    "c_in_per_group",
    "c_out_per_group",
    "activation",
    "out_len",
    "tiles_x",
    "tiles_y",
    "oc_blocks_per_group",
    "work_items",
    "slice_first",
    "k_begin",
    "k_count",
    "slice_flags",
    "act_alpha",
    "act_beta",
    "pad0",
    "pad1",
];

/// What one dispatch covers and how it is tiled; computed by the kernel plan in `conv.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tiling {
    pub tiles_x: u32,
    pub tiles_y: u32,
    pub oc_blocks_per_group: u32,
    pub work_items: u32,
    pub slice_first: u32,
    pub k_begin: u32,
    pub k_count: u32,
    pub slice_flags: u32,
}

impl ConvParams {
    /// Parameters for `spec` on `input` giving `output`. Callers have checked that every
    /// buffer fits the device's binding limit, so all element counts fit in `u32`.
    pub(crate) fn new(spec: &Conv2dSpec, input: Shape, output: Shape, tiling: Tiling) -> Self {
        let pads = spec.pads(input.h, input.w);
        let u = |v: usize| v as u32;
        let [act_alpha, act_beta] = spec.activation.parameter_bits();
        Self {
            n: u(input.n),
            c_in: u(input.c),
            h_in: u(input.h),
            w_in: u(input.w),
            c_out: u(output.c),
            h_out: u(output.h),
            w_out: u(output.w),
            groups: u(spec.groups),
            k_h: u(spec.kernel[0]),
            k_w: u(spec.kernel[1]),
            stride_h: u(spec.stride[0]),
            stride_w: u(spec.stride[1]),
            pad_top: u(pads.top),
            pad_left: u(pads.left),
            dilation_h: u(spec.dilation[0]),
            dilation_w: u(spec.dilation[1]),
            c_in_per_group: u(spec.c_in_per_group()),
            c_out_per_group: u(spec.c_out_per_group()),
            activation: spec.activation.code(),
            out_len: u(output.n * output.c * output.h * output.w),
            tiles_x: tiling.tiles_x,
            tiles_y: tiling.tiles_y,
            oc_blocks_per_group: tiling.oc_blocks_per_group,
            work_items: tiling.work_items,
            slice_first: tiling.slice_first,
            k_begin: tiling.k_begin,
            k_count: tiling.k_count,
            slice_flags: tiling.slice_flags,
            act_alpha,
            act_beta,
            pad0: 0,
            pad1: 0,
        }
    }
}
