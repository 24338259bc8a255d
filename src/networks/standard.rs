//! [`Network::with_standard_convs`]: the network with the standard convolutions that its
//! separable and grouped layers stand for.

use super::builder::NetworkBuilder;
use super::graph::{LayerKind, Network, NodeId, Op};
use crate::error::Result;
use crate::spec::{Conv2dSpec, Padding};

/// See [`Network::with_standard_convs`].
impl Network {
    /// The same network with every depthwise separable pair replaced by the standard
    /// convolution it stands for and every other grouped or depthwise convolution by its
    /// `groups = 1` form (see the [module docs](crate::networks)).
    pub fn with_standard_convs(&self) -> Result<Network> {
        with_standard_convs(self)
    }
}

fn with_standard_convs(net: &Network) -> Result<Network> {
    let nodes = net.nodes();
    let mut b = NetworkBuilder::new(
        format!("{} with standard convolutions", net.name()),
        net.input_shape(),
        net.counting(),
    )?;
    // Old node id → new node id. A merged pointwise maps to the merged node.
    let mut map: Vec<NodeId> = vec![0; nodes.len()];
    let mut merged_into: Vec<Option<NodeId>> = vec![None; nodes.len()];
    for (id, node) in nodes.iter().enumerate().skip(1) {
        if let Some(new) = merged_into[id] {
            map[id] = new;
            continue;
        }
        let inputs: Vec<NodeId> = node.inputs.iter().map(|&i| map[i]).collect();
        let new = match node.op {
            Op::Conv { spec, batch_norm } if spec.groups > 1 => match separable_partner(net, id) {
                Some((pw_id, pw, pw_bn)) => {
                    let standard = Conv2dSpec {
                        c_out: pw.c_out,
                        groups: 1,
                        bias: pw.bias,
                        activation: pw.activation,
                        ..spec
                    };
                    let name = format!("{} + {}", node.name, nodes[pw_id].name);
                    let new = b.conv(name, inputs[0], standard, pw_bn)?;
                    merged_into[pw_id] = Some(new);
                    new
                }
                None => b.conv(node.name.clone(), inputs[0], spec.as_standard(), batch_norm)?,
            },
            op => b.push(node.name.clone(), op, inputs)?,
        };
        map[id] = new;
    }
    Ok(b.build())
}

/// For a depthwise node whose only consumer is a 1×1, stride-1, unpadded convolution reading
/// only it: that consumer, its spec and whether batch norm follows it.
fn separable_partner(net: &Network, id: NodeId) -> Option<(NodeId, Conv2dSpec, bool)> {
    let nodes = net.nodes();
    if nodes[id].kind() != LayerKind::Depthwise {
        return None;
    }
    let [consumer] = net.consumers(id)[..] else {
        return None;
    };
    match &nodes[consumer].op {
        &Op::Conv { spec, batch_norm }
            if spec.kernel == [1, 1]
                && spec.stride == [1, 1]
                && spec.padding == Padding::valid()
                && nodes[consumer].inputs == [id] =>
        {
            Some((consumer, spec, batch_norm))
        }
        _ => None,
    }
}
