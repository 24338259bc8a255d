//! The uniform-window kernels (shaders/depthwise.wgsl, pointwise.wgsl, grouped.wgsl): how a
//! spec specialises them, its weights cut into 64 KiB uniform windows, one dispatch per
//! window, and the launches (pipeline, parameters, grids) kept per run.
//!
//! An f16 conv's windows still hold f32s, each an f16 value (rounded on the host): WGSL's
//! uniform arrays need 16-byte element strides, so `array<vec4<f16>>` is not allowed there,
//! and packing halves into `vec4<u32>` words (twice the window's capacity) would cost an
//! unpack per weight in every kernel's inner loop for weights that are read from a cache-
//! resident window anyway. The numbers are f16 weights; only the tensors' bytes halve.

use super::dispatch;
use super::pack;
use super::params::{ConvParams, Tiling};
use super::pipelines::{epilogue, geometry, Constants, Shader, WEIGHT_WINDOW_FLOATS};
use super::recent::Recent;
use super::tune::RunKey;
use super::{binding, entry, Bindings, Gpu};
use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::spec::{Conv2dSpec, ConvKind, Shape};
use std::sync::Arc;

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
/// workgroup per thread, so its thread count (BENCHMARKS.md has the measurement). A GPU wants
/// many per dispatch; 64 is a guess that no real GPU has checked yet.
fn min_workgroups(gpu: &Gpu) -> usize {
    match gpu.adapter_info().device_type {
        wgpu::DeviceType::Cpu => std::thread::available_parallelism().map_or(2, |n| n.get()),
        _ => 64,
    }
}

