//! The benchmark layer set: 41 convolution layers from published networks, as data.
//!
//! Every speed number this crate reports (the criterion benches in `benches/conv.rs`, the
//! `report` example, `BENCHMARKS.md`) runs these layers, so the table is written out here once,
//! with the network and paper each layer comes from. All are NCHW `f32`, square kernels,
//! symmetric padding, bias on, no activation.
//!
//! | source | layers |
//! |---|---|
//! | MobileNet v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", Table 1) | all 27 convolutions at width 1.0, 224×224: the 3×3 stem, 13 depthwise 3×3, 13 pointwise |
//! | AlexNet (Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep Convolutional Neural Networks") | conv2, conv4, conv5: the layers split over two GPUs, i.e. `groups = 2` |
//! | ResNeXt-50 32×4d (Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural Networks", Table 1) | the grouped 3×3 of each stage, 32 groups |
//! | ShuffleNet v1, g = 3 (Zhang et al. 2018, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices", Table 1) | a stage-2 grouped pointwise, 240 channels, 3 groups |
//! | Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions") | one middle-flow separable block, 728 channels at 19×19 |
//! | DeepLab v3+ (Chen et al. 2018, "Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation") | an atrous (dilation 2) depthwise 3×3 |
//! | synthetic | a depthwise 3×3 with channel multiplier 2 (TensorFlow's `depthwise_conv2d` `channel_multiplier`) |
//! | MobileNet v1 at batch 8 | mbv1_dw2 and mbv1_pw6 with `n = 8` |
//!
//! ```
//! use sepconv::{networks::layers, ConvKind};
//!
//! let layer = layers::find("mbv1_dw1").unwrap();
//! assert_eq!(layer.spec().kind(), ConvKind::Depthwise { multiplier: 1 });
//! assert_eq!(layer.spec().macs(layer.input_shape())?, layer.macs);
//! assert_eq!(layers::LAYERS.len(), 41);
//! # Ok::<(), sepconv::Error>(())
//! ```

use crate::spec::{Conv2dSpec, ConvKind, Padding, Shape};

/// The network a benchmark layer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// MobileNet v1, width 1.0, 224×224 input.
    MobileNetV1,
    /// AlexNet, the two-GPU (grouped) layers.
    AlexNet,
    /// ResNeXt-50 (32×4d).
    ResNeXt50,
    /// ShuffleNet v1 with 3 groups.
    ShuffleNetV1G3,
    /// Xception, middle flow.
    Xception,
    /// DeepLab v3+ with an atrous separable encoder.
    DeepLabV3Plus,
    /// A layer made up for coverage, not taken from a network.
    Synthetic,
}

impl Model {
    /// Short name, as in the layer names.
    pub const fn name(self) -> &'static str {
        match self {
            Model::MobileNetV1 => "mobilenet_v1",
            Model::AlexNet => "alexnet",
            Model::ResNeXt50 => "resnext50_32x4d",
            Model::ShuffleNetV1G3 => "shufflenet_v1_g3",
            Model::Xception => "xception",
            Model::DeepLabV3Plus => "deeplabv3plus",
            Model::Synthetic => "synthetic",
        }
    }

    /// The paper that defines the network (authors, year, title).
    pub const fn paper(self) -> &'static str {
        match self {
            Model::MobileNetV1 => {
                "Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"
            }
            Model::AlexNet => {
                "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks"
            }
            Model::ResNeXt50 => {
                "Xie et al. 2017, Aggregated Residual Transformations for Deep Neural Networks"
            }
            Model::ShuffleNetV1G3 => {
                "Zhang et al. 2018, ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices"
            }
            Model::Xception => {
                "Chollet 2017, Xception: Deep Learning with Depthwise Separable Convolutions"
            }
            Model::DeepLabV3Plus => {
                "Chen et al. 2018, Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation"
            }
            Model::Synthetic => "none: a channel-multiplier case made up for coverage",
        }
    }
}

/// One benchmark layer: input size and convolution parameters, square kernel, symmetric
/// padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layer {
    /// Unique name, e.g. `"mbv1_dw1"`.
    pub name: &'static str,
    /// The network it comes from.
    pub model: Model,
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel size (square).
    pub kernel: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
    /// Dilation (both axes).
    pub dilation: usize,
    /// Groups.
    pub groups: usize,
    /// Multiply-accumulates of one forward pass, written down independently of
    /// [`Conv2dSpec::macs`] (a test checks that the two agree).
    pub macs: u64,
}

