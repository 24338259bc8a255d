//! EfficientNet-Lite (Tan & Le 2019, "EfficientNet: Rethinking Model Scaling for
//! Convolutional Neural Networks", arXiv:1905.11946; the "lite" variants of TensorFlow's
//! `efficientnet/lite` release, 2020).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network};
use crate::error::{Error, Result};
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// EfficientNet-Lite0 to Lite4: EfficientNet-B0's mobile inverted bottlenecks with the
/// changes of the lite release: no squeeze-and-excite, ReLU6 instead of swish, and the stem
/// (32 channels) and head (1280 channels), and the repeats of the first and last stages,
/// kept fixed while the rest is scaled. Padding is TensorFlow's `SAME`, batch norm follows
/// every convolution.
///
/// Node names are the module names of the widely used EfficientNet-PyTorch port
/// (`_conv_stem`, `_blocks.N._expand_conv`, `_blocks.N._depthwise_conv`,
/// `_blocks.N._project_conv`, `_conv_head`, `_fc`), so its checkpoints load with
/// [`crate::checkpoint::keys::efficientnet_lite`].
///
/// | variant | width | depth | resolution | params (TF README) |
/// |---|---|---|---|---|
/// | 0 | 1.0 | 1.0 | 224 | 4.7M |
/// | 1 | 1.0 | 1.1 | 240 | 5.4M |
/// | 2 | 1.1 | 1.2 | 260 | 6.1M |
/// | 3 | 1.2 | 1.4 | 280 | 8.2M |
/// | 4 | 1.4 | 1.8 | 300 | 13.0M |
///
/// Coefficients from `efficientnet_lite_builder.py` of the TensorFlow TPU models repository;
/// parameter counts from its `lite/README.md`, which counts what TensorFlow trains (weights,
/// biases, batch norm's γ and β: [`Counting::TRAINABLE`]). Lite0 has 4,652,008, exactly the
/// trainable tensors of the PyTorch port's checkpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientNetLite {
    /// Which variant, 0 to 4.
    pub variant: usize,
    /// Input height and width in pixels (the variant's own by [`EfficientNetLite::new`]).
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

/// `(width, depth, resolution)` of Lite0..Lite4.
const COEFFICIENTS: [(f64, f64, usize); 5] = [
    (1.0, 1.0, 224),
    (1.0, 1.1, 240),
    (1.1, 1.2, 260),
    (1.2, 1.4, 280),
    (1.4, 1.8, 300),
];

/// EfficientNet-B0's stages: repeats, kernel, first stride, expansion, output channels.
const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];

/// Batch norm's ε in every EfficientNet-Lite (TensorFlow's `batch_norm_epsilon = 1e-3`).
pub const EFFICIENTNET_LITE_BN_EPS: f32 = 1e-3;

/// TensorFlow's `round_filters`: `width·c` to the nearest multiple of 8, never below 90% of
/// it.
fn round_filters(c: usize, width: f64) -> usize {
    let v = c as f64 * width;
    let mut rounded = ((((v + 4.0) as usize) / 8) * 8).max(8);
    if (rounded as f64) < 0.9 * v {
        rounded += 8;
    }
    rounded
}

impl EfficientNetLite {
    /// Variant `variant` (0–4) at its own resolution, 1000 classes, batch 1.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a variant above 4.
    pub fn new(variant: usize) -> Result<Self> {
        let &(_, _, resolution) =
            COEFFICIENTS
                .get(variant)
                .ok_or_else(|| Error::InvalidArgument {
                    what: "EfficientNet-Lite variant",
                    reason: format!("{variant} is not one of 0, 1, 2, 3, 4"),
                })?;
        Ok(Self {
            variant,
            resolution,
            classes: 1000,
            batch: 1,
        })
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a variant above 4, [`Error::Zero`] for a zero
    /// resolution, batch or class count, the shape errors of a resolution too small.
    pub fn build(&self) -> Result<Network> {
        let (width, depth, _) = Self::new(self.variant).map(|_| COEFFICIENTS[self.variant])?;
        let name = format!("EfficientNet-Lite{}-{}", self.variant, self.resolution);
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(name, input, Counting::TRAINABLE)?;
        let relu6 = Activation::Relu6;
        let mut c = 32; // fixed stem
        let mut x = b.conv(
            "_conv_stem",
            b.input(),
            Conv2dSpec::new(3, c, [3, 3])
                .stride([2, 2])
                .padding(Padding::same())
                .bias(false)
                .activation(relu6),
            true,
        )?;
        let mut block = 0;
        for (stage, &(repeats, k, first_stride, expand, c_out)) in STAGES.iter().enumerate() {
            let c_out = round_filters(c_out, width);
            let repeats = if stage == 0 || stage == STAGES.len() - 1 {
                repeats
            } else {
                (repeats as f64 * depth).ceil() as usize
            };
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let block_in = x;
                let hidden = c * expand;
                let mut y = x;
                let prefix = format!("_blocks.{block}");
                if expand != 1 {
                    let spec = Conv2dSpec::pointwise(c, hidden)
                        .bias(false)
                        .activation(relu6);
                    y = b.conv(format!("{prefix}._expand_conv"), y, spec, true)?;
                }
                let dw = Conv2dSpec::depthwise(hidden, [k, k])
                    .stride([stride, stride])
                    .padding(Padding::same())
                    .bias(false)
                    .activation(relu6);
                y = b.conv(format!("{prefix}._depthwise_conv"), y, dw, true)?;
                let project = Conv2dSpec::pointwise(hidden, c_out).bias(false);
                y = b.conv(format!("{prefix}._project_conv"), y, project, true)?;
                if stride == 1 && c == c_out {
                    y = b.add(format!("{prefix}.add"), y, block_in, Activation::None)?;
                }
                x = y;
                c = c_out;
                block += 1;
            }
        }
        x = b.conv(
            "_conv_head",
            x,
            Conv2dSpec::pointwise(c, 1280).bias(false).activation(relu6),
            true,
        )?;
        x = b.global_avg_pool("_avg_pooling", x)?;
        b.fully_connected("_fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// EfficientNet-Lite `variant` (0–4) at its own resolution, 1000 classes, batch 1. See
/// [`EfficientNetLite`].
pub fn efficientnet_lite(variant: usize) -> Result<Network> {
    EfficientNetLite::new(variant)?.build()
}

#[cfg(test)]
mod tests {
    use super::round_filters;

    #[test]
    fn round_filters_matches_tensorflow() {
        assert_eq!(round_filters(16, 1.0), 16);
        assert_eq!(round_filters(16, 1.1), 16); // 17.6 → 16 (≥ 0.9·17.6)
        assert_eq!(round_filters(16, 1.2), 24); // 19.2 → 16 < 17.28 → 24
        assert_eq!(round_filters(40, 1.4), 56);
        assert_eq!(round_filters(320, 1.4), 448);
    }
}
