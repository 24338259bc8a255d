//! ShuffleNet v1 (Zhang et al. 2017, "ShuffleNet: An Extremely Efficient Convolutional Neural
//! Network for Mobile Devices", arXiv:1707.01083).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network, NodeId};
use crate::error::{Error, Result};
use crate::ops_spec::Pool2d;
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// ShuffleNet v1 1× as in the paper's Table 1: a 3×3 stride-2 convolution to 24 channels, a
/// 3×3 stride-2 max pool, three stages of ShuffleNet units (4, 8, 4), global average pooling
/// and a fully connected classifier.
///
/// A unit (Figure 2) is a grouped 1×1 convolution to a bottleneck of a quarter of the
/// stage's output channels (batch norm, ReLU), a channel shuffle, a 3×3 depthwise convolution
/// (batch norm, no ReLU) and a grouped 1×1 convolution (batch norm). With stride 1 the input is
/// added and ReLU applied; the first unit of a stage has stride 2, its shortcut is a 3×3
/// stride-2 average pool, and the branch's output (stage channels minus input channels) is
/// concatenated after it, then ReLU. The first 1×1 of stage 2 is not grouped ("the number of
/// input channels is relatively small"). Padding is PyTorch-style symmetric.
///
/// # Counting
/// Multiply-adds of convolutions and the classifier: 137,460,672 for g = 3, the paper's
/// "137 MFLOPs" (Table 1 and Table 2). Parameters are counted as PyTorch trains them
/// ([`Counting::TRAINABLE`]); the paper prints none.
///
/// Table 1's other columns come out as 143,078,976 (g = 1, printed 143M), 140,836,512
/// (g = 2, printed 140M), 134,339,776 (g = 4, printed 133M) and 138,365,952 (g = 8, printed
/// 137M). The last two are not reproduced by this construction (bottleneck = a quarter of
/// the stage's output channels, the stride-2 branch producing output minus input channels);
/// the paper does not say how it rounds the channel counts there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShuffleNetV1 {
    /// Groups of the 1×1 convolutions: 1, 2, 3, 4 or 8 (Table 1's columns).
    pub groups: usize,
    /// Input height and width in pixels.
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl Default for ShuffleNetV1 {
    /// 1×, g = 3, 224×224, 1000 classes, batch 1.
    fn default() -> Self {
        Self {
            groups: 3,
            resolution: 224,
            classes: 1000,
            batch: 1,
        }
    }
}

/// One ShuffleNet unit reading `from`, producing `c_out` channels: the builder half of
/// [`ShuffleNetV1`], public so a single unit can be built and run on its own.
///
/// `first_grouped` says whether the first 1×1 convolution is grouped (false only for the
/// first unit of stage 2).
///
/// # Errors
/// [`Error::GroupsDoNotDivide`] when the channel counts do not split into `groups`, and the
/// shape errors of the layers.
pub fn shufflenet_unit(
    b: &mut NetworkBuilder,
    name: &str,
    from: NodeId,
    c_out: usize,
    groups: usize,
    stride: usize,
    first_grouped: bool,
) -> Result<NodeId> {
    let c_in = b.shape(from)?.c;
    let branch_out = if stride == 1 {
        c_out
    } else {
        c_out.checked_sub(c_in).ok_or_else(|| Error::Incompatible {
            reason: format!("a stride-2 unit needs c_out ({c_out}) ≥ c_in ({c_in})"),
        })?
    };
    let mid = c_out / 4;
    let g1 = if first_grouped { groups } else { 1 };
    let relu = Activation::Relu;
    let mut x = b.conv(
        format!("{name}.gconv1"),
        from,
        Conv2dSpec::pointwise(c_in, mid)
            .groups(g1)
            .bias(false)
            .activation(relu),
        true,
    )?;
    if groups > 1 {
        x = b.channel_shuffle(format!("{name}.shuffle"), x, groups)?;
    }
    x = b.conv(
        format!("{name}.dwconv"),
        x,
        Conv2dSpec::depthwise(mid, [3, 3])
            .stride([stride, stride])
            .padding(Padding::uniform(1))
            .bias(false),
        true,
    )?;
    x = b.conv(
        format!("{name}.gconv2"),
        x,
        Conv2dSpec::pointwise(mid, branch_out)
            .groups(groups)
            .bias(false),
        true,
    )?;
    if stride == 1 {
        b.add(format!("{name}.add"), x, from, relu)
    } else {
        let shortcut = b.pool(
            format!("{name}.shortcut_pool"),
            from,
            Pool2d::avg([3, 3], [stride, stride], Padding::uniform(1)),
        )?;
        b.concat(format!("{name}.concat"), shortcut, x, relu)
    }
}

impl ShuffleNetV1 {
    /// Stage 2's output channels for `groups` (Table 1); stages 3 and 4 double it.
    pub const fn stage2_channels(groups: usize) -> Option<usize> {
        match groups {
            1 => Some(144),
            2 => Some(200),
            3 => Some(240),
            4 => Some(272),
            8 => Some(384),
            _ => None,
        }
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a group count Table 1 has no column for,
    /// [`Error::Zero`] for a zero size, [`Error::EmptyOutput`] for an input too small.
    pub fn build(&self) -> Result<Network> {
        let stage2 = Self::stage2_channels(self.groups).ok_or_else(|| Error::InvalidArgument {
            what: "ShuffleNet groups",
            reason: format!("Table 1 has g = 1, 2, 3, 4, 8; got {}", self.groups),
        })?;
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(
            format!("ShuffleNet v1 1x g={}", self.groups),
            input,
            Counting::TRAINABLE,
        )?;
        let mut x = b.conv(
            "conv1",
            b.input(),
            Conv2dSpec::new(3, 24, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1))
                .bias(false)
                .activation(Activation::Relu),
            true,
        )?;
        x = b.pool(
            "maxpool",
            x,
            Pool2d::max([3, 3], [2, 2], Padding::uniform(1)),
        )?;
        for (stage, repeats) in [(2usize, 4usize), (3, 8), (4, 4)] {
            let c_out = stage2 << (stage - 2);
            for unit in 0..repeats {
                let stride = if unit == 0 { 2 } else { 1 };
                let first_grouped = !(stage == 2 && unit == 0);
                x = shufflenet_unit(
                    &mut b,
                    &format!("stage{stage}.{unit}"),
                    x,
                    c_out,
                    self.groups,
                    stride,
                    first_grouped,
                )?;
            }
        }
        x = b.global_avg_pool("global_pool", x)?;
        b.fully_connected("fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// ShuffleNet v1 1× with `groups` groups on a 224×224 input, 1000 classes, batch 1.
pub fn shufflenet_v1(groups: usize) -> Result<Network> {
    ShuffleNetV1 {
        groups,
        ..Default::default()
    }
    .build()
}
