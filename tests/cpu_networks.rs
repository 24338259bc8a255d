//! Whole networks on the fast CPU path (`CpuNetwork`) against the reference path
//! (`cpu::network`), with seeded random weights, batch norm folded in, as
//! `tests/gpu_networks.rs` checks the GPU:
//! 1. **Layer by layer, in isolation**: every node on the fast path's own inputs, into a
//!    NaN-poisoned output, against the reference of that node on the same inputs: bit-exact
//!    for add, concatenation, activation, pooling (the fast average sums in `f64` in the
//!    reference's order), shuffle and flatten; within the convolution tolerance of
//!    `tests/common` for convolutions and fully connected layers.
//! 2. **End to end**: `run_all`'s activations against the reference's own chain, and the
//!    logits from `run` (which frees activations as it goes) against both.
//!
//! No GPU is needed.

mod common;

use common::{assert_matches, chained_tolerance, tolerances, ConvData};
use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{
    AlexNet, Counting, MobileNetV1, MobileNetV2, Network, NetworkBuilder, Op, ResNet, ShuffleNetV1,
    Xception,
};
use sepconv::{cpu, CpuNetwork, Device, Error, Runner, Shape, Tensor};

/// Runs `net` on the fast path and the reference and checks it layer by layer and end to
/// end. Returns the number of nodes checked.
fn check_network(net: &Network, seed: u64) -> usize {
    let weights = NetworkWeights::random(net, seed).unwrap();
    let x = random_input(net.input_shape(), seed).unwrap();
    let fast = CpuNetwork::new(net, &weights).unwrap();
    let got = fast.run_all(&x).unwrap();
    let want = cpu::network::forward(net, &weights, &x).unwrap();
    assert_eq!(got.len(), net.nodes().len());
    assert_eq!(got[0], x, "input copy");

    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let case = format!("{} / {} ({})", net.name(), node.name, node.kind());
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &got[i]).collect();
        let reference = cpu::network::forward_node(net, &weights, id, &inputs).unwrap();
        let mut alone = Tensor::full(node.output, f32::NAN).unwrap();
        fast.run_node_into(id, &inputs, &mut alone).unwrap();
        match node.op {
            Op::Conv { .. } | Op::FullyConnected { .. } => {
                let layer = weights.layer(id).unwrap();
                let data = ConvData {
                    input: inputs[0].clone(),
                    weights: layer.weights.clone(),
                    bias: layer.bias.clone(),
                };
                let tol = tolerances(&layer.spec, &data, &reference);
                assert_matches(&case, seed, &alone, &reference, Some(&tol));
            }
            _ => assert_matches(&case, seed, &alone, &reference, None),
        }
        assert_matches(
            &format!("{case}, in the chain"),
            seed,
            &got[id],
            &alone,
            None,
        );
        let tol = chained_tolerance(&want[id]);
        assert_matches(
            &format!("{case}, end to end"),
            seed,
            &got[id],
            &want[id],
            Some(&tol),
        );
    }

    let logits = fast.run(&x).unwrap();
    let last = &want[want.len() - 1];
    assert_eq!(logits.shape(), net.output_shape());
    assert_matches(
        &format!("{} logits, run", net.name()),
        seed,
        &logits,
        &got[got.len() - 1],
        None,
    );
    let tol = chained_tolerance(last);
    assert_matches(
        &format!("{} logits", net.name()),
        seed,
        &logits,
        last,
        Some(&tol),
    );
    let spread = last.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(spread > 0.05, "{}: logits are all near zero", net.name());
    net.nodes().len() - 1
}

