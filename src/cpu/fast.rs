//! The fast CPU path: multi-threaded, vectorised convolution for every spec the reference
//! runs, with the same signature and the same validation.
//!
//! How each [`ConvKind`] runs:
//! - **Depthwise** (any multiplier): a direct loop nest per output plane, planes spread over
//!   threads. The zero-padded input is split by stride phase so that every tap is a contiguous
//!   shifted view, and output rows are laid flat so that a whole plane is one long loop that the
//!   compiler vectorises across outputs; 3×3 kernels sum their nine taps in one pass (see the
//!   `depthwise` module). Compiled for AVX2+FMA and for the baseline, picked at run time.
//! - **Pointwise**, and grouped layers with a 1×1 kernel, stride 1 and no padding: per image
//!   and group, one matrix product `W_g [c_out/g × c_in/g] · X_g [c_in/g × h·w]` straight on the
//!   NCHW data, no copies.
//! - **Grouped / standard with stride 1** (and padded pointwise): the same product over an
//!   im2col matrix built from zero-padded input rows laid flat, so that each of its rows is one
//!   contiguous copy (`FlatRows`), one band of output rows at a time; the few extra columns
//!   this computes are dropped when the result is copied out.
//! - **Strided grouped / standard** (and strided pointwise): the product over an im2col matrix
//!   `[c_in/g·kh·kw × pixels]`, built one block of output pixels at a time.
//!
//! Either way the im2col matrix of a block stays within [`SCRATCH_FLOATS`], whatever the layer,
//! and the scratch is kept per thread between calls.
//!
//! Matrix products go to [faer](https://docs.rs/faer)'s `matmul`, which picks AVX-512 or
//! AVX2+FMA kernels at run time. Bias and the activation are applied to each output block
//! right after its product, while it is still in cache. Work is cut into blocks of output
//! (image × group × pixel block, or × channel block for short pixel rows) and spread over
//! rayon's global pool; with fewer blocks than threads the product itself runs in parallel.
//!
//! Whole networks run on this path through [`CpuNetwork`], with multi-threaded versions of the
//! other ops (add, concatenation, activation, pooling, channel shuffle) that match
//! [`crate::ops::cpu`] bit for bit.
//!
//! Results agree with [`crate::cpu::reference::conv2d`] to within `f32` rounding of the sums
//! (the order of the sums differs from the reference's, and between kinds); on data whose sums
//! are exact in `f32` (small integers) they agree bit for bit.

mod depthwise;
mod gemm;

use gemm::{run_direct_gemm, run_flat_gemm, run_im2col_gemm, FlatRows};
mod network;
mod ops;

pub use network::CpuNetwork;

use rayon::prelude::*;

use crate::error::Result;
use crate::spec::{Activation, Conv2dSpec, ConvKind, Residual, Shape};
use crate::tensor::Tensor;

/// Upper bound on the im2col scratch of one block, in `f32`s (1 MiB, the L2 size of common
/// x86 cores). A block covers as many output pixels as fit.
pub const SCRATCH_FLOATS: usize = 1 << 18;

/// Up to this many output pixels per image, a pointwise layer runs as one matrix product per
/// image and group rather than being cut into blocks.
const WHOLE_PRODUCT_MAX_PIXELS: usize = 1024;

/// Elements per rayon task of the residual add's pass (16 KiB of f32s: enough work per task
/// to pay for its scheduling).
const ADD_CHUNK: usize = 4096;

/// Runs `spec` on `input` with `weights` (`[c_out, c_in/groups, kh, kw]`) and `bias` (`[c_out]`)
/// on all of rayon's threads. Same contract as [`crate::cpu::reference::conv2d`].
///
/// # Errors
/// Every validation error of the spec ([`Conv2dSpec::output_shape`],
/// [`Conv2dSpec::check_parameters`]).
///
/// # Example
/// ```
/// use sepconv::{cpu::fast, Conv2dSpec, Shape, Tensor};
///
/// let spec = Conv2dSpec::new(1, 1, [2, 2]).bias(false);
/// let x = Tensor::new(Shape::new(1, 1, 3, 3), (1..=9).map(|v| v as f32).collect())?;
/// let y = fast::conv2d(&spec, &x, &[1.0; 4], None)?;
/// assert_eq!(y.data(), &[12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn conv2d(
    spec: &Conv2dSpec,
    input: &Tensor,
    weights: &[f32],
    bias: Option<&[f32]>,
) -> Result<Tensor> {
    let out_shape = spec.output_shape(input.shape())?;
    spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
    let mut out = vec![0f32; out_shape.len()?];
    run(
        spec,
        input.shape(),
        input.data(),
        weights,
        bias,
        out_shape,
        &mut out,
    );
    Tensor::new(out_shape, out)
}

