//! The small steps whole networks need besides convolution: pooling, residual add, channel
//! concatenation, a standalone activation and channel shuffle. This module describes them and
//! states their shape rules; [`crate::ops::cpu`] runs them on the CPU and [`crate::ops::gpu`] on
//! the GPU (one WGSL file per family under `shaders/`).
//!
//! None of them has parameters, and the papers count none of them as multiply-accumulates.

use crate::error::{Error, Result};
use crate::spec::{Conv2dSpec, Padding, Shape};

/// How a pooling window is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// The largest value in the window; padded positions are ignored (never win).
    Max,
    /// The mean of the window.
    Avg {
        /// Whether padded positions count in the divisor (PyTorch's `count_include_pad`,
        /// default `true`). With `false` the divisor is the number of in-image positions
        /// (TensorFlow's `SAME` average pooling).
        count_include_pad: bool,
    },
}

/// A 2-D pooling window: PyTorch's `MaxPool2d` / `AvgPool2d` with `ceil_mode = false`, per
/// channel, NCHW.
///
/// # Example
/// ```
/// use sepconv::ops::{Pool2d, PoolKind};
/// use sepconv::{Padding, Shape};
///
/// // ResNet's stem pooling: 3×3, stride 2, padding 1.
/// let pool = Pool2d::max([3, 3], [2, 2], Padding::uniform(1));
/// assert_eq!(pool.output_shape(Shape::new(1, 64, 112, 112))?, Shape::new(1, 64, 56, 56));
/// // Global average pooling is a window over the whole plane.
/// let gap = Pool2d::global_avg(7, 7);
/// assert_eq!(gap.kind, PoolKind::Avg { count_include_pad: true });
/// assert_eq!(gap.output_shape(Shape::new(2, 1024, 7, 7))?, Shape::new(2, 1024, 1, 1));
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2d {
    /// Max or average.
    pub kind: PoolKind,
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding; explicit sides must not exceed half the window (PyTorch's rule), so every
    /// window holds at least one image pixel.
    pub padding: Padding,
}

impl Pool2d {
    /// Max pooling.
    pub const fn max(kernel: [usize; 2], stride: [usize; 2], padding: Padding) -> Self {
        Self {
            kind: PoolKind::Max,
            kernel,
            stride,
            padding,
        }
    }

    /// Average pooling with PyTorch's default `count_include_pad = true`.
    pub const fn avg(kernel: [usize; 2], stride: [usize; 2], padding: Padding) -> Self {
        Self {
            kind: PoolKind::Avg {
                count_include_pad: true,
            },
            kernel,
            stride,
            padding,
        }
    }

    /// Global average pooling over an `h × w` plane: one value per channel.
    pub const fn global_avg(h: usize, w: usize) -> Self {
        Self::avg([h, w], [1, 1], Padding::valid())
    }

    /// The window as a depthwise convolution spec over `channels` channels: same kernel,
    /// stride and padding, hence the same output size and padding rule.
    pub(crate) const fn as_window(&self, channels: usize) -> Conv2dSpec {
        Conv2dSpec::depthwise(channels, self.kernel)
            .stride(self.stride)
            .padding(self.padding)
            .bias(false)
    }

    /// Output shape for `input`.
    ///
    /// # Errors
    /// [`Error::Zero`] for a zero size, [`Error::EmptyOutput`] when the window does not fit,
    /// [`Error::InvalidArgument`] for explicit padding beyond half the window.
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        if let Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } = self.padding
        {
            let [kh, kw] = self.kernel;
            if top.max(bottom) > kh / 2 || left.max(right) > kw / 2 {
                return Err(Error::InvalidArgument {
                    what: "pooling padding",
                    reason: format!(
                        "padding (top {top}, bottom {bottom}, left {left}, right {right}) must be \
                         at most half the {kh}×{kw} window on each side"
                    ),
                });
            }
        }
        if input.c == 0 {
            return Err(Error::Zero { what: "channels c" });
        }
        self.as_window(input.c).output_shape(input)
    }
}

