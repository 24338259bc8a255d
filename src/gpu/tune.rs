//! The tuner: every choice sepconv makes by measurement, in one place on the [`super::Gpu`].
//!
//! A pointwise or grouped conv has two kernels ([`ConvKernel`]) and a separable block two
//! paths ([`BlockPath`]); which is faster depends on the adapter and the layer, so by default
//! the first run of each shape times both and keeps the faster. [`Tuning`] says what may be
//! measured and what is pinned; the [`Tuner`] keeps the measured choices, one entry per
//! [`TuneKey`] (what makes a choice's speed what it is: specs, shapes, settings, never the
//! weights' values), shared by every conv, block and network on the device, and writes them to
//! a cache file (`cache.rs`) so that the next process starts with them.

use super::cache::Store;
use super::recent::Recent;
use crate::error::Result;
use crate::spec::{Conv2dSpec, Shape};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// same adapter, driver and crate version (the [`Tuner`]'s cache file). The two kernels
    /// round differently: pin one ([`Tuning::pinned`]) where bit-for-bit repeatability across
    /// processes matters. Convs with fewer than 16 output channels per group take the
    /// windows without measuring (the tiled product pads each group to 64 channels), and so do
    /// runs the tiled product cannot take on the device (its weights past the storage-binding
    /// limit, fewer than 4 storage buffers per shader stage or 64 invocations per workgroup).
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
    /// [`Tuner`] like [`ConvKernel::Auto`].
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
/// [`crate::Gpu::set_tuning`] (convs, blocks and networks made afterwards take it), or for one
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

/// One run (or one piece of a run split past the binding limit) of a conv: the piece's spec
/// (a split piece differs in its padding) and its shapes. Launches and choices are kept per
/// run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunKey {
    pub(crate) spec: Conv2dSpec,
    pub(crate) input: Shape,
    pub(crate) output: Shape,
}

/// What a measured choice depends on. Its `Debug` text is its key in the cache file, which is
/// tied to the crate version, so the text only has to be stable within a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TuneKey {
    /// A pointwise or grouped conv's kernel.
    Kernel { run: RunKey, split_k: SplitK },
    /// A separable block's path.
    Path {
        depthwise: Conv2dSpec,
        pointwise: Conv2dSpec,
        kernel: ConvKernel,
        split_k: SplitK,
        input: Shape,
    },
}

/// A measured choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Kernel(ConvKernel),
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

/// Distinct keys whose choices a [`Tuner`] keeps in memory: every pointwise and grouped layer
/// and every separable block of a few large networks.
const KEPT: usize = 512;

/// The device's measured choices: kept in memory (the most recent [`KEPT`]), read from and
/// written to a cache file when one is set (see [`Tuner::set_cache_dir`]).
///
/// The cache file lives in the user's cache directory by default (`sepconv/` under
/// `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on
/// Windows), one file per adapter, driver, backend and crate version. The environment
/// variable `SEPCONV_TUNE_CACHE` moves it (a directory) or turns it off (`off`, `0` or empty).
/// A file that is missing, truncated, corrupt, from another version or adapter is ignored with
/// a warning (through the `log` crate) and rewritten; writes go through a temporary file and a
/// rename under a lock file, so concurrent processes never leave a torn file.
pub struct Tuner {
    /// What the cache file is tied to: adapter, driver, backend, crate version.
    identity: super::cache::Identity,
    tuning: Mutex<Tuning>,
    measured: Recent<TuneKey, Choice>,
    store: Mutex<Option<Store>>,
}

impl std::fmt::Debug for Tuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuner")
            .field("tuning", &self.tuning())
            .field("cache_file", &self.cache_file())
            .finish_non_exhaustive()
    }
}

impl Tuner {
    /// A tuner for the device `info` describes, with the cache directory from the environment.
    pub(crate) fn new(info: &wgpu::AdapterInfo) -> Self {
        let identity = super::cache::Identity::of(info);
        let store = super::cache::default_dir().map(|dir| Store::new(&dir, &identity));
        Self {
            identity,
            tuning: Mutex::new(Tuning::default()),
            measured: Recent::new(KEPT),
            store: Mutex::new(store),
        }
    }

    /// The tuning that convs, blocks and networks made from now on take.
    pub fn tuning(&self) -> Tuning {
        *self.tuning.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the tuning for convs, blocks and networks made from now on (see [`Tuning`]).
    pub fn set_tuning(&self, tuning: Tuning) {
        *self.tuning.lock().unwrap_or_else(|e| e.into_inner()) = tuning;
    }

    /// Keeps measured choices in a file in `dir` (created if missing), or only in memory with
    /// `None`. Choices already measured are written there on the next measurement.
    pub fn set_cache_dir(&self, dir: Option<&std::path::Path>) {
        let store = dir.map(|dir| Store::new(dir, &self.identity));
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }

    /// The cache file, when there is one.
    pub fn cache_file(&self) -> Option<std::path::PathBuf> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.as_ref().map(|s| s.path().to_path_buf())
    }

    /// The choice for `key` measured in this process, if any (no file is read).
    pub(crate) fn measured(&self, key: &TuneKey) -> Option<Choice> {
        self.measured.get(key)
    }

    /// The choice for `key`: measured in this process, else read from the cache file, else
    /// what `measure` returns, which is then kept (and written to the file).
    pub(crate) fn choose(
        &self,
        key: TuneKey,
        measure: impl FnOnce() -> Result<Choice>,
    ) -> Result<Choice> {
        self.measured.get_or_try_insert_with(key, || {
            let text = format!("{key:?}");
            let stored = {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                store.as_mut().and_then(|s| s.get(&text))
            };
            if let Some(choice) = stored {
                return Ok(choice);
            }
            let choice = measure()?;
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = store.as_mut() {
                s.insert(text, choice);
            }
            Ok(choice)
        })
    }

    /// Records `choice` for `key` in memory only (the crate's tests plant choices with it).
    #[cfg(test)]
    pub(crate) fn plant(&self, key: TuneKey, choice: Choice) {
        self.measured.insert(key, choice);
    }
}

/// Most timed runs of each candidate, after one untimed run of each.
const TIMED_RUNS: usize = 3;

/// Past this ratio of medians after a round, further rounds would not change the answer.
const CLEAR_RATIO: f64 = 2.0;

/// The faster of `candidates` by median wall time of `run`, which must submit one run of the
/// candidate and wait for the device. The candidates alternate, so drifting load on the
/// machine affects both alike; ties go to the first.
pub(crate) fn faster<T: Copy>(
    candidates: [T; 2],
    mut run: impl FnMut(T) -> Result<()>,
) -> Result<T> {
    let mut time = |candidate| -> Result<Duration> {
        let start = Instant::now();
        run(candidate)?;
        Ok(start.elapsed())
    };
    // Untimed first runs build the launches and touch every buffer.
    for candidate in candidates {
        time(candidate)?;
    }
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..TIMED_RUNS {
        for (candidate, t) in candidates.into_iter().zip(&mut times) {
            t.push(time(candidate)?);
        }
        let [a, b] = [median(&times[0]), median(&times[1])];
        if a.as_secs_f64() > CLEAR_RATIO * b.as_secs_f64()
            || b.as_secs_f64() > CLEAR_RATIO * a.as_secs_f64()
        {
            break;
        }
    }
    Ok(if median(&times[1]) < median(&times[0]) {
        candidates[1]
    } else {
        candidates[0]
    })
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
