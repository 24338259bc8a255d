//! [`Conv2d`]: a convolution with its weights on the GPU, run by the kernel its spec calls for.

use super::dispatch;
use super::gemm::{self, GemmConv};
use super::measure;
use super::ops::check_output;
use super::pack;
use super::params::{ConvParams, Tiling};
use super::pipelines::{epilogue, geometry, Constants, Shader, WEIGHT_WINDOW_FLOATS};
use super::recent::Recent;
use super::split;
use super::{binding, entry};
use super::{Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::spec::{Conv2dSpec, ConvKind, Shape};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

/// A convolution ready to run on a [`Gpu`]: the spec, the kernel it picked, and its weights
/// and bias uploaded once.
///
/// # Example
/// ```no_run
/// use sepconv::{Conv2d, Conv2dSpec, ConvKind, Gpu, GpuTensor, Padding, Shape};
///
/// let gpu = Gpu::new()?;
/// let spec = Conv2dSpec::depthwise(32, [3, 3]).padding(Padding::uniform(1));
/// let conv = Conv2d::new(&gpu, spec, &vec![0.1; spec.weight_count()], Some(&[0.0; 32]))?;
/// assert_eq!(conv.kind(), ConvKind::Depthwise { multiplier: 1 });
/// let x = GpuTensor::from_slice(&gpu, Shape::new(1, 32, 56, 56), &vec![1.0; 32 * 56 * 56])?;
/// let y = conv.run(&x)?.read()?;
/// assert_eq!(y.shape(), Shape::new(1, 32, 56, 56));
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug)]
pub struct Conv2d {
    gpu: Gpu,
    spec: Conv2dSpec,
    plan: Plan,
    slices: Vec<Slice>,
    bias: wgpu::Buffer,
    /// The weights and bias as given (the bias as zeros when the spec has none), kept so that
    /// a [`super::SeparableBlock`] can lay them out for its fused kernel.
    host_weights: Arc<[f32]>,
    host_bias: Arc<[f32]>,
    /// The launches of the last few distinct runs (see [`Launch`]).
    launches: Recent<LaunchKey, Arc<Launch>>,
    /// See [`min_workgroups`].
    min_workgroups: usize,
    /// How a pointwise or grouped conv picks its kernel.
    kernel: ConvKernel,
    /// How the tiled product splits small outputs' sums.
    split_k: SplitK,
    /// The tiled-product kernel, built on the first run that may use it.
    gemm: Mutex<Option<Arc<GemmConv>>>,
    /// The kernel measured fastest for each recent run under [`ConvKernel::Auto`].
    chosen: Recent<LaunchKey, ConvKernel>,
}

/// Which kernel a pointwise or grouped [`Conv2d`] runs; depthwise convs have one.
///
/// Both compute the same product with a register tile of several pixels × output channels
/// per invocation and differ in where the weights come from and how work is shared: which is
/// faster depends on the adapter and the layer, so by default a conv measures both on its
/// first run of each shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConvKernel {
    /// Time both kernels on the first run of each input shape (into a scratch output) and
    /// keep the faster one for that shape; other convs on the same [`Gpu`] with the same spec,
    /// shapes and [`SplitK`] take that choice without measuring (the weights' values do not
    /// change the kernels' speed). The first run costs a few runs of each; the two
    /// round differently, so pin one where bit-for-bit repeatability across processes
    /// matters (and, with `TiledGemm`, a [`SplitK::Slices`] count: `SplitK::Auto` depends on
    /// the device, and on a CPU adapter on the thread count). Convs with fewer than 16 output
    /// channels per group skip the measurement and take the windows: the tiled product pads
    /// each group to 64 channels. So do runs the
    /// tiled product cannot take on the device (its weights past the storage-binding limit,
    /// fewer than 4 storage buffers per shader stage or 64 invocations per workgroup).
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
/// several slices of workgroups sums a share of the rows into its own scratch copy of the
/// output, and a second dispatch adds the copies in a fixed order and applies the activation.
/// More parallel work for 7×7 and 14×14 layers with many channels, at the cost of writing and
/// reading those copies.
///
/// ```
/// use std::num::NonZeroUsize;
/// use sepconv::SplitK;
///
/// let four = SplitK::Slices(NonZeroUsize::new(4).unwrap());
/// assert_ne!(four, SplitK::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SplitK {
    /// Split only as far as it takes for the workgroups to fill the device (the thread count
    /// on a CPU adapter; 512 workgroups on a GPU, a figure not yet checked on one), keeping
    /// at least 8 steps of 8 rows per slice. The count depends on the device, so results may
    /// differ in their last bits between devices (and thread counts).
    #[default]
    Auto,
    /// This many slices of whole steps of 8 rows, spread evenly (fewer when there are fewer
    /// steps, or when their scratch, one copy of the output per slice, would not fit one
    /// storage binding); 1 never splits. The scratch is kept with the conv for its last few
    /// input shapes.
    Slices(NonZeroUsize),
}

/// Distinct runs whose measured kernel choice a [`Conv2d`] keeps.
const CHOICES: usize = 8;

/// Distinct (spec, shape) runs whose launches a [`Conv2d`] keeps: a caller that runs the same
/// shapes again, or a run split into a few pieces, records its dispatches without creating a
/// buffer.
const LAUNCH_CACHE: usize = 4;

/// What the dispatches of one run (or one piece of a split run) need besides the tensors,
/// built on its first call: the pipeline (specialised for its pixels per invocation), the
/// parameters of every slice in one uniform buffer, each at an offset aligned for binding,
/// and the grids. Bind groups, which name the caller's tensors, are made per call so that a
/// conv never keeps a dropped tensor's memory alive.
#[derive(Debug)]
struct Launch {
    pipeline: wgpu::ComputePipeline,
    params: wgpu::Buffer,
    params_stride: u64,
    grids: Vec<[u32; 3]>,
}

