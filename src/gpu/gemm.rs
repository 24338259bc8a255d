//! The tiled matrix-product kernels' shared host side (shaders/gemm_tile.wgsl) and the
//! convolution kernel built on it (shaders/conv_gemm.wgsl, pointwise and grouped convs as an
//! implicit matrix product per group): weights in one storage buffer, tiles of both operands
//! in workgroup memory, one dispatch per run (two when a small output's sums are split,
//! [`SplitK`]).

use super::choice::SplitK;
use super::dispatch;
use super::pipelines::{epilogue, geometry, Constants, Storage, TiledShader};
use super::recent::Recent;
use super::split;
use super::tune::RunKey;
use super::{binding, entry, Bindings, Gpu};
use crate::error::Result;
use crate::precision::Precision;
use crate::spec::{Conv2dSpec, Shape};
use std::sync::Arc;

/// Invocations per workgroup, output channels, pixels and summed channels per workgroup
/// step: `WORKGROUP_SIZE`, `TILE_OC`, `TILE_P` and `TILE_K` in gemm_tile.wgsl (tested).
pub(crate) const WORKGROUP_SIZE: usize = super::pipelines::TILED_WORKGROUP_SIZE as usize;
pub(crate) const TILE_OC: usize = 64;
pub(crate) const TILE_P: usize = 32;
pub(crate) const TILE_K: usize = 8;
// Each invocation holds a 4-pixel × 8-channel register tile of the workgroup's.
const _: () = assert!(TILE_OC * TILE_P == WORKGROUP_SIZE * 4 * 8);

/// Mirrors `struct TileParams` in gemm_tile.wgsl field for field (checked by a naga test in
/// `pipelines.rs`). 24 `u32`s = 96 bytes, a multiple of 16 as uniform blocks require.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct TileParams {
    pub n: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    /// Channels the product sums over: c_in for a pointwise conv, the depthwise output
    /// channels for a fused block.
    pub k_channels: u32,
    /// Depthwise channel multiplier (fused block).
    pub multiplier: u32,
    pub c_out: u32,
    /// Row length of the transposed weights, in vec4s ([`padded_c_out`] of a group's
    /// channels / 4).
    pub oc_vec4: u32,
    pub h_out: u32,
    pub w_out: u32,
    /// Depthwise padding (fused block).
    pub pad_top: u32,
    pub pad_left: u32,
    /// The pointwise stride, which the fused block reads here (`conv_gemm.wgsl` takes its
    /// stride from the pipeline's constants instead).
    pub stride_h: u32,
    pub stride_w: u32,
    /// Depthwise activation code (fused block).
    pub dw_activation: u32,
    /// The (pointwise) activation code.
    pub activation: u32,
    /// Output-channel tiles per group ([`padded_c_out`] of a group's channels / `TILE_OC`).
    pub oc_tiles: u32,
    /// Flattened output pixels, n · h_out · w_out.
    pub pixels: u32,
    /// Groups (1 but for a grouped conv).
    pub groups: u32,
    /// Slices the rows k are split into, each a whole number of steps (1: not split; the
    /// fused kernel never is).
    pub k_slices: u32,
    /// The depthwise activation's parameters α, β as f32 bits (fused block).
    pub dw_alpha: u32,
    pub dw_beta: u32,
    /// The (pointwise) activation's parameters α, β as f32 bits.
    pub alpha: u32,
    pub beta: u32,
}

/// Field names in declaration order, for the test that compares them with the WGSL struct.
#[cfg(test)]
pub(crate) const TILE_PARAMS_FIELDS: [&str; 24] = [
    "n",
    "c_in",
    "h_in",
    "w_in",
    "k_channels",
    "multiplier",
    "c_out",
    "oc_vec4",
    "h_out",
    "w_out",
    "pad_top",
    "pad_left",
    "stride_h",
    "stride_w",
    "dw_activation",
    "activation",
    "oc_tiles",
    "pixels",
    "groups",
    "k_slices",
    "dw_alpha",
    "dw_beta",
    "alpha",
    "beta",
];

/// Output channels (of one group) rounded up to whole tiles.
pub(crate) fn padded_c_out(c_out: usize) -> usize {
    c_out.next_multiple_of(TILE_OC)
}

