//! MobileNet v2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear
//! Bottlenecks", arXiv:1801.04381).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network};
use super::mobilenet_v1::check_alpha;
use crate::error::Result;
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// MobileNet v2 as in the paper's Table 2: a 3×3 convolution to 32 channels, seventeen
/// inverted residual blocks, a 1×1 convolution to 1280, global average pooling and a
/// classifier.
///
/// An inverted residual block with expansion `t` is a pointwise expansion to `t·C` channels
/// (left out when `t = 1`), a 3×3 depthwise convolution carrying the block's stride, and a
/// *linear* pointwise projection (batch norm, no activation); when the stride is 1 and the
/// channels match, the input is added to the result. Every convolution is followed by batch
/// norm; ReLU6 follows all but the projections. Padding is TensorFlow's `SAME`.
///
/// # Counting
/// Weights only, as MobileNet v1: 3,469,760 parameters and 300,774,272 multiply-adds at
/// 1.0-224. The paper prints 3.4M and 300M (Table 4), i.e. truncated, not rounded.
///
/// # Width multiplier
/// Channel counts become `α·C` rounded to a multiple of 8 (never down by more than 10%), the
/// last 1×1 convolution keeps 1280 channels for α ≤ 1, as in the reference implementation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV2 {
    /// Width multiplier α (> 0).
    pub alpha: f64,
    /// Input height and width in pixels.
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl Default for MobileNetV2 {
    /// 1.0-224, 1000 classes, batch 1.
    fn default() -> Self {
        Self {
            alpha: 1.0,
            resolution: 224,
            classes: 1000,
            batch: 1,
        }
    }
}

/// Table 2: expansion t, output channels c, repeats n, first stride s.
const STAGES: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

/// `v` rounded to the nearest multiple of `divisor`, never below 90% of `v`.
fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut rounded = (((v + d / 2.0) / d).floor() * d).max(d);
    if rounded < 0.9 * v {
        rounded += d;
    }
    rounded as usize
}

impl MobileNetV2 {
    /// Builds the network.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for α not finite and positive, [`crate::Error::Zero`]
    /// for a zero resolution, batch or class count.
    pub fn build(&self) -> Result<Network> {
        check_alpha(self.alpha)?;
        let name = format!("MobileNet v2 {:?}-{}", self.alpha, self.resolution);
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(name, input, Counting::WEIGHTS)?;
        let relu6 = Activation::Relu6;
        let mut c = make_divisible(32.0 * self.alpha, 8);
        let mut x = b.conv(
            "conv1",
            b.input(),
            Conv2dSpec::new(3, c, [3, 3])
                .stride([2, 2])
                .padding(Padding::same())
                .bias(false)
                .activation(relu6),
            true,
        )?;
        let mut block = 0;
        for (t, c_out, repeats, first_stride) in STAGES {
            let c_out = make_divisible(c_out as f64 * self.alpha, 8);
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let hidden = c * t;
                let block_in = x;
                let mut y = x;
                if t != 1 {
                    let expand = Conv2dSpec::pointwise(c, hidden)
                        .bias(false)
                        .activation(relu6);
                    y = b.conv(format!("block_{block}_expand"), y, expand, true)?;
                }
                let dw = Conv2dSpec::depthwise(hidden, [3, 3])
                    .stride([stride, stride])
                    .padding(Padding::same())
                    .bias(false)
                    .activation(relu6);
                y = b.conv(format!("block_{block}_depthwise"), y, dw, true)?;
                let project = Conv2dSpec::pointwise(hidden, c_out).bias(false);
                y = b.conv(format!("block_{block}_project"), y, project, true)?;
                if stride == 1 && c == c_out {
                    y = b.add(format!("block_{block}_add"), y, block_in, Activation::None)?;
                }
                x = y;
                c = c_out;
                block += 1;
            }
        }
        let last = make_divisible(1280.0 * self.alpha.max(1.0), 8);
        x = b.conv(
            "conv_last",
            x,
            Conv2dSpec::pointwise(c, last).bias(false).activation(relu6),
            true,
        )?;
        x = b.global_avg_pool("global_pool", x)?;
        b.fully_connected("fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// MobileNet v2 with width multiplier `alpha` on a `resolution²` input, 1000 classes,
/// batch 1. See [`MobileNetV2`].
pub fn mobilenet_v2(alpha: f64, resolution: usize) -> Result<Network> {
    MobileNetV2 {
        alpha,
        resolution,
        ..Default::default()
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_matches_the_reference_rule() {
        assert_eq!(make_divisible(32.0, 8), 32);
        assert_eq!(make_divisible(24.0 * 0.35, 8), 8);
        assert_eq!(make_divisible(16.0 * 0.75, 8), 16); // 12 → 16 (round half up)
        assert_eq!(make_divisible(320.0 * 1.4, 8), 448);
        assert_eq!(make_divisible(4.0, 8), 8);
        assert_eq!(make_divisible(11.0, 8), 16); // 8 < 0.9·11 would round down too far
    }
}