/// What a run (or one piece of a split run) is: the piece's spec (a split piece differs in its
/// padding) and its shapes. Its [`Launch`], its tiled kernel's launch and its measured kernel
/// choice are kept per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaunchKey {
    pub(crate) spec: Conv2dSpec,
    pub(crate) input: Shape,
    pub(crate) output: Shape,
}

/// Which kernel runs a spec and how it is specialised and tiled.
#[derive(Debug, Clone)]
struct Plan {
    shader: Shader,
    constants: Constants,
    /// Output channels per invocation (pointwise and grouped kernels); 0 for depthwise.
    oc_tile: usize,
    /// Invocations per workgroup.
    workgroup_size: usize,
}

/// One dispatch's share of the work: the output channels (depthwise) or output-channel blocks
/// and input channels whose weights fit one uniform window, with that window uploaded.
#[derive(Debug)]
struct Slice {
    /// First output channel (depthwise) or first global output-channel block.
    first: usize,
    /// Output channels (depthwise) or blocks.
    count: usize,
    /// Input channels per group summed by this slice.
    k_begin: usize,
    k_count: usize,
    /// `ACCUMULATE` / `FINISH` bits, as in the shaders.
    flags: u32,
    weights: wgpu::Buffer,
}

/// `slice_flags` bits (see `finish` in the shaders).
const ACCUMULATE: u32 = 1;
const FINISH: u32 = 2;

/// Outputs per invocation of the depthwise kernel: `OUT_H` rows × `OUT_W` consecutive columns
/// (depthwise.wgsl).
const DEPTHWISE_OUT_W: usize = 8;
const DEPTHWISE_OUT_H: usize = 2;

/// Most pixels per invocation of the pointwise and grouped kernels (`PIXELS` in their WGSL):
/// each weight read from the window serves that many pixels. Halved while a dispatch would
/// have fewer workgroups than [`min_workgroups`] asks (small outputs such as 7×7).
const POINTWISE_PIXELS: usize = 4;
const GROUPED_PIXELS: usize = 4;

/// Fewest workgroups per dispatch worth keeping when choosing pixels per invocation, below
/// which part of the device would sit idle. A CPU adapter (lavapipe, llvmpipe) runs one
/// workgroup per thread, so its thread count: on lavapipe with 2 threads, 2 instead of 4 made
/// AlexNet's 13×13 layers 1.5× faster. A GPU wants many per dispatch; 64 is a guess that no
/// real GPU has checked yet.
fn min_workgroups(gpu: &Gpu) -> usize {
    match gpu.adapter_info().device_type {
        wgpu::DeviceType::Cpu => std::thread::available_parallelism().map_or(2, |n| n.get()),
        _ => 64,
    }
}

/// Invocations per workgroup of the pointwise and grouped window kernels: 32 (one SIMD group
/// of most GPUs) on GPUs; 16 on a CPU adapter, which runs a workgroup's invocations as a loop
/// over 8-wide vectors on one thread: twice the workgroups spread better over the threads
/// (on lavapipe with 2 threads, 11 % less CPU time over 9 pointwise and grouped layers,
/// up to 28 % on AlexNet's 13×13 layers; BENCHMARKS.md).
/// It never exceeds the device's limits: wgpu does not check a workgroup size given by an
/// override against them.
fn window_workgroup_size(gpu: &Gpu) -> u32 {
    let preferred = match gpu.adapter_info().device_type {
        wgpu::DeviceType::Cpu => 16,
        _ => 32,
    };
    let limits = gpu.limits();
    preferred
        .min(limits.max_compute_invocations_per_workgroup)
        .min(limits.max_compute_workgroup_size_x)
        .max(1)
}

/// A slice before upload: its range and the floats of its weight window.
struct SliceData {
    first: usize,
    count: usize,
    k_begin: usize,
    k_count: usize,
    flags: u32,
    window: Vec<f32>,
}

impl Plan {
    /// The plan for `spec`; `window_workgroup_size` is the pointwise and grouped kernels'
    /// workgroup size (see [`window_workgroup_size`]).
    fn new(spec: &Conv2dSpec, window_workgroup_size: u32) -> Result<Self> {
        let taps = spec.kernel[0] * spec.kernel[1];
        // Widest channel tile that a group fills: 32 output channels per invocation, down to
        // 4. A block whose weights overflow one window has its input channels split over
        // several slices instead of a narrower tile: each extra slice costs one more pass
        // over the output, a narrower tile one more input load per tap for every output.
        let mut oc_tile = match spec.c_out_per_group() {
            32.. => 32,
            16.. => 16,
            8.. => 8,
            _ => 4,
        };
        while oc_tile > 4 && taps * oc_tile > WEIGHT_WINDOW_FLOATS {
            oc_tile /= 2;
        }
        if taps * oc_tile.max(1) > WEIGHT_WINDOW_FLOATS {
            return Err(Error::Unsupported {
                reason: format!(
                    "a {}×{} kernel has {taps} taps; the kernels hold at most {} per filter",
                    spec.kernel[0],
                    spec.kernel[1],
                    WEIGHT_WINDOW_FLOATS / 4
                ),
            });
        }
        let mut constants = epilogue(spec);
        Ok(match spec.kind() {
            ConvKind::Depthwise { .. } => {
                constants.extend(geometry(spec));
                Self {
                    shader: Shader::Depthwise,
                    constants,
                    oc_tile: 0,
                    workgroup_size: Shader::Depthwise.workgroup_size() as usize,
                }
            }
            ConvKind::Pointwise => {
                constants.push(("OC_VEC4", (oc_tile / 4) as u32));
                constants.push(("WORKGROUP_SIZE", window_workgroup_size));
                Self {
                    shader: Shader::Pointwise,
                    constants,
                    oc_tile,
                    workgroup_size: window_workgroup_size as usize,
                }
            }
            ConvKind::Grouped => {
                constants.push(("OC_VEC4", (oc_tile / 4) as u32));
                constants.push(("WORKGROUP_SIZE", window_workgroup_size));
                constants.extend(geometry(spec));
                Self {
                    shader: Shader::Grouped,
                    constants,
                    oc_tile,
                    workgroup_size: window_workgroup_size as usize,
                }
            }
        })
    }

