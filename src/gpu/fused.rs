//! The fused depthwise + pointwise kernel (shaders/fused_separable.wgsl): one dispatch for a
//! whole [`super::SeparableBlock`], whose depthwise result lives only in workgroup memory.

use super::dispatch;
use super::pipelines::Constants;
use super::{Gpu, GpuTensor};
use crate::error::Result;
use crate::spec::{Conv2dSpec, Shape};
use std::sync::{Arc, Mutex};

/// Invocations per workgroup, output channels, pixels and depthwise channels per workgroup
/// step: `WORKGROUP_SIZE`, `TILE_OC`, `TILE_P` and `TILE_K` in the WGSL (tested against it).
pub(crate) const WORKGROUP_SIZE: usize = 64;
pub(crate) const TILE_OC: usize = 64;
pub(crate) const TILE_P: usize = 32;
pub(crate) const TILE_K: usize = 8;
// Each invocation holds a 4-pixel × 8-channel register tile of the workgroup's.
const _: () = assert!(TILE_OC * TILE_P == WORKGROUP_SIZE * 4 * 8);

/// Mirrors `struct FusedParams` in fused_separable.wgsl field for field (checked by a naga
/// test in `pipelines.rs`). 20 `u32`s = 80 bytes, a multiple of 16 as uniform blocks require.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct FusedParams {
    pub n: u32,
    pub c_in: u32,
    pub h_in: u32,
    pub w_in: u32,
    pub c_mid: u32,
    pub h_mid: u32,
    pub w_mid: u32,
    pub multiplier: u32,
    pub c_out: u32,
    pub h_out: u32,
    pub w_out: u32,
    /// Row length of the transposed pointwise weights, in vec4s (c_out rounded up to
    /// `TILE_OC`, over 4).
    pub oc_vec4: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    pub pw_stride_h: u32,
    pub pw_stride_w: u32,
    pub dw_activation: u32,
    pub pw_activation: u32,
    /// Workgroups per pixel tile (c_out rounded up to `TILE_OC`, over it).
    pub oc_tiles: u32,
    /// Flattened output pixels, n · h_out · w_out.
    pub pixels: u32,
}

/// Field names in declaration order, for the test that compares them with the WGSL struct.
#[cfg(test)]
pub(crate) const FUSED_PARAMS_FIELDS: [&str; 20] = [
    "n",
    "c_in",
    "h_in",
    "w_in",
    "c_mid",
    "h_mid",
    "w_mid",
    "multiplier",
    "c_out",
    "h_out",
    "w_out",
    "oc_vec4",
    "pad_top",
    "pad_left",
    "pw_stride_h",
    "pw_stride_w",
    "dw_activation",
    "pw_activation",
    "oc_tiles",
    "pixels",
];

/// The fused kernel of one block: its own copies of the weights in the layout it reads, its
/// pipeline, and the parameters of its last few input shapes.
#[derive(Debug)]
pub(crate) struct FusedKernel {
    gpu: Gpu,
    depthwise: Conv2dSpec,
    pointwise: Conv2dSpec,
    pipeline: wgpu::ComputePipeline,
    dw_weights: wgpu::Buffer,
    dw_bias: wgpu::Buffer,
    pw_weights: wgpu::Buffer,
    pw_bias: wgpu::Buffer,
    launches: Mutex<Vec<Arc<FusedLaunch>>>,
}

/// The uniform parameters and grid of one input shape.
#[derive(Debug)]
struct FusedLaunch {
    input: Shape,
    params: wgpu::Buffer,
    grid: [u32; 3],
}

/// Input shapes whose launches a [`FusedKernel`] keeps.
const LAUNCH_CACHE: usize = 4;

/// Host data for one half of the block: spec, weights, bias (zeros when the spec has none).
pub(crate) struct Half<'a> {
    pub spec: &'a Conv2dSpec,
    pub weights: &'a [f32],
    pub bias: &'a [f32],
}

impl<'a> Half<'a> {
    /// The spec, weights and bias `conv` was made from.
    pub(crate) fn of(conv: &'a super::Conv2d) -> Self {
        Self {
            spec: conv.spec(),
            weights: conv.weights(),
            bias: conv.bias_or_zeros(),
        }
    }
}

