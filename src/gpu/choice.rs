//! What the [`super::Tuner`] chooses between: the kernels of a pointwise or grouped conv
//! ([`ConvKernel`], [`SplitK`]) and the paths of a separable block ([`Fusion`],
//! [`BlockPath`]), the [`Tuning`] that pins or frees them, and a measured [`Choice`] with its
//! word in the cache file.

use std::num::NonZeroUsize;

/// Which kernel a pointwise or grouped conv runs; depthwise convs have one.
///
/// Both compute the same product with a register tile of several pixels × output channels
/// per invocation and differ in where the weights come from and how work is shared: which is
/// faster depends on the adapter and the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum ConvKernel {
    /// Time both kernels on the first run of each input shape (into a scratch output) and
    /// keep the faster one; other convs on the same [`crate::Gpu`] with the same spec, shapes
    /// and [`SplitK`] take that choice without measuring, and so does the next process on the
    /// same adapter, driver and crate version (the [`crate::Tuner`]'s cache file). The two kernels
    /// round differently: pin one ([`Tuning::pinned`]) where bit-for-bit repeatability across
    /// processes matters. Convs with fewer than 16 output channels per group take the
    /// windows without measuring (the tiled product pads each group to 64 channels), and so do
    /// runs the tiled product cannot take on the device (its weights past the storage-binding
    /// limit, fewer than 4 storage buffers per shader stage (5 for a residual add's skip
    /// tensor) or 64 invocations per workgroup).
    #[default]
    Auto,
    /// shaders/pointwise.wgsl and grouped.wgsl: every invocation of a workgroup reads the same
    /// weights at the same time from a 64 KiB uniform window (a broadcast), one dispatch per
    /// window of weights. Fast on software adapters; many dispatches for layers with many
    /// weights.
    UniformWindows,
    /// shaders/conv_gemm.wgsl: one tiled implicit matrix product per run (per group, all
    /// groups in one dispatch), the weights in one storage buffer, tiles of weights and
    /// inputs staged in workgroup memory, 64 output channels of a group per workgroup. Small
    /// outputs split the sums over more workgroups and add a second dispatch ([`SplitK`]).
    TiledGemm,
}

/// How [`ConvKernel::TiledGemm`] shares out the rows it sums (input channels × taps of a
/// group) when an output is too small for its tiles to fill the device (split-K): each of
/// several parts of the workgroups sums a share of the rows into its own scratch copy of the
/// output, and a second dispatch adds the copies in a fixed order and applies the activation.
///
/// ```
/// use std::num::NonZeroUsize;
/// use sepconv::SplitK;
///
/// let four = SplitK::Parts(NonZeroUsize::new(4).unwrap());
/// assert_ne!(four, SplitK::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum SplitK {
    /// Split only as far as it takes for the workgroups to fill the device (the thread count
    /// on a CPU adapter; 512 workgroups on a GPU), keeping at least 8 steps of 8 rows per
    /// part. The count depends on the device, so results may differ in their last bits
    /// between devices (and thread counts).
    #[default]
    Auto,
    /// This many parts of whole steps of 8 rows, spread evenly (fewer when there are fewer
    /// steps, or when their scratch, one copy of the output per part, would not fit one
    /// storage binding); 1 never splits.
    Parts(NonZeroUsize),
}

/// How a [`crate::SeparableBlock`] (and a depthwise + pointwise pair in a
/// [`crate::GpuNetwork`]) chooses between its two paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Fusion {
    /// Time both paths on the first run of each input shape and keep the faster one (the
    /// two-kernel path where the fused kernel cannot take the shape), shared through the
    /// [`crate::Tuner`] like [`ConvKernel::Auto`].
    #[default]
    Auto,
    /// Always the depthwise and pointwise kernels, through the intermediate tensor.
    Never,
    /// Always the fused kernel; a run it cannot take is an [`crate::Error::Unsupported`].
    Always,
}

/// The way one run of a separable block goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockPath {
    /// Two dispatches: the depthwise kernel writes the intermediate tensor, the pointwise
    /// kernel reads it.
    TwoKernels,
    /// One dispatch of the fused kernel (shaders/fused_separable.wgsl), whose depthwise
    /// result stays in workgroup memory.
    Fused,
}

/// Every choice that can be measured or pinned, in one value: set it for a whole device with
/// [`crate::Tuner::set_tuning`] (`gpu.tuner().set_tuning(…)`) (convs, blocks and networks made afterwards take it), or for one
/// object with its `with_tuning`.
///
/// ```
/// use sepconv::{ConvKernel, Tuning};
///
/// // Deterministic kernels everywhere, whatever the adapter measures:
/// assert_eq!(Tuning::pinned().kernel, ConvKernel::UniformWindows);
/// // Or pin one choice and measure the rest:
/// let tiled = Tuning::auto().with_kernel(ConvKernel::TiledGemm);
/// assert_eq!(tiled.kernel, ConvKernel::TiledGemm);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Tuning {
    /// The kernel of pointwise and grouped convs.
    pub kernel: ConvKernel,
    /// How the tiled product splits small outputs' sums.
    pub split_k: SplitK,
    /// Whether separable blocks run fused.
    pub fusion: Fusion,
}

impl Tuning {
    /// Measure every choice (the default).
    pub const fn auto() -> Self {
        Self {
            kernel: ConvKernel::Auto,
            split_k: SplitK::Auto,
            fusion: Fusion::Auto,
        }
    }

    /// Nothing measured, nothing that depends on the device's size: the window kernels, no
    /// split-K, separable blocks as two kernels. The same bits in every process and on every
    /// adapter that computes `f32` the same way.
    pub const fn pinned() -> Self {
        Self {
            kernel: ConvKernel::UniformWindows,
            split_k: SplitK::Parts(NonZeroUsize::MIN),
            fusion: Fusion::Never,
        }
    }

    /// This tuning with `kernel` for pointwise and grouped convs.
    pub const fn with_kernel(mut self, kernel: ConvKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// This tuning with `split_k` for the tiled product.
    pub const fn with_split_k(mut self, split_k: SplitK) -> Self {
        self.split_k = split_k;
        self
    }

    /// This tuning with `fusion` for separable blocks.
    pub const fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }
}

/// A measured choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// A pointwise or grouped conv's kernel.
    Kernel(ConvKernel),
    /// A separable block's path.
    Path(BlockPath),
}

impl Choice {
    /// Its word in the cache file.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Choice::Kernel(ConvKernel::Auto) => "Auto",
            Choice::Kernel(ConvKernel::UniformWindows) => "UniformWindows",
            Choice::Kernel(ConvKernel::TiledGemm) => "TiledGemm",
            Choice::Path(BlockPath::TwoKernels) => "TwoKernels",
            Choice::Path(BlockPath::Fused) => "Fused",
        }
    }

    /// The choice a word of the cache file names, `None` for anything else.
    pub(crate) fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "UniformWindows" => Choice::Kernel(ConvKernel::UniformWindows),
            "TiledGemm" => Choice::Kernel(ConvKernel::TiledGemm),
            "TwoKernels" => Choice::Path(BlockPath::TwoKernels),
            "Fused" => Choice::Path(BlockPath::Fused),
            _ => return None,
        })
    }
}
