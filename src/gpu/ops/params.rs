//! The uniform blocks of the op shaders, each mirroring its WGSL struct field for field
//! (checked by the tests in `super`). Sizes are multiples of 16 bytes, as uniform blocks need.

/// `struct ElementwiseParams` in shaders/elementwise.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ElementwiseParams {
    pub mode: u32,
    pub activation: u32,
    pub out_len: u32,
    pub plane: u32,
    pub c_a: u32,
    pub c_b: u32,
    pub c_out: u32,
    pub pad0: u32,
    /// The activation's parameters α, β as f32 bits (`Activation::parameter_bits`).
    pub alpha: u32,
    pub beta: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// `ElementwiseParams::mode` values.
pub(crate) const MODE_ADD: u32 = 0;
pub(crate) const MODE_CONCAT: u32 = 1;
pub(crate) const MODE_ACTIVATION: u32 = 2;

/// `struct PoolParams` in shaders/pool.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct PoolParams {
    pub n: u32,
    pub c: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub h_out: u32,
    pub w_out: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub mode: u32,
    pub out_len: u32,
    pub pad0: u32,
    pub pad1: u32,
}

/// `PoolParams::mode` values.
pub(crate) const POOL_MAX: u32 = 0;
pub(crate) const POOL_AVG_INCLUDE_PAD: u32 = 1;
pub(crate) const POOL_AVG_EXCLUDE_PAD: u32 = 2;

/// `struct ShuffleParams` in shaders/shuffle.wgsl.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ShuffleParams {
    pub c: u32,
    pub groups: u32,
    pub plane: u32,
    pub out_len: u32,
}

/// Field names in declaration order, for the tests that compare them with the WGSL structs.
#[cfg(test)]
pub(crate) const FIELDS: [(&str, &[&str], usize); 3] = [
    (
        "ElementwiseParams",
        &[
            "mode",
            "activation",
            "out_len",
            "plane",
            "c_a",
            "c_b",
            "c_out",
            "pad0",
            "alpha",
            "beta",
            "pad1",
            "pad2",
        ],
        std::mem::size_of::<ElementwiseParams>(),
    ),
    (
        "PoolParams",
        &[
            "n", "c", "h_in", "w_in", "h_out", "w_out", "k_h", "k_w", "stride_h", "stride_w",
            "pad_top", "pad_left", "mode", "out_len", "pad0", "pad1",
        ],
        std::mem::size_of::<PoolParams>(),
    ),
    (
        "ShuffleParams",
        &["c", "groups", "plane", "out_len"],
        std::mem::size_of::<ShuffleParams>(),
    ),
];