    /// The bias in the layout the kernel reads.
    fn pack_bias(&self, spec: &Conv2dSpec, bias: &[f32]) -> Vec<f32> {
        match self.shader {
            Shader::Depthwise => bias.to_vec(),
            Shader::Pointwise | Shader::Grouped => pack::tile_bias(spec, bias, self.oc_tile),
        }
    }

    /// Splits the work into slices whose weights fit one window, and fills each window.
    fn slices(&self, spec: &Conv2dSpec, weights: &[f32]) -> Vec<SliceData> {
        let taps = spec.kernel[0] * spec.kernel[1];
        let window = |floats: &[f32]| {
            let mut w = floats.to_vec();
            w.resize(WEIGHT_WINDOW_FLOATS, 0.0);
            w
        };
        let mut out = Vec::new();
        if self.shader == Shader::Depthwise {
            let per_slice = WEIGHT_WINDOW_FLOATS / taps;
            let mut first = 0;
            while first < spec.c_out {
                let count = per_slice.min(spec.c_out - first);
                out.push(SliceData {
                    first,
                    count,
                    k_begin: 0,
                    k_count: 1,
                    flags: FINISH,
                    window: window(&weights[first * taps..(first + count) * taps]),
                });
                first += count;
            }
            return out;
        }
        let tile = self.oc_tile;
        let cin_g = spec.c_in_per_group();
        let per_k = taps * tile; // floats per input channel per block
        let blocks = spec.groups * pack::oc_blocks_per_group(spec, tile);
        let packed = pack::tile_weights(spec, weights, tile);
        let block_floats = cin_g * per_k;
        if block_floats <= WEIGHT_WINDOW_FLOATS {
            // Whole blocks (every input channel) per slice.
            let per_slice = WEIGHT_WINDOW_FLOATS / block_floats;
            let mut first = 0;
            while first < blocks {
                let count = per_slice.min(blocks - first);
                out.push(SliceData {
                    first,
                    count,
                    k_begin: 0,
                    k_count: cin_g,
                    flags: FINISH,
                    window: window(&packed[first * block_floats..(first + count) * block_floats]),
                });
                first += count;
            }
        } else {
            // One block per slice, its input channels split; later slices add to the sums.
            let k_chunk = WEIGHT_WINDOW_FLOATS / per_k;
            for block in 0..blocks {
                let mut k_begin = 0;
                while k_begin < cin_g {
                    let k_count = k_chunk.min(cin_g - k_begin);
                    let start = block * block_floats + k_begin * per_k;
                    let mut flags = if k_begin > 0 { ACCUMULATE } else { 0 };
                    if k_begin + k_count == cin_g {
                        flags |= FINISH;
                    }
                    out.push(SliceData {
                        first: block,
                        count: 1,
                        k_begin,
                        k_count,
                        flags,
                        window: window(&packed[start..start + k_count * per_k]),
                    });
                    k_begin += k_count;
                }
            }
        }
        out
    }

    /// Pixels per invocation for a run producing `output` (see [`POINTWISE_PIXELS`]);
    /// 1 for the depthwise kernel, which has no such constant.
    /// `blocks` is the most channel blocks one slice covers; a dispatch should keep at least
    /// `min_workgroups` workgroups.
    fn pixels(&self, output: Shape, blocks: usize, min_workgroups: usize) -> usize {
        if self.shader == Shader::Depthwise {
            return 1;
        }
        let mut pixels = self.max_pixels();
        while pixels > 1 {
            let per_workgroup = self.workgroup_size * pixels;
            let tiles = (output.n * output.h * output.w).div_ceil(per_workgroup);
            if tiles * blocks >= min_workgroups {
                break;
            }
            pixels /= 2;
        }
        pixels
    }

    /// Pixels per invocation on large outputs.
    fn max_pixels(&self) -> usize {
        match self.shader {
            Shader::Depthwise => 1,
            Shader::Pointwise => POINTWISE_PIXELS,
            Shader::Grouped => GROUPED_PIXELS,
        }
    }

    /// The override constants for a run with `pixels` pixels per invocation.
    fn constants(&self, pixels: usize) -> Constants {
        let mut constants = self.constants.clone();
        if self.shader != Shader::Depthwise {
            constants.push(("PIXELS", pixels as u32));
        }
        constants
    }

