//! The CPU reference: a direct convolution that is obviously right, accumulating in `f64`.
//!
//! It is deliberately plain: one loop nest, PyTorch's indexing written out, no tiling, no
//! threads. Every GPU kernel is tested against it, and it is checked on its own against
//! hand-worked cases, values from another implementation, and identities between kinds
//! (`tests/reference.rs`).

use crate::error::Result;
use crate::spec::{Conv2dSpec, Residual};
use crate::tensor::Tensor;

/// Runs `spec` on `input` with `weights` (`[c_out, c_in/groups, kh, kw]`) and `bias` (`[c_out]`),
/// accumulating in `f64` and rounding once to `f32` at the end.
///
/// # Errors
/// Every validation error of the spec ([`Conv2dSpec::output_shape`],
/// [`Conv2dSpec::check_parameters`]).
///
/// # Example
/// ```
/// use sepconv::{cpu::reference, Conv2dSpec, Shape, Tensor};
///
/// // 1×1 input channel, 3×3 input, 2×2 kernel of ones, no bias: each output sums a 2×2 window.
/// let spec = Conv2dSpec::new(1, 1, [2, 2]).bias(false);
/// let x = Tensor::new(Shape::new(1, 1, 3, 3), (1..=9).map(|v| v as f32).collect()).unwrap();
/// let y = reference::conv2d(&spec, &x, &[1.0; 4], None).unwrap();
/// assert_eq!(y.data(), &[12.0, 16.0, 24.0, 28.0]);
/// ```
pub fn conv2d(
    spec: &Conv2dSpec,
    input: &Tensor,
    weights: &[f32],
    bias: Option<&[f32]>,
) -> Result<Tensor> {
    conv2d_with(spec, input, weights, bias, None)
}

/// [`conv2d`] with a residual add in its epilogue: `skip` (the output's shape) joins the sums
/// before or after the activation, as `residual` says ([`Residual::apply_f64`]), in `f64`.
///
/// # Errors
/// Those of [`conv2d`], and [`crate::Error::LengthMismatch`] when `skip` does not have the
/// output's shape.
///
/// # Example
/// ```
/// use sepconv::{cpu::reference, Activation, Conv2dSpec, Residual, Shape, Tensor};
///
/// let spec = Conv2dSpec::pointwise(1, 1).bias(false).activation(Activation::Relu);
/// let x = Tensor::new(Shape::new(1, 1, 1, 2), vec![-3.0, 2.0])?;
/// let skip = Tensor::new(Shape::new(1, 1, 1, 2), vec![1.0, 1.0])?;
/// let y = reference::conv2d_residual(&spec, &x, &[1.0], None, &skip, Residual::BeforeActivation)?;
/// assert_eq!(y.data(), &[0.0, 3.0]);
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn conv2d_residual(
    spec: &Conv2dSpec,
    input: &Tensor,
    weights: &[f32],
    bias: Option<&[f32]>,
    skip: &Tensor,
    residual: Residual,
) -> Result<Tensor> {
    conv2d_with(spec, input, weights, bias, Some((skip, residual)))
}

fn conv2d_with(
    spec: &Conv2dSpec,
    input: &Tensor,
    weights: &[f32],
    bias: Option<&[f32]>,
    skip: Option<(&Tensor, Residual)>,
) -> Result<Tensor> {
    let out_shape = spec.output_shape(input.shape())?;
    spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
    if let Some((skip, _)) = skip {
        crate::tensor::check_shape("skip tensor", out_shape, skip.shape())?;
    }
    let x_shape = input.shape();
    let x = input.data();
    let pads = spec.pads(x_shape.h, x_shape.w);
    let [kh, kw] = spec.kernel;
    let [sh, sw] = spec.stride;
    let [dh, dw] = spec.dilation;
    let cin_g = spec.c_in_per_group();
    let cout_g = spec.c_out_per_group();

    let mut out = crate::tensor::host_vec("reference output", out_shape.len()?)?;
    out.resize(out_shape.len()?, 0.0);
    for n in 0..out_shape.n {
        for oc in 0..out_shape.c {
            // PyTorch: output channel oc belongs to group oc / (c_out / groups).
            let g = oc / cout_g;
            for oh in 0..out_shape.h {
                for ow in 0..out_shape.w {
                    let mut acc = bias.map_or(0.0, |b| f64::from(b[oc]));
                    for icg in 0..cin_g {
                        let ic = g * cin_g + icg;
                        for ky in 0..kh {
                            // Input row = oh·stride - pad_top + ky·dilation; outside → zero
                            // padding. (oh·stride + ky·dilation stays below the padded height,
                            // which validation showed to fit in usize.)
                            let Some(ih) = (oh * sh + ky * dh)
                                .checked_sub(pads.top)
                                .filter(|&ih| ih < x_shape.h)
                            else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(iw) = (ow * sw + kx * dw)
                                    .checked_sub(pads.left)
                                    .filter(|&iw| iw < x_shape.w)
                                else {
                                    continue;
                                };
                                let xv = x[x_shape.index(n, ic, ih, iw)];
                                let wv = weights[((oc * cin_g + icg) * kh + ky) * kw + kx];
                                acc += f64::from(xv) * f64::from(wv);
                            }
                        }
                    }
                    let at = out_shape.index(n, oc, oh, ow);
                    out[at] = match skip {
                        None => spec.activation.apply_f64(acc),
                        Some((skip, residual)) => {
                            residual.apply_f64(spec.activation, acc, f64::from(skip.data()[at]))
                        }
                    } as f32;
                }
            }
        }
    }
    Tensor::new(out_shape, out)
}

/// A depthwise separable block on the CPU: `depthwise` (with its bias and activation), then
/// `pointwise` on the result. Two calls to [`conv2d`].
///
/// # Errors
/// [`crate::Error::Incompatible`] when the specs are not a depthwise and a pointwise
/// convolution that chain, and the errors of [`conv2d`].
pub fn separable_block(
    depthwise: (&Conv2dSpec, &[f32], Option<&[f32]>),
    pointwise: (&Conv2dSpec, &[f32], Option<&[f32]>),
    input: &Tensor,
) -> Result<Tensor> {
    crate::spec::check_separable(depthwise.0, pointwise.0)?;
    let mid = conv2d(depthwise.0, input, depthwise.1, depthwise.2)?;
    conv2d(pointwise.0, &mid, pointwise.1, pointwise.2)
}