impl FusedKernel {
    /// Lays the weights out for the fused kernel, uploads them and compiles the pipeline.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when the transposed pointwise weights exceed the storage-binding
    /// limit, [`Error::Gpu`].
    pub(crate) fn new(gpu: &Gpu, depthwise: Half<'_>, pointwise: Half<'_>) -> Result<Self> {
        let (dw, pw) = (depthwise.spec, pointwise.spec);
        let c_mid = dw.c_out;
        let oc_padded = pw.c_out.next_multiple_of(TILE_OC);
        // Transposed to [c_mid][c_out] so that a workgroup's weight tile is one contiguous
        // run per depthwise channel; zero rows and columns pad to whole tiles.
        let mut transposed = vec![0f32; c_mid.next_multiple_of(TILE_K) * oc_padded];
        for (oc, row) in pointwise.weights.chunks_exact(c_mid).enumerate() {
            for (c, &w) in row.iter().enumerate() {
                transposed[c * oc_padded + oc] = w;
            }
        }
        let mut pw_bias = pointwise.bias.to_vec();
        pw_bias.resize(oc_padded, 0.0);
        let bytes = |v: &[f32]| v.len() as u64 * 4;
        gpu.check_binding_size("fused pointwise weights", bytes(&transposed))?;
        gpu.check_binding_size("depthwise weights", bytes(depthwise.weights))?;
        let storage = wgpu::BufferUsages::STORAGE;
        let upload =
            |label, data: &[f32]| gpu.buffer_init(label, bytemuck::cast_slice(data), storage);
        let pipeline = gpu.pipelines().fused(gpu, &constants(dw))?;
        Ok(Self {
            gpu: gpu.clone(),
            depthwise: *dw,
            pointwise: *pw,
            pipeline,
            dw_weights: upload("fused.dw_weights", depthwise.weights)?,
            dw_bias: upload("fused.dw_bias", depthwise.bias)?,
            pw_weights: upload("fused.pw_weights", &transposed)?,
            pw_bias: upload("fused.pw_bias", &pw_bias)?,
            launches: Mutex::new(Vec::with_capacity(LAUNCH_CACHE)),
        })
    }

    /// Records the block's one dispatch. The caller has checked the shapes: `output` is the
    /// block's output for `input`, and both bind whole.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<()> {
        let launch = self.launch(input.shape())?;
        let device = self.gpu.device();
        self.gpu.scoped("fused encoding", || {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fused_separable"),
                layout: &self.gpu.pipelines().fused_layout,
                entries: &[
                    entry(0, input.buffer()),
                    entry(1, &self.dw_weights),
                    entry(2, &self.dw_bias),
                    entry(3, &self.pw_weights),
                    entry(4, &self.pw_bias),
                    entry(5, output.buffer()),
                    entry(6, &launch.params),
                ],
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("fused_separable"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            let [x, y, z] = launch.grid;
            pass.dispatch_workgroups(x, y, z);
        })
    }

    /// The launch for `input`, built on its first use.
    fn launch(&self, input: Shape) -> Result<Arc<FusedLaunch>> {
        let mut cache = self.launches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = cache.iter().position(|l| l.input == input) {
            let launch = cache.remove(at);
            cache.insert(0, Arc::clone(&launch));
            return Ok(launch);
        }
        let params = self.params(input)?;
        let workgroups =
            u64::from(params.oc_tiles) * u64::from(params.pixels).div_ceil(TILE_P as u64);
        let grid = dispatch::grid(
            workgroups,
            self.gpu.limits().max_compute_workgroups_per_dimension,
        )?;
        let launch = Arc::new(FusedLaunch {
            input,
            params: self.gpu.buffer_init(
                "fused.params",
                bytemuck::bytes_of(&params),
                wgpu::BufferUsages::UNIFORM,
            )?,
            grid,
        });
        cache.truncate(LAUNCH_CACHE - 1);
        cache.insert(0, Arc::clone(&launch));
        Ok(launch)
    }

    /// The kernel's parameters for `input`. The block's convs have checked its shapes
    /// against the device's limits, so every count fits in `u32`.
    fn params(&self, input: Shape) -> Result<FusedParams> {
        let (dw, pw) = (&self.depthwise, &self.pointwise);
        let mid = dw.output_shape(input)?;
        let output = pw.output_shape(mid)?;
        let pads = dw.pads(input.h, input.w);
        let u = |v: usize| v as u32;
        let oc_padded = pw.c_out.next_multiple_of(TILE_OC);
        Ok(FusedParams {
            n: u(input.n),
            c_in: u(input.c),
            h_in: u(input.h),
            w_in: u(input.w),
            c_mid: u(mid.c),
            h_mid: u(mid.h),
            w_mid: u(mid.w),
            multiplier: u(dw.c_out / dw.c_in),
            c_out: u(output.c),
            h_out: u(output.h),
            w_out: u(output.w),
            oc_vec4: u(oc_padded / 4),
            pad_top: u(pads.top),
            pad_left: u(pads.left),
            pw_stride_h: u(pw.stride[0]),
            pw_stride_w: u(pw.stride[1]),
            dw_activation: dw.activation.code(),
            pw_activation: pw.activation.code(),
            oc_tiles: u(oc_padded / TILE_OC),
            pixels: u(output.n * output.h * output.w),
        })
    }
}

/// The depthwise geometry as override constants, so that the tap loops unroll.
fn constants(dw: &Conv2dSpec) -> Constants {
    vec![
        ("K_H", dw.kernel[0] as u32),
        ("K_W", dw.kernel[1] as u32),
        ("STRIDE_H", dw.stride[0] as u32),
        ("STRIDE_W", dw.stride[1] as u32),
        ("DILATION_H", dw.dilation[0] as u32),
        ("DILATION_W", dw.dilation[1] as u32),
    ]
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}
