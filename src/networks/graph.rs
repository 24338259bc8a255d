//! [`Network`], its [`Node`]s and [`Op`]s, the [`NetworkBuilder`] that checks shapes as it
//! goes, and the parameter counts.

use crate::accounting::Cost;
use crate::error::{Error, Result};
use crate::ops_spec::{self, Pool2d};
use crate::spec::{Activation, Conv2dSpec, Shape};

/// Index of a node in [`Network::nodes`]. Node 0 is the input.
pub type NodeId = usize;

/// One step of a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// The network's input (node 0 only).
    Input,
    /// A convolution with its fused activation. `batch_norm` says the trained network has a
    /// batch norm right after it (before the activation); for inference it folds into the
    /// weights and a bias.
    Conv {
        /// The layer as trained (its `bias` is the trained bias, usually off before batch norm).
        spec: Conv2dSpec,
        /// Batch norm after the convolution.
        batch_norm: bool,
    },
    /// A fully connected layer, written as a pointwise convolution on a `c × 1 × 1` input.
    FullyConnected {
        /// `Conv2dSpec::pointwise(c_in, c_out)` with the layer's bias and activation.
        spec: Conv2dSpec,
    },
    /// Elementwise sum of two equal-shaped inputs, then the activation (residual add).
    Add {
        /// Applied to the sum.
        activation: Activation,
    },
    /// Channel concatenation of two inputs (first input's channels first), then the activation.
    Concat {
        /// Applied to the result.
        activation: Activation,
    },
    /// An activation on its own, where it cannot be fused into the producer (Xception applies
    /// ReLU to a tensor whose un-activated value also feeds a shortcut).
    Activation(Activation),
    /// Max or average pooling; global average pooling is a window over the whole plane.
    Pool(Pool2d),
    /// ShuffleNet's channel shuffle ([`crate::ops_spec::shuffle_source_channel`]).
    ChannelShuffle {
        /// Number of groups; divides the channels.
        groups: usize,
    },
    /// `[n, c, h, w] → [n, c·h·w, 1, 1]`, PyTorch's `flatten(1)` order; moves no data.
    Flatten,
}

impl Op {
    /// How many inputs the op reads.
    pub const fn arity(&self) -> usize {
        match self {
            Op::Input => 0,
            Op::Add { .. } | Op::Concat { .. } => 2,
            _ => 1,
        }
    }

    /// The output shape for these input shapes (one per input, see [`Op::arity`]).
    ///
    /// # Errors
    /// The shape errors of the op ([`Conv2dSpec::output_shape`], [`Pool2d::output_shape`],
    /// [`ops_spec::add_shape`], …), and [`Error::Incompatible`] for a fully connected layer whose
    /// input is not `c × 1 × 1` or a wrong number of inputs.
    pub fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        if inputs.len() != self.arity() {
            return Err(Error::Incompatible {
                reason: format!(
                    "{self:?} takes {} inputs, got {}",
                    self.arity(),
                    inputs.len()
                ),
            });
        }
        match self {
            Op::Input => Err(Error::Incompatible {
                reason: "only node 0 may be the input".into(),
            }),
            Op::Conv { spec, .. } => spec.output_shape(inputs[0]),
            Op::FullyConnected { spec } => {
                let x = inputs[0];
                if (x.h, x.w) != (1, 1) || spec.kernel != [1, 1] || spec.groups != 1 {
                    return Err(Error::Incompatible {
                        reason: format!(
                            "a fully connected layer is a pointwise conv on c×1×1; got input {x} \
                             and kernel {:?}, groups {} (flatten first)",
                            spec.kernel, spec.groups
                        ),
                    });
                }
                spec.output_shape(x)
            }
            Op::Add { .. } => ops_spec::add_shape(inputs[0], inputs[1]),
            Op::Concat { .. } => ops_spec::concat_shape(inputs[0], inputs[1]),
            Op::Activation(_) => {
                inputs[0].validate()?;
                Ok(inputs[0])
            }
            Op::Pool(pool) => pool.output_shape(inputs[0]),
            Op::ChannelShuffle { groups } => ops_spec::shuffle_shape(inputs[0], *groups),
            Op::Flatten => {
                let x = inputs[0];
                x.validate()?;
                let c = crate::spec::checked_product("flattened channels", &[x.c, x.h, x.w])?;
                Ok(Shape::new(x.n, c, 1, 1))
            }
        }
    }

    /// Multiply-accumulates for these inputs: convolution and fully connected layers only.
    pub fn macs(&self, inputs: &[Shape]) -> Result<u64> {
        match self {
            Op::Conv { spec, .. } | Op::FullyConnected { spec } => match inputs.first() {
                Some(&x) => spec.macs(x),
                None => Err(Error::Incompatible {
                    reason: "a convolution needs an input".into(),
                }),
            },
            _ => Ok(0),
        }
    }

    /// The convolution spec of a `Conv` or `FullyConnected` op.
    pub const fn conv_spec(&self) -> Option<&Conv2dSpec> {
        match self {
            Op::Conv { spec, .. } | Op::FullyConnected { spec } => Some(spec),
            _ => None,
        }
    }

    /// Whether a batch norm follows (only `Conv` ops have one).
    pub const fn has_batch_norm(&self) -> bool {
        matches!(
            self,
            Op::Conv {
                batch_norm: true,
                ..
            }
        )
    }
}

