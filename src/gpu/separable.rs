//! [`SeparableBlock`]: depthwise then pointwise, as two kernels or one fused kernel, the
//! path chosen by the [`super::Tuner`].

use super::choice::{BlockPath, Choice, Fusion, Tuning};
use super::finish::Finish;
use super::fused::FusedKernel;
use super::tensor::{check_output, check_precision};
use super::tune::{self, TuneKey};
use super::{Conv2d, GpuTensor};
use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::spec::{check_separable, Activation, Residual, Shape};
use std::sync::{Arc, Mutex};

/// A depthwise separable block: a depthwise [`Conv2d`] (with its bias and activation), then
/// a pointwise one, run in one submission without reading anything back.
///
/// It runs either as two kernels through an intermediate tensor, which the block keeps for
/// its last input shape, or as one fused kernel that never writes the intermediate; which
/// one is its [`Fusion`] setting, by default measured per input shape.
///
/// # Example
/// ```no_run
/// use sepconv::{Conv2d, Conv2dSpec, Fusion, Gpu, GpuTensor, Padding, SeparableBlock, Shape, Tuning};
///
/// let gpu = Gpu::new()?;
/// let dw = Conv2dSpec::depthwise(64, [3, 3]).padding(Padding::uniform(1));
/// let pw = Conv2dSpec::pointwise(64, 128);
/// let block = SeparableBlock::new(
///     Conv2d::new(&gpu, dw, &vec![0.1; dw.weight_count()], Some(&[0.0; 64]))?,
///     Conv2d::new(&gpu, pw, &vec![0.01; pw.weight_count()], Some(&[0.0; 128]))?,
/// )?
/// .with_tuning(Tuning::auto().with_fusion(Fusion::Always));
/// let x = GpuTensor::from_slice(&gpu, Shape::new(1, 64, 14, 14), &vec![1.0; 64 * 14 * 14])?;
/// let y = block.run(&x)?.read()?;
/// assert_eq!(y.shape(), Shape::new(1, 128, 14, 14));
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug)]
pub struct SeparableBlock {
    depthwise: Conv2d,
    pointwise: Conv2d,
    fusion: Fusion,
    intermediate: Mutex<Option<Arc<GpuTensor>>>,
    /// Built on the first run that may use it.
    fused: Mutex<Option<Arc<FusedKernel>>>,
}

impl SeparableBlock {
    /// Pairs a depthwise and a pointwise convolution made on the same GPU. The block takes
    /// the device's [`Fusion`] setting ([`super::Tuner::set_tuning`]); the halves keep theirs.
    ///
    /// # Errors
    /// [`Error::Incompatible`] unless the first is depthwise, the second pointwise and the
    /// channels chain; [`Error::DeviceMismatch`] if they live on different GPUs;
    /// [`Error::PrecisionMismatch`] unless they share a [`Precision`].
    pub fn new(depthwise: Conv2d, pointwise: Conv2d) -> Result<Self> {
        check_separable(depthwise.spec(), pointwise.spec())?;
        depthwise
            .gpu()
            .check_same("the pointwise conv", pointwise.gpu())?;
        if depthwise.precision() != pointwise.precision() {
            return Err(Error::PrecisionMismatch {
                what: "the pointwise conv",
                expected: depthwise.precision(),
                got: pointwise.precision(),
            });
        }
        let fusion = depthwise.gpu().tuner().tuning().fusion;
        Ok(Self {
            depthwise,
            pointwise,
            fusion,
            intermediate: Mutex::new(None),
            fused: Mutex::new(None),
        })
    }

