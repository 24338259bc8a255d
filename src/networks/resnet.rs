//! ResNet-50 (He et al. 2016, "Deep Residual Learning for Image Recognition") and ResNeXt-50
//! 32×4d (Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural Networks",
//! arXiv:1611.05431).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network, NodeId};
use crate::error::{Error, Result};
use crate::ops_spec::Pool2d;
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// A bottleneck ResNet or ResNeXt: a 7×7 stride-2 convolution and a 3×3 stride-2 max pool,
/// four stages of bottleneck blocks (1×1 reduce, 3×3 with `groups` groups, 1×1 expand to
/// 4× the stage's base width, plus the shortcut, then ReLU), global average pooling and a
/// fully connected classifier.
///
/// The stride of a stage's first block sits on the 3×3 convolution, as in the
/// implementation the ResNeXt paper used (fb.resnet.torch, later torchvision); this is what
/// gives its Table 1's 4.1 GFLOPs for ResNet-50 (the ResNet paper's original, stride on the
/// first 1×1, has 3.8). The first block of every stage projects the shortcut with a strided
/// 1×1 convolution and batch norm.
///
/// # Counting (ResNeXt paper, Table 1)
/// ResNet-50: 25.5M parameters, 4.1 GFLOPs (multiply-adds); ResNeXt-50 32×4d: 25.0M, 4.2.
/// The table rounds (4,089,184,256 multiply-adds print as 4.1), and rounded parameter counts
/// match with weights only ([`Counting::WEIGHTS`]): 25,502,912 and 24,959,680. Counting what
/// the framework trains as well ([`Counting::TRAINABLE`]: the classifier's bias, batch norm's
/// γ and β) gives torchvision's 25,557,032 and 25,028,904; the first would round to 25.6M.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResNet {
    /// Blocks per stage (`[3, 4, 6, 3]` for the 50-layer networks).
    pub blocks: [usize; 4],
    /// Groups of the 3×3 convolutions (cardinality; 1 for ResNet).
    pub groups: usize,
    /// Channels per group of the first stage's 3×3 convolution (64 for ResNet, 4 for
    /// ResNeXt 32×4d); doubles every stage.
    pub width_per_group: usize,
    /// Input height and width in pixels.
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl ResNet {
    /// ResNet-50 on a 224×224 input.
    pub const fn resnet50() -> Self {
        Self {
            blocks: [3, 4, 6, 3],
            groups: 1,
            width_per_group: 64,
            resolution: 224,
            classes: 1000,
            batch: 1,
        }
    }

    /// ResNeXt-50 32×4d on a 224×224 input.
    pub const fn resnext50_32x4d() -> Self {
        Self {
            groups: 32,
            width_per_group: 4,
            ..Self::resnet50()
        }
    }

    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::Zero`] for a zero size, [`Error::EmptyOutput`] for an input too small.
    pub fn build(&self) -> Result<Network> {
        if self.groups == 0 || self.width_per_group == 0 {
            return Err(Error::Zero {
                what: "groups and width per group",
            });
        }
        let name = if self.groups == 1 {
            format!("ResNet-{}", 2 + 3 * self.blocks.iter().sum::<usize>())
        } else {
            format!(
                "ResNeXt-{} {}x{}d",
                2 + 3 * self.blocks.iter().sum::<usize>(),
                self.groups,
                self.width_per_group
            )
        };
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(name, input, Counting::WEIGHTS)?;
        let relu = Activation::Relu;
        let mut x = b.conv(
            "conv1",
            b.input(),
            Conv2dSpec::new(3, 64, [7, 7])
                .stride([2, 2])
                .padding(Padding::uniform(3))
                .bias(false)
                .activation(relu),
            true,
        )?;
        x = b.pool(
            "maxpool",
            x,
            Pool2d::max([3, 3], [2, 2], Padding::uniform(1)),
        )?;
        for (stage, &blocks) in self.blocks.iter().enumerate() {
            let planes = 64 << stage;
            let width = planes * self.width_per_group / 64 * self.groups;
            let c_out = planes * 4;
            for block in 0..blocks {
                let name = format!("layer{}.{block}", stage + 1);
                let stride = if block == 0 && stage > 0 { 2 } else { 1 };
                x = bottleneck(&mut b, &name, x, width, c_out, self.groups, stride)?;
            }
        }
        x = b.global_avg_pool("avgpool", x)?;
        b.fully_connected("fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// One bottleneck block reading `from`: 1×1 to `width` channels, 3×3 with `groups` groups
/// and the block's `stride`, 1×1 to `c_out` (batch norm after each, ReLU after the first
/// two), plus the shortcut (a strided 1×1 projection with batch norm when the stride or the
/// channels change, the input itself otherwise), then ReLU. The builder half of [`ResNet`],
/// public so a single block can be built and run on its own.
///
/// # Errors
/// [`Error::GroupsDoNotDivide`] when `groups` does not divide `width`, and the shape errors
/// of the layers.
pub fn bottleneck(
    b: &mut NetworkBuilder,
    name: &str,
    from: NodeId,
    width: usize,
    c_out: usize,
    groups: usize,
    stride: usize,
) -> Result<NodeId> {
    let relu = Activation::Relu;
    let c = b.shape(from)?.c;
    let shortcut = if stride != 1 || c != c_out {
        let proj = Conv2dSpec::pointwise(c, c_out)
            .stride([stride, stride])
            .bias(false);
        b.conv(format!("{name}.downsample"), from, proj, true)?
    } else {
        from
    };
    let mut y = b.conv(
        format!("{name}.conv1"),
        from,
        Conv2dSpec::pointwise(c, width).bias(false).activation(relu),
        true,
    )?;
    y = b.conv(
        format!("{name}.conv2"),
        y,
        Conv2dSpec::new(width, width, [3, 3])
            .stride([stride, stride])
            .padding(Padding::uniform(1))
            .groups(groups)
            .bias(false)
            .activation(relu),
        true,
    )?;
    y = b.conv(
        format!("{name}.conv3"),
        y,
        Conv2dSpec::pointwise(width, c_out).bias(false),
        true,
    )?;
    b.add(format!("{name}.add"), y, shortcut, relu)
}

/// ResNet-50 on a 224×224 input, 1000 classes, batch 1.
pub fn resnet50() -> Result<Network> {
    ResNet::resnet50().build()
}

/// ResNeXt-50 32×4d on a 224×224 input, 1000 classes, batch 1.
pub fn resnext50_32x4d() -> Result<Network> {
    ResNet::resnext50_32x4d().build()
}
