//! [`Conv2d`]: a convolution with its weights on the GPU. One run reads top to bottom:
//! [`Conv2d::run_into`] validates the tensors ([`Conv2d::output_shape`]), plans the pieces of
//! a run past the binding limit ([`super::split`]), asks the [`super::Tuner`] which kernel
//! runs each piece ([`Conv2d::kernel_for`]), records its dispatches ([`super::window`] or
//! [`super::gemm`]) and submits them.

use super::choice::{Choice, ConvKernel, Tuning};
use super::finish::Finish;
use super::gemm::GemmConv;
use super::split;
use super::tensor::{check_output, check_precision};
use super::tune::{self, RunKey, TuneKey};
use super::window::WindowKernel;
use super::Bindings;
use super::{Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::spec::{Activation, Conv2dSpec, ConvKind, Residual, Shape};
use std::sync::{Arc, Mutex};

/// A convolution ready to run on a [`Gpu`]: the spec, its kernels, and its weights and bias
/// uploaded once.
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
    /// The precision of its tensors and weights.
    precision: Precision,
    tuning: Tuning,
    /// The uniform-window kernel, which runs every spec.
    windows: WindowKernel,
    /// The weights and bias as given (the bias as zeros when the spec has none), kept so that
    /// the tiled and fused kernels can lay them out their way.
    host_weights: Arc<[f32]>,
    host_bias: Arc<[f32]>,
    /// The tiled-product kernel, built on the first run that may use it.
    gemm: Mutex<Option<Arc<GemmConv>>>,
}

impl Conv2d {
    /// Validates `spec`, `weights` (`[c_out, c_in/groups, kh, kw]`) and `bias` (`[c_out]`,
    /// present exactly when `spec.bias`), uploads them, and compiles (or reuses) the kernel.
    /// The conv takes the device's [`Tuning`] ([`super::Tuner::set_tuning`]).
    ///
    /// # Errors
    /// The spec's validation errors, [`Error::LengthMismatch`], [`Error::BiasMismatch`],
    /// [`Error::TooLarge`] for weights beyond the device's limits, [`Error::Gpu`].
    pub fn new(gpu: &Gpu, spec: Conv2dSpec, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
        check_kernel_range(&spec)?;
        let host_bias: Arc<[f32]> = match bias {
            Some(b) => b.into(),
            None => vec![0f32; spec.c_out].into(),
        };
        let windows = WindowKernel::new(gpu, &spec, weights, &host_bias, Precision::F32)?;
        Ok(Self {
            gpu: gpu.clone(),
            spec,
            precision: Precision::F32,
            tuning: gpu.tuner().tuning(),
            windows,
            host_weights: weights.into(),
            host_bias,
            gemm: Mutex::new(None),
        })
    }

    /// The conv on tensors of `precision`: its inputs and outputs must be stored in it, and
    /// its weights and bias are rounded to it (f16: what the kernels multiply by are the f16
    /// weights, summed in f32; see [`Precision`]). F32 is the default.
    ///
    /// # Example
    /// ```no_run
    /// use sepconv::{Conv2d, Conv2dSpec, Gpu, GpuTensor, Precision, Shape};
    ///
    /// let gpu = Gpu::new()?;
    /// let spec = Conv2dSpec::pointwise(8, 16);
    /// let conv = Conv2d::new(&gpu, spec, &vec![0.1; spec.weight_count()], Some(&[0.0; 16]))?
    ///     .with_precision(Precision::F16)?; // Error::Unsupported without SHADER_F16
    /// let x = GpuTensor::from_slice_as(&gpu, Shape::new(1, 8, 4, 4), &[1.0; 128], Precision::F16)?;
    /// let y = conv.run(&x)?; // f16 too
    /// assert_eq!(y.read()?.data()[0], Precision::F16.round(8.0 * Precision::F16.round(0.1)));
    /// # Ok::<(), sepconv::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Unsupported`] for f16 on a device without `SHADER_F16`
    /// ([`Gpu::supports_f16`]); [`Error::Gpu`].
    pub fn with_precision(mut self, precision: Precision) -> Result<Self> {
        if precision == self.precision {
            return Ok(self);
        }
        self.gpu.check_precision(precision)?;
        self.windows = WindowKernel::new(
            &self.gpu,
            &self.spec,
            &self.host_weights,
            &self.host_bias,
            precision,
        )?;
        // The tiled kernel stores its weights in the precision: build it again on use.
        self.gemm = Mutex::new(None);
        self.precision = precision;
        Ok(self)
    }

