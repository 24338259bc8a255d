//! [`GpuNetwork`]: a whole [`Network`] on the GPU, every activation staying there.

#[cfg(not(target_arch = "wasm32"))]
use std::time::{Duration, Instant};

use super::finish::Finish;
use super::ops;
use super::pipelines::OpShader;
use super::tensor::check_precision;
use super::{Conv2d, Gpu, GpuTensor, SeparableBlock};
use crate::error::{Error, Result};
use crate::networks::weights::NetworkWeights;
use crate::networks::{Network, NodeId, Op};
use crate::precision::Precision;
use crate::spec::{check_separable, Activation, Residual};

/// A [`Network`] ready to run on a [`Gpu`]: one [`Conv2d`] per convolution and fully
/// connected node (weights uploaded once, batch norm already folded), the op shaders for the
/// rest. A depthwise conv whose only reader is a pointwise conv forms a [`SeparableBlock`]
/// with it, which [`GpuNetwork::run`] runs fused or as two kernels, as the device's
/// [`crate::Tuner`] chooses. A residual add whose input is a conv (or block) that only it
/// reads, and which applies at most one activation between them, runs in that conv's
/// epilogue ([`Conv2d::run_residual`]): MobileNet v2's and EfficientNet's projections with
/// their shortcuts, ResNet's last conv of a block with its shortcut and ReLU, each saving the
/// add's dispatch and a pass over its tensor ([`GpuNetwork::folded_adds`]).
/// [`GpuNetwork::run`] records every node into one command buffer; nothing is read back
/// until the caller reads the result.
///
/// Kernel choices are measured ([`crate::Tuning`]) on the first run of an input shape, once
/// per distinct spec and shape on the device (and kept in the tuner's cache file for the next
/// process), which makes that first run slower than the next; time the runs after it, or pin
/// the choices with `gpu.tuner().set_tuning(Tuning::pinned())` before building.
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
    /// Of every activation and weight.
    precision: Precision,
    /// What runs each node, indexed by node id.
    units: Vec<Unit>,
    /// The residual adds folded into their producer's epilogue, at the add's node id.
    folds: Vec<Option<FoldedAdd>>,
    /// Whether [`GpuNetwork::run`] folds them ([`GpuNetwork::with_folded_adds`]).
    fold_adds: bool,
}

/// A residual add `activation(a + b)` run as the epilogue of the conv (or block) that
/// produces `a` and that nothing else reads: the producer runs at the add's turn, writing the
/// add's output, with `b` as its skip tensor.
#[derive(Debug, Clone, Copy)]
struct FoldedAdd {
    /// The conv's node (a block's pointwise node).
    producer: NodeId,
    /// The add's other input.
    skip: NodeId,
    /// The producer's activation when the add has none (the add joins after it), the add's
    /// when the producer has none (the add joins before it).
    activation: Activation,
    residual: Residual,
}

/// What runs one node of a [`GpuNetwork`].
#[derive(Debug)]
enum Unit {
    /// An op shader, a copy, or nothing (the input).
    Op,
    /// A convolution or fully connected layer.
    Conv(Box<Conv2d>),
    /// A depthwise conv and the pointwise conv that is the only reader of its output, at the
    /// depthwise node; the pointwise node is a [`Unit::SecondHalf`].
    Block(Box<SeparableBlock>),
    /// The pointwise half of the block at this node id.
    SecondHalf(NodeId),
}

impl GpuNetwork {
    /// Uploads `weights` for `net` and compiles every kernel it needs, for f32 activations.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when a convolution node has no weights, and the errors of
    /// [`Conv2d::new`].
    pub fn new(gpu: &Gpu, net: &Network, weights: &NetworkWeights) -> Result<Self> {
        Self::new_as(gpu, net, weights, Precision::F32)
    }

