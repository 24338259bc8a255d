//! [`NetworkBuilder`]: a [`Network`] made node by node, each node's output shape checked as
//! it is added.

use super::graph::{Counting, Network, Node, NodeId, Op};
use crate::error::{Error, Result};
use crate::ops_spec::Pool2d;
use crate::spec::{Activation, Conv2dSpec, Shape};

/// Builds a [`Network`] node by node, checking every shape as it goes.
///
/// # Example
/// A residual block: two 3×3 convolutions and an add.
/// ```
/// use sepconv::networks::{Counting, NetworkBuilder};
/// use sepconv::{Activation, Conv2dSpec, Padding, Shape};
///
/// let mut b = NetworkBuilder::new("block", Shape::new(1, 16, 8, 8), Counting::WEIGHTS)?;
/// let x = b.input();
/// let conv = Conv2dSpec::new(16, 16, [3, 3]).padding(Padding::uniform(1)).bias(false);
/// let y = b.conv("conv1", x, conv.activation(Activation::Relu), true)?;
/// let y = b.conv("conv2", y, conv, true)?;
/// b.add("add", y, x, Activation::Relu)?;
/// let net = b.build();
/// assert_eq!(net.total().params, 2 * 16 * 16 * 9);
/// assert_eq!(net.total().macs, 2 * 16 * 16 * 9 * 64);
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct NetworkBuilder {
    name: String,
    nodes: Vec<Node>,
    counting: Counting,
}

impl NetworkBuilder {
    /// Starts a network with one input of `input`'s shape, counted per `counting`.
    ///
    /// # Errors
    /// [`Error::Zero`] for an empty input shape.
    pub fn new(name: impl Into<String>, input: Shape, counting: Counting) -> Result<Self> {
        input.validate()?;
        Ok(Self {
            name: name.into(),
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: Vec::new(),
                output: input,
                macs: 0,
            }],
            counting,
        })
    }

    /// The input node (0).
    pub const fn input(&self) -> NodeId {
        0
    }

    /// The most recently added node.
    pub fn last(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// The output shape of node `id`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a node that does not exist yet.
    pub fn shape(&self, id: NodeId) -> Result<Shape> {
        self.nodes
            .get(id)
            .map(|n| n.output)
            .ok_or_else(|| Error::InvalidArgument {
                what: "node id",
                reason: format!(
                    "node {id} does not exist ({} nodes so far)",
                    self.nodes.len()
                ),
            })
    }

    /// Adds `op` reading `inputs`; returns its id.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown input, and the shape errors of
    /// [`Op::output_shape`].
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: Vec<NodeId>) -> Result<NodeId> {
        let shapes = inputs
            .iter()
            .map(|&i| self.shape(i))
            .collect::<Result<Vec<_>>>()?;
        let output = op.output_shape(&shapes)?;
        let macs = op.macs(&shapes)?;
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs,
            output,
            macs,
        });
        Ok(self.last())
    }

    /// A convolution, with a batch norm after it if `batch_norm`.
    pub fn conv(
        &mut self,
        name: impl Into<String>,
        from: NodeId,
        spec: Conv2dSpec,
        batch_norm: bool,
    ) -> Result<NodeId> {
        self.push(name, Op::Conv { spec, batch_norm }, vec![from])
    }

    /// A fully connected layer to `c_out` outputs on a `c × 1 × 1` input.
    pub fn fully_connected(
        &mut self,
        name: impl Into<String>,
        from: NodeId,
        c_out: usize,
        bias: bool,
        activation: Activation,
    ) -> Result<NodeId> {
        let c_in = self.shape(from)?.c;
        let spec = Conv2dSpec::pointwise(c_in, c_out)
            .bias(bias)
            .activation(activation);
        self.push(name, Op::FullyConnected { spec }, vec![from])
    }

    /// `activation(a + b)`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        a: NodeId,
        b: NodeId,
        activation: Activation,
    ) -> Result<NodeId> {
        self.push(name, Op::Add { activation }, vec![a, b])
    }

    /// `activation([a, b])` along channels.
    pub fn concat(
        &mut self,
        name: impl Into<String>,
        a: NodeId,
        b: NodeId,
        activation: Activation,
    ) -> Result<NodeId> {
        self.push(name, Op::Concat { activation }, vec![a, b])
    }

    /// A standalone activation.
    pub fn activation(
        &mut self,
        name: impl Into<String>,
        from: NodeId,
        activation: Activation,
    ) -> Result<NodeId> {
        self.push(name, Op::Activation(activation), vec![from])
    }

    /// Pooling.
    pub fn pool(&mut self, name: impl Into<String>, from: NodeId, pool: Pool2d) -> Result<NodeId> {
        self.push(name, Op::Pool(pool), vec![from])
    }

    /// Global average pooling over the input's whole plane.
    pub fn global_avg_pool(&mut self, name: impl Into<String>, from: NodeId) -> Result<NodeId> {
        let x = self.shape(from)?;
        self.pool(name, from, Pool2d::global_avg(x.h, x.w))
    }

    /// Channel shuffle with `groups` groups.
    pub fn channel_shuffle(
        &mut self,
        name: impl Into<String>,
        from: NodeId,
        groups: usize,
    ) -> Result<NodeId> {
        self.push(name, Op::ChannelShuffle { groups }, vec![from])
    }

    /// Flatten to `c·h·w × 1 × 1`.
    pub fn flatten(&mut self, name: impl Into<String>, from: NodeId) -> Result<NodeId> {
        self.push(name, Op::Flatten, vec![from])
    }

    /// The finished network.
    pub fn build(self) -> Network {
        Network::from_parts(self.name, self.nodes, self.counting)
    }
}

impl Network {
    /// The same network with batch size `n`.
    ///
    /// # Errors
    /// [`Error::Zero`] for `n = 0`, [`Error::Overflow`] for absurd sizes.
    pub fn with_batch(&self, n: usize) -> Result<Network> {
        let mut input = self.input_shape();
        input.n = n;
        let mut b = NetworkBuilder::new(self.name().to_string(), input, self.counting())?;
        for node in &self.nodes()[1..] {
            b.push(node.name.clone(), node.op, node.inputs.clone())?;
        }
        Ok(b.build())
    }
}