impl Layer {
    /// The layer as a [`Conv2dSpec`] (bias on, no activation).
    pub const fn spec(&self) -> Conv2dSpec {
        Conv2dSpec::new(self.c_in, self.c_out, [self.kernel, self.kernel])
            .stride([self.stride, self.stride])
            .padding(Padding::uniform(self.pad))
            .dilation([self.dilation, self.dilation])
            .groups(self.groups)
    }

    /// The input shape `n × c_in × h × w`.
    pub const fn input_shape(&self) -> Shape {
        Shape::new(self.n, self.c_in, self.h, self.w)
    }

    /// The kernel family the layer runs on.
    pub const fn kind(&self) -> ConvKind {
        self.spec().kind()
    }

    /// Floating-point operations of one forward pass, `2 · macs`.
    pub const fn flops(&self) -> u64 {
        2 * self.macs
    }
}

/// `[n, c_in, c_out, h, w]`, `[kernel, stride, pad, dilation, groups]`.
const fn layer(
    name: &'static str,
    model: Model,
    [n, c_in, c_out, h, w]: [usize; 5],
    [kernel, stride, pad, dilation, groups]: [usize; 5],
    macs: u64,
) -> Layer {
    Layer {
        name,
        model,
        n,
        c_in,
        c_out,
        h,
        w,
        kernel,
        stride,
        pad,
        dilation,
        groups,
        macs,
    }
}