    /// [`GpuNetwork::new`] with every activation (the input included) stored in `precision`
    /// and the weights rounded to it (see [`Conv2d::with_precision`]); all sums stay f32.
    /// Upload the input with [`GpuTensor::from_tensor_as`] in the same precision;
    /// [`GpuTensor::read`] gives the result as f32.
    ///
    /// # Errors
    /// Those of [`GpuNetwork::new`]; [`Error::Unsupported`] for f16 on a device without
    /// `SHADER_F16` ([`Gpu::supports_f16`]).
    pub fn new_as(
        gpu: &Gpu,
        net: &Network,
        weights: &NetworkWeights,
        precision: Precision,
    ) -> Result<Self> {
        gpu.check_precision(precision)?;
        let mut convs: Vec<Option<Conv2d>> = Vec::with_capacity(net.nodes().len());
        for (id, node) in net.nodes().iter().enumerate() {
            let conv = match node.op {
                Op::Conv { .. } | Op::FullyConnected { .. } => {
                    let layer = weights.layer(id).ok_or_else(|| Error::Incompatible {
                        reason: format!("no weights for node {}", node.name),
                    })?;
                    Some(
                        Conv2d::new(gpu, layer.spec, &layer.weights, layer.bias.as_deref())?
                            .with_precision(precision)?,
                    )
                }
                Op::Add { .. } | Op::Concat { .. } | Op::Activation(_) => {
                    let ops = &gpu.pipelines().ops;
                    ops.get(gpu.dev(), OpShader::Elementwise, precision)?;
                    None
                }
                Op::Pool(_) => {
                    let ops = &gpu.pipelines().ops;
                    ops.get(gpu.dev(), OpShader::Pool, precision)?;
                    None
                }
                Op::ChannelShuffle { .. } => {
                    let ops = &gpu.pipelines().ops;
                    ops.get(gpu.dev(), OpShader::Shuffle, precision)?;
                    None
                }
                Op::Input | Op::Flatten => None,
            };
            convs.push(conv);
        }
        let units = pair_blocks(net, convs)?;
        // A device that cannot bind a skip tensor (fewer than 4 storage buffers) runs the
        // adds apart.
        let skip_fits = gpu.limits().max_storage_buffers_per_shader_stage >= 4;
        let folds = if skip_fits {
            fold_adds(net, &units)
        } else {
            vec![None; net.nodes().len()]
        };
        // What the first run will take: the folded producers' runs end with their add.
        let mut ends: Vec<(Activation, Option<Residual>)> = net
            .nodes()
            .iter()
            .map(|node| match node.op.conv_spec() {
                Some(spec) => (spec.activation, None),
                None => (Activation::None, None),
            })
            .collect();
        for fold in folds.iter().flatten() {
            ends[fold.producer] = (fold.activation, Some(fold.residual));
        }
        for (id, unit) in units.iter().enumerate() {
            let input = |id: NodeId| net.nodes()[net.nodes()[id].inputs[0]].output;
            match unit {
                Unit::Conv(conv) => conv.prepare_as(input(id), ends[id].0, ends[id].1)?,
                Unit::SecondHalf(first) => {
                    if let Unit::Block(block) = &units[*first] {
                        block.prepare_as(input(*first), ends[id].0, ends[id].1)?;
                    }
                }
                Unit::Op | Unit::Block(_) => {}
            }
        }
        Ok(Self {
            gpu: gpu.clone(),
            net: net.clone(),
            precision,
            units,
            folds,
            fold_adds: true,
        })
    }

    /// The network with its residual adds folded into their producers' epilogues (the
    /// default) or run as elementwise ops of their own, for counting what folding saves.
    pub fn with_folded_adds(mut self, fold: bool) -> Self {
        self.fold_adds = fold;
        self
    }

    /// How many residual adds [`GpuNetwork::run`] runs in the epilogue of the conv or block
    /// that produces one of their inputs, each saving a dispatch and a pass over the tensor
    /// (0 under `with_folded_adds(false)`).
    pub fn folded_adds(&self) -> usize {
        if !self.fold_adds {
            return 0;
        }
        self.folds.iter().flatten().count()
    }

    /// How many separable blocks (a depthwise conv and the pointwise conv that alone reads
    /// it) the network runs as one unit.
    pub fn block_count(&self) -> usize {
        self.units
            .iter()
            .filter(|u| matches!(u, Unit::Block(_)))
            .count()
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The precision of its activations and weights ([`GpuNetwork::new_as`]).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Runs the network on `input` in one submission and returns the last node's output,
    /// still on the GPU.
    ///
    /// # Errors
    /// [`Error::Incompatible`] when `input` does not have the network's input shape,
    /// [`Error::DeviceMismatch`], [`Error::TooLarge`], [`Error::Gpu`], [`Error::DeviceLost`].
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let mut outputs = self.encode_all(input, true)?;
        outputs.pop().ok_or_else(|| Error::Incompatible {
            reason: "the network has no nodes".into(),
        })
    }

