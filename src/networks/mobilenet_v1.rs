//! MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for
//! Mobile Vision Applications", arXiv:1704.04861).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network};
use crate::error::{Error, Result};
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// MobileNet v1 as in the paper's Table 1: a 3×3 standard convolution, thirteen depthwise
/// separable blocks, global average pooling and a fully connected classifier.
///
/// Every convolution is followed by batch norm and ReLU6 (the released TF-Slim model; the
/// paper's Figure 3 draws ReLU) and has no bias; padding is TensorFlow's `SAME`. The
/// classifier is a pointwise convolution on the pooled `1024 × 1 × 1` tensor, with a bias.
///
/// # Counting (Table 1 and Table 2)
/// The paper counts weights only, the classifier's 1024·1000 weights included and its biases
/// not: 4,209,088 parameters and 568,740,352 mult-adds at 1.0-224, printed as 4.2M and 569M.
///
/// # Two misprints in the paper
/// - **Table 1 prints the last depthwise layer as "Conv dw / s2"** on a 7×7×1024 input. Only
///   stride 1 reproduces the totals (and the next row's 7×7 input): with stride 2 the
///   network has 533,833,216 mult-adds. [`MobileNetV1::last_depthwise_stride`] is 1 by default;
///   set it to 2 to see the difference.
/// - **Table 2 prints the first convolution's mult-add share as 1.19%**; it is 1.91%
///   (10,838,016 of 568,740,352). With 1.91% the printed shares add up to 100.01%, with
///   1.19% to 99.29%: two digits swapped. Its parameter share (0.02%) is right.
///
/// # Width multiplier α and resolution ρ (§3.3, §3.4)
/// Every layer's channel count `C` becomes `max(⌊α·C⌋, 8)` (TF-Slim's rule; exact for the
/// paper's α = 1, 0.75, 0.5, 0.25), the classifier keeps its 1000 outputs, and the input is
/// `resolution × resolution` (ρ = resolution / 224).
///
/// # Example
/// ```
/// use sepconv::networks::MobileNetV1;
///
/// let net = MobileNetV1 { alpha: 0.5, resolution: 160, ..Default::default() }.build()?;
/// assert_eq!(net.name(), "MobileNet v1 0.5-160");
/// assert_eq!(net.output_shape().c, 1000);
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MobileNetV1 {
    /// Width multiplier α (> 0).
    pub alpha: f64,
    /// Input height and width in pixels (224 in the paper's baseline).
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Stride of the thirteenth (last) depthwise layer: 1 reproduces the paper's totals, the
    /// 2 its Table 1 prints does not.
    pub last_depthwise_stride: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl Default for MobileNetV1 {
    /// 1.0-224, 1000 classes, batch 1.
    fn default() -> Self {
        Self {
            alpha: 1.0,
            resolution: 224,
            classes: 1000,
            last_depthwise_stride: 1,
            batch: 1,
        }
    }
}

/// The separable blocks of Table 1: output channels (before α) and depthwise stride.
const BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

impl MobileNetV1 {
    /// `max(⌊α·channels⌋, 8)`.
    pub fn channels(&self, channels: usize) -> usize {
        ((channels as f64 * self.alpha) as usize).max(8)
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for α not finite and positive, [`Error::Zero`] for a zero
    /// resolution, batch, class count or stride.
    pub fn build(&self) -> Result<Network> {
        check_alpha(self.alpha)?;
        let name = format!("MobileNet v1 {:?}-{}", self.alpha, self.resolution);
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(name, input, Counting::WEIGHTS)?;
        let act = Activation::Relu6;
        let mut c = self.channels(32);
        let mut x = b.conv(
            "conv1",
            b.input(),
            Conv2dSpec::new(3, c, [3, 3])
                .stride([2, 2])
                .padding(Padding::same())
                .bias(false)
                .activation(act),
            true,
        )?;
        for (i, &(c_out, stride)) in BLOCKS.iter().enumerate() {
            let stride = if i == BLOCKS.len() - 1 {
                self.last_depthwise_stride
            } else {
                stride
            };
            let c_out = self.channels(c_out);
            let dw = Conv2dSpec::depthwise(c, [3, 3])
                .stride([stride, stride])
                .padding(Padding::same())
                .bias(false)
                .activation(act);
            x = b.conv(format!("conv_dw_{}", i + 1), x, dw, true)?;
            let pw = Conv2dSpec::pointwise(c, c_out).bias(false).activation(act);
            x = b.conv(format!("conv_pw_{}", i + 1), x, pw, true)?;
            c = c_out;
        }
        x = b.global_avg_pool("global_pool", x)?;
        b.fully_connected("fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// MobileNet v1 with width multiplier `alpha` on a `resolution²` input, 1000 classes,
/// batch 1. See [`MobileNetV1`].
pub fn mobilenet_v1(alpha: f64, resolution: usize) -> Result<Network> {
    MobileNetV1 {
        alpha,
        resolution,
        ..Default::default()
    }
    .build()
}

pub(super) fn check_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() && alpha > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: "width multiplier",
            reason: format!("α must be a finite number above 0, got {alpha}"),
        })
    }
}
