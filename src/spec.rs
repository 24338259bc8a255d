//! [`Conv2dSpec`]: the one description of a convolution that validation, output size,
//! kernel choice and cost accounting all read from.

use crate::error::{Error, Result};

pub use crate::activation::{Activation, Residual};
pub(crate) use crate::padding::same_upper_total;
pub use crate::padding::{Padding, Pads};
pub(crate) use crate::shape::checked_product;
pub use crate::shape::Shape;

/// Which kernel family a spec runs on. Chosen by [`Conv2dSpec::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConvKind {
    /// `groups == c_in`, `c_out == multiplier · c_in`: one filter per input channel (and per multiple).
    Depthwise {
        /// Output channels per input channel (1 for plain depthwise).
        multiplier: usize,
    },
    /// 1×1 kernel, `groups == 1`, no padding: a matrix product over channels (any stride).
    Pointwise,
    /// Everything else: grouped convolution with any number of groups, standard convolution
    /// (`groups == 1`) included. Its kernels (shaders/grouped.wgsl, the tiled product) take any
    /// groups, kernel, stride and dilation.
    General,
}

impl std::fmt::Display for ConvKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvKind::Depthwise { multiplier: 1 } => write!(f, "depthwise"),
            ConvKind::Depthwise { multiplier } => write!(f, "depthwise x{multiplier}"),
            ConvKind::Pointwise => write!(f, "pointwise"),
            ConvKind::General => write!(f, "general"),
        }
    }
}

/// A 2-D convolution, described once: PyTorch's `nn.Conv2d` with per-side padding and a fused
/// activation.
///
/// Weights are `[c_out, c_in/groups, kh, kw]`, bias `[c_out]`, tensors NCHW `f32`. Build with
/// [`Conv2dSpec::new`] (or [`Conv2dSpec::depthwise`] / [`Conv2dSpec::pointwise`]) and the
/// chaining setters; every field is public data and checked by [`Conv2dSpec::validate`], which
/// every consumer calls.
///
/// # Example
/// ```
/// use sepconv::{Activation, Conv2dSpec, ConvKind, Padding, Shape};
///
/// let spec = Conv2dSpec::depthwise(32, [3, 3])
///     .stride([2, 2])
///     .padding(Padding::uniform(1))
///     .activation(Activation::Relu6);
/// assert_eq!(spec.kind(), ConvKind::Depthwise { multiplier: 1 });
/// let out = spec.output_shape(Shape::new(1, 32, 112, 112)).unwrap();
/// assert_eq!(out, Shape::new(1, 32, 56, 56));
/// assert_eq!(spec.weight_count(), 32 * 9);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding.
    pub padding: Padding,
    /// Dilation `[dh, dw]`.
    pub dilation: [usize; 2],
    /// Number of groups; must divide `c_in` and `c_out`.
    pub groups: usize,
    /// Whether a bias `[c_out]` is added.
    pub bias: bool,
    /// Activation after the bias.
    pub activation: Activation,
}

impl Conv2dSpec {
    /// A standard convolution `c_in → c_out` with the given kernel; stride 1, no padding,
    /// dilation 1, one group, bias on (PyTorch's default), no activation.
    pub const fn new(c_in: usize, c_out: usize, kernel: [usize; 2]) -> Self {
        Self {
            c_in,
            c_out,
            kernel,
            stride: [1, 1],
            padding: Padding::valid(),
            dilation: [1, 1],
            groups: 1,
            bias: true,
            activation: Activation::None,
        }
    }

    /// A depthwise convolution over `channels` channels (`groups = c_in = c_out`), bias on
    /// (as [`Conv2dSpec::new`]; `.bias(false)` for none). Use [`Conv2dSpec::multiplier`] for a
    /// channel multiplier.
    pub const fn depthwise(channels: usize, kernel: [usize; 2]) -> Self {
        Self::new(channels, channels, kernel).groups(channels)
    }

    /// A pointwise (1×1) convolution `c_in → c_out`, bias on (as [`Conv2dSpec::new`];
    /// `.bias(false)` for none).
    pub const fn pointwise(c_in: usize, c_out: usize) -> Self {
        Self::new(c_in, c_out, [1, 1])
    }

    /// Sets the stride `[sh, sw]`.
    pub const fn stride(mut self, stride: [usize; 2]) -> Self {
        self.stride = stride;
        self
    }

    /// Sets the padding.
    pub const fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Sets the dilation `[dh, dw]`.
    pub const fn dilation(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }

    /// Sets the number of groups.
    pub const fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets `c_out = multiplier · c_in` (for depthwise specs, the channel multiplier).
    /// Saturates at `usize::MAX`, which [`Conv2dSpec::validate`] then rejects.
    pub const fn multiplier(mut self, multiplier: usize) -> Self {
        self.c_out = self.c_in.saturating_mul(multiplier);
        self
    }