    /// The precision of its tensors and weights ([`Conv2d::with_precision`]).
    pub fn precision(&self) -> Precision {
        self.precision
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

    /// The weights it was made from, `[c_out, c_in/groups, kh, kw]` (as given: an f16 conv
    /// runs with them rounded to f16).
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

    /// The conv with `tuning`'s kernel and split-K (its fusion concerns blocks). Depthwise
    /// convs have one kernel and ignore it.
    pub fn with_tuning(mut self, tuning: Tuning) -> Self {
        if tuning.split_k != self.tuning.split_k {
            // The tiled kernel keeps its launches, splits included: build it again.
            self.gemm = Mutex::new(None);
        }
        self.tuning = tuning;
        self
    }

    /// The conv's tuning.
    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    /// The kernel runs on an `input`-shaped tensor take, where known: always when pinned or
    /// when there is no choice, after the first run of the shape in this process under
    /// [`ConvKernel::Auto`] (for a run split past the binding limit, that of its first piece).
    pub fn chosen_kernel(&self, input: Shape) -> Option<ConvKernel> {
        if !self.has_kernel_choice() {
            return Some(ConvKernel::UniformWindows);
        }
        match self.tuning.kernel {
            ConvKernel::Auto => match self
                .gpu
                .tuner()
                .measured(&self.tune_key(self.first_key(input).ok()?))
            {
                Some(Choice::Kernel(kernel)) => Some(kernel),
                _ => None,
            },
            pinned => Some(pinned),
        }
    }

    /// The output shape for `input`, checked for this device: channels, sizes, every buffer
    /// within the device's buffer limit, and the work divisible into pieces that each bind
    /// at most the storage-binding limit.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`], [`Error::TooLarge`], [`Error::Overflow`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.pieces(input).map(|(output, _)| output)
    }

