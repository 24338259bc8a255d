//! Whole networks as data: the architectures that made depthwise separable and grouped
//! convolution famous, described layer by layer, with the parameter and multiply-accumulate
//! counts their papers print.
//!
//! A [`Network`] is a list of [`Node`]s in execution order. Node 0 is the input; every other
//! node is one [`Op`] (a convolution, a fully connected layer written as a pointwise
//! convolution on a 1×1 input, pooling, a residual add, a channel concatenation, a channel
//! shuffle, …) reading the outputs of earlier nodes, with its output shape worked out when the
//! network is built.
//!
//! | constructor | paper | input |
//! |---|---|---|
//! | [`MobileNetV1`] / [`mobilenet_v1`] | Howard et al. 2017, *MobileNets* | 224 (ρ = r/224), width α |
//! | [`MobileNetV2`] / [`mobilenet_v2`] | Sandler et al. 2018, *MobileNetV2* | 224, width α |
//! | [`xception`] | Chollet 2017, *Xception* | 299 |
//! | [`ResNet`] / [`resnet50`] / [`resnext50_32x4d`] | He et al. 2016; Xie et al. 2017, *ResNeXt* | 224 |
//! | [`ShuffleNetV1`] / [`shufflenet_v1`] | Zhang et al. 2017, *ShuffleNet* | 224 |
//! | [`alexnet`] | Krizhevsky et al. 2012 (two GPU groups) | 227 |
//! | [`EfficientNetLite`] / [`efficientnet_lite`] | Tan & Le 2019; TensorFlow's lite release | 224–300 |
//!
//! # Counting
//! Multiply-accumulates (MACs, the papers' "mult-adds" or "FLOPs") are counted for
//! convolutions and fully connected layers only: `n · c_out · h_out · w_out · (c_in/groups) ·
//! kh · kw` per convolution, taps that fall in the padding included, bias, batch norm,
//! activations, pooling, adds and shuffles excluded. Every paper here counts this way.
//!
//! Which parameters count differs between papers, so each network carries the [`Counting`]
//! its paper uses ([`Network::counting`]), and every count can be redone under another
//! ([`Network::total_with`]):
//! - MobileNet v1 and v2 and ResNet-50 / ResNeXt-50 count weights only
//!   ([`Counting::WEIGHTS`]); the classifier's weights are in, its biases out.
//! - Xception's 22,855,952 is Keras's *trainable* count: weights, biases, and batch norm's
//!   scale and shift ([`Counting::TRAINABLE`]). ShuffleNet, whose paper prints no parameter
//!   count, is counted the same way.
//! - AlexNet counts weights and biases ([`Counting::WEIGHTS_AND_BIASES`]); it has no batch
//!   norm. Local response normalisation is not modelled (no parameters, no MACs in the count).
//!
//! # The standard convolutions they stand for
//! [`Network::with_standard_convs`] replaces every depthwise separable pair (a depthwise
//! convolution whose only consumer is a 1×1 convolution) by the one standard convolution with
//! the depthwise's kernel, stride and padding and the 1×1's output channels, and every other
//! grouped or depthwise convolution by its `groups = 1` form. This is how MobileNet's Table 4
//! builds its "Conv MobileNet".
//!
//! # Running them
//! [`weights::NetworkWeights::random`] makes seeded weights for any network, each batch norm
//! folded into the convolution before it ([`weights::fold_batch_norm`]).
//! [`crate::GpuNetwork`] runs the network on the GPU with every activation staying there until
//! the caller reads the result; [`crate::cpu::network::forward`] runs it on the CPU reference,
//! node by node, as the oracle. [`bottleneck`] and [`shufflenet_unit`] build single ResNeXt
//! and ShuffleNet blocks to run on their own.
//!
//! # Example
//! ```
//! use sepconv::networks::{mobilenet_v1, LayerKind};
//!
//! let net = mobilenet_v1(1.0, 224)?;
//! let total = net.total();
//! assert_eq!((total.params, total.macs), (4_209_088, 568_740_352)); // Table 1: 4.2M, 569M
//! let pointwise = net.by_kind().into_iter().find(|(k, _)| *k == LayerKind::Pointwise).unwrap().1;
//! assert!((pointwise.macs as f64 / total.macs as f64 - 0.9486).abs() < 5e-5); // Table 2: 94.86%
//! let standard = net.with_standard_convs()?.total();
//! assert_eq!(standard.params, 29_281_120); // Table 4: 29.3M
//! # Ok::<(), sepconv::Error>(())
//! ```

mod alexnet;
mod builder;
mod efficientnet_lite;
mod graph;
pub mod layers;
mod mobilenet_v1;
mod mobilenet_v2;
mod resnet;
mod shufflenet;
mod standard;
pub mod weights;
mod xception;

pub use alexnet::{alexnet, AlexNet};
pub use builder::NetworkBuilder;
pub use efficientnet_lite::{efficientnet_lite, EfficientNetLite, EFFICIENTNET_LITE_BN_EPS};
pub use graph::{BatchNormParams, Counting, LayerKind, Network, Node, NodeId, Op};
pub use mobilenet_v1::{mobilenet_v1, MobileNetV1};
pub use mobilenet_v2::{mobilenet_v2, MobileNetV2};
pub use resnet::{bottleneck, resnet50, resnext50_32x4d, ResNet};
pub use shufflenet::{shufflenet_unit, shufflenet_v1, ShuffleNetV1};
pub use xception::{xception, Xception};
