//! The crate's one error type.
//!
//! Every variant caused by user input carries the values involved, so the message says what to
//! change. Environment failures (no adapter, a lost device, a wgpu validation error) have their
//! own variants. A panic inside this crate is a bug, never a reaction to bad input.

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `sepconv`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A size that must be at least 1 was 0 (channels, kernel, stride, dilation, groups, batch, height, width).
    #[error("{what} must be at least 1, got 0")]
    Zero {
        /// Which size was zero, e.g. `"stride height"`.
        what: &'static str,
    },

    /// `groups` does not divide a channel count.
    #[error("groups ({groups}) must divide {which} ({channels}); {channels} % {groups} = {}", channels.checked_rem(*groups).unwrap_or(*channels))]
    GroupsDoNotDivide {
        /// The number of groups asked for.
        groups: usize,
        /// `"c_in"` or `"c_out"`.
        which: &'static str,
        /// The channel count that is not divisible.
        channels: usize,
    },

    /// The dilated kernel is larger than the padded input along one axis, so the output would be empty.
    #[error(
        "empty output along {axis}: input {input} + padding {padding} = {padded} is smaller than the dilated kernel extent {kernel_extent} (kernel {kernel}, dilation {dilation})"
    )]
    EmptyOutput {
        /// `"height"` or `"width"`.
        axis: &'static str,
        /// Input size along the axis.
        input: usize,
        /// Total padding along the axis (both sides).
        padding: usize,
        /// `input + padding`.
        padded: usize,
        /// Kernel size along the axis.
        kernel: usize,
        /// Dilation along the axis.
        dilation: usize,
        /// `dilation * (kernel - 1) + 1`.
        kernel_extent: usize,
    },

    /// A buffer length does not match what the spec and shape require.
    #[error("{what} has {got} elements, expected {expected}{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    LengthMismatch {
        /// Which buffer, e.g. `"weights"`, `"bias"`, `"input data"`.
        what: &'static str,
        /// Elements required.
        expected: usize,
        /// Elements given.
        got: usize,
        /// How the expected length comes about, e.g. `"[c_out, c_in/groups, kh, kw] = [64, 1, 3, 3]"`.
        hint: Option<String>,
    },

    /// The spec says bias on and none was given, or bias off and one was given.
    #[error(
        "the spec has bias = {spec_has_bias} but {} bias was given: {}",
        if *given { "a" } else { "no" },
        if *spec_has_bias { "pass a bias, or use .bias(false) on the spec (Conv2dSpec::new, depthwise and pointwise default to bias on)" } else { "pass None, or use .bias(true) on the spec" }
    )]
    BiasMismatch {
        /// `Conv2dSpec::bias`.
        spec_has_bias: bool,
        /// Whether a bias slice was passed.
        given: bool,
    },

    /// The input tensor's channel count does not match the spec's `c_in`.
    #[error("input has {got} channels but the spec expects c_in = {expected}")]
    ChannelMismatch {
        /// `c_in` of the spec.
        expected: usize,
        /// Channels of the input tensor.
        got: usize,
    },

    /// Two things that must fit together do not: chained convolutions, a block built from the
    /// wrong kinds, weights and the node they are for, a network and its input.
    #[error("{reason}")]
    Incompatible {
        /// What does not fit.
        reason: String,
    },

    /// An argument outside the range an operation or network builder accepts (a width
    /// multiplier that is not positive, pooling padding larger than half the window, …).
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// Which argument, e.g. `"width multiplier"`.
        what: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A size computation overflowed (the tensor is absurdly large).
    #[error("size of {what} overflows: {detail}")]
    Overflow {
        /// What was being sized.
        what: &'static str,
        /// The factors involved.
        detail: String,
    },

    /// A buffer would exceed the device's limits.
    #[error(
        "{what} needs {bytes} bytes, more than the device allows ({limit} bytes, {limit_name}); use a smaller batch or spatial size"
    )]
    TooLarge {
        /// Which buffer.
        what: &'static str,
        /// Bytes required.
        bytes: u64,
        /// The device's limit in bytes.
        limit: u64,
        /// Which `wgpu::Limits` field sets it.
        limit_name: &'static str,
    },

    /// Host memory for a tensor could not be allocated.
    #[error("cannot allocate {bytes} bytes of host memory for {what}")]
    HostAllocation {
        /// What was being allocated.
        what: &'static str,
        /// Bytes asked for.
        bytes: u64,
    },

    /// A dispatch needs more workgroups than even a spread 2-D grid can hold.
    #[error("dispatch of {workgroups} workgroups exceeds the device's grid ({max_per_dimension}² per dispatch)")]
    DispatchTooLarge {
        /// Workgroups needed.
        workgroups: u64,
        /// `max_compute_workgroups_per_dimension`.
        max_per_dimension: u32,
    },

    /// The spec is valid but outside what the kernels support.
    #[error("unsupported convolution: {reason}")]
    Unsupported {
        /// What is out of range.
        reason: String,
    },

    /// A tensor's [`crate::Precision`] is not the one the conv, block, network or op it was
    /// given to works in (every tensor of a run shares one precision).
    #[error(
        "{what} is {got}, expected {expected}; upload it with GpuTensor::from_slice_as(.., \
         Precision::{}) or build the conv with_precision(Precision::{})",
        expected.name().to_uppercase(), got.name().to_uppercase()
    )]
    PrecisionMismatch {
        /// Which tensor, e.g. `"the input tensor"`.
        what: &'static str,
        /// The precision the run works in.
        expected: crate::Precision,
        /// The tensor's.
        got: crate::Precision,
    },

    /// A tensor or conv object was used with a different [`crate::Gpu`] than it was made on.
    #[error(
        "{what} was made on a different wgpu device than the one used here; make it on this \
         Gpu (upload host data with GpuTensor::from_tensor, read a tensor back with read())"
    )]
    DeviceMismatch {
        /// The object on the other device, e.g. `"the input tensor"`.
        what: &'static str,
    },

    /// No adapter could be found.
    #[error(
        "no GPU adapter found ({details}). On a headless Linux machine install Mesa's software drivers \
         (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers` for Vulkan/lavapipe; llvmpipe GL comes with libegl-mesa0), \
         or choose a backend with WGPU_BACKEND=vulkan|gl|metal|dx12"
    )]
    NoAdapter {
        /// What was tried.
        details: String,
    },

    /// The adapter refused to create a device.
    #[error("could not create a device on adapter {adapter}: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },

    /// wgpu reported a validation or out-of-memory error for an operation of this crate.
    #[error("wgpu {kind} error during {during}: {message}")]
    Gpu {
        /// `"validation"`, `"out-of-memory"` or `"internal"`.
        kind: &'static str,
        /// What the crate was doing.
        during: &'static str,
        /// wgpu's message.
        message: String,
    },

    /// Mapping a buffer for reading failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),

    /// The device was lost (driver reset, removal, or destroyed); it cannot be used any more.
    #[error("the GPU device was lost: {0}; create a new Gpu")]
    DeviceLost(String),

    // ---- Checkpoints and photos (crate::checkpoint, crate::preprocess) ----
    /// A checkpoint or image file is truncated, corrupt, hostile or not of a known format.
    #[error("cannot read {what} {file}: {reason}")]
    BadFile {
        /// `"checkpoint"` or `"image"`.
        what: &'static str,
        /// The path, or `"<bytes>"` for data passed in memory.
        file: String,
        /// What is wrong (the parser's message, or the limit that was exceeded).
        reason: String,
    },

    /// A state dict has no tensor of this name.
    #[error("the checkpoint has no tensor {key}{}", nearest.as_ref().map(|n| format!(" (nearest name: {n})")).unwrap_or_default())]
    MissingKey {
        /// The name looked up.
        key: String,
        /// A key of the checkpoint sharing the longest prefix with it, to spot a renamed prefix.
        nearest: Option<String>,
    },

    /// A state dict tensor has another shape than the network needs.
    #[error("checkpoint tensor {key} has shape {got:?}, the network needs {expected:?}")]
    KeyShape {
        /// The tensor's name.
        key: String,
        /// The shape the network needs.
        expected: Vec<usize>,
        /// The shape in the checkpoint.
        got: Vec<usize>,
    },

    /// A state dict tensor's element type cannot be converted to `f32` (integers, booleans).
    #[error("checkpoint tensor {key} has element type {dtype}, which does not convert to f32 (f64, f32, f16 and bf16 do)")]
    KeyDtype {
        /// The tensor's name.
        key: String,
        /// Its element type as the file names it.
        dtype: String,
    },
}
