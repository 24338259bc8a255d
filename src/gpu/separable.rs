//! [`SeparableBlock`]: depthwise then pointwise, as two kernels or one fused kernel.

use super::fused::FusedKernel;
use super::measure;
use super::ops::check_output;
use super::recent::Recent;
use super::{Conv2d, ConvKernel, GpuTensor, SplitK};
use crate::cpu::reference::check_separable;
use crate::error::{Error, Result};
use crate::spec::{Conv2dSpec, Shape};
use std::sync::{Arc, Mutex};

/// How a [`SeparableBlock`] chooses between its two ways of running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fusion {
    /// Time both paths on the first run of each input shape and keep the faster one for
    /// that shape (the two-kernel path where the fused kernel cannot take the shape); other
    /// blocks on the same [`crate::Gpu`] with the same specs, pointwise kernel settings and
    /// input shape take that choice without measuring. The first run costs a few extra runs
    /// of each path; the two paths round differently, so
    /// pin one with [`Fusion::Never`] or [`Fusion::Always`] where bit-for-bit repeatability
    /// across processes matters.
    #[default]
    Auto,
    /// Always the depthwise and pointwise kernels, through the intermediate tensor.
    Never,
    /// Always the fused kernel; a run it cannot take is an [`Error::Unsupported`].
    Always,
}

/// The way one run of a [`SeparableBlock`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockPath {
    /// Two dispatches: the depthwise kernel writes the intermediate tensor, the pointwise
    /// kernel reads it.
    TwoKernels,
    /// One dispatch of the fused kernel (shaders/fused_separable.wgsl), whose depthwise
    /// result stays in workgroup memory.
    Fused,
}

/// A depthwise separable block: a depthwise [`Conv2d`] (with its bias and activation), then
/// a pointwise one, run in one submission without reading anything back.
///
/// It runs either as two kernels through an intermediate tensor, which the block keeps for
/// its last input shape, or as one fused kernel that never writes the intermediate; which
/// one is the block's [`Fusion`] choice, by default measured per input shape.
///
/// # Example
/// ```no_run
/// use sepconv::{Conv2d, Conv2dSpec, Fusion, Gpu, GpuTensor, Padding, SeparableBlock, Shape};
///
/// let gpu = Gpu::new()?;
/// let dw = Conv2dSpec::depthwise(64, [3, 3]).padding(Padding::uniform(1));
/// let pw = Conv2dSpec::pointwise(64, 128);
/// let block = SeparableBlock::new(
///     Conv2d::new(&gpu, dw, &vec![0.1; dw.weight_count()], Some(&[0.0; 64]))?,
///     Conv2d::new(&gpu, pw, &vec![0.01; pw.weight_count()], Some(&[0.0; 128]))?,
/// )?
/// .with_fusion(Fusion::Always);
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
    /// The path chosen for each recent input shape under [`Fusion::Auto`].
    chosen: Recent<Shape, BlockPath>,
}

/// Input shapes whose measured choice a block keeps.
const CHOICES: usize = 8;

/// A block's run as far as its measured path goes: the halves' specs, the pointwise half's
/// kernel settings and the input shape. Blocks with the same key on one [`super::Gpu`]
/// share the path [`Fusion::Auto`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockKey {
    depthwise: Conv2dSpec,
    pointwise: Conv2dSpec,
    pointwise_kernel: ConvKernel,
    split_k: SplitK,
    input: Shape,
}

impl SeparableBlock {
    /// Pairs a depthwise and a pointwise convolution made on the same GPU.
    ///
    /// # Errors
    /// [`Error::Incompatible`] unless the first is depthwise, the second pointwise and the
    /// channels chain; [`Error::DeviceMismatch`] if they live on different GPUs.
    pub fn new(depthwise: Conv2d, pointwise: Conv2d) -> Result<Self> {
        check_separable(depthwise.spec(), pointwise.spec())?;
        if !depthwise.gpu().same_device(pointwise.gpu()) {
            return Err(Error::DeviceMismatch);
        }
        Ok(Self {
            depthwise,
            pointwise,
            fusion: Fusion::default(),
            intermediate: Mutex::new(None),
            fused: Mutex::new(None),
            chosen: Recent::new(CHOICES),
        })
    }