impl TileParams {
    /// The fields every tiled kernel uses, for a product summing `k_channels` rows per group
    /// with `spec`'s groups, padding and activation from `input` to `output` (the output
    /// stride comes from the pipeline's constants or the caller). Callers have checked the
    /// shapes against the device's binding limit, so every count fits in `u32`.
    pub(crate) fn product(
        spec: &Conv2dSpec,
        k_channels: usize,
        input: Shape,
        output: Shape,
    ) -> Self {
        let u = |v: usize| v as u32;
        let oc_padded = padded_c_out(output.c / spec.groups);
        let pads = spec.pads(input.h, input.w);
        let [alpha, beta] = spec.activation.parameter_bits();
        Self {
            n: u(input.n),
            c_in: u(input.c),
            h_in: u(input.h),
            w_in: u(input.w),
            k_channels: u(k_channels),
            multiplier: 1,
            c_out: u(output.c),
            oc_vec4: u(oc_padded / 4),
            h_out: u(output.h),
            w_out: u(output.w),
            pad_top: u(pads.top),
            pad_left: u(pads.left),
            stride_h: u(spec.stride[0]),
            stride_w: u(spec.stride[1]),
            activation: spec.activation.code(),
            oc_tiles: u(oc_padded / TILE_OC),
            pixels: u(output.n * output.h * output.w),
            groups: u(spec.groups),
            k_slices: 1,
            alpha,
            beta,
            ..Self::default()
        }
    }

    /// Steps of `TILE_K` rows in the product.
    fn steps(&self) -> u64 {
        u64::from(self.k_channels).div_ceil(TILE_K as u64)
    }

    /// These parameters with the rows k split into `slices` slices of whole steps (at most
    /// one per step), spread evenly: slices differ by at most one step.
    fn split(self, slices: usize) -> Self {
        let slices = (slices as u64).clamp(1, self.steps().max(1));
        Self {
            k_slices: slices as u32,
            ..self
        }
    }

    /// Slices the rows k are split into (1: not split).
    fn splits(&self) -> u64 {
        u64::from(self.k_slices.max(1))
    }

    /// Output elements, n · c_out · h_out · w_out: one slot of a split product's scratch.
    fn output_len(&self) -> u64 {
        u64::from(self.pixels) * u64::from(self.c_out)
    }

    /// Workgroups of one split: one per output-channel tile of each group and pixel tile.
    fn tiles(&self) -> u64 {
        u64::from(self.oc_tiles)
            * u64::from(self.groups)
            * u64::from(self.pixels).div_ceil(TILE_P as u64)
    }

    /// Workgroups of the product's dispatch: its tiles times its splits.
    fn workgroups(&self) -> u64 {
        self.tiles() * self.splits()
    }
}

/// Fewest steps of `TILE_K` rows a split keeps: writing and summing one more slot of partial
/// sums costs about as much as a few steps of the product.
const MIN_SPLIT_STEPS: usize = 8;

/// Workgroups a tiled product should have for the device to run it at full width. A CPU
/// adapter runs one workgroup per thread at a time. On a GPU it is a guess that no GPU has
/// checked yet: several workgroups of 64 invocations for each multiprocessor of a large GPU
/// (an H100 or H200 has 132), so that they can hide each other's memory latency.
fn fill_workgroups(gpu: &Gpu) -> u64 {
    match gpu.adapter_info().device_type {
        wgpu::DeviceType::Cpu => std::thread::available_parallelism().map_or(2, |n| n.get() as u64),
        _ => 512,
    }
}

/// Into how many slices the tiled product splits the rows k of `params` on `gpu` (see
/// [`slices`]): the scratch of partial sums must fit one storage binding.
fn choose_slices(gpu: &Gpu, params: &TileParams, split_k: SplitK) -> usize {
    // The scratch is f32 whatever the tensors' precision (conv_gemm.wgsl).
    let slots = split::binding_elements(gpu.limits(), Precision::F32) / params.output_len().max(1);
    let steps = params.steps() as usize;
    slices(split_k, params.tiles(), steps, fill_workgroups(gpu), slots)
}

/// Slices for a product of `tiles` workgroups summing `steps` steps: `split_k`'s count, or
/// under [`SplitK::Auto`] as many as it takes to reach `fill` workgroups, each keeping at
/// least [`MIN_SPLIT_STEPS`] steps. Never more than the steps, nor than the `slots` of
/// partial sums one storage binding holds; at least 1.
fn slices(split_k: SplitK, tiles: u64, steps: usize, fill: u64, slots: u64) -> usize {
    let wanted = match split_k {
        SplitK::Parts(n) => n.get() as u64,
        SplitK::Auto => fill
            .div_ceil(tiles.max(1))
            .min((steps / MIN_SPLIT_STEPS) as u64),
    };
    wanted.min(steps as u64).min(slots).max(1) as usize
}

