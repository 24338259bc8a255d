//! The fused depthwise + pointwise kernel (shaders/fused_separable.wgsl): one dispatch for a
//! whole [`super::SeparableBlock`], whose depthwise result lives only in workgroup memory. It
//! is the tiled matrix product of src/gpu/gemm.rs with a B tile computed on the spot.

use super::entry;
use super::finish::Finish;
use super::gemm::{self, Launches, TileParams};
use super::pipelines::{epilogue, geometry, Constants, Storage, TiledShader, SKIP_BINDING};
use super::{Conv2d, Gpu, GpuTensor};
use crate::error::Result;
use crate::precision::Precision;
use crate::spec::{Activation, Conv2dSpec, Residual, Shape};

/// The fused kernel of one block: its own copies of the weights in the layout it reads, its
/// pipeline, and the parameters of its last few input shapes.
#[derive(Debug)]
pub(crate) struct FusedKernel {
    gpu: Gpu,
    depthwise: Conv2dSpec,
    pointwise: Conv2dSpec,
    /// The depthwise half's geometry and activation kind; a run's epilogue adds its own.
    constants: Constants,
    /// Of the tensors and the weights (both halves').
    precision: Precision,
    dw_weights: wgpu::Buffer,
    dw_bias: wgpu::Buffer,
    pw_weights: wgpu::Buffer,
    pw_bias: wgpu::Buffer,
    /// Keyed by the input shape and the pointwise half's activation (whose parameters the
    /// launch's uniforms carry).
    launches: Launches<(Shape, Activation)>,
}

impl FusedKernel {
    /// Lays out the weights of `depthwise` and `pointwise` for the fused kernel, uploads
    /// them and compiles the pipeline.
    ///
    /// # Errors
    /// [`crate::Error::TooLarge`] when the transposed pointwise weights exceed the
    /// storage-binding limit, [`crate::Error::Gpu`].
    pub(crate) fn new(depthwise: &Conv2d, pointwise: &Conv2d) -> Result<Self> {
        let gpu = depthwise.gpu();
        let (dw, pw) = (depthwise.spec(), pointwise.spec());
        // Both halves share a precision (`SeparableBlock::new` checks): the weights are
        // stored in it, the biases f32 rounded to it.
        let precision = depthwise.precision();
        let transposed = gemm::transpose_weights(pointwise.weights(), 1, pw.c_in, pw.c_out);
        let transposed = gemm::storage_bytes(&transposed, precision);
        let dw_weights = gemm::storage_bytes(depthwise.weights(), precision);
        gpu.check_binding_size("fused pointwise weights", transposed.len() as u64)?;
        gpu.check_binding_size("depthwise weights", dw_weights.len() as u64)?;
        let storage = wgpu::BufferUsages::STORAGE;
        let upload = |label, data: &[f32]| {
            let data = gemm::rounded(data, precision);
            gpu.buffer_init(label, bytemuck::cast_slice(&data), storage)
        };
        // The depthwise half's geometry and activation kind; the pipeline of the block as made
        // is compiled up front (where a device with too few storage buffers refuses it).
        let mut constants = geometry(dw);
        constants.push(("DW_ACTIVATION", dw.activation.code()));
        gpu.pipelines().tiled(
            gpu.dev(),
            TiledShader::FusedSeparable,
            Storage::of(precision),
            &[constants.clone(), epilogue(pw, None)].concat(),
        )?;
        Ok(Self {
            gpu: gpu.clone(),
            depthwise: *dw,
            pointwise: *pw,
            constants,
            precision,
            dw_weights: gpu.buffer_init("fused.dw_weights", &dw_weights, storage)?,
            dw_bias: upload("fused.dw_bias", depthwise.bias_or_zeros())?,
            pw_weights: gpu.buffer_init("fused.pw_weights", &transposed, storage)?,
            pw_bias: upload(
                "fused.pw_bias",
                &gemm::pad_bias(pointwise.bias_or_zeros(), 1),
            )?,
            launches: Launches::new(),
        })
    }

    /// Whether the device can bind the kernel's layout with a skip tensor (`skip`) or
    /// without.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] when it cannot (one storage buffer more than the block's
    /// 6 with a skip tensor).
    pub(crate) fn check_layout(&self, skip: bool) -> Result<()> {
        let pipelines = self.gpu.pipelines();
        pipelines
            .tiled_layout(self.gpu.dev(), TiledShader::FusedSeparable, skip)
            .map(|_| ())
    }

    /// Builds the launch of a run on an `input`-shaped tensor whose pointwise half ends with
    /// `activation` and `residual`, and compiles its pipeline.
    pub(crate) fn prepare(
        &self,
        input: Shape,
        activation: Activation,
        residual: Option<Residual>,
    ) -> Result<()> {
        let pw = self.pointwise.activation(activation);
        self.launches
            .get(&self.gpu, (input, activation), || self.params(&pw, input))?;
        self.pipeline(&pw, residual).map(|_| ())
    }

    /// The pipeline of runs whose pointwise half is `pw` (its activation the run's), adding a
    /// residual or not.
    fn pipeline(
        &self,
        pw: &Conv2dSpec,
        residual: Option<Residual>,
    ) -> Result<wgpu::ComputePipeline> {
        let constants = [self.constants.clone(), epilogue(pw, residual)].concat();
        let dev = self.gpu.dev();
        let storage = Storage::of(self.precision);
        self.gpu
            .pipelines()
            .tiled(dev, TiledShader::FusedSeparable, storage, &constants)
    }

    /// Records the block's one dispatch, its pointwise half ending with `finish`. The caller
    /// has checked the tensors: `output` is the block's output for `input`, both bind whole,
    /// and a skip tensor has the output's shape.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        let pw = self.pointwise.activation(finish.activation);
        let launch = self
            .launches
            .get(&self.gpu, (input.shape(), finish.activation), || {
                self.params(&pw, input.shape())
            })?;
        let pipelines = self.gpu.pipelines();
        let dev = self.gpu.dev();
        let skip = finish.skip.is_some();
        let mut entries = vec![
            entry(0, input.buffer()),
            entry(1, &self.dw_weights),
            entry(2, &self.dw_bias),
            entry(3, &self.pw_weights),
            entry(4, &self.pw_bias),
            entry(5, output.buffer()),
            entry(6, &launch.params),
        ];
        if let Some((tensor, _)) = finish.skip {
            entries.push(entry(SKIP_BINDING, tensor.buffer()));
        }
        gemm::encode(
            &self.gpu,
            encoder,
            TiledShader::FusedSeparable,
            &self.pipeline(&pw, finish.residual())?,
            &pipelines.tiled_layout(dev, TiledShader::FusedSeparable, skip)?,
            &entries,
            launch.grid,
        )
    }

    /// The kernel's parameters for `input`, the pointwise half being `pw` (its activation the
    /// run's).
    fn params(&self, pw: &Conv2dSpec, input: Shape) -> Result<TileParams> {
        let dw = &self.depthwise;
        let mid = dw.output_shape(input)?;
        let output = pw.output_shape(mid)?;
        let pads = dw.pads(input.h, input.w);
        // The product's fields come from the pointwise half (its stride, activation, one
        // group), the taps' from the depthwise half.
        let [dw_alpha, dw_beta] = dw.activation.parameter_bits();
        Ok(TileParams {
            multiplier: (dw.c_out / dw.c_in) as u32,
            dw_alpha,
            dw_beta,
            pad_top: pads.top as u32,
            pad_left: pads.left as u32,
            dw_activation: dw.activation.code(),
            ..TileParams::product(pw, mid.c, input, output)
        })
    }
}