    /// Turns the bias on or off.
    pub const fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets the fused activation.
    pub const fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// Checks every field: no zero sizes, `groups` divides both channel counts, and the
    /// weight count fits in memory arithmetic.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("c_in", self.c_in),
            ("c_out", self.c_out),
            ("kernel height", self.kernel[0]),
            ("kernel width", self.kernel[1]),
            ("stride height", self.stride[0]),
            ("stride width", self.stride[1]),
            ("dilation height", self.dilation[0]),
            ("dilation width", self.dilation[1]),
            ("groups", self.groups),
        ];
        for (what, v) in sizes {
            if v == 0 {
                return Err(Error::Zero { what });
            }
        }
        for (which, channels) in [("c_in", self.c_in), ("c_out", self.c_out)] {
            if !channels.is_multiple_of(self.groups) {
                return Err(Error::GroupsDoNotDivide {
                    groups: self.groups,
                    which,
                    channels,
                });
            }
        }
        checked_product("weights", &self.weight_dims())?;
        self.activation.validate()?;
        for (axis, k, d) in [
            ("height", self.kernel[0], self.dilation[0]),
            ("width", self.kernel[1], self.dilation[1]),
        ] {
            // The extent d·(k-1) + 1 is what `output_hw` and the kernels compute.
            if (k - 1)
                .checked_mul(d)
                .and_then(|e| e.checked_add(1))
                .is_none()
            {
                return Err(Error::Overflow {
                    what: "kernel extent",
                    detail: format!("{axis}: dilation {d} × (kernel {k} - 1) + 1"),
                });
            }
        }
        Ok(())
    }

    /// Input channels per group.
    /// (0 when `groups` is 0; [`Conv2dSpec::validate`] rejects that.)
    pub const fn c_in_per_group(&self) -> usize {
        match self.c_in.checked_div(self.groups) {
            Some(v) => v,
            None => 0,
        }
    }

    /// Output channels per group.
    /// (0 when `groups` is 0; [`Conv2dSpec::validate`] rejects that.)
    pub const fn c_out_per_group(&self) -> usize {
        match self.c_out.checked_div(self.groups) {
            Some(v) => v,
            None => 0,
        }
    }

    /// The kernel family this spec runs on. Meaningful for a valid spec.
    pub const fn kind(&self) -> ConvKind {
        if self.groups == self.c_in && self.groups > 0 && self.c_out.is_multiple_of(self.c_in) {
            // One input channel per group: depthwise, possibly with a channel multiplier.
            // (c_in = 1, groups = 1 is also a plain single-channel conv; depthwise covers it.)
            ConvKind::Depthwise {
                multiplier: self.c_out / self.c_in,
            }
        } else if self.kernel[0] == 1
            && self.kernel[1] == 1
            && self.groups == 1
            && matches!(
                self.padding,
                Padding::Explicit {
                    top: 0,
                    bottom: 0,
                    left: 0,
                    right: 0
                }
            )
        {
            ConvKind::Pointwise
        } else {
            ConvKind::General
        }
    }

    /// Weight tensor dimensions `[c_out, c_in/groups, kh, kw]`.
    pub const fn weight_dims(&self) -> [usize; 4] {
        [
            self.c_out,
            self.c_in_per_group(),
            self.kernel[0],
            self.kernel[1],
        ]
    }

    /// Number of weights, `c_out · c_in/groups · kh · kw`, unchecked: for a spec that
    /// [`Conv2dSpec::validate`] rejects (groups that do not divide the channels, a zero
    /// size) the number means nothing, and it saturates at `usize::MAX` for absurd sizes.
    /// [`Conv2dSpec::checked_weight_count`] refuses such specs.
    pub const fn weight_count(&self) -> usize {
        self.c_out
            .saturating_mul(self.c_in_per_group())
            .saturating_mul(self.kernel[0])
            .saturating_mul(self.kernel[1])
    }

    /// [`Conv2dSpec::weight_count`] of a valid spec.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::validate`], and [`Error::Overflow`] past `usize::MAX`.
    pub fn checked_weight_count(&self) -> Result<usize> {
        self.validate()?;
        self.c_out
            .checked_mul(self.c_in_per_group())
            .and_then(|n| n.checked_mul(self.kernel[0]))
            .and_then(|n| n.checked_mul(self.kernel[1]))
            .ok_or_else(|| Error::Overflow {
                what: "weight count",
                detail: format!("{:?} weights overflow usize", self.weight_dims()),
            })
    }

    /// The fields in which `self` and `other` differ, each as `field: self vs other` (empty
    /// when equal): what an error names instead of printing both specs.
    pub fn differences(&self, other: &Conv2dSpec) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: {a} vs {b}"));
            }
        };
        field("c_in", self.c_in.to_string(), other.c_in.to_string());
        field("c_out", self.c_out.to_string(), other.c_out.to_string());
        field(
            "kernel",
            format!("{:?}", self.kernel),
            format!("{:?}", other.kernel),
        );
        field(
            "stride",
            format!("{:?}", self.stride),
            format!("{:?}", other.stride),
        );
        field(
            "padding",
            format!("{:?}", self.padding),
            format!("{:?}", other.padding),
        );
        field(
            "dilation",
            format!("{:?}", self.dilation),
            format!("{:?}", other.dilation),
        );
        field("groups", self.groups.to_string(), other.groups.to_string());
        field("bias", self.bias.to_string(), other.bias.to_string());
        field(
            "activation",
            format!("{:?}", self.activation),
            format!("{:?}", other.activation),
        );
        out
    }

    /// Number of learned parameters: weights plus the bias if present (saturating).
    pub const fn param_count(&self) -> usize {
        self.weight_count()
            .saturating_add(if self.bias { self.c_out } else { 0 })
    }

    /// Padding for an input of `h × w` pixels (resolves [`Padding::SameUpper`]).
    ///
    /// Never panics. Meaningful for a valid spec and an input for which
    /// [`Conv2dSpec::output_hw`] succeeds; where the `SameUpper` padding would overflow `usize`
    /// (absurd sizes, reported by `output_hw` as [`Error::Overflow`]) it saturates.
    pub fn pads(&self, h: usize, w: usize) -> Pads {
        match self.padding {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => Pads {
                top,
                bottom,
                left,
                right,
            },
            Padding::SameUpper => {
                let total = |input: usize, k: usize, s: usize, d: usize| {
                    same_upper_total(input, k, s, d).unwrap_or(usize::MAX)
                };
                let th = total(h, self.kernel[0], self.stride[0], self.dilation[0]);
                let tw = total(w, self.kernel[1], self.stride[1], self.dilation[1]);
                Pads {
                    top: th / 2,
                    bottom: th - th / 2,
                    left: tw / 2,
                    right: tw - tw / 2,
                }
            }
        }
    }

    /// Output `[h_out, w_out]` for an `h × w` input, with PyTorch's rule
    /// `floor((in + pad_begin + pad_end - dilation·(k-1) - 1) / stride) + 1`.
    ///
    /// # Errors
    /// [`Error::EmptyOutput`] when the dilated kernel does not fit in the padded input, and the
    /// errors of [`Conv2dSpec::validate`].
    pub fn output_hw(&self, h: usize, w: usize) -> Result<[usize; 2]> {
        self.validate()?;
        for (what, v) in [("input height", h), ("input width", w)] {
            if v == 0 {
                return Err(Error::Zero { what });
            }
        }
        if self.padding == Padding::SameUpper {
            for (axis, input, i) in [("height", h, 0), ("width", w, 1)] {
                let (k, s, d) = (self.kernel[i], self.stride[i], self.dilation[i]);
                if same_upper_total(input, k, s, d).is_none() {
                    return Err(Error::Overflow {
                        what: "SAME padding",
                        detail: format!(
                            "{axis}: (ceil({input} / {s}) - 1) × {s} + {d} × ({k} - 1) + 1"
                        ),
                    });
                }
            }
        }
        let pads = self.pads(h, w);
        let axis = |name: &'static str, input: usize, pad: usize, k: usize, s: usize, d: usize| {
            let padded = input.checked_add(pad).ok_or_else(|| Error::Overflow {
                what: "padded input",
                detail: format!("{name}: {input} + {pad}"),
            })?;
            let extent = d * (k - 1) + 1;
            if padded < extent {
                return Err(Error::EmptyOutput {
                    axis: name,
                    input,
                    padding: pad,
                    padded,
                    kernel: k,
                    dilation: d,
                    kernel_extent: extent,
                });
            }
            Ok((padded - extent) / s + 1)
        };
        Ok([
            axis(
                "height",
                h,
                pads.top.saturating_add(pads.bottom),
                self.kernel[0],
                self.stride[0],
                self.dilation[0],
            )?,
            axis(
                "width",
                w,
                pads.left.saturating_add(pads.right),
                self.kernel[1],
                self.stride[1],
                self.dilation[1],
            )?,
        ])
    }

    /// Output shape for an input shape; checks the input's channels against `c_in`.
    ///
    /// # Errors
    /// [`Error::ChannelMismatch`], [`Error::Zero`], and those of [`Conv2dSpec::output_hw`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.validate()?;
        input.validate()?;
        if input.c != self.c_in {
            if input.w == self.c_in {
                // Channels last, as TensorFlow and images lay them out.
                return Err(Error::InvalidArgument {
                    what: "input shape",
                    reason: format!(
                        "input {input} has {} channels but the spec expects c_in = {}; its \
                         last size is {}: is it NHWC? sepconv takes NCHW (transpose it, or \
                         build it with Shape::new(n, c, h, w))",
                        input.c, self.c_in, input.w
                    ),
                });
            }
            return Err(Error::ChannelMismatch {
                expected: self.c_in,
                got: input.c,
            });
        }
        let [h, w] = self.output_hw(input.h, input.w)?;
        let out = Shape::new(input.n, self.c_out, h, w);
        out.len()?;
        Ok(out)
    }

    /// Multiply-accumulates of one forward pass over `input`:
    /// `n · c_out · h_out · w_out · (c_in/groups) · kh · kw` (bias and activation excluded,
    /// padded taps counted, as the papers count).
    pub fn macs(&self, input: Shape) -> Result<u64> {
        let out = self.output_shape(input)?;
        let per_output = (self.c_in_per_group() * self.kernel[0] * self.kernel[1]) as u64;
        (out.len()? as u64)
            .checked_mul(per_output)
            .ok_or_else(|| Error::Overflow {
                what: "MACs",
                detail: format!("{out} outputs × {per_output}"),
            })
    }

    /// The same layer with `groups = 1`: the standard convolution a grouped or depthwise
    /// layer stands in for.
    pub const fn as_standard(&self) -> Self {
        let mut s = *self;
        s.groups = 1;
        s
    }

    /// Checks weight and bias lengths against the spec.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong weight or bias length, [`Error::BiasMismatch`]
    /// when a bias is given without `bias = true` or missing with it.
    pub fn check_parameters(&self, weights: usize, bias: Option<usize>) -> Result<()> {
        self.validate()?;
        if weights != self.weight_count() {
            let [o, i, kh, kw] = self.weight_dims();
            return Err(Error::LengthMismatch {
                what: "weights",
                expected: self.weight_count(),
                got: weights,
                hint: Some(format!(
                    "[c_out, c_in/groups, kh, kw] = [{o}, {i}, {kh}, {kw}]"
                )),
            });
        }
        match (self.bias, bias) {
            (true, Some(len)) if len != self.c_out => Err(Error::LengthMismatch {
                what: "bias",
                expected: self.c_out,
                got: len,
                hint: Some("[c_out]".into()),
            }),
            (true, Some(_)) | (false, None) => Ok(()),
            (spec_has_bias, given) => Err(Error::BiasMismatch {
                spec_has_bias,
                given: given.is_some(),
            }),
        }
    }
}

