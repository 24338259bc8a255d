//! [`GpuNetwork`]: a whole [`Network`] on the GPU, every activation staying there.

#[cfg(not(target_arch = "wasm32"))]
use std::time::{Duration, Instant};

use super::ops;
use super::{Conv2d, Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::networks::weights::NetworkWeights;
use crate::networks::{Network, NodeId, Op};

/// A [`Network`] ready to run on a [`Gpu`]: one [`Conv2d`] per convolution and fully
/// connected node (weights uploaded once, batch norm already folded), the op shaders for the
/// rest. [`GpuNetwork::run`] records every node into one command buffer; nothing is read back
/// until the caller reads the result. Its convs choose their kernels by measurement
/// ([`crate::ConvKernel::Auto`]) on the first run of an input shape, once per distinct spec
/// and shape on the device, which makes that run slower than the next; time the runs after
/// it.
///
/// # Example
/// ```no_run
/// use sepconv::networks::{mobilenet_v1, weights::{random_input, NetworkWeights}};
/// use sepconv::{cpu, Gpu, GpuNetwork, GpuTensor};
///
/// let gpu = Gpu::new()?;
/// let net = mobilenet_v1(0.25, 96)?;
/// let weights = NetworkWeights::random(&net, 7)?;
/// let x = random_input(net.input_shape(), 7)?;
/// let logits = GpuNetwork::new(&gpu, &net, &weights)?
///     .run(&GpuTensor::from_tensor(&gpu, &x)?)?
///     .read()?;
/// let reference = cpu::network::forward(&net, &weights, &x)?;
/// assert_eq!(logits.shape(), reference[reference.len() - 1].shape());
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug)]
pub struct GpuNetwork {
    gpu: Gpu,
    net: Network,
    convs: Vec<Option<Conv2d>>,
}

impl GpuNetwork {
    /// Uploads `weights` for `net` and compiles every kernel it needs.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when a convolution node has no weights, and the errors of
    /// [`Conv2d::new`].
    pub fn new(gpu: &Gpu, net: &Network, weights: &NetworkWeights) -> Result<Self> {
        let mut convs = Vec::with_capacity(net.nodes().len());
        for (id, node) in net.nodes().iter().enumerate() {
            let conv = match node.op {
                Op::Conv { .. } | Op::FullyConnected { .. } => {
                    let layer = weights.layer(id).ok_or_else(|| Error::Incompatible {
                        reason: format!("no weights for node {}", node.name),
                    })?;
                    Some(Conv2d::new(
                        gpu,
                        layer.spec,
                        &layer.weights,
                        layer.bias.as_deref(),
                    )?)
                }
                Op::Add { .. } | Op::Concat { .. } | Op::Activation(_) => {
                    gpu.pipelines().ops.get(gpu, ops::OpShader::Elementwise)?;
                    None
                }
                Op::Pool(_) => {
                    gpu.pipelines().ops.get(gpu, ops::OpShader::Pool)?;
                    None
                }
                Op::ChannelShuffle { .. } => {
                    gpu.pipelines().ops.get(gpu, ops::OpShader::Shuffle)?;
                    None
                }
                Op::Input | Op::Flatten => None,
            };
            convs.push(conv);
        }
        Ok(Self {
            gpu: gpu.clone(),
            net: net.clone(),
            convs,
        })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Runs the network on `input` in one submission and returns the last node's output,
    /// still on the GPU.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when `input` does not have the network's input shape,
    /// [`Error::DeviceMismatch`], [`Error::TooLarge`], [`Error::Gpu`], [`Error::DeviceLost`].
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let mut outputs = self.run_all(input)?;
        outputs.pop().ok_or_else(|| Error::Incompatible {
            reason: "the network has no nodes".into(),
        })
    }

    /// Runs the network on `input` in one submission and returns every node's output,
    /// indexed by node id (entry 0 is a copy of the input), all on the GPU. For checking a
    /// network layer by layer.
    pub fn run_all(&self, input: &GpuTensor) -> Result<Vec<GpuTensor>> {
        self.check_input(input)?;
        let mut encoder = self.gpu.encoder("network.encoder")?;
        let mut outputs: Vec<GpuTensor> = Vec::with_capacity(self.net.nodes().len());
        for id in 0..self.net.nodes().len() {
            let output = self.alloc(id)?;
            if id == 0 {
                copy(&mut encoder, input, &output);
            } else {
                let inputs: Vec<&GpuTensor> = self.net.nodes()[id]
                    .inputs
                    .iter()
                    .map(|&i| &outputs[i])
                    .collect();
                self.encode_node(&mut encoder, id, &inputs, &output)?;
            }
            outputs.push(output);
        }
        self.gpu.scoped("network dispatch", || {
            self.gpu.queue().submit([encoder.finish()]);
        })?;
        Ok(outputs)
    }

