//! Weights to run a [`Network`] with: seeded random ones for tests, benchmarks and examples,
//! with each batch norm folded into the convolution before it ([`fold_batch_norm`]).

use super::graph::{Network, NodeId, Op};
use crate::error::{Error, Result};
use crate::rng::SplitMix64;
use crate::spec::{Conv2dSpec, Shape};
use crate::tensor::Tensor;

/// Batch norm's inference parameters for `c` channels: `y = γ·(x − mean)/√(var + ε) + β`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Scale γ, `[c]`.
    pub gamma: Vec<f32>,
    /// Shift β, `[c]`.
    pub beta: Vec<f32>,
    /// Running mean, `[c]`.
    pub mean: Vec<f32>,
    /// Running variance, `[c]` (non-negative).
    pub var: Vec<f32>,
    /// ε added to the variance (PyTorch's default is 1e-5, Keras' 1e-3).
    pub eps: f32,
}

/// Folds `bn` into the convolution before it: returns the spec with `bias = true`, weights
/// `W'[o, …] = W[o, …]·s[o]` and bias `b'[o] = (b[o] − mean[o])·s[o] + β[o]`, where
/// `s = γ/√(var + ε)` and `b = 0` without a bias. Computed in `f64`, rounded once.
///
/// The folded convolution computes what the convolution followed by batch norm computed (up
/// to rounding); the activation stays after both.
///
/// # Errors
/// The errors of [`Conv2dSpec::check_parameters`]; [`Error::LengthMismatch`] for batch norm
/// vectors that are not `[c_out]`; [`Error::InvalidArgument`] for a negative or non-finite
/// `var + ε`.
///
/// # Example
/// ```
/// use sepconv::networks::weights::{fold_batch_norm, BatchNorm};
/// use sepconv::Conv2dSpec;
///
/// let spec = Conv2dSpec::pointwise(2, 1).bias(false);
/// let bn = BatchNorm { gamma: vec![2.0], beta: vec![1.0], mean: vec![0.5], var: vec![3.0], eps: 1.0 };
/// let (folded, w, b) = fold_batch_norm(&spec, &[1.0, -1.0], None, &bn)?;
/// assert!(folded.bias);
/// assert_eq!(w, [1.0, -1.0]); // s = 2 / √4 = 1
/// assert_eq!(b, [0.5]); // (0 − 0.5)·1 + 1
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn fold_batch_norm(
    spec: &Conv2dSpec,
    weights: &[f32],
    bias: Option<&[f32]>,
    bn: &BatchNorm,
) -> Result<(Conv2dSpec, Vec<f32>, Vec<f32>)> {
    spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
    for (what, v) in [
        ("batch norm gamma", &bn.gamma),
        ("batch norm beta", &bn.beta),
        ("batch norm mean", &bn.mean),
        ("batch norm var", &bn.var),
    ] {
        if v.len() != spec.c_out {
            return Err(Error::LengthMismatch {
                what,
                expected: spec.c_out,
                got: v.len(),
                hint: Some("[c_out]".into()),
            });
        }
    }
    let per_out = weights.len() / spec.c_out;
    let mut w = Vec::with_capacity(weights.len());
    let mut b = Vec::with_capacity(spec.c_out);
    for o in 0..spec.c_out {
        let denom = f64::from(bn.var[o]) + f64::from(bn.eps);
        if !(denom.is_finite() && denom > 0.0) {
            return Err(Error::InvalidArgument {
                what: "batch norm variance",
                reason: format!(
                    "var + eps must be positive and finite, got {denom} for channel {o}"
                ),
            });
        }
        let s = f64::from(bn.gamma[o]) / denom.sqrt();
        w.extend(
            weights[o * per_out..(o + 1) * per_out]
                .iter()
                .map(|&v| (f64::from(v) * s) as f32),
        );
        let b0 = bias.map_or(0.0, |b| f64::from(b[o]));
        b.push(((b0 - f64::from(bn.mean[o])) * s + f64::from(bn.beta[o])) as f32);
    }
    Ok((spec.bias(true), w, b))
}

/// The weights of one convolution or fully connected node, ready to run: its spec (with
/// `bias = true` when a batch norm was folded in), weights `[c_out, c_in/groups, kh, kw]` and
/// bias.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// The spec to run (batch norm folded).
    pub spec: Conv2dSpec,
    /// Weights.
    pub weights: Vec<f32>,
    /// Bias, present exactly when `spec.bias`.
    pub bias: Option<Vec<f32>>,
}

/// Weights for every convolution and fully connected node of a network, batch norm folded.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkWeights {
    layers: Vec<Option<LayerWeights>>,
}