/// What kind of layer a node is, for grouping costs the way the papers' tables do (e.g.
/// MobileNet's Table 2: Conv 1×1, Conv DW 3×3, Conv 3×3, Fully Connected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerKind {
    /// A standard convolution with a kernel larger than 1×1 (`groups = 1`).
    Conv,
    /// A pointwise (1×1, `groups = 1`) convolution.
    Pointwise,
    /// A depthwise convolution (`groups = c_in > 1`).
    Depthwise,
    /// A grouped convolution with `1 < groups < c_in` (any kernel, grouped 1×1 included).
    Grouped,
    /// A fully connected layer.
    FullyConnected,
    /// Max, average or global average pooling.
    Pool,
    /// Residual add.
    Add,
    /// Channel concatenation.
    Concat,
    /// Channel shuffle.
    Shuffle,
    /// A standalone activation.
    Activation,
    /// Flatten.
    Flatten,
    /// The input.
    Input,
}

impl LayerKind {
    /// The kind of a convolution spec.
    pub const fn of_conv(spec: &Conv2dSpec) -> Self {
        if spec.groups == 1 {
            if spec.kernel[0] == 1 && spec.kernel[1] == 1 {
                LayerKind::Pointwise
            } else {
                LayerKind::Conv
            }
        } else if spec.groups == spec.c_in {
            LayerKind::Depthwise
        } else {
            LayerKind::Grouped
        }
    }

    /// A short name for tables.
    pub const fn label(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::Pointwise => "pointwise",
            LayerKind::Depthwise => "depthwise",
            LayerKind::Grouped => "grouped",
            LayerKind::FullyConnected => "fc",
            LayerKind::Pool => "pool",
            LayerKind::Add => "add",
            LayerKind::Concat => "concat",
            LayerKind::Shuffle => "shuffle",
            LayerKind::Activation => "activation",
            LayerKind::Flatten => "flatten",
            LayerKind::Input => "input",
        }
    }
}

impl std::fmt::Display for LayerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How many parameters batch norm contributes per channel to a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BatchNormParams {
    /// None (the papers that count weights only).
    None,
    /// Scale γ and shift β: 2 per channel (Keras' and PyTorch's trainable parameters).
    Affine,
    /// γ, β and the running mean and variance: 4 per channel (Keras' "total params").
    AffineAndStatistics,
}

/// Which parameters a count includes. Weights are always in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Counting {
    /// Count the biases of layers that have one (spec `bias = true`).
    pub biases: bool,
    /// Count batch norm parameters.
    pub batch_norm: BatchNormParams,
}

impl Counting {
    /// Weights only: MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018), ResNet-50
    /// and ResNeXt-50 (Xie et al. 2017).
    pub const WEIGHTS: Counting = Counting {
        biases: false,
        batch_norm: BatchNormParams::None,
    };
    /// Weights and biases, no batch norm: AlexNet.
    pub const WEIGHTS_AND_BIASES: Counting = Counting {
        biases: true,
        batch_norm: BatchNormParams::None,
    };
    /// Everything a framework trains: weights, biases, batch norm γ and β (Keras'
    /// "trainable params", PyTorch's `parameters()`): Xception (Chollet 2017).
    pub const TRAINABLE: Counting = Counting {
        biases: true,
        batch_norm: BatchNormParams::Affine,
    };
    /// Trainable parameters plus batch norm's running statistics (Keras' "total params").
    pub const ALL: Counting = Counting {
        biases: true,
        batch_norm: BatchNormParams::AffineAndStatistics,
    };
}

/// One node of a [`Network`]: an op, the nodes it reads, and its output.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// A name following the paper or its reference implementation, e.g. `"conv_dw_13"`.
    pub name: String,
    /// What the node does.
    pub op: Op,
    /// The nodes it reads, all earlier in the network.
    pub inputs: Vec<NodeId>,
    /// Its output shape.
    pub output: Shape,
    /// Its multiply-accumulates for the network's batch.
    pub macs: u64,
}

