//! [`Conv2d`]: a convolution with its weights on the GPU, run by the kernel its spec calls for.

use super::dispatch;
use super::params::ConvParams;
use super::pipelines::Shader;
use super::split;
use super::{Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::spec::{Conv2dSpec, ConvKind, Shape};

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
    shader: Shader,
    weights: wgpu::Buffer,
    bias: wgpu::Buffer,
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
        let shader = shader_for(&spec);
        gpu.check_buffer_size("weights", weights.len() as u64 * 4)?;
        split::check_weights(&spec, gpu.limits())?;
        let zeros;
        let bias = match bias {
            Some(b) => b,
            None => {
                zeros = vec![0f32; spec.c_out];
                &zeros
            }
        };
        // COPY_SRC: a split run copies slices of them (src/gpu/split.rs).
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
        let weights = gpu.buffer_init("conv.weights", bytemuck::cast_slice(weights), usage)?;
        let bias = gpu.buffer_init("conv.bias", bytemuck::cast_slice(bias), usage)?;
        gpu.pipelines().get(gpu, shader)?;
        Ok(Self {
            gpu: gpu.clone(),
            spec,
            shader,
            weights,
            bias,
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

    /// Which kernel family runs it.
    pub fn kind(&self) -> ConvKind {
        self.spec.kind()
    }

    /// The output shape for `input`, checked for this device: channels, sizes, every buffer
    /// within the device's buffer limit, and the work divisible into dispatches that each
    /// bind at most the storage-binding limit.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`], [`Error::TooLarge`], [`Error::Overflow`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.plan(input).map(|(output, _)| output)
    }

    /// The checked output shape and how the work is divided into dispatches.
    fn plan(&self, input: Shape) -> Result<(Shape, split::Plan)> {
        let output = self.spec.output_shape(input)?;
        check_index_range(&self.spec, input, output)?;
        self.gpu
            .check_buffer_size("input", input.len()? as u64 * 4)?;
        self.gpu
            .check_buffer_size("output", output.len()? as u64 * 4)?;
        let plan = split::Plan::new(&self.spec, input, output, self.gpu.limits())?;
        Ok((output, plan))
    }

    /// How many dispatches a run on `input` takes: 1, unless a tensor or the weights exceed
    /// the device's `max_storage_buffer_binding_size` (see `src/gpu/split.rs`).
    pub fn dispatch_count(&self, input: Shape) -> Result<usize> {
        self.plan(input).map(|(_, plan)| plan.len())
    }

    /// The workgroup grid of the (first) dispatch for `input`; spread over y past the device's
    /// per-dimension limit.
    pub fn dispatch_grid(&self, input: Shape) -> Result<[u32; 3]> {
        let (output, plan) = self.plan(input)?;
        let first = plan.pieces().next().filter(|_| !plan.is_whole());
        match first {
            Some(piece) => grid_for(shader_for(&piece.spec), piece.output, self.gpu.limits()),
            None => grid_for(self.shader, output, self.gpu.limits()),
        }
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
        let out_shape = self.output_shape(input.shape())?;
        if output.shape() != out_shape {
            return Err(Error::LengthMismatch {
                what: "output tensor",
                expected: out_shape.len()?,
                got: output.shape().len()?,
                hint: Some(format!(
                    "expected shape {out_shape}, got {}",
                    output.shape()
                )),
            });
        }
        let (_, plan) = self.plan(input.shape())?;
        if plan.is_whole() {
            let bindings = [
                input.buffer().as_entire_buffer_binding(),
                self.weights.as_entire_buffer_binding(),
                self.bias.as_entire_buffer_binding(),
                output.buffer().as_entire_buffer_binding(),
            ];
            return self.encode_dispatch(
                encoder,
                self.shader,
                &self.spec,
                input.shape(),
                out_shape,
                bindings,
            );
        }
        let buffers = split::Buffers {
            input: input.buffer(),
            weights: &self.weights,
            bias: &self.bias,
            output: output.buffer(),
        };
        split::encode(
            &self.gpu,
            encoder,
            &plan,
            &buffers,
            &mut |encoder, piece, bindings| {
                self.encode_dispatch(
                    encoder,
                    shader_for(&piece.spec),
                    &piece.spec,
                    piece.input,
                    piece.output,
                    bindings,
                )
            },
        )
    }

    /// Records one dispatch of `shader`: `spec` on an `input`-shaped tensor, writing an
    /// `output`-shaped one, with the buffers (or buffer ranges) `bindings` = input, weights,
    /// bias, output. A split run calls this once per piece, with a sub-spec and sub-shapes.
    fn encode_dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        shader: Shader,
        spec: &Conv2dSpec,
        input: Shape,
        output: Shape,
        bindings: [wgpu::BufferBinding<'_>; 4],
    ) -> Result<()> {
        let grid = grid_for(shader, output, self.gpu.limits())?;
        let pipeline = self.gpu.pipelines().get(&self.gpu, shader)?;
        let params = ConvParams::new(spec, input, output);
        let device = self.gpu.device();
        let [input_binding, weights, bias, output_binding] = bindings;
        let params_buffer = self.gpu.buffer_init(
            "conv.params",
            bytemuck::bytes_of(&params),
            wgpu::BufferUsages::UNIFORM,
        )?;
        self.gpu.scoped("conv encoding", || {
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(shader.label()),
                layout: &self.gpu.pipelines().conv_layout,
                entries: &[
                    entry(0, input_binding),
                    entry(1, weights),
                    entry(2, bias),
                    entry(3, output_binding),
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: params_buffer.as_entire_binding(),
                    },
                ],
            });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(shader.label()),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        })
    }
}

/// The kernel family for a spec.
fn shader_for(spec: &Conv2dSpec) -> Shader {
    match spec.kind() {
        ConvKind::Depthwise { .. } => Shader::Depthwise,
        ConvKind::Pointwise => Shader::Pointwise,
        ConvKind::Grouped => Shader::Grouped,
    }
}

/// The workgroup grid for one dispatch of `shader` writing `output`.
fn grid_for(shader: Shader, output: Shape, limits: &wgpu::Limits) -> Result<[u32; 3]> {
    dispatch::grid(
        dispatch::workgroups_for(output.len()? as u64, shader.workgroup_size()),
        limits.max_compute_workgroups_per_dimension,
    )
}

fn entry(binding: u32, buffer: wgpu::BufferBinding<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::Buffer(buffer),
    }
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
