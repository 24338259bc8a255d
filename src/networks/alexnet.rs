//! AlexNet (Krizhevsky, Sutskever and Hinton 2012, "ImageNet Classification with Deep
//! Convolutional Neural Networks"), with the two GPU groups of its Figure 2.

use super::builder::NetworkBuilder;
use super::graph::{Counting, Network};
use crate::error::{Error, Result};
use crate::ops_spec::Pool2d;
use crate::spec::{Activation, Conv2dSpec, Padding, Shape};

/// AlexNet as trained on two GPUs: five convolutions (96 11×11 stride 4; 256 5×5; 384, 384,
/// 256 3×3), three 3×3 stride-2 max pools, three fully connected layers (4096, 4096, 1000).
/// The second, fourth and fifth convolutions only see the half of the channels on their own
/// GPU: they are grouped convolutions with 2 groups (the third and the fully connected
/// layers talk across GPUs). ReLU follows every layer but the last; every layer has a bias.
///
/// The input is 227×227 (the reference Caffe model's size): with the paper's "224×224" the
/// first layer's arithmetic does not give its 55×55 output. Local response normalisation is
/// left out; it has no parameters and no multiply-accumulates in the count. The first fully
/// connected layer reads the flattened 256×6×6 pool output.
///
/// # Counting
/// Weights and biases: 60,965,224, the paper's "60 million parameters" (§1). Multiply-adds:
/// 724,406,816.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlexNet {
    /// Groups of the second, fourth and fifth convolutions (2 in the paper; 1 gives the
    /// single-GPU variant with the same layer sizes).
    pub groups: usize,
    /// Input height and width in pixels.
    pub resolution: usize,
    /// Classifier outputs.
    pub classes: usize,
    /// Batch size of the input.
    pub batch: usize,
}

impl Default for AlexNet {
    /// Two groups, 227×227, 1000 classes, batch 1.
    fn default() -> Self {
        Self {
            groups: 2,
            resolution: 227,
            classes: 1000,
            batch: 1,
        }
    }
}

impl AlexNet {
    /// Builds the network.
    ///
    /// # Errors
    /// [`Error::GroupsDoNotDivide`] for groups that do not divide 96, 256 and 384,
    /// [`Error::Zero`], [`Error::EmptyOutput`] for an input too small.
    pub fn build(&self) -> Result<Network> {
        if self.groups == 0 {
            return Err(Error::Zero { what: "groups" });
        }
        let input = Shape::new(self.batch, 3, self.resolution, self.resolution);
        let name = format!("AlexNet ({} groups)", self.groups);
        let mut b = NetworkBuilder::new(name, input, Counting::WEIGHTS_AND_BIASES)?;
        let relu = Activation::Relu;
        let pool = Pool2d::max([3, 3], [2, 2], Padding::valid());
        let conv = |c_in, c_out, k: usize, pad, groups| {
            Conv2dSpec::new(c_in, c_out, [k, k])
                .padding(Padding::uniform(pad))
                .groups(groups)
                .activation(relu)
        };
        let g = self.groups;
        let mut x = b.conv(
            "conv1",
            b.input(),
            conv(3, 96, 11, 0, 1).stride([4, 4]),
            false,
        )?;
        x = b.pool("pool1", x, pool)?;
        x = b.conv("conv2", x, conv(96, 256, 5, 2, g), false)?;
        x = b.pool("pool2", x, pool)?;
        x = b.conv("conv3", x, conv(256, 384, 3, 1, 1), false)?;
        x = b.conv("conv4", x, conv(384, 384, 3, 1, g), false)?;
        x = b.conv("conv5", x, conv(384, 256, 3, 1, g), false)?;
        x = b.pool("pool5", x, pool)?;
        x = b.flatten("flatten", x)?;
        x = b.fully_connected("fc6", x, 4096, true, relu)?;
        x = b.fully_connected("fc7", x, 4096, true, relu)?;
        b.fully_connected("fc8", x, self.classes, true, Activation::None)?;
        Ok(b.build())
    }
}

/// AlexNet with two groups on a 227×227 input, 1000 classes, batch 1.
pub fn alexnet() -> Result<Network> {
    AlexNet::default().build()
}