/// A convolution with its weights and bias held, validated once, for repeated calls on the
/// CPU. Equivalent to calling [`conv2d`] each time.
///
/// # Example
/// ```
/// use sepconv::{cpu::fast::Conv2dCpu, Conv2dSpec, Padding, Shape, Tensor};
///
/// let spec = Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1));
/// let conv = Conv2dCpu::new(spec, &vec![1.0; spec.weight_count()], Some(&[0.5; 4]))?;
/// let y = conv.run(&Tensor::full(Shape::new(2, 4, 6, 6), 1.0)?)?;
/// assert_eq!(y.at(1, 3, 2, 2), 9.5);
/// assert_eq!(y.at(0, 0, 0, 0), 4.5);
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2dCpu {
    spec: Conv2dSpec,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Conv2dCpu {
    /// Checks `spec`, `weights` and `bias` as [`conv2d`] does and keeps copies.
    ///
    /// # Errors
    /// The spec's validation errors, [`crate::Error::LengthMismatch`],
    /// [`crate::Error::BiasMismatch`].
    pub fn new(spec: Conv2dSpec, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
        Ok(Self {
            spec,
            weights: weights.to_vec(),
            bias: bias.map(<[f32]>::to_vec),
        })
    }

    /// The spec.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// The output shape for `input`.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.spec.output_shape(input)
    }

    /// Runs the convolution on `input` into a new tensor.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`].
    pub fn run(&self, input: &Tensor) -> Result<Tensor> {
        let out_shape = self.output_shape(input.shape())?;
        let mut out = vec![0f32; out_shape.len()?];
        self.run_slice(input, out_shape, &mut out);
        Tensor::new(out_shape, out)
    }

    /// Runs the convolution on `input`, overwriting `output`, whose shape must be
    /// [`Conv2dCpu::output_shape`] of the input. Lets callers reuse the output buffer.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`], and [`crate::Error::LengthMismatch`] when
    /// `output` has another shape.
    pub fn run_into(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let out_shape = self.output_shape(input.shape())?;
        if output.shape() != out_shape {
            return Err(crate::Error::LengthMismatch {
                what: "output tensor",
                expected: out_shape.len()?,
                got: output.shape().len()?,
                hint: Some(format!(
                    "expected shape {out_shape}, got {}",
                    output.shape()
                )),
            });
        }
        self.run_slice(input, out_shape, output.data_mut());
        Ok(())
    }

    /// Runs the convolution on `input` with `skip` (the output's shape) added before or
    /// after the activation, as `residual` says: the same contract as
    /// [`crate::cpu::reference::conv2d_residual`]. On the CPU the add is a second pass over
    /// the output, in parallel.
    ///
    /// # Errors
    /// Those of [`Conv2dCpu::run`], and [`crate::Error::LengthMismatch`] when `skip` does not
    /// have the output's shape.
    pub fn run_residual(
        &self,
        input: &Tensor,
        skip: &Tensor,
        residual: Residual,
    ) -> Result<Tensor> {
        let out_shape = self.output_shape(input.shape())?;
        crate::tensor::check_shape("skip tensor", out_shape, skip.shape())?;
        // The sums plus bias first (activation deferred when the add comes before it).
        let activation = self.spec.activation;
        let first = match residual {
            Residual::BeforeActivation => self.spec.activation(Activation::None),
            Residual::AfterActivation => self.spec,
        };
        let mut out = vec![0f32; out_shape.len()?];
        run(
            &first,
            input.shape(),
            input.data(),
            &self.weights,
            self.bias.as_deref(),
            out_shape,
            &mut out,
        );
        out.par_chunks_mut(ADD_CHUNK)
            .zip(skip.data().par_chunks(ADD_CHUNK))
            .for_each(|(out, skip)| {
                for (o, &s) in out.iter_mut().zip(skip) {
                    *o = match residual {
                        Residual::BeforeActivation => activation.apply(*o + s),
                        Residual::AfterActivation => *o + s,
                    };
                }
            });
        Tensor::new(out_shape, out)
    }

    fn run_slice(&self, input: &Tensor, out_shape: Shape, out: &mut [f32]) {
        run(
            &self.spec,
            input.shape(),
            input.data(),
            &self.weights,
            self.bias.as_deref(),
            out_shape,
            out,
        );
    }
}