    /// How the dispatch of `slice` producing `output` is tiled, with `pixels` pixels per
    /// invocation.
    fn tiling(&self, spec: &Conv2dSpec, output: Shape, slice: &Slice, pixels: usize) -> Tiling {
        let wg = self.workgroup_size;
        let (tiles_x, work_items, blocks_per_group) = match self.shader {
            // One invocation per OUT_H × OUT_W block: tiles_x per plane, work_items in all.
            Shader::Depthwise => {
                let per_plane =
                    output.h.div_ceil(DEPTHWISE_OUT_H) * output.w.div_ceil(DEPTHWISE_OUT_W);
                (per_plane, output.n * slice.count * per_plane, 1)
            }
            Shader::Pointwise | Shader::Grouped => (
                (output.n * output.h * output.w).div_ceil(wg * pixels),
                output.n * output.h * output.w,
                pack::oc_blocks_per_group(spec, self.oc_tile),
            ),
        };
        // Callers have bounded every buffer by the binding limit, so these fit in u32.
        Tiling {
            tiles_x: tiles_x as u32,
            tiles_y: slice.count as u32,
            oc_blocks_per_group: blocks_per_group as u32,
            work_items: work_items as u32,
            slice_first: slice.first as u32,
            k_begin: slice.k_begin as u32,
            k_count: slice.k_count as u32,
            slice_flags: slice.flags,
        }
    }

    /// Workgroups of one slice's dispatch.
    fn workgroups(&self, tiling: &Tiling) -> u64 {
        match self.shader {
            // Depthwise work items are invocations, over every plane of the slice.
            Shader::Depthwise => u64::from(tiling.work_items).div_ceil(self.workgroup_size as u64),
            Shader::Pointwise | Shader::Grouped => {
                u64::from(tiling.tiles_x) * u64::from(tiling.tiles_y)
            }
        }
    }
}

impl Conv2d {
    /// Validates `spec`, `weights` (`[c_out, c_in/groups, kh, kw]`) and `bias` (`[c_out]`,
    /// present exactly when `spec.bias`), uploads them, and compiles (or reuses) the kernel.
    ///
    /// # Errors
    /// The spec's validation errors, [`Error::LengthMismatch`], [`Error::BiasMismatch`],
    /// [`Error::TooLarge`] for weights beyond the device's limits, [`Error::Gpu`].
    pub fn new(gpu: &Gpu, spec: Conv2dSpec, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
        check_kernel_range(&spec)?;
        let plan = Plan::new(&spec, window_workgroup_size(gpu))?;
        let zeros;
        let bias = match bias {
            Some(b) => b,
            None => {
                zeros = vec![0f32; spec.c_out];
                &zeros
            }
        };
        let host_bias: Arc<[f32]> = bias.into();
        let bias = plan.pack_bias(&spec, bias);
        gpu.check_buffer_size("bias", bias.len() as u64 * 4)?;
        let slices = plan
            .slices(&spec, weights)
            .into_iter()
            .map(|s| {
                Ok(Slice {
                    first: s.first,
                    count: s.count,
                    k_begin: s.k_begin,
                    k_count: s.k_count,
                    flags: s.flags,
                    weights: gpu.buffer_init(
                        "conv.weights",
                        bytemuck::cast_slice(&s.window),
                        wgpu::BufferUsages::UNIFORM,
                    )?,
                })
            })
            .collect::<Result<Vec<Slice>>>()?;
        let bias = gpu.buffer_init(
            "conv.bias",
            bytemuck::cast_slice(&bias),
            wgpu::BufferUsages::STORAGE,
        )?;
        gpu.pipelines()
            .get(gpu, plan.shader, &plan.constants(plan.max_pixels()))?;
        Ok(Self {
            gpu: gpu.clone(),
            spec,
            plan,
            slices,
            bias,
            host_weights: weights.into(),
            host_bias,
            launches: Recent::new(LAUNCH_CACHE),
            min_workgroups: min_workgroups(gpu),
            kernel: ConvKernel::default(),
            split_k: SplitK::default(),
            gemm: Mutex::new(None),
            chosen: Recent::new(CHOICES),
        })
    }

    /// The GPU this conv runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The spec this conv was built from.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// The weights it was made from, `[c_out, c_in/groups, kh, kw]`.
    pub fn weights(&self) -> &[f32] {
        &self.host_weights
    }

    /// The bias it was made from (`[c_out]`), `None` when the spec has none.
    pub fn bias(&self) -> Option<&[f32]> {
        self.spec.bias.then_some(&*self.host_bias)
    }

    /// The bias the kernels add: the spec's, or zeros when it has none.
    pub(crate) fn bias_or_zeros(&self) -> &[f32] {
        &self.host_bias
    }

    /// The conv with `kernel` as its choice of kernel (forgetting any choice already
    /// measured). Depthwise convs ignore it: they have one kernel.
    pub fn with_kernel(mut self, kernel: ConvKernel) -> Self {
        self.kernel = kernel;
        self.chosen.clear();
        self
    }

    /// How the conv picks its kernel.
    pub fn kernel(&self) -> ConvKernel {
        self.kernel
    }

    /// The kernel runs on an `input`-shaped tensor take, where known: always when pinned or
    /// when there is no choice, after the first run of the shape under [`ConvKernel::Auto`]
    /// (for a run split past the binding limit, that of its first piece).
    pub fn chosen_kernel(&self, input: Shape) -> Option<ConvKernel> {
        if !self.has_kernel_choice() {
            return Some(ConvKernel::UniformWindows);
        }
        match self.kernel {
            ConvKernel::Auto => self.chosen.get(&self.first_key(input).ok()?),
            pinned => Some(pinned),
        }
    }

    /// The conv with `split_k` as the tiled product's way of splitting its sums (see
    /// [`SplitK`]); the window kernels ignore it.
    pub fn with_split_k(mut self, split_k: SplitK) -> Self {
        self.split_k = split_k;
        // The tiled kernel keeps its launches, splits included: build it again.
        self.gemm = Mutex::new(None);
        self.chosen.clear();
        self
    }