/// Invocations per workgroup of the pointwise and grouped window kernels: 32 (one SIMD group
/// of most GPUs) on GPUs; 16 on a CPU adapter, which runs a workgroup's invocations as a loop
/// over 8-wide vectors on one thread: twice the workgroups spread better over the threads
/// (BENCHMARKS.md, "16-invocation workgroups").
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
        // The epilogue's constants come per run (`Plan::constants`).
        let mut constants = Constants::new();
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
            ConvKind::General => {
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

    /// The override constants for a run with `pixels` pixels per invocation, but for the
    /// run's epilogue (see [`Plan::run_constants`]).
    fn constants(&self, pixels: usize) -> Constants {
        let mut constants = self.constants.clone();
        if self.shader != Shader::Depthwise {
            constants.push(("PIXELS", pixels as u32));
        }
        constants
    }

    /// The override constants of the run `key` with `pixels` pixels per invocation: the
    /// plan's and the run's epilogue (its activation kind and residual add).
    fn run_constants(&self, key: &RunKey, pixels: usize) -> Constants {
        [self.constants(pixels), epilogue(&key.spec, key.residual)].concat()
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

/// The window kernel of one conv: how its spec specialises the shader, its weights cut into
/// uniform windows (uploaded once), its bias, and the launches of its last few runs.
#[derive(Debug)]
pub(crate) struct WindowKernel {
    gpu: Gpu,
    /// The tensors' precision, which the weights and bias are rounded to.
    precision: Precision,
    plan: Plan,
    slices: Vec<Slice>,
    bias: wgpu::Buffer,
    launches: Recent<RunKey, Arc<Launch>>,
    /// See [`min_workgroups`].
    min_workgroups: usize,
}

impl WindowKernel {
    /// Specialises the kernel for `spec` on tensors of `precision`, uploads `weights` cut into
    /// windows and `bias` (the spec's, or zeros), both rounded to `precision`, and compiles
    /// the pipeline.
    pub(crate) fn new(
        gpu: &Gpu,
        spec: &Conv2dSpec,
        weights: &[f32],
        bias: &[f32],
        precision: Precision,
    ) -> Result<Self> {
        let plan = Plan::new(spec, window_workgroup_size(gpu))?;
        let round = |v: &[f32]| -> Vec<f32> { v.iter().map(|&x| precision.round(x)).collect() };
        let weights = &round(weights);
        // A run of the spec as made, for the pipeline compiled up front.
        let plain = RunKey {
            spec: *spec,
            input: Shape::new(1, spec.c_in, 1, 1),
            output: Shape::new(1, spec.c_out, 1, 1),
            residual: None,
        };
        let bias = round(&plan.pack_bias(spec, bias));
        gpu.check_buffer_size("bias", bias.len() as u64 * 4)?;
        let slices = plan
            .slices(spec, weights)
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
        gpu.pipelines().get(
            gpu.dev(),
            plan.shader,
            precision,
            &plan.run_constants(&plain, plan.max_pixels()),
        )?;
        Ok(Self {
            gpu: gpu.clone(),
            precision,
            plan,
            slices,
            bias,
            launches: Recent::new(LAUNCH_CACHE),
            min_workgroups: min_workgroups(gpu),
        })
    }

    /// Builds the launch of the run `key` (see [`Launch`]) if it is not kept yet.
    pub(crate) fn prepare(&self, key: RunKey) -> Result<()> {
        self.launches
            .get_or_try_insert_with(key, || self.launch(key).map(Arc::new))
            .map(|_| ())
    }

    /// Dispatches per run: one per window of weights.
    pub(crate) fn dispatch_count(&self) -> usize {
        self.slices.len()
    }

    /// The workgroup grid of the first (largest) dispatch of the run `key`.
    pub(crate) fn grid(&self, key: &RunKey) -> Result<[u32; 3]> {
        let pixels = self
            .plan
            .pixels(key.output, self.blocks_per_slice(), self.min_workgroups);
        let tiling = self
            .plan
            .tiling(&key.spec, key.output, &self.slices[0], pixels);
        dispatch::grid(
            self.plan.workgroups(&tiling),
            self.gpu.limits().max_compute_workgroups_per_dimension,
        )
    }

    /// Records the uniform-window kernel's dispatches, one per weight slice, for the run (or
    /// piece) `key` on `tensors`.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        key: RunKey,
        tensors: &Bindings<'_>,
    ) -> Result<()> {
        let launch = self
            .launches
            .get_or_try_insert_with(key, || self.launch(key).map(Arc::new))?;
        let device = self.gpu.device();
        let label = self.plan.shader.label();
        let params_size = wgpu::BufferSize::new(std::mem::size_of::<ConvParams>() as u64);
        let layout = self
            .gpu
            .pipelines()
            .conv_layout(self.gpu.dev(), tensors.skip.is_some())?;
        self.gpu.scoped("conv encoding", || {
            let bind_groups: Vec<_> = self
                .slices
                .iter()
                .enumerate()
                .map(|(i, slice)| {
                    let mut entries = vec![
                        binding(0, tensors.input.clone()),
                        entry(1, &slice.weights),
                        entry(2, &self.bias),
                        binding(3, tensors.output.clone()),
                        binding(
                            4,
                            wgpu::BufferBinding {
                                buffer: &launch.params,
                                offset: i as u64 * launch.params_stride,
                                size: params_size,
                            },
                        ),
                    ];
                    entries.extend(tensors.skip_entry());
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(label),
                        layout: &layout,
                        entries: &entries,
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
                self.gpu.count_dispatch();
            }
        })
    }

    /// The most channel blocks (or depthwise channels) one slice covers.
    fn blocks_per_slice(&self) -> usize {
        self.slices.iter().map(|s| s.count).max().unwrap_or(1)
    }

    /// Builds the launch of one run: its pipeline, every slice's parameters in one uniform
    /// buffer, each at an offset aligned for binding, and every slice's grid.
    fn launch(&self, key: RunKey) -> Result<Launch> {
        let max_per_dim = self.gpu.limits().max_compute_workgroups_per_dimension;
        let align = u64::from(self.gpu.limits().min_uniform_buffer_offset_alignment).max(1);
        let params_size = std::mem::size_of::<ConvParams>();
        let params_stride = (params_size as u64).div_ceil(align) * align;
        let mut bytes = vec![0u8; params_stride as usize * self.slices.len()];
        let pixels = self
            .plan
            .pixels(key.output, self.blocks_per_slice(), self.min_workgroups);
        let pipeline = self.gpu.pipelines().get(
            self.gpu.dev(),
            self.plan.shader,
            self.precision,
            &self.plan.run_constants(&key, pixels),
        )?;
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

#[cfg(test)]
mod tests;