/// Checks that two specs form a depthwise separable block.
pub(crate) fn check_separable(depthwise: &Conv2dSpec, pointwise: &Conv2dSpec) -> Result<()> {
    depthwise.validate()?;
    pointwise.validate()?;
    let incompatible = |reason: String| Err(crate::Error::Incompatible { reason });
    if !matches!(depthwise.kind(), ConvKind::Depthwise { .. }) {
        return incompatible(format!(
            "the first conv of a separable block must be depthwise, got {} (c_in {}, groups {})",
            depthwise.kind(),
            depthwise.c_in,
            depthwise.groups
        ));
    }
    if pointwise.kind() != ConvKind::Pointwise {
        return incompatible(format!(
            "the second conv of a separable block must be pointwise (1×1, groups 1, no padding), got {}",
            pointwise.kind()
        ));
    }
    if depthwise.c_out != pointwise.c_in {
        return incompatible(format!(
            "cannot chain the separable block: depthwise gives {} channels but pointwise expects c_in = {}",
            depthwise.c_out, pointwise.c_in
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_upper_splits_odd_padding_to_the_end() {
        // k=4, s=1, in=5: total padding 3 → top 1, bottom 2 (ONNX SAME_UPPER).
        let spec = Conv2dSpec::new(1, 1, [4, 4]).padding(Padding::same());
        let p = spec.pads(5, 5);
        assert_eq!((p.top, p.bottom, p.left, p.right), (1, 2, 1, 2));
        assert_eq!(spec.output_hw(5, 5).unwrap(), [5, 5]);
        // Stride 2, non-square: output = ceil(in / 2).
        let spec = Conv2dSpec::new(1, 1, [3, 3])
            .stride([2, 2])
            .padding(Padding::same());
        assert_eq!(spec.output_hw(7, 10).unwrap(), [4, 5]);
        let p = spec.pads(7, 10);
        // h: (4-1)*2+3-7 = 2 → 1/1; w: (5-1)*2+3-10 = 1 → 0/1.
        assert_eq!((p.top, p.bottom, p.left, p.right), (1, 1, 0, 1));
    }

    #[test]
    fn coords_invert_index() {
        let s = Shape::new(2, 3, 5, 7);
        for i in 0..s.len().unwrap() {
            let [n, c, h, w] = s.coords(i);
            assert_eq!(s.index(n, c, h, w), i);
        }
    }
}