    /// How the tiled product splits small outputs' sums.
    pub fn split_k(&self) -> SplitK {
        self.split_k
    }

    /// Slices the tiled product splits its sums into on an `input`-shaped tensor, whether or
    /// not that kernel is the one that runs: those of its last run of that shape, or those it
    /// would make (1: not split, and always for depthwise convs, which have no tiled
    /// product; for a run split past the binding limit, those of its first piece).
    ///
    /// # Errors
    /// Those of [`Conv2d::output_shape`].
    pub fn split_k_slices(&self, input: Shape) -> Result<usize> {
        let key = self.first_key(input)?;
        if self.plan.shader == Shader::Depthwise {
            return Ok(1);
        }
        let gemm = self.gemm.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match gemm.as_ref() {
            Some(g) => g.slices(&key),
            None => gemm::planned_slices(&self.gpu, &key, self.split_k),
        })
    }

    /// The run of an `input`-shaped tensor, or its first piece when it is split past the
    /// binding limit.
    fn first_key(&self, input: Shape) -> Result<LaunchKey> {
        let (output, plan) = self.split_plan(input)?;
        let key = match plan.pieces().next().filter(|_| !plan.is_whole()) {
            Some(piece) => LaunchKey {
                spec: piece.spec,
                input: piece.input,
                output: piece.output,
            },
            None => LaunchKey {
                spec: self.spec,
                input,
                output,
            },
        };
        Ok(key)
    }

    /// Whether [`ConvKernel`] applies: pointwise and grouped convs. One with fewer than 16
    /// output channels per group takes the tiled product only when asked for by name (it
    /// pads each group to 64 channels, so measuring it would cost more than it can win).
    fn has_kernel_choice(&self) -> bool {
        match self.plan.shader {
            Shader::Depthwise => false,
            Shader::Pointwise | Shader::Grouped => {
                self.kernel == ConvKernel::TiledGemm || self.spec.c_out_per_group() >= 16
            }
        }
    }

    /// Which kernel family runs it.
    pub fn kind(&self) -> ConvKind {
        self.spec.kind()
    }

    /// The output shape for `input`, checked for this device: channels, sizes, every buffer
    /// within the device's buffer limit, and the work divisible into pieces that each bind
    /// at most the storage-binding limit.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`], [`Error::TooLarge`], [`Error::Overflow`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.split_plan(input).map(|(output, _)| output)
    }

    /// The checked output shape and how the work is split past the binding limit.
    fn split_plan(&self, input: Shape) -> Result<(Shape, split::Plan)> {
        let output = self.spec.output_shape(input)?;
        check_index_range(&self.spec, input, output)?;
        // Checked byte counts: a shape can have a usize element count whose bytes overflow.
        self.gpu
            .check_buffer_size("input", GpuTensor::bytes_of(input)?)?;
        self.gpu
            .check_buffer_size("output", GpuTensor::bytes_of(output)?)?;
        let plan = split::Plan::new(&self.spec, input, output, self.gpu.limits())?;
        Ok((output, plan))
    }

    /// Into how many pieces a run on `input` is split: 1, unless the input or output exceeds
    /// the device's `max_storage_buffer_binding_size` (see `src/gpu/split.rs`). Each piece
    /// takes [`Conv2d::dispatch_count`] dispatches.
    pub fn split_count(&self, input: Shape) -> Result<usize> {
        self.split_plan(input).map(|(_, plan)| plan.len())
    }

    /// The workgroup grid of the first (largest) uniform-window dispatch for `input` (see
    /// [`Conv2d::dispatch_count`]); spread over y past the device's per-dimension limit.
    pub fn dispatch_grid(&self, input: Shape) -> Result<[u32; 3]> {
        let (output, plan) = self.split_plan(input)?;
        // A split run's first piece is its largest.
        let first = plan.pieces().next().filter(|_| !plan.is_whole());
        let (spec, output) = match &first {
            Some(piece) => (&piece.spec, piece.output),
            None => (&self.spec, output),
        };
        let pixels = self
            .plan
            .pixels(output, self.blocks_per_slice(), self.min_workgroups);
        let tiling = self.plan.tiling(spec, output, &self.slices[0], pixels);
        dispatch::grid(
            self.plan.workgroups(&tiling),
            self.gpu.limits().max_compute_workgroups_per_dimension,
        )
    }

    /// Dispatches per run of the uniform-window kernels (depthwise, grouped, and pointwise
    /// with [`ConvKernel::UniformWindows`]): one per slice of the weights, each slice's
    /// weights fitting one 64 KiB uniform window. [`ConvKernel::TiledGemm`] takes one, or two
    /// when it splits its sums ([`Conv2d::split_k_slices`]).
    pub fn dispatch_count(&self) -> usize {
        self.slices.len()
    }

    /// Runs the convolution on `input` into a new tensor, which stays on the GPU.
    ///
    /// # Errors
    /// [`Error::ChannelMismatch`], [`Error::EmptyOutput`], [`Error::TooLarge`],
    /// [`Error::DeviceMismatch`], [`Error::Gpu`], [`Error::DeviceLost`].
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let output =
            GpuTensor::uninit(&self.gpu, self.output_shape(input.shape())?, "conv.output")?;
        self.run_into(input, &output)?;
        Ok(output)
    }

    /// Runs the convolution on `input`, writing into `output`, whose shape must be
    /// [`Conv2d::output_shape`] of the input. Lets callers reuse buffers.
    pub fn run_into(&self, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        let mut encoder = self.gpu.encoder("conv.encoder")?;
        self.encode(&mut encoder, input, output)?;
        self.gpu.scoped("conv dispatch", || {
            self.gpu.queue().submit([encoder.finish()]);
        })
    }

    /// Records the dispatch into `encoder` after checking shapes and devices.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<()> {
        if !self.gpu.same_device(input.gpu()) || !self.gpu.same_device(output.gpu()) {
            return Err(Error::DeviceMismatch);
        }
        let (out_shape, split_plan) = self.split_plan(input.shape())?;
        check_output(output, out_shape)?;
        if split_plan.is_whole() {
            return self.encode_dispatches(
                encoder,
                &self.spec,
                input.shape(),
                out_shape,
                input.buffer().as_entire_buffer_binding(),
                output.buffer().as_entire_buffer_binding(),
            );
        }
        split::encode(
            &self.gpu,
            encoder,
            &split_plan,
            input.buffer(),
            output.buffer(),
            &mut |encoder, piece, input_binding, output_binding| {
                self.encode_dispatches(
                    encoder,
                    &piece.spec,
                    piece.input,
                    piece.output,
                    input_binding,
                    output_binding,
                )
            },
        )
    }

    /// Records the dispatches of `spec` on an `input`-shaped tensor bound at `input_binding`,
    /// writing an `output`-shaped one at `output_binding`, with the kernel [`Self::kernel_for`]
    /// picks. A run past the binding limit calls this once per piece (src/gpu/split.rs), with
    /// a sub-spec that differs from the conv's own only in its padding, and sub-shapes with
    /// fewer items or rows.
    fn encode_dispatches(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        spec: &Conv2dSpec,
        input: Shape,
        out_shape: Shape,
        input_binding: wgpu::BufferBinding<'_>,
        output_binding: wgpu::BufferBinding<'_>,
    ) -> Result<()> {
        let key = LaunchKey {
            spec: *spec,
            input,
            output: out_shape,
        };
        let kernel = self.kernel_for(&key, &input_binding)?;
        self.encode_kernel(encoder, kernel, key, input_binding, output_binding)
    }

    /// Records the run (or piece) `key` with `kernel`: one dispatch of the tiled product (two
    /// when it splits its sums), or one per weight slice of the window kernels.
    fn encode_kernel(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: ConvKernel,
        key: LaunchKey,
        input_binding: wgpu::BufferBinding<'_>,
        output_binding: wgpu::BufferBinding<'_>,
    ) -> Result<()> {
        match kernel {
            ConvKernel::TiledGemm => {
                self.gemm()?
                    .encode(encoder, key, input_binding, output_binding)
            }
            _ => self.encode_windows(encoder, key, input_binding, output_binding),
        }
    }

    /// The kernel for the run (or piece) `key`, measured on its first use under
    /// [`ConvKernel::Auto`]; `UniformWindows` where there is no choice.
    fn kernel_for(
        &self,
        key: &LaunchKey,
        input_binding: &wgpu::BufferBinding<'_>,
    ) -> Result<ConvKernel> {
        if !self.has_kernel_choice() {
            return Ok(ConvKernel::UniformWindows);
        }
        match self.kernel {
            ConvKernel::Auto => {}
            pinned => return Ok(pinned),
        }
        self.chosen
            .get_or_try_insert_with(*key, || match self.gemm() {
                // Measured once per device for all convs with the same spec and shapes: the
                // weights' values do not change the kernels' speed.
                Ok(_) => self
                    .gpu
                    .conv_choices()
                    .get_or_try_insert_with((*key, self.split_k), || {
                        self.measure(key, input_binding)
                    }),
                // Weights past the storage-binding limit, or too few storage buffers per stage
                // on this device: only the windows can run it.
                Err(Error::TooLarge { .. } | Error::Unsupported { .. }) => {
                    Ok(ConvKernel::UniformWindows)
                }
                Err(e) => Err(e),
            })
    }

    /// The tiled-product kernel, built on first use.
    fn gemm(&self) -> Result<Arc<GemmConv>> {
        let mut gemm = self.gemm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = gemm.as_ref() {
            return Ok(Arc::clone(g));
        }
        let g = Arc::new(GemmConv::new(
            &self.gpu,
            &self.spec,
            &self.host_weights,
            &self.host_bias,
            self.split_k,
        )?);
        *gemm = Some(Arc::clone(&g));
        Ok(g)
    }

    /// Times both kernels on the run `key` (reading the caller's input, writing a
    /// scratch output, so that nothing the caller has recorded but not yet submitted can
    /// see it) and returns the faster (see [`measure::faster`]).
    fn measure(
        &self,
        key: &LaunchKey,
        input_binding: &wgpu::BufferBinding<'_>,
    ) -> Result<ConvKernel> {
        let scratch = GpuTensor::uninit(&self.gpu, key.output, "conv.measure")?;
        let kernels = [ConvKernel::UniformWindows, ConvKernel::TiledGemm];
        measure::faster(kernels, |kernel| {
            let mut encoder = self.gpu.encoder("conv.measure")?;
            let output_binding = scratch.buffer().as_entire_buffer_binding();
            self.encode_kernel(
                &mut encoder,
                kernel,
                *key,
                input_binding.clone(),
                output_binding,
            )?;
            self.gpu.scoped("conv dispatch", || {
                self.gpu.queue().submit([encoder.finish()]);
            })?;
            self.gpu.wait()
        })
    }

    /// Records the uniform-window kernel's dispatches, one per weight slice, for the run (or
    /// piece) `key`.
    fn encode_windows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        key: LaunchKey,
        input_binding: wgpu::BufferBinding<'_>,
        output_binding: wgpu::BufferBinding<'_>,
    ) -> Result<()> {
        let launch = self
            .launches
            .get_or_try_insert_with(key, || self.launch(key).map(Arc::new))?;
        let device = self.gpu.device();
        let label = self.plan.shader.label();
        let params_size = wgpu::BufferSize::new(std::mem::size_of::<ConvParams>() as u64);
        self.gpu.scoped("conv encoding", || {
            let bind_groups: Vec<_> = self
                .slices
                .iter()
                .enumerate()
                .map(|(i, slice)| {
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(label),
                        layout: &self.gpu.pipelines().conv_layout,
                        entries: &[
                            binding(0, input_binding.clone()),
                            entry(1, &slice.weights),
                            entry(2, &self.bias),
                            binding(3, output_binding.clone()),
                            binding(
                                4,
                                wgpu::BufferBinding {
                                    buffer: &launch.params,
                                    offset: i as u64 * launch.params_stride,
                                    size: params_size,
                                },
                            ),
                        ],
                    })
                })
                .collect();
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(label),
                timestamp_writes: None,
            });
            pass.set_pipeline(&launch.pipeline);
            // Slices run in order: wgpu orders dispatches that write the same storage buffer,
            // so a slice that accumulates sees the partial sums of the one before.
            for (bind_group, grid) in bind_groups.iter().zip(&launch.grids) {
                pass.set_bind_group(0, bind_group, &[]);
                pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
            }
        })
    }

    /// The most channel blocks (or depthwise channels) one slice covers.
    fn blocks_per_slice(&self) -> usize {
        self.slices.iter().map(|s| s.count).max().unwrap_or(1)
    }

    /// Builds the launch of one run: its pipeline, every slice's parameters in one uniform
    /// buffer, each at an offset aligned for binding, and every slice's grid.
    fn launch(&self, key: LaunchKey) -> Result<Launch> {
        let max_per_dim = self.gpu.limits().max_compute_workgroups_per_dimension;
        let align = u64::from(self.gpu.limits().min_uniform_buffer_offset_alignment).max(1);
        let params_size = std::mem::size_of::<ConvParams>();
        let params_stride = (params_size as u64).div_ceil(align) * align;
        let mut bytes = vec![0u8; params_stride as usize * self.slices.len()];
        let pixels = self
            .plan
            .pixels(key.output, self.blocks_per_slice(), self.min_workgroups);
        let pipeline =
            self.gpu
                .pipelines()
                .get(&self.gpu, self.plan.shader, &self.plan.constants(pixels))?;
        let mut grids = Vec::with_capacity(self.slices.len());
        for (slice, at) in self
            .slices
            .iter()
            .zip((0..).step_by(params_stride as usize))
        {
            let tiling = self.plan.tiling(&key.spec, key.output, slice, pixels);
            grids.push(dispatch::grid(self.plan.workgroups(&tiling), max_per_dim)?);
            let params = ConvParams::new(&key.spec, key.input, key.output, tiling);
            bytes[at..at + params_size].copy_from_slice(bytemuck::bytes_of(&params));
        }
        let params = self
            .gpu
            .buffer_init("conv.params", &bytes, wgpu::BufferUsages::UNIFORM)?;
        Ok(Launch {
            pipeline,
            params,
            params_stride,
            grids,
        })
    }
}

