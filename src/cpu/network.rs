//! A whole [`Network`] on the CPU: every node through the reference
//! ([`super::reference::conv2d`] for convolutions and fully connected layers, [`crate::ops::cpu`]
//! for the rest). The oracle for [`crate::GpuNetwork`].

use super::{ops, reference};
use crate::error::{Error, Result};
use crate::networks::weights::NetworkWeights;
use crate::networks::{Network, NodeId, Op};
use crate::tensor::Tensor;

/// Runs node `id` of `net` on `inputs` (the outputs of the nodes it reads, in order).
///
/// # Errors
/// [`Error::InvalidArgument`] for the input node or an unknown one, [`Error::Incompatible`]
/// for a wrong number of inputs or missing weights;
/// the errors of the reference functions for inputs of the wrong shape.
pub fn forward_node(
    net: &Network,
    weights: &NetworkWeights,
    id: NodeId,
    inputs: &[&Tensor],
) -> Result<Tensor> {
    let node = net.computed_node(id, inputs.len())?;
    match node.op {
        Op::Input => unreachable!("computed_node refuses the input node"),
        Op::Conv { .. } | Op::FullyConnected { .. } => {
            let layer = weights.layer(id).ok_or_else(|| Error::Incompatible {
                reason: format!("no weights for node {}", node.name),
            })?;
            reference::conv2d(
                &layer.spec,
                inputs[0],
                &layer.weights,
                layer.bias.as_deref(),
            )
        }
        Op::Add { activation } => ops::add(inputs[0], inputs[1], activation),
        Op::Concat { activation } => ops::concat(inputs[0], inputs[1], activation),
        Op::Activation(activation) => ops::activation(inputs[0], activation),
        Op::Pool(pool) => ops::pool2d(inputs[0], &pool),
        Op::ChannelShuffle { groups } => ops::channel_shuffle(inputs[0], groups),
        Op::Flatten => {
            let shape = node.op.output_shape(&[inputs[0].shape()])?;
            Tensor::new(shape, inputs[0].data().to_vec())
        }
    }
}

/// Runs the whole network on `input` and returns every node's output, indexed by node id
/// (entry 0 is the input).
///
/// # Errors
/// [`Error::ChannelMismatch`] / [`Error::Incompatible`] when `input`'s shape is not the
/// network's, and the errors of [`forward_node`].
pub fn forward(net: &Network, weights: &NetworkWeights, input: &Tensor) -> Result<Vec<Tensor>> {
    if input.shape() != net.input_shape() {
        return Err(Error::Incompatible {
            reason: format!(
                "{} takes input {}, got {}",
                net.name(),
                net.input_shape(),
                input.shape()
            ),
        });
    }
    let mut outputs: Vec<Tensor> = Vec::with_capacity(net.nodes().len());
    outputs.push(input.clone());
    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &outputs[i]).collect();
        let y = forward_node(net, weights, id, &inputs)?;
        outputs.push(y);
    }
    Ok(outputs)
}