    /// The block with `fusion` as its choice between the two paths (forgetting any choice
    /// already measured).
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self.chosen.clear();
        self
    }

    /// How the block chooses its path.
    pub fn fusion(&self) -> Fusion {
        self.fusion
    }

    /// The path runs on an `input`-shaped tensor take, where known: always under
    /// [`Fusion::Never`] and [`Fusion::Always`], after the first run of the shape under
    /// [`Fusion::Auto`].
    pub fn chosen_path(&self, input: Shape) -> Option<BlockPath> {
        match self.fusion {
            Fusion::Never => Some(BlockPath::TwoKernels),
            Fusion::Always => Some(BlockPath::Fused),
            Fusion::Auto => self.chosen.get(&input),
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

    /// Runs both convolutions in one submission; the result stays on the GPU.
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let gpu = self.depthwise.gpu();
        let (_, out_shape) = self.shapes(input.shape())?;
        let output = GpuTensor::uninit(gpu, out_shape, "separable.output")?;
        self.run_into(input, &output)?;
        Ok(output)
    }

    /// Runs the block into `output`, whose shape must be the block's output for `input`.
    ///
    /// # Errors
    /// Those of [`Conv2d::run_into`]; [`Error::Unsupported`] under [`Fusion::Always`] when
    /// the fused kernel cannot take the run on this device (a tensor or its weights past the
    /// storage-binding limit, fewer than 6 storage buffers per shader stage or 64 invocations
    /// per workgroup).
    pub fn run_into(&self, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        let gpu = self.depthwise.gpu();
        if !gpu.same_device(input.gpu()) || !gpu.same_device(output.gpu()) {
            return Err(Error::DeviceMismatch);
        }
        let (_, out_shape) = self.shapes(input.shape())?;
        check_output(output, out_shape)?;
        let path = match self.fusion {
            Fusion::Never => BlockPath::TwoKernels,
            Fusion::Always => {
                if let Some(reason) = self.fused_cannot_take(input.shape())? {
                    return Err(Error::Unsupported { reason });
                }
                BlockPath::Fused
            }
            // Measured once per device for all blocks with the same specs and kernel
            // settings: the weights' values do not change the paths' speed.
            Fusion::Auto => self.chosen.get_or_try_insert_with(input.shape(), || {
                gpu.block_choices()
                    .get_or_try_insert_with(self.key(input.shape()), || self.measure(input, output))
            })?,
        };
        self.submit(path, input, output)
    }

    /// What makes the two paths' speeds on an `input`-shaped tensor what they are.
    fn key(&self, input: Shape) -> BlockKey {
        BlockKey {
            depthwise: *self.depthwise.spec(),
            pointwise: *self.pointwise.spec(),
            pointwise_kernel: self.pointwise.kernel(),
            split_k: self.pointwise.split_k(),
            input,
        }
    }

    /// Records and submits one run along `path`.
    fn submit(&self, path: BlockPath, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        let gpu = self.depthwise.gpu();
        let mut encoder = gpu.encoder("separable.encoder")?;
        match path {
            BlockPath::TwoKernels => {
                let mid = self.intermediate(input.shape())?;
                self.depthwise.encode(&mut encoder, input, &mid)?;
                self.pointwise.encode(&mut encoder, &mid, output)?;
            }
            BlockPath::Fused => self.fused()?.encode(&mut encoder, input, output)?,
        }
        // Submissions run in order on the queue, so concurrent runs may share the
        // intermediate tensor.
        gpu.scoped("separable dispatch", || {
            gpu.queue().submit([encoder.finish()]);
        })
    }

    /// The intermediate tensor for `input`, kept for the last shape.
    fn intermediate(&self, input: Shape) -> Result<Arc<GpuTensor>> {
        let (mid_shape, _) = self.shapes(input)?;
        let mut kept = self.intermediate.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = kept.as_ref().filter(|t| t.shape() == mid_shape) {
            return Ok(Arc::clone(t));
        }
        let gpu = self.depthwise.gpu();
        let t = Arc::new(GpuTensor::uninit(gpu, mid_shape, "separable.intermediate")?);
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

    /// Why the fused kernel cannot run on an `input`-shaped tensor, if it cannot: it binds
    /// the input and output whole, so neither half may need a split run, its weights must fit
    /// one binding, and it needs 6 storage buffers per shader stage and 64 invocations per
    /// workgroup.
    fn fused_cannot_take(&self, input: Shape) -> Result<Option<String>> {
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
        match self.fused() {
            Ok(_) => Ok(None),
            Err(Error::Unsupported { reason }) => Ok(Some(format!("{reason}; use Fusion::Never"))),
            Err(e @ Error::TooLarge { .. }) => Ok(Some(format!(
                "the fused kernel's weights do not fit: {e}; use Fusion::Never"
            ))),
            Err(e) => Err(e),
        }
    }

    /// Times both paths on these tensors (see [`measure::faster`]); the two-kernel path when
    /// the fused kernel cannot take the shapes. The runs write the caller's output, which the
    /// block's own run then writes again: the block submits its work itself, so nothing
    /// recorded but not yet submitted can see the measuring runs.
    fn measure(&self, input: &GpuTensor, output: &GpuTensor) -> Result<BlockPath> {
        if self.fused_cannot_take(input.shape())?.is_some() {
            return Ok(BlockPath::TwoKernels);
        }
        let gpu = self.depthwise.gpu();
        measure::faster([BlockPath::TwoKernels, BlockPath::Fused], |path| {
            self.submit(path, input, output)?;
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
            let pointwise = conv(pw, seed + 2).with_kernel(kernel);
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
        // The first block measures and records its path on the device.
        let first = block(2, ConvKernel::Auto);
        check(&first, 2);
        let measured = first.chosen_path(input).unwrap();
        assert_eq!(gpu.block_choices().get(&first.key(input)), Some(measured));
        // A second block takes whatever the device has recorded: plant the other path.
        let other = match measured {
            BlockPath::Fused => BlockPath::TwoKernels,
            BlockPath::TwoKernels => BlockPath::Fused,
        };
        gpu.block_choices().insert(first.key(input), other);
        let second = block(5, ConvKernel::Auto);
        check(&second, 5);
        assert_eq!(second.chosen_path(input), Some(other));
        // Another pointwise kernel setting is another key: measured and recorded apart.
        let third = block(8, ConvKernel::UniformWindows);
        check(&third, 8);
        let path = third.chosen_path(input).unwrap();
        assert_eq!(gpu.block_choices().get(&third.key(input)), Some(path));
        assert_eq!(gpu.block_choices().get(&first.key(input)), Some(other));
    }
}
