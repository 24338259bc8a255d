//! [`CpuNetwork`]: a whole [`Network`] on the fast CPU path.

use std::time::{Duration, Instant};

use super::{ops, Conv2dCpu};
use crate::error::{Error, Result};
use crate::networks::weights::NetworkWeights;
use crate::networks::{Network, NodeId, Op};
use crate::ops::{add_shape, concat_shape, shuffle_shape};
use crate::tensor::Tensor;

/// A [`Network`] ready to run on the fast CPU path: one [`Conv2dCpu`] per convolution and fully
/// connected node (weights copied once, batch norm already folded), and the multi-threaded ops
/// for the rest. The same shape of API as [`crate::GpuNetwork`], on host [`Tensor`]s; checked
/// against the reference ([`crate::cpu::network`]) node by node in `tests/cpu_networks.rs`.
///
/// Every node runs on all of rayon's threads (the global pool; size it with
/// `RAYON_NUM_THREADS` or a [`rayon::ThreadPool`] around the call). [`CpuNetwork::run`] drops
/// each activation as soon as its last reader has run, so memory stays at a few activations
/// whatever the depth.
///
/// # Example
/// ```
/// use sepconv::networks::{mobilenet_v1, weights::{random_input, NetworkWeights}};
/// use sepconv::{cpu, CpuNetwork};
///
/// let net = mobilenet_v1(0.25, 64)?;
/// let weights = NetworkWeights::random(&net, 7)?;
/// let x = random_input(net.input_shape(), 7)?;
/// let logits = CpuNetwork::new(&net, &weights)?.run(&x)?;
/// let reference = cpu::network::forward(&net, &weights, &x)?;
/// let want = &reference[reference.len() - 1];
/// assert_eq!(logits.shape(), want.shape());
/// let worst = logits.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
/// assert!(worst < 1e-3);
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CpuNetwork {
    net: Network,
    convs: Vec<Option<Conv2dCpu>>,
    /// For each node, the last node that reads its output (itself if none does).
    last_use: Vec<NodeId>,
}

impl CpuNetwork {
    /// Copies `weights` for `net` and checks them against the network's specs.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when a convolution node has no weights, and the errors of
    /// [`Conv2dCpu::new`].
    pub fn new(net: &Network, weights: &NetworkWeights) -> Result<Self> {
        let mut convs = Vec::with_capacity(net.nodes().len());
        let mut last_use: Vec<NodeId> = (0..net.nodes().len()).collect();
        for (id, node) in net.nodes().iter().enumerate() {
            for &i in &node.inputs {
                last_use[i] = last_use[i].max(id);
            }
            convs.push(match node.op {
                Op::Conv { .. } | Op::FullyConnected { .. } => {
                    let layer = weights.layer(id).ok_or_else(|| Error::Incompatible {
                        reason: format!("no weights for node {}", node.name),
                    })?;
                    Some(Conv2dCpu::new(
                        layer.spec,
                        &layer.weights,
                        layer.bias.as_deref(),
                    )?)
                }
                _ => None,
            });
        }
        Ok(Self {
            net: net.clone(),
            convs,
            last_use,
        })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Runs the network on `input` and returns the last node's output.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when `input` does not have the network's input shape.
    pub fn run(&self, input: &Tensor) -> Result<Tensor> {
        self.check_input(input)?;
        let n = self.net.nodes().len();
        let mut outputs: Vec<Option<Tensor>> = Vec::with_capacity(n);
        outputs.push(Some(input.clone()));
        // Buffers of activations no later node reads, reused for the next outputs: every op
        // overwrites its whole output, and a fresh multi-megabyte buffer costs its page faults
        // on every run.
        let mut free: Vec<Vec<f32>> = Vec::new();
        for id in 1..n {
            let shape = self.net.nodes()[id].output;
            let len = shape.len()?;
            let mut data = match free.iter().position(|b| b.capacity() >= len) {
                Some(i) => free.swap_remove(i),
                None => Vec::with_capacity(len),
            };
            data.resize(len, 0.0);
            let mut y = Tensor::new(shape, data)?;
            {
                let inputs = self.inputs_of(id, &outputs)?;
                self.run_node_into(id, &inputs, &mut y)?;
            }
            outputs.push(Some(y));
            for &i in &self.net.nodes()[id].inputs {
                if self.last_use[i] == id {
                    if let Some(t) = outputs[i].take() {
                        if i > 0 {
                            free.push(t.into_data());
                        }
                    }
                }
            }
        }
        outputs.pop().flatten().ok_or_else(|| Error::Incompatible {
            reason: "the network has no nodes".into(),
        })
    }

    /// Runs the network on `input` and returns every node's output, indexed by node id (entry
    /// 0 is a copy of the input). For checking a network layer by layer.
    ///
    /// # Errors
    /// As [`CpuNetwork::run`].
    pub fn run_all(&self, input: &Tensor) -> Result<Vec<Tensor>> {
        Ok(self.run_timed(input)?.0)
    }

    /// [`CpuNetwork::run_all`] with each node's wall time (zero for the input).
    ///
    /// # Errors
    /// As [`CpuNetwork::run`].
    pub fn run_timed(&self, input: &Tensor) -> Result<(Vec<Tensor>, Vec<Duration>)> {
        self.check_input(input)?;
        let n = self.net.nodes().len();
        let mut outputs: Vec<Tensor> = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        outputs.push(input.clone());
        times.push(Duration::ZERO);
        for (id, node) in self.net.nodes().iter().enumerate().skip(1) {
            let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &outputs[i]).collect();
            let start = Instant::now();
            let y = self.run_node(id, &inputs)?;
            times.push(start.elapsed());
            outputs.push(y);
        }
        Ok((outputs, times))
    }