    /// The block with `tuning`: its fusion for the block, its kernel and split-K for the
    /// pointwise half.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        self.fusion = tuning.fusion;
        self.pointwise = self.pointwise.with_tuning(tuning);
        self.depthwise = self.depthwise.with_tuning(tuning);
        // The fused kernel is laid out from the halves; build it again on use.
        self.fused = Mutex::new(None);
        self
    }

    /// The block with both halves on tensors of `precision` (see [`Conv2d::with_precision`];
    /// the intermediate is stored in it too, the fused kernel's stays f32 in workgroup memory).
    ///
    /// # Errors
    /// Those of [`Conv2d::with_precision`].
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        self.depthwise = self.depthwise.with_precision(precision)?;
        self.pointwise = self.pointwise.with_precision(precision)?;
        self.intermediate = Mutex::new(None);
        self.fused = Mutex::new(None);
        Ok(self)
    }

    /// The precision of its tensors and weights.
    pub fn precision(&self) -> Precision {
        self.depthwise.precision()
    }

    /// The block's tuning: its fusion, with the pointwise half's kernel and split-K.
    pub fn tuning(&self) -> Tuning {
        self.pointwise.tuning().with_fusion(self.fusion)
    }

    /// The path runs on an `input`-shaped tensor take, where known: always under
    /// [`Fusion::Never`] and [`Fusion::Always`], after the first run of the shape in this
    /// process under [`Fusion::Auto`].
    pub fn chosen_path(&self, input: Shape) -> Option<BlockPath> {
        match self.fusion {
            Fusion::Never => Some(BlockPath::TwoKernels),
            Fusion::Always => Some(BlockPath::Fused),
            Fusion::Auto => match self.depthwise.gpu().tuner().measured(&self.key(
                input,
                self.pointwise.spec().activation,
                None,
            )) {
                Some(Choice::Path(path)) => Some(path),
                _ => None,
            },
        }
    }

    /// The depthwise half.
    pub fn depthwise(&self) -> &Conv2d {
        &self.depthwise
    }

    /// The pointwise half.
    pub fn pointwise(&self) -> &Conv2d {
        &self.pointwise
    }

    /// Shape of the intermediate (depthwise output) and final output for `input`.
    pub fn shapes(&self, input: Shape) -> Result<(Shape, Shape)> {
        let mid = self.depthwise.output_shape(input)?;
        Ok((mid, self.pointwise.output_shape(mid)?))
    }

    /// Runs both convolutions in one submission; the result stays on the GPU. Like
    /// [`Conv2d::run`], it does not wait for the work, except on the first run of a shape
    /// under [`Fusion::Auto`], which times both paths first.
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let gpu = self.depthwise.gpu();
        let (_, out_shape) = self.shapes(input.shape())?;
        let output = GpuTensor::uninit(gpu, out_shape, self.precision(), "separable.output")?;
        self.run_into(input, &output)?;
        Ok(output)
    }

    /// [`SeparableBlock::run`] and [`GpuTensor::read_async`] in one, without blocking.
    ///
    /// # Errors
    /// Those of [`SeparableBlock::run`] and [`GpuTensor::read_async`].
    pub async fn run_async(&self, input: &GpuTensor) -> Result<crate::Tensor> {
        self.run(input)?.read_async().await
    }

    /// Runs the block into `output`, whose shape must be the block's output for `input`.
    ///
    /// # Errors
    /// Those of [`Conv2d::run_into`]; [`Error::Unsupported`] under [`Fusion::Always`] when
    /// the fused kernel cannot take the run on this device (a tensor or its weights past the
    /// storage-binding limit, fewer than 6 storage buffers per shader stage or 64 invocations
    /// per workgroup).
    pub fn run_into(&self, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        let finish = Finish::of(self.pointwise.spec());
        let path = self.path_for(input, output, finish)?;
        self.submit(path, input, output, finish)
    }

    /// Runs the block with a residual add in the pointwise half's epilogue: `skip`, of the
    /// output's shape, joins before or after its activation, as `residual` says (see
    /// [`Conv2d::run_residual`]); on the fused path the whole block is one dispatch.
    ///
    /// # Errors
    /// Those of [`SeparableBlock::run_into`], and [`Error::LengthMismatch`] when `skip` does
    /// not have the output's shape; [`Error::Unsupported`] under [`Fusion::Always`] on a
    /// device that cannot bind the fused kernel's 7 storage buffers (6 and the skip).
    pub fn run_residual(
        &self,
        input: &GpuTensor,
        skip: &GpuTensor,
        residual: Residual,
    ) -> Result<GpuTensor> {
        let gpu = self.depthwise.gpu();
        let (_, out_shape) = self.shapes(input.shape())?;
        let output = GpuTensor::uninit(gpu, out_shape, self.precision(), "separable.output")?;
        self.run_residual_into(input, skip, residual, &output)?;
        Ok(output)
    }

    /// [`SeparableBlock::run_residual`] into `output`, which must not be `skip` itself.
    ///
    /// # Errors
    /// Those of [`SeparableBlock::run_residual`] and [`SeparableBlock::run_into`], and
    /// [`Error::Incompatible`] when `skip` and `output` are the same tensor.
    pub fn run_residual_into(
        &self,
        input: &GpuTensor,
        skip: &GpuTensor,
        residual: Residual,
        output: &GpuTensor,
    ) -> Result<()> {
        let finish = Finish::with_skip(self.pointwise.spec(), skip, residual);
        let path = self.path_for(input, output, finish)?;
        self.submit(path, input, output, finish)
    }

    /// Records the block into `encoder` (for a network), along the path the tuner picks, the
    /// pointwise half ending with `finish`.
    pub(crate) fn encode_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        let path = self.path_for(input, output, finish)?;
        self.encode_path(encoder, path, input, output, finish)
    }

    /// Builds what a run on an `input`-shaped tensor needs, where the path is known without
    /// measuring (see [`Conv2d::prepare`]), for runs whose pointwise half ends with
    /// `activation` and `residual` (its own activation and none, or a network's folded add).
    pub(crate) fn prepare_as(
        &self,
        input: Shape,
        activation: Activation,
        residual: Option<Residual>,
    ) -> Result<()> {
        let skip = residual.is_some();
        let path = match self.fusion {
            Fusion::Never => BlockPath::TwoKernels,
            Fusion::Always => BlockPath::Fused,
            Fusion::Auto => {
                let key = self.key(input, activation, residual);
                match self.depthwise.gpu().tuner().known(key) {
                    Some(Choice::Path(path)) => self.runnable(path, input, skip)?,
                    _ => return Ok(()),
                }
            }
        };
        match path {
            BlockPath::TwoKernels => {
                self.depthwise.prepare(input)?;
                let mid = self.intermediate(input)?;
                self.pointwise.prepare_as(mid.shape(), activation, residual)
            }
            // A pinned fused path that cannot run here fails at the run, with its reason.
            BlockPath::Fused if self.fused_cannot_take(input, skip)?.is_some() => Ok(()),
            BlockPath::Fused => self.fused()?.prepare(input, activation, residual),
        }
    }

    /// Whether a run on an `input`-shaped tensor can add a skip tensor: not when the fused
    /// path is pinned ([`Fusion::Always`]) and the device cannot bind its 7 storage buffers.
    pub(crate) fn takes_skip(&self, input: Shape) -> Result<bool> {
        Ok(self.fusion != Fusion::Always || self.fused_cannot_take(input, true)?.is_none())
    }

    /// `path`, or two kernels where it is the fused one and that cannot take `input` (with a
    /// skip tensor, or without) here: a choice read from the cache file is not taken on trust.
    fn runnable(&self, path: BlockPath, input: Shape, skip: bool) -> Result<BlockPath> {
        match path {
            BlockPath::Fused if self.fused_cannot_take(input, skip)?.is_some() => {
                Ok(BlockPath::TwoKernels)
            }
            path => Ok(path),
        }
    }

    /// Checks the tensors and picks the path: pinned, or the tuner's choice (measured on the
    /// first use of the key on this device; the runs write `output`, which the block's own
    /// run writes again after them, since they are submitted first).
    fn path_for(
        &self,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<BlockPath> {
        let gpu = self.depthwise.gpu();
        gpu.check_same("the input tensor", input.gpu())?;
        gpu.check_same("the output tensor", output.gpu())?;
        check_precision("the input tensor", input, self.precision())?;
        check_precision("the output tensor", output, self.precision())?;
        let (_, out_shape) = self.shapes(input.shape())?;
        check_output(output, out_shape)?;
        finish.check(gpu, output)?;
        let skip = finish.skip.is_some();
        match self.fusion {
            Fusion::Never => Ok(BlockPath::TwoKernels),
            Fusion::Always => match self.fused_cannot_take(input.shape(), skip)? {
                Some(reason) => Err(Error::Unsupported { reason }),
                None => Ok(BlockPath::Fused),
            },
            Fusion::Auto => {
                let key = self.key(input.shape(), finish.activation, finish.residual());
                let choice = gpu.tuner().choose(key, || {
                    self.measure(input, output, finish).map(Choice::Path)
                })?;
                match choice {
                    Choice::Path(path) => self.runnable(path, input.shape(), skip),
                    // The tuner answers a path key with a path.
                    Choice::Kernel(_) => Ok(BlockPath::TwoKernels),
                }
            }
        }
    }

    /// What makes the two paths' speeds on an `input`-shaped tensor, the pointwise half
    /// ending with `activation` and `residual`, what they are.
    fn key(&self, input: Shape, activation: Activation, residual: Option<Residual>) -> TuneKey {
        let pointwise = self.pointwise.tuning();
        TuneKey::Path {
            depthwise: *self.depthwise.spec(),
            pointwise: self.pointwise.spec().activation(activation),
            residual,
            kernel: pointwise.kernel,
            split_k: pointwise.split_k,
            input,
            precision: self.precision(),
        }
    }

    /// Records and submits one run along `path`.
    fn submit(
        &self,
        path: BlockPath,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        let gpu = self.depthwise.gpu();
        let mut encoder = gpu.encoder("separable.encoder")?;
        self.encode_path(&mut encoder, path, input, output, finish)?;
        // Submissions run in order on the queue, so concurrent runs may share the
        // intermediate tensor.
        gpu.scoped("separable dispatch", || {
            gpu.queue().submit([encoder.finish()]);
        })
    }

    /// Records one run along `path`, the pointwise half ending with `finish`.
    fn encode_path(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        path: BlockPath,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        match path {
            BlockPath::TwoKernels => {
                let mid = self.intermediate(input.shape())?;
                self.depthwise.encode(encoder, input, &mid)?;
                self.pointwise.encode_with(encoder, &mid, output, finish)
            }
            BlockPath::Fused => self.fused()?.encode(encoder, input, output, finish),
        }
    }

    /// The intermediate tensor for `input`, kept for the last shape.
    fn intermediate(&self, input: Shape) -> Result<Arc<GpuTensor>> {
        let (mid_shape, _) = self.shapes(input)?;
        let mut kept = self.intermediate.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = kept.as_ref().filter(|t| t.shape() == mid_shape) {
            return Ok(Arc::clone(t));
        }
        let gpu = self.depthwise.gpu();
        let t = GpuTensor::uninit(gpu, mid_shape, self.precision(), "separable.intermediate")?;
        let t = Arc::new(t);
        *kept = Some(Arc::clone(&t));
        Ok(t)
    }

    /// The fused kernel, built on first use.
    fn fused(&self) -> Result<Arc<FusedKernel>> {
        let mut fused = self.fused.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kernel) = fused.as_ref() {
            return Ok(Arc::clone(kernel));
        }
        let kernel = Arc::new(FusedKernel::new(&self.depthwise, &self.pointwise)?);
        *fused = Some(Arc::clone(&kernel));
        Ok(kernel)
    }

    /// Why the fused kernel cannot run on an `input`-shaped tensor ending with `finish`, if it
    /// cannot: it binds the input and output whole, so neither half may need a split run, its
    /// weights must fit one binding, and it needs 6 storage buffers per shader stage (7 with
    /// a skip tensor) and 64 invocations per workgroup.
    fn fused_cannot_take(&self, input: Shape, skip: bool) -> Result<Option<String>> {
        let (mid, _) = self.shapes(input)?;
        if self.depthwise.split_count(input)? > 1 || self.pointwise.split_count(mid)? > 1 {
            return Ok(Some(format!(
                "the fused kernel binds the input ({input}) and output whole, which exceeds \
                 max_storage_buffer_binding_size ({} bytes) on this device; use Fusion::Never",
                self.depthwise
                    .gpu()
                    .limits()
                    .max_storage_buffer_binding_size
            )));
        }
        match self.fused().and_then(|fused| fused.check_layout(skip)) {
            Ok(()) => Ok(None),
            Err(Error::Unsupported { reason }) => Ok(Some(format!("{reason}; use Fusion::Never"))),
            Err(e @ Error::TooLarge { .. }) => Ok(Some(format!(
                "the fused kernel's weights do not fit: {e}; use Fusion::Never"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Times both paths on these tensors (see [`tune::faster`]); the two-kernel path when
    /// the fused kernel cannot take the shapes.
    fn measure(
        &self,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<BlockPath> {
        if self
            .fused_cannot_take(input.shape(), finish.skip.is_some())?
            .is_some()
        {
            return Ok(BlockPath::TwoKernels);
        }
        let gpu = self.depthwise.gpu();
        tune::faster([BlockPath::TwoKernels, BlockPath::Fused], |path| {
            self.submit(path, input, output, finish)?;
            gpu.wait()
        })
    }
}

#[cfg(test)]
mod tests {
    //! The device-wide record of measured paths, which only the crate can see; on the
    //! adapter the integration tests use (`WGPU_BACKEND`, lavapipe in CI).
    use super::*;
    use crate::cpu::reference;
    use crate::gpu::choice::ConvKernel;
    use crate::gpu::small_ints;
    use crate::{Conv2dSpec, Gpu, Padding, Tensor};

    #[test]
    fn blocks_with_the_same_specs_share_a_measured_path() {
        let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
        let dw = Conv2dSpec::depthwise(16, [3, 3]).padding(Padding::uniform(1));
        let pw = Conv2dSpec::pointwise(16, 64);
        let input = Shape::new(1, 16, 6, 6);
        let x = Tensor::new(input, small_ints(1, input.len().unwrap())).unwrap();
        let gx = GpuTensor::from_tensor(&gpu, &x).unwrap();
        // A block with its own seeded weights (small integers: both paths and the reference
        // agree bit for bit), its pointwise half's kernel set to `kernel`.
        let block = |seed: u64, kernel: ConvKernel| {
            let conv = |spec: Conv2dSpec, seed: u64| {
                let w = small_ints(seed, spec.weight_count());
                let b = small_ints(seed + 1, spec.c_out);
                Conv2d::new(&gpu, spec, &w, Some(&b)).unwrap()
            };
            let pointwise = conv(pw, seed + 2).with_tuning(Tuning::auto().with_kernel(kernel));
            SeparableBlock::new(conv(dw, seed), pointwise).unwrap()
        };
        // Runs `block` into a NaN-poisoned output and checks it against the reference.
        let check = |block: &SeparableBlock, seed: u64| {
            let (d, p) = (block.depthwise(), block.pointwise());
            let want = reference::separable_block(
                (&dw, d.weights(), d.bias()),
                (&pw, p.weights(), p.bias()),
                &x,
            )
            .unwrap();
            let y = GpuTensor::full(&gpu, want.shape(), f32::NAN).unwrap();
            block.run_into(&gx, &y).unwrap();
            let got = y.read().unwrap();
            assert!(
                got.data().iter().zip(want.data()).all(|(g, w)| g == w),
                "seed {seed}: {:?} against {:?}",
                &got.data()[..4],
                &want.data()[..4]
            );
        };
        let plain = (pw.activation, None);
        // The first block measures and records its path on the device.
        let first = block(2, ConvKernel::Auto);
        check(&first, 2);
        let measured = first.chosen_path(input).unwrap();
        assert_eq!(
            gpu.tuner().measured(&first.key(input, plain.0, plain.1)),
            Some(Choice::Path(measured))
        );
        // A second block takes whatever the device has recorded: plant the other path.
        let other = match measured {
            BlockPath::Fused => BlockPath::TwoKernels,
            BlockPath::TwoKernels => BlockPath::Fused,
        };
        gpu.tuner()
            .plant(first.key(input, plain.0, plain.1), Choice::Path(other));
        let second = block(5, ConvKernel::Auto);
        check(&second, 5);
        assert_eq!(second.chosen_path(input), Some(other));
        // What ran, not only what is reported: the fused kernel is built on its first use.
        let built = second.fused.lock().unwrap().is_some();
        assert_eq!(built, other == BlockPath::Fused);
        // Another pointwise kernel setting is another key: measured and recorded apart.
        let third = block(8, ConvKernel::UniformWindows);
        check(&third, 8);
        let path = third.chosen_path(input).unwrap();
        assert_eq!(
            gpu.tuner().measured(&third.key(input, plain.0, plain.1)),
            Some(Choice::Path(path))
        );
        assert_eq!(
            gpu.tuner().measured(&first.key(input, plain.0, plain.1)),
            Some(Choice::Path(other))
        );
    }
}
