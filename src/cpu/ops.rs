//! CPU references for the ops whole networks need besides convolution, the oracle for
//! [`crate::ops::gpu`]. Plain loops, PyTorch's semantics written out; averages accumulate in
//! `f64`. Add, concatenation, activation, max pooling and channel shuffle are exact in `f32`
//! (one rounding per element at most), so the GPU must match them bit for bit.

use crate::error::Result;
use crate::ops_spec::{
    add_shape, concat_shape, shuffle_shape, shuffle_source_channel, Pool2d, PoolKind,
};
use crate::spec::Activation;
use crate::tensor::Tensor;

/// `activation(a + b)`, elementwise, added in `f32` (as the GPU does).
///
/// # Errors
/// [`crate::Error::Incompatible`] for different shapes.
///
/// # Example
/// ```
/// use sepconv::{ops::cpu, Activation, Shape, Tensor};
///
/// let a = Tensor::new(Shape::new(1, 1, 1, 3), vec![1.0, -4.0, 5.0])?;
/// let b = Tensor::new(Shape::new(1, 1, 1, 3), vec![2.0, 1.0, 2.0])?;
/// assert_eq!(cpu::add(&a, &b, Activation::Relu6)?.data(), &[3.0, 0.0, 6.0]);
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn add(a: &Tensor, b: &Tensor, activation: Activation) -> Result<Tensor> {
    activation.validate()?;
    let shape = add_shape(a.shape(), b.shape())?;
    let data = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| activation.apply(x + y))
        .collect();
    Tensor::new(shape, data)
}

/// `activation([a, b])` along channels: per batch item, `a`'s channels then `b`'s.
///
/// # Errors
/// [`crate::Error::Incompatible`] when batch or spatial sizes differ.
pub fn concat(a: &Tensor, b: &Tensor, activation: Activation) -> Result<Tensor> {
    activation.validate()?;
    let shape = concat_shape(a.shape(), b.shape())?;
    let plane = shape.h * shape.w;
    let (block_a, block_b) = (a.shape().c * plane, b.shape().c * plane);
    let mut data = Vec::with_capacity(shape.len()?);
    for n in 0..shape.n {
        data.extend_from_slice(&a.data()[n * block_a..(n + 1) * block_a]);
        data.extend_from_slice(&b.data()[n * block_b..(n + 1) * block_b]);
    }
    for v in &mut data {
        *v = activation.apply(*v);
    }
    Tensor::new(shape, data)
}

/// `activation(x)`.
///
/// # Errors
/// [`crate::Error::InvalidArgument`] for an activation with invalid parameters
/// ([`Activation::validate`]).
pub fn activation(x: &Tensor, activation: Activation) -> Result<Tensor> {
    activation.validate()?;
    let data = x.data().iter().map(|&v| activation.apply(v)).collect();
    Tensor::new(x.shape(), data)
}

/// Pools `x` with `pool` (PyTorch's `MaxPool2d` / `AvgPool2d`, `ceil_mode = false`).
///
/// # Errors
/// The shape errors of [`Pool2d::output_shape`].
///
/// # Example
/// ```
/// use sepconv::ops::{cpu, Pool2d};
/// use sepconv::{Padding, Shape, Tensor};
///
/// let x = Tensor::new(Shape::new(1, 1, 2, 2), vec![1.0, 2.0, 3.0, 6.0])?;
/// assert_eq!(cpu::pool2d(&x, &Pool2d::global_avg(2, 2))?.data(), &[3.0]);
/// let max = Pool2d::max([2, 2], [1, 1], Padding::explicit(0, 1, 0, 1));
/// assert_eq!(cpu::pool2d(&x, &max)?.data(), &[6.0, 6.0, 6.0, 6.0]);
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn pool2d(x: &Tensor, pool: &Pool2d) -> Result<Tensor> {
    let xs = x.shape();
    let out = pool.output_shape(xs)?;
    let pads = pool.as_window(xs.c).pads(xs.h, xs.w);
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    let mut data = vec![0f32; out.len()?];
    for n in 0..out.n {
        for c in 0..out.c {
            for oh in 0..out.h {
                for ow in 0..out.w {
                    let mut max = f32::NEG_INFINITY;
                    let mut sum = 0f64;
                    let mut count = 0usize;
                    for ky in 0..kh {
                        // Input row = oh·stride - pad_top + ky; outside the image → padding.
                        let ih = (oh * sh + ky) as isize - pads.top as isize;
                        if ih < 0 || ih >= xs.h as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let iw = (ow * sw + kx) as isize - pads.left as isize;
                            if iw < 0 || iw >= xs.w as isize {
                                continue;
                            }
                            let v = x.data()[xs.index(n, c, ih as usize, iw as usize)];
                            max = max.max(v);
                            sum += f64::from(v);
                            count += 1;
                        }
                    }
                    data[out.index(n, c, oh, ow)] = match pool.kind {
                        PoolKind::Max => max,
                        PoolKind::Avg {
                            count_include_pad: true,
                        } => (sum / (kh * kw) as f64) as f32,
                        PoolKind::Avg {
                            count_include_pad: false,
                        } => (sum / count as f64) as f32,
                    };
                }
            }
        }
    }
    Tensor::new(out, data)
}

/// ShuffleNet's channel shuffle with `groups` groups
/// (see [`crate::ops_spec::shuffle_source_channel`]).
///
/// # Errors
/// [`crate::Error::GroupsDoNotDivide`], [`crate::Error::Zero`].
pub fn channel_shuffle(x: &Tensor, groups: usize) -> Result<Tensor> {
    let shape = shuffle_shape(x.shape(), groups)?;
    let plane = shape.h * shape.w;
    let mut data = Vec::with_capacity(shape.len()?);
    for n in 0..shape.n {
        for oc in 0..shape.c {
            let ic = shuffle_source_channel(oc, shape.c, groups);
            let start = shape.index(n, ic, 0, 0);
            data.extend_from_slice(&x.data()[start..start + plane]);
        }
    }
    Tensor::new(shape, data)
}