    /// Runs the convolution on `input` into a new tensor, which stays on the GPU. It returns
    /// once the work is submitted, without waiting for it, except on the first run of a shape
    /// under [`ConvKernel::Auto`], which times both kernels on the device first (a few runs
    /// of each) unless the [`super::Tuner`] already knows the answer.
    ///
    /// # Errors
    /// [`Error::ChannelMismatch`], [`Error::EmptyOutput`], [`Error::TooLarge`],
    /// [`Error::DeviceMismatch`], [`Error::Gpu`], [`Error::DeviceLost`].
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let shape = self.output_shape(input.shape())?;
        let output = GpuTensor::uninit(&self.gpu, shape, self.precision, "conv.output")?;
        self.run_into(input, &output)?;
        Ok(output)
    }

    /// [`Conv2d::run`] and [`GpuTensor::read_async`] in one: the result on the host, without
    /// blocking (the web's only way).
    ///
    /// # Errors
    /// Those of [`Conv2d::run`] and [`GpuTensor::read_async`].
    pub async fn run_async(&self, input: &GpuTensor) -> Result<crate::Tensor> {
        self.run(input)?.read_async().await
    }

    /// Runs the convolution on `input`, writing into `output`, whose shape must be
    /// [`Conv2d::output_shape`] of the input. Lets callers reuse buffers.
    pub fn run_into(&self, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        self.submit(input, output, Finish::of(&self.spec))
    }

    /// Runs the convolution on `input` with a residual add in its epilogue: `skip`, a tensor
    /// of the output's shape, joins the sums before or after the activation as `residual`
    /// says, in the kernel that writes the output (no second pass over it). The reference is
    /// [`crate::cpu::reference::conv2d_residual`].
    ///
    /// The tiled product binds one storage buffer more for the skip (5): a device that allows
    /// 4 (OpenGL ES) runs a residual add on the window kernels, pinned or not.
    ///
    /// # Errors
    /// Those of [`Conv2d::run`], and [`Error::LengthMismatch`] when `skip` does not have the
    /// output's shape.
    ///
    /// # Example
    /// ```no_run
    /// use sepconv::{Conv2d, Conv2dSpec, Gpu, GpuTensor, Residual, Shape};
    ///
    /// let gpu = Gpu::new()?;
    /// // An inverted-residual block's linear projection and its shortcut, in one dispatch.
    /// let spec = Conv2dSpec::pointwise(96, 24).bias(false);
    /// let project = Conv2d::new(&gpu, spec, &vec![0.01; spec.weight_count()], None)?;
    /// let expanded = GpuTensor::full(&gpu, Shape::new(1, 96, 28, 28), 1.0)?;
    /// let shortcut = GpuTensor::full(&gpu, Shape::new(1, 24, 28, 28), 0.5)?;
    /// let y = project.run_residual(&expanded, &shortcut, Residual::AfterActivation)?.read()?;
    /// assert!((y.at(0, 3, 5, 5) - 1.46).abs() < 1e-5);
    /// # Ok::<(), sepconv::Error>(())
    /// ```
    pub fn run_residual(
        &self,
        input: &GpuTensor,
        skip: &GpuTensor,
        residual: Residual,
    ) -> Result<GpuTensor> {
        let shape = self.output_shape(input.shape())?;
        let output = GpuTensor::uninit(&self.gpu, shape, self.precision, "conv.output")?;
        self.run_residual_into(input, skip, residual, &output)?;
        Ok(output)
    }

    /// [`Conv2d::run_residual`] into `output`, whose shape must be [`Conv2d::output_shape`]
    /// of the input and which must not be `skip` itself.
    ///
    /// # Errors
    /// Those of [`Conv2d::run_residual`], and [`Error::Incompatible`] when `skip` and
    /// `output` are the same tensor.
    pub fn run_residual_into(
        &self,
        input: &GpuTensor,
        skip: &GpuTensor,
        residual: Residual,
        output: &GpuTensor,
    ) -> Result<()> {
        let finish = Finish::with_skip(&self.spec, skip, residual);
        self.submit(input, output, finish)
    }

    /// Records the run ending with `finish` and submits it.
    fn submit(&self, input: &GpuTensor, output: &GpuTensor, finish: Finish<'_>) -> Result<()> {
        let mut encoder = self.gpu.encoder("conv.encoder")?;
        self.encode_with(&mut encoder, input, output, finish)?;
        self.gpu.scoped("conv dispatch", || {
            self.gpu.queue().submit([encoder.finish()]);
        })
    }

    /// Builds what a run on an `input`-shaped tensor needs before it runs: the launch of the
    /// kernel it will take (its pipeline compiled for the output's size), where that kernel is
    /// known without measuring (pinned, the only one, or in the tuner's cache file). A network
    /// calls this for every conv at construction, so that its first run compiles nothing. A
    /// run split past the binding limit builds its pieces' launches on first use.
    pub(crate) fn prepare(&self, input: Shape) -> Result<()> {
        self.prepare_as(input, self.spec.activation, None)
    }

    /// [`Conv2d::prepare`] for runs that end with `activation` and `residual` (a network's
    /// folded residual add).
    pub(crate) fn prepare_as(
        &self,
        input: Shape,
        activation: Activation,
        residual: Option<Residual>,
    ) -> Result<()> {
        let (output, pieces) = self.pieces(input)?;
        if !pieces.is_whole() {
            return Ok(());
        }
        let key = RunKey {
            spec: self.spec.activation(activation),
            input,
            output,
            residual,
        };
        let kernel = if !self.has_kernel_choice() {
            ConvKernel::UniformWindows
        } else {
            match self.tuning.kernel {
                ConvKernel::Auto => match self.gpu.tuner().known(self.tune_key(key)) {
                    Some(Choice::Kernel(kernel)) => self.runnable(kernel, &key)?,
                    _ => return Ok(()),
                },
                pinned => pinned,
            }
        };
        match kernel {
            ConvKernel::TiledGemm => self.gemm()?.prepare(key),
            _ => self.windows.prepare(key),
        }
    }

    /// Records the run into `encoder` after checking shapes and devices: the whole run, or
    /// one set of dispatches per piece when it is split past the binding limit.
    pub(crate) fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
    ) -> Result<()> {
        self.encode_with(encoder, input, output, Finish::of(&self.spec))
    }

    /// [`Conv2d::encode`] ending with `finish`: the spec's activation or another, and a
    /// residual add or none.
    pub(crate) fn encode_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        input: &GpuTensor,
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        self.gpu.check_same("the input tensor", input.gpu())?;
        self.gpu.check_same("the output tensor", output.gpu())?;
        check_precision("the input tensor", input, self.precision)?;
        check_precision("the output tensor", output, self.precision)?;
        let (out_shape, pieces) = self.pieces(input.shape())?;
        check_output(output, out_shape)?;
        finish.check(&self.gpu, output)?;
        let skip = finish.skip.map(|(skip, _)| skip);
        let residual = finish.residual();
        let spec = self.spec.activation(finish.activation);
        if pieces.is_whole() {
            let key = RunKey {
                spec,
                input: input.shape(),
                output: out_shape,
                residual,
            };
            let tensors = Bindings {
                input: input.buffer().as_entire_buffer_binding(),
                output: output.buffer().as_entire_buffer_binding(),
                skip: skip.map(|s| s.buffer().as_entire_buffer_binding()),
            };
            return self.encode_run(encoder, key, &tensors);
        }
        split::encode(
            &self.gpu,
            encoder,
            &pieces,
            split::Tensors {
                input: input.buffer(),
                output: output.buffer(),
                skip: skip.map(GpuTensor::buffer),
            },
            &mut |encoder, piece, tensors| {
                let key = RunKey {
                    spec: piece.spec.activation(finish.activation),
                    input: piece.input,
                    output: piece.output,
                    residual,
                };
                self.encode_run(encoder, key, tensors)
            },
        )
    }

    /// Records the run (or piece) `key` on `tensors` with the kernel the tuner picks.
    fn encode_run(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        key: RunKey,
        tensors: &Bindings<'_>,
    ) -> Result<()> {
        let kernel = self.kernel_for(&key, tensors)?;
        self.encode_kernel(encoder, kernel, key, tensors)
    }

    /// The checked output shape and how the work is split past the binding limit.
    fn pieces(&self, input: Shape) -> Result<(Shape, split::Pieces)> {
        let output = self.spec.output_shape(input)?;
        check_index_range(&self.spec, input, output)?;
        // Checked byte counts: a shape can have a usize element count whose bytes overflow.
        let precision = self.precision;
        self.gpu
            .check_buffer_size("input", GpuTensor::bytes_of(input, precision)?)?;
        self.gpu
            .check_buffer_size("output", GpuTensor::bytes_of(output, precision)?)?;
        let limits = self.gpu.limits();
        let pieces = split::Pieces::new(&self.spec, input, output, limits, precision)?;
        // Pieces are bound or copied at 4-byte-aligned offsets, which halves need not start
        // at: f16 runs past the binding limit (twice as many elements as f32 already fit)
        // are refused rather than split.
        if precision == Precision::F16 && !pieces.is_whole() {
            return Err(Error::Unsupported {
                reason: format!(
                    "an f16 run binding more than max_storage_buffer_binding_size ({} bytes) \
                     is not split into pieces (input {input}, output {output}); use \
                     Precision::F32 or a smaller batch",
                    limits.max_storage_buffer_binding_size
                ),
            });
        }
        Ok((output, pieces))
    }

    /// The run of an `input`-shaped tensor, or its first piece when it is split past the
    /// binding limit.
    fn first_key(&self, input: Shape) -> Result<RunKey> {
        let (output, pieces) = self.pieces(input)?;
        let key = match pieces.iter().next().filter(|_| !pieces.is_whole()) {
            Some(piece) => RunKey {
                spec: piece.spec,
                input: piece.input,
                output: piece.output,
                residual: None,
            },
            None => RunKey {
                spec: self.spec,
                input,
                output,
                residual: None,
            },
        };
        Ok(key)
    }

    /// Whether [`ConvKernel`] applies: pointwise and grouped convs. One with fewer than 16
    /// output channels per group takes the tiled product only when asked for by name (it
    /// pads each group to 64 channels, so measuring it would cost more than it can win).
    fn has_kernel_choice(&self) -> bool {
        match self.spec.kind() {
            ConvKind::Depthwise { .. } => false,
            ConvKind::Pointwise | ConvKind::General => {
                self.tuning.kernel == ConvKernel::TiledGemm || self.spec.c_out_per_group() >= 16
            }
        }
    }

    /// The tuner's key for the kernel of the run `run`.
    fn tune_key(&self, run: RunKey) -> TuneKey {
        TuneKey::Kernel {
            run,
            split_k: self.tuning.split_k,
            precision: self.precision,
        }
    }

    /// The kernel for the run (or piece) `key`: pinned, or the tuner's choice (measured on
    /// the first use of the key on this device); `UniformWindows` where there is no choice.
    fn kernel_for(&self, key: &RunKey, tensors: &Bindings<'_>) -> Result<ConvKernel> {
        if !self.has_kernel_choice() {
            return Ok(ConvKernel::UniformWindows);
        }
        if self.tuning.kernel != ConvKernel::Auto {
            // Pinned; but a device that binds the tiled product only without a skip tensor
            // (4 storage buffers: OpenGL ES) runs a residual add on the windows.
            if key.residual.is_some() && self.tuning.kernel == ConvKernel::TiledGemm {
                if let Err(Error::Unsupported { .. }) = self.gemm()?.check_runnable(key) {
                    return Ok(ConvKernel::UniformWindows);
                }
            }
            return Ok(self.tuning.kernel);
        }
        let choice = self
            .gpu
            .tuner()
            .choose(self.tune_key(*key), || match self.gemm_for(key) {
                Ok(_) => self.measure(key, tensors).map(Choice::Kernel),
                // Weights past the storage-binding limit, or too few storage buffers per stage
                // on this device: only the windows can run it.
                Err(Error::TooLarge { .. } | Error::Unsupported { .. }) => {
                    Ok(Choice::Kernel(ConvKernel::UniformWindows))
                }
                Err(e) => Err(e),
            })?;
        match choice {
            Choice::Kernel(kernel) => self.runnable(kernel, key),
            // The tuner answers a kernel key with a kernel.
            Choice::Path(_) => Ok(ConvKernel::UniformWindows),
        }
    }

    /// `kernel`, or the windows where it is the tiled product and that cannot run the run
    /// `key` here (its weights past the storage-binding limit, too few storage buffers or
    /// invocations): a choice read from the cache file is not taken on trust.
    fn runnable(&self, kernel: ConvKernel, key: &RunKey) -> Result<ConvKernel> {
        if kernel != ConvKernel::TiledGemm {
            return Ok(kernel);
        }
        match self.gemm_for(key) {
            Ok(_) => Ok(kernel),
            Err(Error::TooLarge { .. } | Error::Unsupported { .. }) => {
                Ok(ConvKernel::UniformWindows)
            }
            Err(e) => Err(e),
        }
    }

    /// Records the run (or piece) `key` with `kernel`: one dispatch of the tiled product (two
    /// when it splits its sums), or one per weight window of the window kernels.
    fn encode_kernel(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        kernel: ConvKernel,
        key: RunKey,
        tensors: &Bindings<'_>,
    ) -> Result<()> {
        match kernel {
            ConvKernel::TiledGemm => self.gemm()?.encode(encoder, key, tensors),
            _ => self.windows.encode(encoder, key, tensors),
        }
    }

    /// The tiled-product kernel, if it can run the run `key` on this device (see
    /// [`GemmConv::check_runnable`]).
    fn gemm_for(&self, key: &RunKey) -> Result<Arc<GemmConv>> {
        let gemm = self.gemm()?;
        gemm.check_runnable(key)?;
        Ok(gemm)
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
            self.tuning.split_k,
            self.precision,
        )?);
        *gemm = Some(Arc::clone(&g));
        Ok(g)
    }

    /// Times both kernels on the run `key` (reading the caller's input, writing a
    /// scratch output, so that nothing the caller has recorded but not yet submitted can
    /// see it) and returns the faster (see [`tune::faster`]).
    fn measure(&self, key: &RunKey, tensors: &Bindings<'_>) -> Result<ConvKernel> {
        let scratch = GpuTensor::uninit(&self.gpu, key.output, self.precision, "conv.measure")?;
        let kernels = [ConvKernel::UniformWindows, ConvKernel::TiledGemm];
        tune::faster(kernels, |kernel| {
            let mut encoder = self.gpu.encoder("conv.measure")?;
            let measured = Bindings {
                output: scratch.buffer().as_entire_buffer_binding(),
                ..tensors.clone()
            };
            self.encode_kernel(&mut encoder, kernel, *key, &measured)?;
            self.gpu.scoped("conv dispatch", || {
                self.gpu.queue().submit([encoder.finish()]);
            })?;
            self.gpu.wait()
        })
    }
}