/// Shape of `a + b`: both operands must have the same shape.
///
/// # Errors
/// [`Error::Incompatible`] for different shapes, [`Error::Zero`] for an empty one.
pub fn add_shape(a: Shape, b: Shape) -> Result<Shape> {
    a.validate()?;
    if a != b {
        return Err(Error::Incompatible {
            reason: format!("cannot add tensors of shapes {a} and {b}"),
        });
    }
    Ok(a)
}

/// Shape of the channel concatenation `[a, b]`: same batch, height and width.
///
/// # Errors
/// [`Error::Incompatible`] when batch or spatial sizes differ, [`Error::Zero`], [`Error::Overflow`].
pub fn concat_shape(a: Shape, b: Shape) -> Result<Shape> {
    a.validate()?;
    b.validate()?;
    if (a.n, a.h, a.w) != (b.n, b.h, b.w) {
        return Err(Error::Incompatible {
            reason: format!("cannot concatenate channels of {a} and {b}: batch or size differ"),
        });
    }
    let out = Shape::new(a.n, a.c + b.c, a.h, a.w);
    out.len()?;
    Ok(out)
}

/// Checks a channel shuffle of `input` with `groups` groups (`groups` must divide the
/// channels) and returns the (unchanged) shape.
///
/// The shuffle is ShuffleNet's (Zhang et al. 2017, §3.1): view the channels as a
/// `groups × (c/groups)` matrix, transpose it, flatten. Output channel `j·groups + i` is input
/// channel `i·(c/groups) + j`; see [`shuffle_source_channel`].
///
/// # Errors
/// [`Error::Zero`], [`Error::GroupsDoNotDivide`].
pub fn shuffle_shape(input: Shape, groups: usize) -> Result<Shape> {
    input.validate()?;
    if groups == 0 {
        return Err(Error::Zero { what: "groups" });
    }
    if !input.c.is_multiple_of(groups) {
        return Err(Error::GroupsDoNotDivide {
            groups,
            which: "channels",
            channels: input.c,
        });
    }
    Ok(input)
}

/// The input channel that channel shuffle moves to output channel `out_channel`, for
/// `channels` channels in `groups` groups.
///
/// ```
/// // 6 channels in 2 groups: [a0 a1 a2 | b0 b1 b2] → [a0 b0 a1 b1 a2 b2].
/// let order: Vec<usize> = (0..6).map(|c| sepconv::ops::shuffle_source_channel(c, 6, 2)).collect();
/// assert_eq!(order, [0, 3, 1, 4, 2, 5]);
/// ```
pub const fn shuffle_source_channel(out_channel: usize, channels: usize, groups: usize) -> usize {
    let per_group = channels / groups;
    (out_channel % groups) * per_group + out_channel / groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_rejects_padding_beyond_half_the_window() {
        let pool = Pool2d::max([3, 3], [2, 2], Padding::uniform(2));
        assert!(matches!(
            pool.output_shape(Shape::new(1, 4, 8, 8)),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn shuffle_is_a_permutation_and_its_own_inverse_transposed() {
        let (c, g) = (12, 3);
        let mut seen = [false; 12];
        for o in 0..c {
            let i = shuffle_source_channel(o, c, g);
            assert!(!seen[i]);
            seen[i] = true;
            // Shuffling with c/g groups undoes shuffling with g groups.
            assert_eq!(shuffle_source_channel(i, c, c / g), o);
        }
    }

    #[test]
    fn shapes_are_checked() {
        let a = Shape::new(1, 3, 4, 4);
        assert!(add_shape(a, Shape::new(1, 3, 4, 5)).is_err());
        assert_eq!(
            concat_shape(a, Shape::new(1, 5, 4, 4)).unwrap(),
            Shape::new(1, 8, 4, 4)
        );
        assert!(concat_shape(a, Shape::new(2, 5, 4, 4)).is_err());
        assert!(matches!(
            shuffle_shape(a, 2),
            Err(Error::GroupsDoNotDivide { .. })
        ));
    }
}