#[test]
fn mobilenet_v1_runs_whole_on_the_fast_path() {
    // α = 0.5 at 128×128, batch 2: the full structure, planes from 64×64 down to 4×4.
    let net = MobileNetV1 {
        alpha: 0.5,
        resolution: 128,
        batch: 2,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_eq!(check_network(&net, 31), 29);
}

#[test]
fn mobilenet_v2_runs_whole_on_the_fast_path() {
    // α = 0.5 at 96×96: 17 inverted residual blocks, 10 residual adds, linear bottlenecks.
    let net = MobileNetV2 {
        alpha: 0.5,
        resolution: 96,
        ..Default::default()
    }
    .build()
    .unwrap();
    check_network(&net, 32);
}

#[test]
fn shufflenet_resnext_and_resnet_run_whole_on_the_fast_path() {
    // Channel shuffle, average-pooled shortcuts, concatenation, grouped 1×1 and 3×3 convs,
    // max pooling with padding, projected and identity shortcuts.
    for (seed, groups) in [(33, 3), (34, 8)] {
        let shufflenet = ShuffleNetV1 {
            groups,
            resolution: 64,
            ..Default::default()
        }
        .build()
        .unwrap();
        check_network(&shufflenet, seed);
    }
    let resnext = ResNet {
        resolution: 32,
        ..ResNet::resnext50_32x4d()
    }
    .build()
    .unwrap();
    check_network(&resnext, 35);
    let resnet = ResNet {
        resolution: 32,
        ..ResNet::resnet50()
    }
    .build()
    .unwrap();
    check_network(&resnet, 36);
}

#[test]
fn xception_and_alexnet_run_whole_on_the_fast_path() {
    // Xception's standalone activations and strided max pools with padding; AlexNet's
    // two-group convolutions, unpadded max pools, flatten and three fully connected layers.
    let xception = Xception {
        resolution: 71,
        ..Default::default()
    }
    .build()
    .unwrap();
    check_network(&xception, 37);
    let alexnet = AlexNet {
        resolution: 67,
        classes: 10,
        ..Default::default()
    }
    .build()
    .unwrap();
    check_network(&alexnet, 38);
}

#[test]
fn cpu_network_rejects_wrong_inputs() {
    let net = MobileNetV1 {
        alpha: 0.25,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let weights = NetworkWeights::random(&net, 3).unwrap();
    let fast = CpuNetwork::new(&net, &weights).unwrap();
    let wrong = Tensor::full(Shape::new(1, 3, 33, 32), 0.5).unwrap();
    assert!(matches!(fast.run(&wrong), Err(Error::Incompatible { .. })));
    let x = Tensor::full(net.input_shape(), 0.5).unwrap();
    assert!(matches!(
        fast.run_node(0, &[&x]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        fast.run_node(99, &[&x]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        fast.run_node(1, &[&x, &x]),
        Err(Error::Incompatible { .. })
    ));
    // A later node fed the wrong shape, and an output of the wrong shape.
    let y = fast.run_node(1, &[&x]).unwrap();
    assert!(matches!(
        fast.run_node(3, &[&x]),
        Err(Error::Incompatible { .. })
    ));
    let mut bad_out = Tensor::full(x.shape(), 0.0).unwrap();
    assert!(matches!(
        fast.run_node_into(2, &[&y], &mut bad_out),
        Err(Error::Incompatible { .. })
    ));
    // Weights of a network with no convolutions: the first conv finds none.
    let mut ops = NetworkBuilder::new("ops", net.input_shape(), Counting::WEIGHTS).unwrap();
    let x0 = ops.input();
    ops.activation("relu", x0, sepconv::Activation::Relu)
        .unwrap();
    let no_convs = NetworkWeights::random(&ops.build(), 3).unwrap();
    assert!(matches!(
        CpuNetwork::new(&net, &no_convs),
        Err(Error::Incompatible { .. })
    ));
}

#[test]
fn an_op_network_matches_the_reference_bit_for_bit() {
    // Every non-conv op on small-integer data, where the fast path must equal the reference
    // exactly (shuffle, concat, add, activation, max and average pools with and without
    // counted padding).
    use sepconv::ops::{Pool2d, PoolKind};
    use sepconv::{Activation, Padding};
    let mut b = NetworkBuilder::new("ops", Shape::new(2, 6, 9, 7), Counting::WEIGHTS).unwrap();
    let x = b.input();
    let s = b.channel_shuffle("shuffle", x, 3).unwrap();
    let c = b.concat("concat", x, s, Activation::Relu6).unwrap();
    let a = b.add("add", c, c, Activation::None).unwrap();
    let r = b.activation("relu", a, Activation::Relu).unwrap();
    let m = b
        .pool("max", r, Pool2d::max([3, 3], [2, 2], Padding::uniform(1)))
        .unwrap();
    let avg = Pool2d {
        kind: PoolKind::Avg {
            count_include_pad: false,
        },
        ..Pool2d::avg([3, 3], [1, 2], Padding::SameUpper)
    };
    let p = b.pool("avg same", m, avg).unwrap();
    let q = b
        .pool(
            "avg padded",
            p,
            Pool2d::avg([2, 2], [1, 1], Padding::uniform(1)),
        )
        .unwrap();
    b.global_avg_pool("gap", q).unwrap();
    let net = b.build();
    let x = Tensor::new(
        net.input_shape(),
        common::small_ints(5, net.input_shape().len().unwrap()),
    )
    .unwrap();
    let weights = NetworkWeights::random(&net, 5).unwrap();
    let got = CpuNetwork::new(&net, &weights)
        .unwrap()
        .run_all(&x)
        .unwrap();
    let want = cpu::network::forward(&net, &weights, &x).unwrap();
    for (id, node) in net.nodes().iter().enumerate() {
        assert_matches(&node.name, 5, &got[id], &want[id], None);
    }
}

#[test]
fn the_cpu_runner_runs_the_fast_path() {
    let net = MobileNetV2 {
        alpha: 0.35,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let weights = NetworkWeights::random(&net, 9).unwrap();
    let x = random_input(net.input_shape(), 9).unwrap();
    let selection = Device::Cpu.select().unwrap();
    assert!(selection.is_cpu() && selection.gpu().is_none());
    let runner = Runner::new(&selection, &net, &weights).unwrap();
    assert!(runner.reason().starts_with("CPU"), "{}", runner.reason());
    let want = CpuNetwork::new(&net, &weights).unwrap().run(&x).unwrap();
    assert_matches("runner", 9, &runner.run(&x).unwrap(), &want, None);
}

#[test]
fn auto_picks_the_fast_path_on_a_software_adapter() {
    let selection = Device::Auto.select().unwrap();
    eprintln!("auto: {}", selection.reason());
    match sepconv::Gpu::new() {
        Ok(gpu) if gpu.adapter_info().device_type == wgpu::DeviceType::Cpu => {
            assert!(selection.is_cpu(), "{}", selection.reason());
            assert!(selection.reason().contains(gpu.adapter_name()));
            assert!(selection.reason().contains("software"));
        }
        Ok(gpu) => {
            let chosen = selection.gpu().expect("a hardware GPU is kept");
            assert_eq!(chosen.adapter_name(), gpu.adapter_name());
        }
        Err(_) => assert!(selection.is_cpu(), "{}", selection.reason()),
    }
}