/// Slices the tiled product would split the run `key` into (see [`choose_slices`]).
pub(crate) fn planned_slices(gpu: &Gpu, key: &RunKey, split_k: SplitK) -> usize {
    conv_params(gpu, key, split_k).splits() as usize
}

/// The parameters of the tiled product for the run `key`, its rows k split as `split_k` and
/// the device have it (see [`choose_slices`]).
fn conv_params(gpu: &Gpu, key: &RunKey, split_k: SplitK) -> TileParams {
    let params = TileParams::product(&key.spec, k_rows(&key.spec), key.input, key.output);
    params.split(choose_slices(gpu, &params, split_k))
}

/// Weights `[c_out, k]` (`k` = c_in / groups · kh · kw, PyTorch's layout flattened) transposed
/// per group to `[group][k][c_out / groups]`, zero-padded to whole tiles (`k` to `TILE_K`, a
/// group's channels to `TILE_OC`): a workgroup's weight tile for one step is then one
/// contiguous run per row.
pub(crate) fn transpose_weights(
    weights: &[f32],
    groups: usize,
    k: usize,
    c_out: usize,
) -> Vec<f32> {
    let oc_group = c_out / groups;
    let oc_padded = padded_c_out(oc_group);
    let k_rows = k.next_multiple_of(TILE_K);
    let mut t = vec![0f32; groups * k_rows * oc_padded];
    for (oc, row) in weights.chunks_exact(k).enumerate() {
        let (g, o) = (oc / oc_group, oc % oc_group);
        for (r, &w) in row.iter().enumerate() {
            t[(g * k_rows + r) * oc_padded + o] = w;
        }
    }
    t
}

/// `values` as the bytes of a storage buffer of `precision` elements (f16: rounded to
/// nearest), for weights the tiled kernels read as `Elem`.
pub(crate) fn storage_bytes(values: &[f32], precision: Precision) -> Vec<u8> {
    match precision {
        Precision::F32 => bytemuck::cast_slice(values).to_vec(),
        Precision::F16 => {
            let bits: Vec<u16> = values
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            bytemuck::cast_slice(&bits).to_vec()
        }
    }
}

/// `values` rounded to `precision` and kept f32: the biases, which every kernel reads as f32
/// (a few hundred values, read once per tile) whatever the tensors' precision.
pub(crate) fn rounded(values: &[f32], precision: Precision) -> Vec<f32> {
    values.iter().map(|&v| precision.round(v)).collect()
}

/// The bias `[c_out]` zero-padded per group to whole tiles.
pub(crate) fn pad_bias(bias: &[f32], groups: usize) -> Vec<f32> {
    let oc_group = bias.len() / groups;
    let oc_padded = padded_c_out(oc_group);
    let mut b = vec![0f32; groups * oc_padded];
    for (g, chunk) in bias.chunks_exact(oc_group).enumerate() {
        b[g * oc_padded..g * oc_padded + oc_group].copy_from_slice(chunk);
    }
    b
}

/// The uniform parameters and grid of one run of a tiled kernel, built on first use and
/// kept for the last few keys (shapes, or a split piece's spec and shapes).
#[derive(Debug)]
pub(crate) struct Launches<K> {
    recent: Recent<K, Arc<Launch>>,
}

/// See [`Launches`].
#[derive(Debug)]
pub(crate) struct Launch {
    pub params: wgpu::Buffer,
    pub grid: [u32; 3],
    /// Slices of the rows k (1: not split).
    slices: u64,
    /// The second pass of a split product.
    reduce: Option<Reduce>,
}

/// What the second pass of a split product needs: the scratch buffer that holds a slot of
/// partial sums per split (`[split][n, c_out, h_out, w_out]`), and its grid, one invocation
/// per output element.
#[derive(Debug)]
struct Reduce {
    scratch: wgpu::Buffer,
    grid: [u32; 3],
}

/// Keys whose launches a [`Launches`] keeps.
const LAUNCH_CACHE: usize = 4;

impl<K: PartialEq> Launches<K> {
    pub(crate) fn new() -> Self {
        Self {
            recent: Recent::new(LAUNCH_CACHE),
        }
    }

    /// The launch for `key`, made from `params()` on its first use.
    pub(crate) fn get(
        &self,
        gpu: &Gpu,
        key: K,
        params: impl FnOnce() -> Result<TileParams>,
    ) -> Result<Arc<Launch>> {
        self.recent
            .get_or_try_insert_with(key, || Launch::new(gpu, params()?).map(Arc::new))
    }
}