/// What the crate's tests look at that users need not: how a run is split and dispatched.
#[doc(hidden)]
impl Conv2d {
    /// Into how many pieces a run on `input` is split: 1, unless the input or output exceeds
    /// the device's `max_storage_buffer_binding_size` (see `src/gpu/split.rs`).
    pub fn split_count(&self, input: Shape) -> Result<usize> {
        self.pieces(input).map(|(_, pieces)| pieces.len())
    }

    /// The workgroup grid of the first (largest) window-kernel dispatch for `input`; spread
    /// over y past the device's per-dimension limit.
    pub fn dispatch_grid(&self, input: Shape) -> Result<[u32; 3]> {
        self.windows.grid(&self.first_key(input)?)
    }

    /// Dispatches per run of the window kernels: one per 64 KiB window of weights.
    pub fn dispatch_count(&self) -> usize {
        self.windows.dispatch_count()
    }

    /// Parts the tiled product splits its sums into on an `input`-shaped tensor, whether or
    /// not that kernel is the one that runs: those of its last run of that shape, or those it
    /// would make (1: not split, and always for depthwise convs).
    ///
    /// # Errors
    /// Those of [`Conv2d::output_shape`].
    pub fn split_k_parts(&self, input: Shape) -> Result<usize> {
        let key = self.first_key(input)?;
        if matches!(self.spec.kind(), ConvKind::Depthwise { .. }) {
            return Ok(1);
        }
        let gemm = self.gemm.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match gemm.as_ref() {
            Some(g) => g.slices(&key),
            None => super::gemm::planned_slices(&self.gpu, &key, self.tuning.split_k),
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
mod tests;
