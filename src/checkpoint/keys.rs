//! Key maps for checkpoints that circulate under well-known module names: closures for
//! [`super::load_weights`] that give each node's [`LayerKeys`].

use super::LayerKeys;
use crate::error::Result;
use crate::networks::{MobileNetV2, Network, NetworkBuilder, Node, NodeId, Op};
use crate::spec::Padding;

/// The EfficientNet-PyTorch port's names for [`crate::networks::EfficientNetLite`], whose
/// nodes are already named after its modules: `_conv_stem` with `_bn0`, `_conv_head` with
/// `_bn1`, and in block `N` `_expand_conv` with `_bn0`, `_depthwise_conv` with `_bn1`,
/// `_project_conv` with `_bn2`; the classifier `_fc`. Batch norms use ε = `eps`
/// ([`crate::networks::EFFICIENTNET_LITE_BN_EPS`] for the published checkpoints).
pub fn efficientnet_lite(eps: f32) -> impl FnMut(NodeId, &Node) -> Option<LayerKeys> {
    move |_, node| {
        let name = node.name.as_str();
        let (module, bn) = name.rsplit_once('.').unwrap_or(("", name));
        let join = |m: &str| {
            if module.is_empty() {
                m.to_owned()
            } else {
                format!("{module}.{m}")
            }
        };
        let bn = match bn {
            "_fc" => return Some(LayerKeys::conv("_fc")),
            "_conv_stem" | "_expand_conv" => "_bn0",
            "_conv_head" | "_depthwise_conv" => "_bn1",
            "_project_conv" => "_bn2",
            _ => return None,
        };
        Some(LayerKeys::conv(name).batch_norm(join(bn), eps))
    }
}

/// MobileNet v2 as torchvision builds it: [`MobileNetV2`] with torchvision's padding (each
/// 3×3 convolution padded by 1 on every side, where the paper's TensorFlow network pads
/// `SAME`, which differs at stride 2), so that torchvision's weights compute what they were
/// trained to. Its nodes keep [`MobileNetV2`]'s names; [`torchvision_mobilenet_v2_keys`] maps
/// them.
///
/// # Errors
/// Those of [`MobileNetV2::build`].
pub fn torchvision_mobilenet_v2(config: MobileNetV2) -> Result<Network> {
    let net = config.build()?;
    let name = format!("{} (torchvision)", net.name());
    let mut b = NetworkBuilder::new(name, net.input_shape(), net.counting())?;
    for node in &net.nodes()[1..] {
        let mut op = node.op;
        if let Op::Conv { spec, .. } = &mut op {
            if spec.padding == Padding::same() {
                *spec = spec.padding(Padding::uniform((spec.kernel[0] - 1) / 2));
            }
        }
        b.push(node.name.clone(), op, node.inputs.clone())?;
    }
    Ok(b.build())
}

/// torchvision's `mobilenet_v2` state dict names for [`torchvision_mobilenet_v2`]'s nodes:
/// `conv1` is `features.0.0` with batch norm `features.0.1`; block `b` is `features.{b+1}`,
/// whose `conv` holds, in order, the expansion (`conv.0.0`/`conv.0.1`, absent when the
/// expansion is 1), the depthwise (`conv.{i}.0`/`conv.{i}.1`) and the projection
/// (`conv.{i}`/`conv.{i+1}`); `conv_last` is `features.18.0`/`features.18.1` (for 17 blocks),
/// `fc` is `classifier.1`. Batch norms use torchvision's ε = 1e-5.
pub fn torchvision_mobilenet_v2_keys(
    net: &Network,
) -> impl FnMut(NodeId, &Node) -> Option<LayerKeys> {
    let blocks = net
        .nodes()
        .iter()
        .filter(|n| n.name.ends_with("_depthwise"))
        .count();
    let expanded: std::collections::HashSet<String> = net
        .nodes()
        .iter()
        .filter_map(|n| n.name.strip_suffix("_expand").map(str::to_owned))
        .collect();
    move |_, node| {
        const EPS: f32 = 1e-5;
        let name = node.name.as_str();
        let seq = |prefix: String| {
            LayerKeys::conv(format!("{prefix}.0")).batch_norm(format!("{prefix}.1"), EPS)
        };
        match name {
            "conv1" => return Some(seq("features.0".into())),
            "conv_last" => return Some(seq(format!("features.{}", blocks + 1))),
            "fc" => return Some(LayerKeys::conv("classifier.1")),
            _ => {}
        }
        let rest = name.strip_prefix("block_")?;
        let (index, part) = rest.split_once('_')?;
        let block: usize = index.parse().ok()?;
        let prefix = format!("features.{}.conv", block + 1);
        // Without expansion the depthwise is conv.0 and the projection conv.1, conv.2.
        let offset = usize::from(expanded.contains(&format!("block_{index}")));
        Some(match part {
            "expand" => seq(format!("{prefix}.0")),
            "depthwise" => seq(format!("{prefix}.{offset}")),
            "project" => LayerKeys::conv(format!("{prefix}.{}", offset + 1))
                .batch_norm(format!("{prefix}.{}", offset + 2), EPS),
            _ => return None,
        })
    }
}