    /// [`GpuNetwork::run`] and [`GpuTensor::read_async`] in one, without blocking.
    ///
    /// # Errors
    /// Those of [`GpuNetwork::run`] and [`GpuTensor::read_async`].
    pub async fn run_async(&self, input: &GpuTensor) -> Result<crate::Tensor> {
        self.run(input)?.read_async().await
    }

    /// Runs the network on `input` in one submission and returns every node's output,
    /// indexed by node id (entry 0 is a copy of the input), all on the GPU. For checking a
    /// network layer by layer.
    /// Separable blocks run as two kernels here, so that every output is written.
    pub fn run_all(&self, input: &GpuTensor) -> Result<Vec<GpuTensor>> {
        self.encode_all(input, false)
    }

    /// Records every node in one submission; with `blocks`, each separable block as one unit
    /// along the tuner's path (which may leave its depthwise node's output unwritten).
    fn encode_all(&self, input: &GpuTensor, blocks: bool) -> Result<Vec<GpuTensor>> {
        self.check_input(input)?;
        let mut encoder = self.gpu.encoder("network.encoder")?;
        let mut outputs: Vec<GpuTensor> = Vec::with_capacity(self.net.nodes().len());
        // The producers of folded adds, which run at their add's turn.
        let mut deferred = vec![false; self.net.nodes().len()];
        if blocks && self.fold_adds {
            for fold in self.folds.iter().flatten() {
                deferred[fold.producer] = true;
            }
        }
        for (id, &later) in deferred.iter().enumerate() {
            let output = self.alloc(id)?;
            if id == 0 {
                copy(&mut encoder, input, &output);
            } else {
                let inputs: Vec<&GpuTensor> = self.net.nodes()[id]
                    .inputs
                    .iter()
                    .map(|&i| &outputs[i])
                    .collect();
                let fold = self.folds[id].filter(|_| blocks && self.fold_adds);
                match &self.units[id] {
                    // Runs at its add's turn, writing the add's output.
                    _ if later => {}
                    // The block runs when its second half's turn comes.
                    Unit::Block(_) if blocks => {}
                    Unit::SecondHalf(_) if blocks => {
                        let finish = Finish::of(self.conv(id)?.spec());
                        self.encode_producer(&mut encoder, id, &outputs, &output, finish)?;
                    }
                    _ => match fold {
                        Some(fold) => {
                            let finish = Finish {
                                activation: fold.activation,
                                skip: Some((&outputs[fold.skip], fold.residual)),
                            };
                            let producer = fold.producer;
                            self.encode_producer(
                                &mut encoder,
                                producer,
                                &outputs,
                                &output,
                                finish,
                            )?;
                        }
                        None => self.encode_node(&mut encoder, id, &inputs, &output)?,
                    },
                }
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

    /// Records the conv of node `id` (a whole block at its pointwise node), ending with
    /// `finish`, on its input among `outputs`, into `output`.
    fn encode_producer(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        id: NodeId,
        outputs: &[GpuTensor],
        output: &GpuTensor,
        finish: Finish<'_>,
    ) -> Result<()> {
        let input_of = |node: NodeId| &outputs[self.net.nodes()[node].inputs[0]];
        match &self.units[id] {
            Unit::SecondHalf(first) => {
                let Unit::Block(block) = &self.units[*first] else {
                    unreachable!("pair_blocks puts a block at every first half")
                };
                block.encode_with(encoder, input_of(*first), output, finish)
            }
            _ => self
                .conv(id)?
                .encode_with(encoder, input_of(id), output, finish),
        }
    }

    /// The conv of node `id`, on its own or as a half of a block.
    fn conv(&self, id: NodeId) -> Result<&Conv2d> {
        match &self.units[id] {
            Unit::Conv(conv) => Ok(conv),
            Unit::Block(block) => Ok(block.depthwise()),
            Unit::SecondHalf(first) => match &self.units[*first] {
                Unit::Block(block) => Ok(block.pointwise()),
                _ => unreachable!("pair_blocks puts a block at every first half"),
            },
            Unit::Op => Err(Error::Incompatible {
                reason: format!("node {} is not a convolution", self.net.nodes()[id].name),
            }),
        }
    }

    fn check_input(&self, input: &GpuTensor) -> Result<()> {
        self.gpu.check_same("the input tensor", input.gpu())?;
        check_precision("the input tensor", input, self.precision)?;
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
        GpuTensor::uninit(&self.gpu, node.output, self.precision, "network.activation")
    }

    fn encode_node(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        id: NodeId,
        inputs: &[&GpuTensor],
        output: &GpuTensor,
    ) -> Result<()> {
        let node = self.net.computed_node(id, inputs.len())?;
        match node.op {
            Op::Input => unreachable!("computed_node refuses the input node"),
            Op::Conv { .. } | Op::FullyConnected { .. } => {
                self.conv(id)?.encode(encoder, inputs[0], output)
            }
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

/// The units of `net`: each depthwise conv whose only reader is a pointwise conv (that reads
/// nothing else) paired with it into a [`SeparableBlock`], every other conv on its own.
fn pair_blocks(net: &Network, mut convs: Vec<Option<Conv2d>>) -> Result<Vec<Unit>> {
    let mut units: Vec<Unit> = (0..convs.len()).map(|_| Unit::Op).collect();
    for id in 0..convs.len() {
        let [next] = *net.consumers(id).as_slice() else {
            continue;
        };
        let pairs = match (&convs[id], &convs[next]) {
            (Some(dw), Some(pw)) => {
                net.nodes()[next].inputs == [id] && check_separable(dw.spec(), pw.spec()).is_ok()
            }
            _ => false,
        };
        if !pairs {
            continue;
        }
        if let (Some(dw), Some(pw)) = (convs[id].take(), convs[next].take()) {
            units[id] = Unit::Block(Box::new(SeparableBlock::new(dw, pw)?));
            units[next] = Unit::SecondHalf(id);
        }
    }
    for (id, conv) in convs.into_iter().enumerate() {
        if let Some(conv) = conv {
            units[id] = Unit::Conv(Box::new(conv));
        }
    }
    Ok(units)
}

/// The residual adds of `net` that can run in the epilogue of the conv (or block) producing
/// one of their inputs, at the add's node id: the producer is read by the add alone, and at
/// most one of the two activations is not the identity (the one epilogue applies one).
fn fold_adds(net: &Network, units: &[Unit]) -> Vec<Option<FoldedAdd>> {
    let nodes = net.nodes();
    (0..nodes.len())
        .map(|id| {
            let Op::Add { activation: after } = nodes[id].op else {
                return None;
            };
            let [a, b] = nodes[id].inputs[..] else {
                return None;
            };
            [(a, b), (b, a)].into_iter().find_map(|(producer, skip)| {
                let conv = match &units[producer] {
                    Unit::Conv(conv) => conv.spec(),
                    Unit::SecondHalf(first) => match &units[*first] {
                        // A block pinned to a fused path that cannot bind the skip here keeps
                        // its add apart (its unfolded run works).
                        Unit::Block(block) => {
                            let input = nodes[nodes[*first].inputs[0]].output;
                            if !block.takes_skip(input).unwrap_or(false) {
                                return None;
                            }
                            block.pointwise().spec()
                        }
                        _ => return None,
                    },
                    Unit::Op | Unit::Block(_) => return None,
                };
                if producer == skip || net.consumers(producer) != [id] {
                    return None;
                }
                let (activation, residual) = match (conv.activation, after) {
                    (own, Activation::None) => (own, Residual::AfterActivation),
                    (Activation::None, after) => (after, Residual::BeforeActivation),
                    _ => return None,
                };
                Some(FoldedAdd {
                    producer,
                    skip,
                    activation,
                    residual,
                })
            })
        })
        .collect()
}

/// Copies `from`'s elements into `to` (same element count; flatten and the input copy).
fn copy(encoder: &mut wgpu::CommandEncoder, from: &GpuTensor, to: &GpuTensor) {
    let bytes = from.buffer().size().min(to.buffer().size());
    encoder.copy_buffer_to_buffer(from.buffer(), 0, to.buffer(), 0, bytes);
}