/// Everything the kernels need, resolved from a validated spec and input shape.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    x: Shape,
    y: Shape,
    plane: depthwise::Plane,
    groups: usize,
    cin_g: usize,
    cout_g: usize,
    /// Reduction length of the matrix product, `c_in/g · kh · kw`.
    k: usize,
    act: Activation,
}

impl Geometry {
    fn new(spec: &Conv2dSpec, x: Shape, y: Shape) -> Self {
        let pads = spec.pads(x.h, x.w);
        Self {
            x,
            y,
            plane: depthwise::Plane {
                h: x.h,
                w: x.w,
                ho: y.h,
                wo: y.w,
                kh: spec.kernel[0],
                kw: spec.kernel[1],
                sh: spec.stride[0],
                sw: spec.stride[1],
                dh: spec.dilation[0],
                dw: spec.dilation[1],
                pt: pads.top,
                pl: pads.left,
            },
            groups: spec.groups,
            cin_g: spec.c_in_per_group(),
            cout_g: spec.c_out_per_group(),
            k: spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1],
            act: spec.activation,
        }
    }

    /// 1×1 kernel, stride 1, no padding: the input is already the product's right-hand side.
    fn is_direct_gemm(&self, spec: &Conv2dSpec) -> bool {
        let p = &self.plane;
        spec.kernel == [1, 1]
            && spec.stride == [1, 1]
            && self.x.h == self.y.h
            && self.x.w == self.y.w
            && p.pt == 0
            && p.pl == 0
    }
}

/// Dispatches a validated call. `out` has `out_shape.len()` elements.
fn run(
    spec: &Conv2dSpec,
    x_shape: Shape,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out_shape: Shape,
    out: &mut [f32],
) {
    let geo = Geometry::new(spec, x_shape, out_shape);
    match spec.kind() {
        ConvKind::Depthwise { multiplier } => {
            run_depthwise(&geo, multiplier, x, weights, bias, out)
        }
        _ if geo.is_direct_gemm(spec) => run_direct_gemm(&geo, x, weights, bias, out),
        _ if FlatRows::fits(&geo) => run_flat_gemm(&geo, x, weights, bias, out),
        _ => run_im2col_gemm(&geo, x, weights, bias, out),
    }
}

fn run_depthwise(
    geo: &Geometry,
    multiplier: usize,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let p = geo.plane;
    let plan = depthwise::Plan::new(p);
    let scratch_len = plan.scratch_len();
    let in_plane = p.h * p.w;
    let taps = p.kh * p.kw;
    let arch = pulp::Arch::new();
    let (c_in, c_out, act) = (geo.x.c, geo.y.c, geo.act);
    out.par_chunks_mut(p.ho * p.wo).enumerate().for_each_init(
        || vec![0f32; scratch_len],
        |scratch, (plane, y)| {
            let (n, oc) = (plane / c_out, plane % c_out);
            let ic = oc / multiplier;
            let xs = &x[(n * c_in + ic) * in_plane..][..in_plane];
            let k = &weights[oc * taps..][..taps];
            let b = bias.map_or(0.0, |b| b[oc]);
            arch.dispatch(depthwise::PlaneJob {
                plan: &plan,
                x: xs,
                k,
                bias: b,
                act,
                scratch,
                y,
            });
        },
    );
}