/// The 41 benchmark layers, in the order the reports list them.
///
/// Columns: name, model, `[n, c_in, c_out, h, w]`, `[kernel, stride, pad, dilation, groups]`,
/// MACs.
#[rustfmt::skip]
pub const LAYERS: [Layer; 41] = [
    layer("mbv1_conv1",       Model::MobileNetV1,    [1,    3,   32, 224, 224], [3, 2, 1, 1,    1],  10838016),
    layer("mbv1_dw1",         Model::MobileNetV1,    [1,   32,   32, 112, 112], [3, 1, 1, 1,   32],   3612672),
    layer("mbv1_pw1",         Model::MobileNetV1,    [1,   32,   64, 112, 112], [1, 1, 0, 1,    1],  25690112),
    layer("mbv1_dw2",         Model::MobileNetV1,    [1,   64,   64, 112, 112], [3, 2, 1, 1,   64],   1806336),
    layer("mbv1_pw2",         Model::MobileNetV1,    [1,   64,  128,  56,  56], [1, 1, 0, 1,    1],  25690112),
    layer("mbv1_dw3",         Model::MobileNetV1,    [1,  128,  128,  56,  56], [3, 1, 1, 1,  128],   3612672),
    layer("mbv1_pw3",         Model::MobileNetV1,    [1,  128,  128,  56,  56], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw4",         Model::MobileNetV1,    [1,  128,  128,  56,  56], [3, 2, 1, 1,  128],    903168),
    layer("mbv1_pw4",         Model::MobileNetV1,    [1,  128,  256,  28,  28], [1, 1, 0, 1,    1],  25690112),
    layer("mbv1_dw5",         Model::MobileNetV1,    [1,  256,  256,  28,  28], [3, 1, 1, 1,  256],   1806336),
    layer("mbv1_pw5",         Model::MobileNetV1,    [1,  256,  256,  28,  28], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw6",         Model::MobileNetV1,    [1,  256,  256,  28,  28], [3, 2, 1, 1,  256],    451584),
    layer("mbv1_pw6",         Model::MobileNetV1,    [1,  256,  512,  14,  14], [1, 1, 0, 1,    1],  25690112),
    layer("mbv1_dw7",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 1, 1, 1,  512],    903168),
    layer("mbv1_pw7",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw8",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 1, 1, 1,  512],    903168),
    layer("mbv1_pw8",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw9",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 1, 1, 1,  512],    903168),
    layer("mbv1_pw9",         Model::MobileNetV1,    [1,  512,  512,  14,  14], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw10",        Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 1, 1, 1,  512],    903168),
    layer("mbv1_pw10",        Model::MobileNetV1,    [1,  512,  512,  14,  14], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw11",        Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 1, 1, 1,  512],    903168),
    layer("mbv1_pw11",        Model::MobileNetV1,    [1,  512,  512,  14,  14], [1, 1, 0, 1,    1],  51380224),
    layer("mbv1_dw12",        Model::MobileNetV1,    [1,  512,  512,  14,  14], [3, 2, 1, 1,  512],    225792),
    layer("mbv1_pw12",        Model::MobileNetV1,    [1,  512, 1024,   7,   7], [1, 1, 0, 1,    1],  25690112),
    layer("mbv1_dw13",        Model::MobileNetV1,    [1, 1024, 1024,   7,   7], [3, 1, 1, 1, 1024],    451584),
    layer("mbv1_pw13",        Model::MobileNetV1,    [1, 1024, 1024,   7,   7], [1, 1, 0, 1,    1],  51380224),
    layer("alexnet_conv2",    Model::AlexNet,        [1,   96,  256,  27,  27], [5, 1, 2, 1,    2], 223948800),
    layer("alexnet_conv4",    Model::AlexNet,        [1,  384,  384,  13,  13], [3, 1, 1, 1,    2], 112140288),
    layer("alexnet_conv5",    Model::AlexNet,        [1,  384,  256,  13,  13], [3, 1, 1, 1,    2],  74760192),
    layer("resnext50_c2",     Model::ResNeXt50,      [1,  128,  128,  56,  56], [3, 1, 1, 1,   32],  14450688),
    layer("resnext50_c3",     Model::ResNeXt50,      [1,  256,  256,  28,  28], [3, 1, 1, 1,   32],  14450688),
    layer("resnext50_c4",     Model::ResNeXt50,      [1,  512,  512,  14,  14], [3, 1, 1, 1,   32],  14450688),
    layer("resnext50_c5",     Model::ResNeXt50,      [1, 1024, 1024,   7,   7], [3, 1, 1, 1,   32],  14450688),
    layer("shufflenet_g3_pw", Model::ShuffleNetV1G3, [1,  240,  240,  28,  28], [1, 1, 0, 1,    3],  15052800),
    layer("xception_dw",      Model::Xception,       [1,  728,  728,  19,  19], [3, 1, 1, 1,  728],   2365272),
    layer("xception_pw",      Model::Xception,       [1,  728,  728,  19,  19], [1, 1, 0, 1,    1], 191324224),
    layer("deeplab_dw_d2",    Model::DeepLabV3Plus,  [1,  256,  256,  33,  33], [3, 1, 2, 2,  256],   2509056),
    layer("dw_mult2",         Model::Synthetic,      [1,   32,   64, 112, 112], [3, 1, 1, 1,   32],   7225344),
    layer("mbv1_dw2_b8",      Model::MobileNetV1,    [8,   64,   64, 112, 112], [3, 2, 1, 1,   64],  14450688),
    layer("mbv1_pw6_b8",      Model::MobileNetV1,    [8,  256,  512,  14,  14], [1, 1, 0, 1,    1], 205520896),
];

/// The layer called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Layer> {
    LAYERS.iter().find(|l| l.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn macs_in_the_table_match_the_spec() {
        for l in &LAYERS {
            let spec = l.spec();
            let macs = spec.macs(l.input_shape()).unwrap();
            assert_eq!(macs, l.macs, "{}", l.name);
        }
    }

    #[test]
    fn names_are_unique_and_findable() {
        let names: HashSet<_> = LAYERS.iter().map(|l| l.name).collect();
        assert_eq!(names.len(), LAYERS.len());
        for l in &LAYERS {
            assert_eq!(find(l.name), Some(l));
        }
        assert_eq!(find("no_such_layer"), None);
    }

    #[test]
    fn kinds_are_as_the_papers_describe() {
        let count = |pred: fn(ConvKind) -> bool| LAYERS.iter().filter(|l| pred(l.kind())).count();
        // 13 MobileNet depthwise + batch-8 copy + Xception + DeepLab + multiplier-2 layer.
        assert_eq!(count(|k| matches!(k, ConvKind::Depthwise { .. })), 17);
        // 13 MobileNet pointwise + batch-8 copy + Xception.
        assert_eq!(count(|k| k == ConvKind::Pointwise), 15);
        // MobileNet stem, 3 AlexNet, 4 ResNeXt, ShuffleNet.
        assert_eq!(count(|k| k == ConvKind::General), 9);
        assert_eq!(
            find("dw_mult2").map(Layer::kind),
            Some(ConvKind::Depthwise { multiplier: 2 })
        );
        for l in &LAYERS {
            assert!(l.spec().validate().is_ok(), "{}", l.name);
            assert!(!l.model.paper().is_empty());
        }
    }
}