    /// Runs node `id` alone on `inputs` (outputs of the nodes it reads, in order) and returns
    /// its output. For checking one layer on given inputs, and for timing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown node or the input node,
    /// [`Error::Incompatible`] for the wrong number or shapes of inputs, and those of
    /// [`GpuNetwork::run`].
    pub fn run_node(&self, id: NodeId, inputs: &[&GpuTensor]) -> Result<GpuTensor> {
        let output = self.alloc(id)?;
        self.run_node_into(id, inputs, &output)?;
        Ok(output)
    }

    /// [`GpuNetwork::run_node`] into `output`, which must have the node's output shape.
    pub fn run_node_into(
        &self,
        id: NodeId,
        inputs: &[&GpuTensor],
        output: &GpuTensor,
    ) -> Result<()> {
        if id == 0 || id >= self.net.nodes().len() {
            return Err(Error::InvalidArgument {
                what: "node id",
                reason: format!(
                    "{} computes nodes 1..{}, not {id}",
                    self.net.name(),
                    self.net.nodes().len()
                ),
            });
        }
        ops::submit(&self.gpu, "network.node", |e| {
            self.encode_node(e, id, inputs, output)
        })
    }

    /// Runs the network on `input` node by node, waiting for each to finish, and returns every
    /// output (as [`GpuNetwork::run_all`]) and each node's wall time (submit to done; zero
    /// for the input). Slower than [`GpuNetwork::run`] by one round trip per node. Not on
    /// wasm32, where nothing may block.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run_timed(&self, input: &GpuTensor) -> Result<(Vec<GpuTensor>, Vec<Duration>)> {
        self.check_input(input)?;
        let n = self.net.nodes().len();
        let mut outputs: Vec<GpuTensor> = Vec::with_capacity(n);
        let mut times = Vec::with_capacity(n);
        let first = self.alloc(0)?;
        ops::submit(&self.gpu, "network.input", |e| {
            copy(e, input, &first);
            Ok(())
        })?;
        self.gpu.wait()?;
        outputs.push(first);
        times.push(Duration::ZERO);
        for id in 1..n {
            let inputs: Vec<&GpuTensor> = self.net.nodes()[id]
                .inputs
                .iter()
                .map(|&i| &outputs[i])
                .collect();
            let start = Instant::now();
            let output = self.run_node(id, &inputs)?;
            self.gpu.wait()?;
            times.push(start.elapsed());
            outputs.push(output);
        }
        Ok((outputs, times))
    }

    fn check_input(&self, input: &GpuTensor) -> Result<()> {
        if !self.gpu.same_device(input.gpu()) {
            return Err(Error::DeviceMismatch);
        }
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

    fn alloc(&self, id: NodeId) -> Result<GpuTensor> {
        let node = self
            .net
            .nodes()
            .get(id)
            .ok_or_else(|| Error::InvalidArgument {
                what: "node id",
                reason: format!(
                    "{} has {} nodes, not {id}",
                    self.net.name(),
                    self.net.nodes().len()
                ),
            })?;
        GpuTensor::uninit(&self.gpu, node.output, "network.activation")
    }

    fn encode_node(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        id: NodeId,
        inputs: &[&GpuTensor],
        output: &GpuTensor,
    ) -> Result<()> {
        let node = &self.net.nodes()[id];
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
        match node.op {
            Op::Input => Err(Error::InvalidArgument {
                what: "node id",
                reason: "the input node is not computed".into(),
            }),
            Op::Conv { .. } | Op::FullyConnected { .. } => match &self.convs[id] {
                Some(conv) => conv.encode(encoder, inputs[0], output),
                None => Err(Error::Incompatible {
                    reason: format!("no weights for node {}", node.name),
                }),
            },
            Op::Add { activation } => {
                ops::encode_add(encoder, inputs[0], inputs[1], output, activation)
            }
            Op::Concat { activation } => {
                ops::encode_concat(encoder, inputs[0], inputs[1], output, activation)
            }
            Op::Activation(activation) => {
                ops::encode_activation(encoder, inputs[0], output, activation)
            }
            Op::Pool(pool) => ops::encode_pool(encoder, inputs[0], &pool, output),
            Op::ChannelShuffle { groups } => {
                ops::encode_shuffle(encoder, inputs[0], groups, output)
            }
            Op::Flatten => {
                let shape = node.op.output_shape(&[inputs[0].shape()])?;
                ops::check_output(output, shape)?;
                copy(encoder, inputs[0], output);
                Ok(())
            }
        }
    }
}

/// Copies `from`'s elements into `to` (same element count; flatten and the input copy).
fn copy(encoder: &mut wgpu::CommandEncoder, from: &GpuTensor, to: &GpuTensor) {
    let bytes = from.buffer().size().min(to.buffer().size());
    encoder.copy_buffer_to_buffer(from.buffer(), 0, to.buffer(), 0, bytes);
}