impl Node {
    /// The node's [`LayerKind`].
    pub const fn kind(&self) -> LayerKind {
        match &self.op {
            Op::Input => LayerKind::Input,
            Op::Conv { spec, .. } => LayerKind::of_conv(spec),
            Op::FullyConnected { .. } => LayerKind::FullyConnected,
            Op::Add { .. } => LayerKind::Add,
            Op::Concat { .. } => LayerKind::Concat,
            Op::Activation(_) => LayerKind::Activation,
            Op::Pool(_) => LayerKind::Pool,
            Op::ChannelShuffle { .. } => LayerKind::Shuffle,
            Op::Flatten => LayerKind::Flatten,
        }
    }

    /// Parameters under `counting`.
    pub fn params(&self, counting: Counting) -> u64 {
        let Some(spec) = self.op.conv_spec() else {
            return 0;
        };
        let mut params = spec.weight_count() as u64;
        if counting.biases && spec.bias {
            params += spec.c_out as u64;
        }
        if self.op.has_batch_norm() {
            params += spec.c_out as u64
                * match counting.batch_norm {
                    BatchNormParams::None => 0,
                    BatchNormParams::Affine => 2,
                    BatchNormParams::AffineAndStatistics => 4,
                };
        }
        params
    }

    /// Parameters under `counting` and MACs.
    pub fn cost(&self, counting: Counting) -> Cost {
        Cost {
            params: self.params(counting),
            macs: self.macs,
        }
    }
}

/// A network: nodes in execution order, node 0 the input, the last node the output.
///
/// Built by the constructors in [`crate::networks`] or by hand with [`NetworkBuilder`](super::NetworkBuilder); every
/// shape is checked when a node is added, so a `Network` is always consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    name: String,
    nodes: Vec<Node>,
    counting: Counting,
}

impl Network {
    /// A name like `"MobileNet v1 1.0-224"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The input shape (node 0's).
    pub fn input_shape(&self) -> Shape {
        self.nodes[0].output
    }

    /// The output shape (the last node's).
    pub fn output_shape(&self) -> Shape {
        self.nodes[self.nodes.len() - 1].output
    }

    /// The parameter counting the network's paper uses.
    pub fn counting(&self) -> Counting {
        self.counting
    }

    /// The same network counted another way.
    pub fn with_counting(mut self, counting: Counting) -> Self {
        self.counting = counting;
        self
    }

    /// Node `id`, checked to be one that is computed (not the input) and to take `inputs`
    /// inputs: what a runner checks before running a node alone.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown id or the input node,
    /// [`Error::Incompatible`] for the wrong number of inputs.
    pub fn computed_node(&self, id: NodeId, inputs: usize) -> Result<&Node> {
        let node = self.nodes.get(id).ok_or_else(|| Error::InvalidArgument {
            what: "node id",
            reason: format!("{} has {} nodes, not {id}", self.name, self.nodes.len()),
        })?;
        if matches!(node.op, Op::Input) {
            return Err(Error::InvalidArgument {
                what: "node id",
                reason: "the input node is not computed".into(),
            });
        }
        if inputs != node.op.arity() {
            return Err(Error::Incompatible {
                reason: format!(
                    "node {} takes {} inputs, got {inputs}",
                    node.name,
                    node.op.arity()
                ),
            });
        }
        Ok(node)
    }

    /// The nodes that read node `id`.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&id))
            .map(|(i, _)| i)
            .collect()
    }

    /// Parameters (under the network's own [`Counting`]) and MACs of the whole network.
    pub fn total(&self) -> Cost {
        self.total_with(self.counting)
    }

    /// Parameters under `counting` and MACs of the whole network.
    pub fn total_with(&self, counting: Counting) -> Cost {
        self.nodes
            .iter()
            .fold(Cost::default(), |acc, n| acc + n.cost(counting))
    }

    /// Costs summed per [`LayerKind`], for the kinds present (input excluded), in
    /// [`LayerKind`] order.
    pub fn by_kind(&self) -> Vec<(LayerKind, Cost)> {
        self.by_kind_with(self.counting)
    }

    /// [`Network::by_kind`] under another counting.
    pub fn by_kind_with(&self, counting: Counting) -> Vec<(LayerKind, Cost)> {
        let mut kinds: std::collections::BTreeMap<LayerKind, Cost> = Default::default();
        for node in &self.nodes[1..] {
            let entry = kinds.entry(node.kind()).or_default();
            *entry = *entry + node.cost(counting);
        }
        kinds.into_iter().collect()
    }

    pub(super) fn from_parts(name: String, nodes: Vec<Node>, counting: Counting) -> Self {
        Self {
            name,
            nodes,
            counting,
        }
    }
}