/// Kernel geometry becomes `u32` override constants; reject values that would not survive it.
fn check_kernel_range(spec: &Conv2dSpec) -> Result<()> {
    let limit = i32::MAX as usize;
    for (what, v) in [
        ("kernel height", spec.kernel[0]),
        ("kernel width", spec.kernel[1]),
        ("stride height", spec.stride[0]),
        ("stride width", spec.stride[1]),
        ("dilation height", spec.dilation[0]),
        ("dilation width", spec.dilation[1]),
    ] {
        if v > limit {
            return Err(Error::Overflow {
                what: "shader constants",
                detail: format!("{what} = {v} exceeds i32::MAX"),
            });
        }
    }
    Ok(())
}

/// The shaders index with `u32` and compute input coordinates in `i32`; reject anything whose
/// coordinates could leave that range (buffer limits bound the element counts already).
fn check_index_range(spec: &Conv2dSpec, input: Shape, output: Shape) -> Result<()> {
    let pads = spec.pads(input.h, input.w);
    let limit = i32::MAX as usize;
    let reach_h = (output.h - 1) * spec.stride[0] + (spec.kernel[0] - 1) * spec.dilation[0];
    let reach_w = (output.w - 1) * spec.stride[1] + (spec.kernel[1] - 1) * spec.dilation[1];
    for (what, v) in [
        ("padding top", pads.top),
        ("padding left", pads.left),
        ("row reach", reach_h),
        ("column reach", reach_w),
        (
            "input height",
            input.h.saturating_add(pads.top).saturating_add(pads.bottom),
        ),
        (
            "input width",
            input.w.saturating_add(pads.left).saturating_add(pads.right),
        ),
    ] {
        if v > limit {
            return Err(Error::Overflow {
                what: "shader coordinates",
                detail: format!("{what} = {v} exceeds i32::MAX"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_tiles_are_ones_the_shaders_have() {
        // OC_VEC4 is 1, 2, 4 or 8 in grouped.wgsl and pointwise.wgsl.
        for (c_in, c_out, k, groups) in [
            (32, 64, 1, 1),
            (1024, 1024, 1, 1),
            (4096, 8, 1, 1),
            (128, 128, 3, 32),
            (96, 256, 5, 2),
            (64, 64, 3, 1),
            (3, 13, 7, 1),
        ] {
            let spec = Conv2dSpec::new(c_in, c_out, [k, k]).groups(groups);
            let plan = Plan::new(&spec, 32).unwrap();
            let allowed: &[usize] = &[4, 8, 16, 32];
            assert!(
                allowed.contains(&plan.oc_tile),
                "{spec:?}: tile {}",
                plan.oc_tile
            );
            let oc_vec4 = plan
                .constants
                .iter()
                .find(|(n, _)| *n == "OC_VEC4")
                .unwrap()
                .1;
            assert_eq!(oc_vec4 as usize * 4, plan.oc_tile);
        }
    }

    #[test]
    fn small_outputs_take_one_pixel_per_invocation() {
        // A 7×7 output with one 32-channel block per slice: two or four pixels per invocation
        // would leave one workgroup per dispatch. (Arguments: output, blocks per slice,
        // fewest workgroups wanted.)
        let spec = Conv2dSpec::pointwise(1024, 1024);
        let plan = Plan::new(&spec, 32).unwrap();
        assert_eq!(plan.pixels(Shape::new(1, 1024, 7, 7), 1, 2), 1);
        // With 16-invocation workgroups (CPU adapters) the same output keeps 2 pixels.
        let narrow = Plan::new(&spec, 16).unwrap();
        assert_eq!(narrow.pixels(Shape::new(1, 1024, 7, 7), 1, 2), 2);
        assert!(narrow.constants(2).contains(&("WORKGROUP_SIZE", 16)));
        assert_eq!(plan.pixels(Shape::new(1, 1024, 7, 7), 4, 4), 4);
        assert_eq!(plan.pixels(Shape::new(1, 1024, 14, 14), 1, 4), 2);
        assert_eq!(plan.pixels(Shape::new(1, 1024, 14, 14), 1, 2), 4);
        assert_eq!(plan.pixels(Shape::new(1, 1024, 28, 28), 1, 4), 4);
        assert_eq!(plan.pixels(Shape::new(8, 1024, 7, 7), 1, 4), 4);
        assert_eq!(plan.pixels(Shape::new(1, 1024, 28, 28), 1, 64), 1);
        let grouped = Plan::new(&Conv2dSpec::new(64, 64, [3, 3]).groups(2), 32).unwrap();
        assert_eq!(grouped.pixels(Shape::new(1, 64, 56, 56), 1, 4), 4);
        assert_eq!(grouped.pixels(Shape::new(1, 64, 13, 13), 1, 4), 1);
        assert_eq!(grouped.pixels(Shape::new(1, 64, 13, 13), 1, 2), 4);
        let depthwise = Plan::new(&Conv2dSpec::depthwise(8, [3, 3]), 32).unwrap();
        assert_eq!(depthwise.pixels(Shape::new(1, 8, 56, 56), 1, 2), 1);
        assert!(!depthwise.constants(1).iter().any(|(n, _)| *n == "PIXELS"));
    }
}

#[cfg(test)]
mod shared_choice_tests {
    //! The device-wide cache of measured kernel choices, which only the crate can see; on the
    //! adapter the integration tests use (`WGPU_BACKEND`, lavapipe in CI).
    use super::*;
    use crate::cpu::reference;
    use crate::gpu::small_ints;
    use crate::Tensor;

    #[test]
    fn convs_with_the_same_spec_and_shapes_share_a_measured_choice() {
        let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
        let spec = Conv2dSpec::pointwise(64, 64);
        let input = Shape::new(1, 64, 6, 6);
        let output = spec.output_shape(input).unwrap();
        let x = Tensor::new(input, small_ints(1, input.len().unwrap())).unwrap();
        let gx = GpuTensor::from_tensor(&gpu, &x).unwrap();
        // A conv with its own seeded weights, run into a NaN-poisoned output and checked
        // against the reference bit for bit (small integers).
        let check = |conv: &Conv2d, seed: u64| {
            let want = reference::conv2d(&spec, &x, conv.weights(), conv.bias()).unwrap();
            let y = GpuTensor::full(&gpu, output, f32::NAN).unwrap();
            conv.run_into(&gx, &y).unwrap();
            let got = y.read().unwrap();
            assert!(
                got.data().iter().zip(want.data()).all(|(g, w)| g == w),
                "seed {seed}: {:?} against {:?}",
                &got.data()[..4],
                &want.data()[..4]
            );
        };
        let conv = |seed: u64| {
            let w = small_ints(seed, spec.weight_count());
            let b = small_ints(seed + 1, spec.c_out);
            Conv2d::new(&gpu, spec, &w, Some(&b)).unwrap()
        };
        let key = (
            LaunchKey {
                spec,
                input,
                output,
            },
            SplitK::Auto,
        );
        // The first conv measures and shares its choice.
        let first = conv(2);
        check(&first, 2);
        let measured = first.chosen_kernel(input).unwrap();
        assert_eq!(gpu.conv_choices().get(&key), Some(measured));
        // A second conv with other weights takes whatever the device has recorded, without
        // measuring: plant the other kernel and it must run that one.
        let other = match measured {
            ConvKernel::TiledGemm => ConvKernel::UniformWindows,
            _ => ConvKernel::TiledGemm,
        };
        gpu.conv_choices().insert(key, other);
        let second = conv(4);
        check(&second, 4);
        assert_eq!(second.chosen_kernel(input), Some(other));
        // A different split-K setting is a different key: measured again, and shared.
        let third = conv(6).with_split_k(SplitK::Slices(NonZeroUsize::MIN));
        check(&third, 6);
        let third_choice = third.chosen_kernel(input).unwrap();
        let third_key = (key.0, SplitK::Slices(NonZeroUsize::MIN));
        assert_eq!(gpu.conv_choices().get(&third_key), Some(third_choice));
        assert_eq!(gpu.conv_choices().get(&key), Some(other));
    }
}
