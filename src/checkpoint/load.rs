//! [`load_weights`]: a [`Network`]'s weights from a [`StateDict`], by name.

use super::StateDict;
use crate::error::{Error, Result};
use crate::networks::weights::{fold_batch_norm, BatchNorm, LayerWeights, NetworkWeights};
use crate::networks::{Network, Node, NodeId, Op};

/// Where a batch norm's tensors live: `{prefix}.weight` (γ), `.bias` (β), `.running_mean`,
/// `.running_var`, and the ε the model was built with (PyTorch stores it in the module, not
/// the state dict: `BatchNorm2d`'s default is 1e-5, TensorFlow ports use 1e-3).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNormKeys {
    /// The batch norm module's name, e.g. `"features.0.1"`.
    pub prefix: String,
    /// ε added to the running variance.
    pub eps: f32,
}

/// Where one convolution or fully connected node's tensors live in a state dict: the module
/// `conv` holds `{conv}.weight` (`[c_out, c_in/groups, kh, kw]`, or `[c_out, c_in]` for a
/// fully connected layer) and, when the node's spec has a bias, `{conv}.bias`; a batch norm
/// after it, when the node has one, in [`BatchNormKeys`].
#[derive(Debug, Clone, PartialEq)]
pub struct LayerKeys {
    /// The convolution or linear module's name, e.g. `"features.0.0"`.
    pub conv: String,
    /// The batch norm after it, if the node has one.
    pub batch_norm: Option<BatchNormKeys>,
}

impl LayerKeys {
    /// A module `conv` without batch norm.
    pub fn conv(conv: impl Into<String>) -> Self {
        Self {
            conv: conv.into(),
            batch_norm: None,
        }
    }

    /// The same with the batch norm module `prefix` and its `eps`.
    pub fn batch_norm(mut self, prefix: impl Into<String>, eps: f32) -> Self {
        self.batch_norm = Some(BatchNormKeys {
            prefix: prefix.into(),
            eps,
        });
        self
    }
}

/// Fills every convolution and fully connected node of `net` from `dict`: `keys` says, for
/// each such node, where its tensors are. Batch norms are folded into the convolution before
/// them with [`fold_batch_norm`] (in `f64`, with the [`BatchNormKeys::eps`] given). Tensors of
/// the dict that no node asks for are ignored (classifier heads of another task, `num_batches_tracked`).
///
/// # Errors
/// [`Error::Incompatible`] when `keys` gives no keys for a convolution node, or batch norm
/// keys for a node without batch norm or none for one with it; [`Error::MissingKey`],
/// [`Error::KeyShape`] and [`Error::KeyDtype`] from the lookups, each naming the tensor; and the
/// errors of [`fold_batch_norm`] (a non-positive `var + ε`).
pub fn load_weights(
    net: &Network,
    dict: &StateDict,
    mut keys: impl FnMut(NodeId, &Node) -> Option<LayerKeys>,
) -> Result<NetworkWeights> {
    let mut layers = Vec::with_capacity(net.nodes().len());
    for (id, node) in net.nodes().iter().enumerate() {
        let (spec, batch_norm) = match node.op {
            Op::Conv { spec, batch_norm } => (spec, batch_norm),
            Op::FullyConnected { spec } => (spec, false),
            _ => {
                layers.push(None);
                continue;
            }
        };
        let k = keys(id, node).ok_or_else(|| Error::Incompatible {
            reason: format!(
                "no checkpoint keys for node {} ({})",
                node.name,
                node.kind()
            ),
        })?;
        if batch_norm != k.batch_norm.is_some() {
            return Err(Error::Incompatible {
                reason: format!(
                    "node {} {} batch norm but its keys {}",
                    node.name,
                    if batch_norm { "has a" } else { "has no" },
                    if batch_norm { "name none" } else { "name one" }
                ),
            });
        }
        let weight_shape: Vec<usize> = if matches!(node.op, Op::FullyConnected { .. }) {
            vec![spec.c_out, spec.c_in]
        } else {
            vec![
                spec.c_out,
                spec.c_in_per_group(),
                spec.kernel[0],
                spec.kernel[1],
            ]
        };
        let weights = dict.get(&format!("{}.weight", k.conv), &weight_shape)?;
        let bias = if spec.bias {
            Some(dict.get(&format!("{}.bias", k.conv), &[spec.c_out])?)
        } else {
            None
        };
        let layer = match k.batch_norm {
            Some(bn) => {
                let c = [spec.c_out];
                let get = |what: &str| -> Result<Vec<f32>> {
                    Ok(dict.get(&format!("{}.{what}", bn.prefix), &c)?.to_vec())
                };
                let norm = BatchNorm {
                    gamma: get("weight")?,
                    beta: get("bias")?,
                    mean: get("running_mean")?,
                    var: get("running_var")?,
                    eps: bn.eps,
                };
                let (spec, weights, bias) = fold_batch_norm(&spec, weights, bias, &norm)?;
                LayerWeights {
                    spec,
                    weights,
                    bias: Some(bias),
                }
            }
            None => LayerWeights {
                spec,
                weights: weights.to_vec(),
                bias: bias.map(<[f32]>::to_vec),
            },
        };
        layers.push(Some(layer));
    }
    NetworkWeights::new(net, layers)
}
