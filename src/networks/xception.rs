//! Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions",
//! arXiv:1610.02357).

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network, NodeId};
use crate::error::Result;
use crate::ops_spec::Pool2d;
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// Xception as in the paper's Figure 5: entry flow (two 3×3 convolutions, three blocks of two
/// separable convolutions with a max-pooled, 1×1-projected shortcut), middle flow (eight
/// residual blocks of three 728-channel separable convolutions) and exit flow (one more
/// projected block, two separable convolutions to 1536 and 2048, global average pooling, a
/// fully connected classifier).
///
/// A "separable convolution" is a 3×3 depthwise convolution then a 1×1 pointwise one, with
/// no batch norm or activation between them (Keras' `SeparableConv2D`); batch norm follows
/// every pointwise and every standard convolution. The ReLU that Figure 5 puts *before* a
/// separable convolution at the start of a block is a separate node, because the shortcut
/// reads the value before it; the other ReLUs are fused. The entry flow's first two
/// convolutions are unpadded, everything else uses `SAME` padding, as in the reference
/// Keras implementation.
///
/// # Counting (Table 3)
/// 22,855,952 parameters: Keras' trainable count, i.e. weights, the classifier's bias, and
/// batch norm's γ and β ([`Counting::TRAINABLE`]). No convolution has a bias. With batch
/// norm's running statistics (Keras' "total params") it is 22,910,480.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Xception {
    /// Input height and width in pixels (299 in the paper).
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl Default for Xception {
    /// 299×299 input, 1000 classes, batch 1.
    fn default() -> Self {
        Self {
            resolution: 299,
            classes: 1000,
            batch: 1,
        }
    }
}

struct Flow<'a> {
    b: &'a mut NetworkBuilder,
}

impl Flow<'_> {
    /// Depthwise 3×3 (no batch norm, no activation) then pointwise with batch norm.
    fn separable(
        &mut self,
        name: &str,
        from: NodeId,
        c_out: usize,
        activation: Activation,
    ) -> Result<NodeId> {
        let c = self.b.shape(from)?.c;
        let dw = Conv2dSpec::depthwise(c, [3, 3])
            .padding(Padding::same())
            .bias(false);
        let x = self.b.conv(format!("{name}_dw"), from, dw, false)?;
        let pw = Conv2dSpec::pointwise(c, c_out)
            .bias(false)
            .activation(activation);
        self.b.conv(format!("{name}_pw"), x, pw, true)
    }

    /// An entry/exit block: [ReLU] → sep(c1) → ReLU → sep(c2) → max pool 3×3/2, plus a 1×1
    /// stride-2 projection of the block input.
    fn projected_block(
        &mut self,
        name: &str,
        from: NodeId,
        c1: usize,
        c2: usize,
        relu_first: bool,
    ) -> Result<NodeId> {
        let c = self.b.shape(from)?.c;
        let shortcut = self.b.conv(
            format!("{name}_shortcut"),
            from,
            Conv2dSpec::pointwise(c, c2)
                .stride([2, 2])
                .padding(Padding::same())
                .bias(false),
            true,
        )?;
        let mut x = from;
        if relu_first {
            x = self
                .b
                .activation(format!("{name}_relu"), x, Activation::Relu)?;
        }
        x = self.separable(&format!("{name}_sep1"), x, c1, Activation::Relu)?;
        x = self.separable(&format!("{name}_sep2"), x, c2, Activation::None)?;
        x = self.b.pool(
            format!("{name}_pool"),
            x,
            Pool2d::max([3, 3], [2, 2], Padding::same()),
        )?;
        self.b
            .add(format!("{name}_add"), x, shortcut, Activation::None)
    }
}

impl Xception {
    /// Builds the network.
    ///
    /// # Errors
    /// [`crate::Error::Zero`] for a zero size, [`crate::Error::EmptyOutput`] for an input too
    /// small for the two unpadded 3×3 convolutions.
    pub fn build(&self) -> Result<Network> {
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let mut b = NetworkBuilder::new(
            format!("Xception-{}", self.resolution),
            input,
            Counting::TRAINABLE,
        )?;
        let relu = Activation::Relu;
        let conv = |c_in, c_out| {
            Conv2dSpec::new(c_in, c_out, [3, 3])
                .bias(false)
                .activation(relu)
        };
        let mut x = b.conv("entry_conv1", b.input(), conv(3, 32).stride([2, 2]), true)?;
        x = b.conv("entry_conv2", x, conv(32, 64), true)?;
        let mut flow = Flow { b: &mut b };
        x = flow.projected_block("entry_block1", x, 128, 128, false)?;
        x = flow.projected_block("entry_block2", x, 256, 256, true)?;
        x = flow.projected_block("entry_block3", x, 728, 728, true)?;
        for i in 1..=8 {
            let name = format!("middle_block{i}");
            let mut y = flow
                .b
                .activation(format!("{name}_relu"), x, Activation::Relu)?;
            y = flow.separable(&format!("{name}_sep1"), y, 728, relu)?;
            y = flow.separable(&format!("{name}_sep2"), y, 728, relu)?;
            y = flow.separable(&format!("{name}_sep3"), y, 728, Activation::None)?;
            x = flow.b.add(format!("{name}_add"), y, x, Activation::None)?;
        }
        x = flow.projected_block("exit_block1", x, 728, 1024, true)?;
        x = flow.separable("exit_sep1", x, 1536, relu)?;
        x = flow.separable("exit_sep2", x, 2048, relu)?;
        x = b.global_avg_pool("global_pool", x)?;
        b.fully_connected("fc", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// Xception on a 299×299 input, 1000 classes, batch 1. See [`Xception`].
pub fn xception() -> Result<Network> {
    Xception::default().build()
}