    /// Runs node `id` alone on `inputs` (outputs of the nodes it reads, in order) and returns
    /// its output. For checking one layer on given inputs, and for timing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown node or the input node,
    /// [`Error::Incompatible`] for the wrong number or shapes of inputs.
    pub fn run_node(&self, id: NodeId, inputs: &[&Tensor]) -> Result<Tensor> {
        let shape = self.node_shape(id)?;
        let mut output = Tensor::full(shape, 0.0)?;
        self.run_node_into(id, inputs, &mut output)?;
        Ok(output)
    }

    /// [`CpuNetwork::run_node`] into `output`, which must have the node's output shape; every
    /// element is overwritten.
    ///
    /// # Errors
    /// Those of [`CpuNetwork::run_node`], and [`Error::Incompatible`] when `output` has
    /// another shape.
    pub fn run_node_into(&self, id: NodeId, inputs: &[&Tensor], output: &mut Tensor) -> Result<()> {
        let want = self.node_shape(id)?;
        let node = &self.net.nodes()[id];
        if id == 0 {
            return Err(Error::InvalidArgument {
                what: "node id",
                reason: "the input node is not computed".into(),
            });
        }
        if inputs.len() != node.op.arity() {
            return Err(Error::Incompatible {
                reason: format!(
                    "node {} takes {} inputs, got {}",
                    node.name,
                    node.op.arity(),
                    inputs.len()
                ),
            });
        }
        // The shapes the node was built for: the ops below rely on them.
        for (&i, x) in node.inputs.iter().zip(inputs) {
            let expected = self.net.nodes()[i].output;
            if x.shape() != expected {
                return Err(Error::Incompatible {
                    reason: format!(
                        "node {} reads {expected} from {}, got {}",
                        node.name,
                        self.net.nodes()[i].name,
                        x.shape()
                    ),
                });
            }
        }
        if output.shape() != want {
            return Err(Error::Incompatible {
                reason: format!(
                    "node {} writes {want}, got an output of {}",
                    node.name,
                    output.shape()
                ),
            });
        }
        if let Op::Conv { .. } | Op::FullyConnected { .. } = node.op {
            let conv = self.convs[id].as_ref().ok_or_else(|| Error::Incompatible {
                reason: format!("no weights for node {}", node.name),
            })?;
            return conv.run_into(inputs[0], output);
        }
        let out = output.data_mut();
        match node.op {
            // Node 0 is refused above, convolutions are run above.
            Op::Input | Op::Conv { .. } | Op::FullyConnected { .. } => {}
            Op::Add { activation } => {
                add_shape(inputs[0].shape(), inputs[1].shape())?;
                ops::add(inputs[0].data(), inputs[1].data(), activation, out);
            }
            Op::Concat { activation } => {
                concat_shape(inputs[0].shape(), inputs[1].shape())?;
                let n = want.n;
                ops::concat(inputs[0].data(), inputs[1].data(), n, activation, out);
            }
            Op::Activation(activation) => ops::activation(inputs[0].data(), activation, out),
            Op::Pool(pool) => ops::pool2d(inputs[0].data(), inputs[0].shape(), &pool, want, out),
            Op::ChannelShuffle { groups } => {
                shuffle_shape(inputs[0].shape(), groups)?;
                ops::channel_shuffle(inputs[0].data(), want, groups, out);
            }
            Op::Flatten => out.copy_from_slice(inputs[0].data()),
        }
        Ok(())
    }

    fn node_shape(&self, id: NodeId) -> Result<crate::spec::Shape> {
        self.net
            .nodes()
            .get(id)
            .map(|node| node.output)
            .ok_or_else(|| Error::InvalidArgument {
                what: "node id",
                reason: format!(
                    "{} has {} nodes, not {id}",
                    self.net.name(),
                    self.net.nodes().len()
                ),
            })
    }

    fn inputs_of<'a>(&self, id: NodeId, outputs: &'a [Option<Tensor>]) -> Result<Vec<&'a Tensor>> {
        self.net.nodes()[id]
            .inputs
            .iter()
            .map(|&i| {
                outputs[i].as_ref().ok_or_else(|| Error::Incompatible {
                    reason: format!("node {i}'s output was dropped before node {id} read it"),
                })
            })
            .collect()
    }

    fn check_input(&self, input: &Tensor) -> Result<()> {
        if input.shape() != self.net.input_shape() {
            return Err(Error::Incompatible {
                reason: format!(
                    "{} takes input {}, got {}",
                    self.net.name(),
                    self.net.input_shape(),
                    input.shape()
                ),
            });
        }
        Ok(())
    }
}