impl Launch {
    /// Uploads `params` and lays out the grid, and for a split product the scratch and the
    /// grid of its second pass.
    fn new(gpu: &Gpu, params: TileParams) -> Result<Self> {
        let max_per_dimension = gpu.limits().max_compute_workgroups_per_dimension;
        let grid = dispatch::grid(params.workgroups(), max_per_dimension)?;
        let reduce = if params.splits() > 1 {
            let bytes = params.splits() * params.output_len() * 4;
            gpu.check_buffer_size("split-product scratch", bytes)?;
            gpu.check_binding_size("split-product scratch", bytes)?;
            let scratch = gpu.scoped("allocation", || {
                gpu.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tile.scratch"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })?;
            let groups = params.output_len().div_ceil(WORKGROUP_SIZE as u64);
            Some(Reduce {
                scratch,
                grid: dispatch::grid(groups, max_per_dimension)?,
            })
        } else {
            None
        };
        Ok(Self {
            params: gpu.buffer_init(
                "tile.params",
                bytemuck::bytes_of(&params),
                wgpu::BufferUsages::UNIFORM,
            )?,
            grid,
            slices: params.splits(),
            reduce,
        })
    }
}

/// Records one dispatch of `pipeline` with `entries` bound by `layout`, over `grid`.
pub(crate) fn encode(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    shader: TiledShader,
    pipeline: &wgpu::ComputePipeline,
    layout: &wgpu::BindGroupLayout,
    entries: &[wgpu::BindGroupEntry<'_>],
    grid: [u32; 3],
) -> Result<()> {
    gpu.scoped("tiled encoding", || {
        let bind_group = gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.label()),
            layout,
            entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(shader.label()),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        gpu.count_dispatch();
    })
}

/// A pointwise or grouped convolution as one tiled implicit matrix product per group: its
/// weights transposed into one storage buffer, its pipeline, how it splits small outputs'
/// products, and its recent launches.
#[derive(Debug)]
pub(crate) struct GemmConv {
    gpu: Gpu,
    precision: Precision,
    /// The spec's geometry constants; a run's epilogue adds its own (see [`GemmConv::encode`]).
    geometry: Constants,
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
    split_k: SplitK,
    launches: Launches<RunKey>,
}

impl GemmConv {
    /// Lays out and uploads `spec`'s weights (`[c_out, c_in / groups, kh, kw]`, stored in
    /// `precision`) and bias (zeros when the spec has none; f32, rounded to `precision`), and
    /// compiles the pipeline for tensors of `precision`.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] when the transposed weights exceed the storage-binding
    /// limit, [`crate::Error::Gpu`].
    pub(crate) fn new(
        gpu: &Gpu,
        spec: &Conv2dSpec,
        weights: &[f32],
        bias: &[f32],
        split_k: SplitK,
        precision: Precision,
    ) -> Result<Self> {
        let transposed = transpose_weights(weights, spec.groups, k_rows(spec), spec.c_out);
        let transposed = storage_bytes(&transposed, precision);
        gpu.check_binding_size("transposed weights", transposed.len() as u64)?;
        let storage = wgpu::BufferUsages::STORAGE;
        // The layout and pipeline of the spec as made, compiled up front (this is also where
        // a device with too few storage buffers refuses the kernel).
        gpu.pipelines().tiled(
            gpu.dev(),
            TiledShader::ConvGemm,
            Storage::of(precision),
            &[geometry(spec), epilogue(spec, None)].concat(),
        )?;
        let bias = rounded(&pad_bias(bias, spec.groups), precision);
        Ok(Self {
            gpu: gpu.clone(),
            precision,
            geometry: geometry(spec),
            weights: gpu.buffer_init("gemm.weights", &transposed, storage)?,
            bias: gpu.buffer_init("gemm.bias", bytemuck::cast_slice(&bias), storage)?,
            split_k,
            launches: Launches::new(),
        })
    }

    /// Slices the product splits the run `key` into: those of its launch when it has run,
    /// otherwise those it would make.
    pub(crate) fn slices(&self, key: &RunKey) -> usize {
        match self.launches.recent.get(key) {
            Some(launch) => launch.slices as usize,
            None => planned_slices(&self.gpu, key, self.split_k),
        }
    }

    /// Builds the launch of the run `key` if it is not kept yet, and compiles its pipelines
    /// (the spec's own were compiled with the kernel; another epilogue's are not).
    pub(crate) fn prepare(&self, key: RunKey) -> Result<()> {
        let launch = self.launches.get(&self.gpu, key, || {
            Ok(conv_params(&self.gpu, &key, self.split_k))
        })?;
        self.pipelines(&key, &launch).map(|_| ())
    }

    /// The pipelines of the run `key` with `launch`: the product's, and the second pass's of
    /// a split product. A split product's first pass leaves the end of the epilogue (the
    /// residual add) to the second, so only the pass that finishes the sums binds the skip.
    fn pipelines(
        &self,
        key: &RunKey,
        launch: &Launch,
    ) -> Result<(wgpu::ComputePipeline, Option<wgpu::ComputePipeline>)> {
        let pipelines = self.gpu.pipelines();
        let dev = self.gpu.dev();
        let product_residual = launch.reduce.as_ref().map_or(key.residual, |_| None);
        let constants = [self.geometry.clone(), epilogue(&key.spec, product_residual)].concat();
        // A split product's partial sums go to the f32 scratch (conv_gemm.wgsl): its first
        // pass reads the tensors' precision and writes f32, the second the reverse.
        let (product_storage, reduce_storage) = match launch.reduce {
            Some(_) => (
                Storage {
                    input: self.precision,
                    output: Precision::F32,
                },
                Storage {
                    input: Precision::F32,
                    output: self.precision,
                },
            ),
            None => (Storage::of(self.precision), Storage::of(self.precision)),
        };
        let product = pipelines.tiled(dev, TiledShader::ConvGemm, product_storage, &constants)?;
        let reduce = match launch.reduce {
            Some(_) => Some(pipelines.tiled(
                dev,
                TiledShader::ReduceSplits,
                reduce_storage,
                &epilogue(&key.spec, key.residual),
            )?),
            None => None,
        };
        Ok((product, reduce))
    }

    /// Whether the tiled product can run the run `key` on this device: its layout (one
    /// storage buffer more with a skip tensor) within the device's limits.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] when it cannot.
    pub(crate) fn check_runnable(&self, key: &RunKey) -> Result<()> {
        let skip = key.residual.is_some();
        let dev = self.gpu.dev();
        self.gpu
            .pipelines()
            .tiled_layout(dev, TiledShader::ConvGemm, skip)
            .map(|_| ())
    }

    /// Records the run (or piece of a run past the binding limit) `key` on `tensors`: one
    /// dispatch, or two when the product is split (the product into the scratch, then its
    /// sum, finished, into the output).
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        key: RunKey,
        tensors: &Bindings<'_>,
    ) -> Result<()> {
        let launch = self.launches.get(&self.gpu, key, || {
            Ok(conv_params(&self.gpu, &key, self.split_k))
        })?;
        let pipelines = self.gpu.pipelines();
        let dev = self.gpu.dev();
        let (product_pipeline, reduce_pipeline) = self.pipelines(&key, &launch)?;
        let (product_output, skip) = match &launch.reduce {
            Some(reduce) => (reduce.scratch.as_entire_buffer_binding(), false),
            None => (tensors.output.clone(), key.residual.is_some()),
        };
        let mut entries = vec![
            binding(0, tensors.input.clone()),
            entry(1, &self.weights),
            entry(2, &self.bias),
            binding(3, product_output),
            entry(4, &launch.params),
        ];
        if skip {
            entries.extend(tensors.skip_entry());
        }
        encode(
            &self.gpu,
            encoder,
            TiledShader::ConvGemm,
            &product_pipeline,
            &pipelines.tiled_layout(dev, TiledShader::ConvGemm, skip)?,
            &entries,
            launch.grid,
        )?;
        let (Some(reduce), Some(reduce_pipeline)) = (&launch.reduce, reduce_pipeline) else {
            return Ok(());
        };
        let mut entries = vec![
            entry(0, &reduce.scratch),
            entry(1, &self.weights),
            entry(2, &self.bias),
            binding(3, tensors.output.clone()),
            entry(4, &launch.params),
        ];
        entries.extend(tensors.skip_entry());
        encode(
            &self.gpu,
            encoder,
            TiledShader::ReduceSplits,
            &reduce_pipeline,
            &pipelines.tiled_layout(dev, TiledShader::ReduceSplits, key.residual.is_some())?,
            &entries,
            reduce.grid,
        )
    }
}

/// Rows of a group's product: c_in / groups · kh · kw.
fn k_rows(spec: &Conv2dSpec) -> usize {
    spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1]
}

#[cfg(test)]
mod tests;