impl NetworkWeights {
    /// Seeded random weights for `net`: He-uniform convolution weights (`±√(6/fan_in)`, which
    /// keeps activations at a steady scale through ReLU layers), batch norm with γ ∈ [0.5, 1.5],
    /// β and mean ∈ [−0.1, 0.1], var ∈ [0.5, 1.5], ε = 1e-5, folded in; LeCun-uniform
    /// classifier weights and biases in [−0.1, 0.1]. The same seed gives the same weights.
    ///
    /// # Errors
    /// Only if the network's specs are inconsistent, which a built [`Network`] never is.
    pub fn random(net: &Network, seed: u64) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let mut layers = Vec::with_capacity(net.nodes().len());
        for node in net.nodes() {
            let layer = match node.op {
                Op::Conv { spec, batch_norm } => {
                    let fan_in = spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1];
                    let bound = (6.0 / fan_in as f64).sqrt() as f32;
                    let weights = rng.uniform_vec(spec.weight_count(), -bound, bound);
                    let bias = spec.bias.then(|| rng.uniform_vec(spec.c_out, -0.1, 0.1));
                    if batch_norm {
                        let c = spec.c_out;
                        let bn = BatchNorm {
                            gamma: rng.uniform_vec(c, 0.5, 1.5),
                            beta: rng.uniform_vec(c, -0.1, 0.1),
                            mean: rng.uniform_vec(c, -0.1, 0.1),
                            var: rng.uniform_vec(c, 0.5, 1.5),
                            eps: 1e-5,
                        };
                        let (spec, weights, bias) =
                            fold_batch_norm(&spec, &weights, bias.as_deref(), &bn)?;
                        Some(LayerWeights {
                            spec,
                            weights,
                            bias: Some(bias),
                        })
                    } else {
                        Some(LayerWeights {
                            spec,
                            weights,
                            bias,
                        })
                    }
                }
                Op::FullyConnected { spec } => {
                    let bound = (3.0 / spec.c_in as f64).sqrt() as f32;
                    Some(LayerWeights {
                        spec,
                        weights: rng.uniform_vec(spec.weight_count(), -bound, bound),
                        bias: spec.bias.then(|| rng.uniform_vec(spec.c_out, -0.1, 0.1)),
                    })
                }
                _ => None,
            };
            layers.push(layer);
        }
        Ok(Self { layers })
    }

    /// Wraps weights the caller made, one entry per node in node order, the input node (id 0)
    /// included: `Some` exactly for convolution and fully connected nodes, with a spec of the
    /// node's shape (its bias may differ: folding batch norm adds one).
    /// [`NetworkWeights::by_name`] takes them keyed by node name instead.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for the wrong number of entries, [`Error::Incompatible`] for an
    /// entry on the wrong kind of node or with other channels, kernel, stride, padding,
    /// dilation or groups than the node, and the errors of [`Conv2dSpec::check_parameters`].
    pub fn new(net: &Network, layers: Vec<Option<LayerWeights>>) -> Result<Self> {
        if layers.len() != net.nodes().len() {
            return Err(Error::LengthMismatch {
                what: "layer weights",
                expected: net.nodes().len(),
                got: layers.len(),
                hint: Some("one entry per node".into()),
            });
        }
        for (node, layer) in net.nodes().iter().zip(&layers) {
            match (node.op.conv_spec(), layer) {
                (None, None) => {}
                (Some(spec), Some(l)) => {
                    // Everything but the bias must be the node's (folding adds a bias).
                    if (Conv2dSpec {
                        bias: spec.bias,
                        ..l.spec
                    }) != *spec
                    {
                        return Err(Error::Incompatible {
                            reason: format!(
                                "the weights for node {} do not fit it ({}: weights vs node)",
                                node.name,
                                l.spec
                                    .differences(&Conv2dSpec {
                                        bias: l.spec.bias,
                                        ..*spec
                                    })
                                    .join(", ")
                            ),
                        });
                    }
                    l.spec
                        .check_parameters(l.weights.len(), l.bias.as_ref().map(Vec::len))?;
                }
                _ => {
                    return Err(Error::Incompatible {
                        reason: format!(
                            "node {} {} weights",
                            node.name,
                            if layer.is_some() { "takes no" } else { "needs" }
                        ),
                    })
                }
            }
        }
        Ok(Self { layers })
    }

    /// Weights keyed by node name ([`crate::networks::Node::name`]), one for every
    /// convolution and fully connected node; other nodes take none.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name that is no node of `net` or a node named twice,
    /// [`Error::Incompatible`] for a missing convolution or a node that takes no weights, and
    /// the errors of [`NetworkWeights::new`].
    pub fn by_name(
        net: &Network,
        named: impl IntoIterator<Item = (String, LayerWeights)>,
    ) -> Result<Self> {
        let mut layers: Vec<Option<LayerWeights>> = vec![None; net.nodes().len()];
        for (name, layer) in named {
            let id = net
                .nodes()
                .iter()
                .position(|n| n.name == name)
                .ok_or_else(|| Error::InvalidArgument {
                    what: "node name",
                    reason: format!("{} has no node named {name:?}", net.name()),
                })?;
            if layers[id].replace(layer).is_some() {
                return Err(Error::InvalidArgument {
                    what: "node name",
                    reason: format!("weights for {name:?} given twice"),
                });
            }
        }
        Self::new(net, layers)
    }

    /// The weights of node `id` (`None` for nodes without any).
    pub fn layer(&self, id: NodeId) -> Option<&LayerWeights> {
        self.layers.get(id).and_then(Option::as_ref)
    }
}

/// A seeded input tensor of `shape` with values uniform in [−1, 1]; the same as
/// [`Tensor::random`].
pub fn random_input(shape: Shape, seed: u64) -> Result<Tensor> {
    Tensor::random(shape, seed)
}
