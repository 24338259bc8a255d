//! Whole networks on the GPU (`GpuNetwork`) against the CPU reference path
//! (`cpu::network`), with seeded random weights, batch norm folded in.
//!
//! Each network is checked twice:
//! 1. **Layer by layer, in isolation**: every node is run on the GPU on the GPU's own inputs
//!    into a NaN-poisoned output and compared with the CPU reference of that node on the same
//!    inputs: bit-exact for add, concatenation, activation, max pooling, shuffle and flatten;
//!    within the convolution tolerance of `tests/common` (random-walk rounding bound from the
//!    reduction length) for convolutions and fully connected layers; within the averaging
//!    tolerance for average pooling.
//! 2. **End to end**: the GPU's activations after one submission against the CPU's own chain,
//!    node by node and at the logits. Rounding differences now propagate through the depth of
//!    the network, so the bound is relative to each tensor's size (see `common::chained_tolerance`).
//!
//! Sizes are small (α ≤ 0.5, 64–96 pixels) so the f64 reference and lavapipe finish quickly.

mod common;

use common::{assert_matches, chained_tolerance, gpu, tolerances, ConvData};
use sepconv::networks::weights::{fold_batch_norm, random_input, BatchNorm, NetworkWeights};
use sepconv::networks::{
    bottleneck, shufflenet_unit, Counting, EfficientNetLite, MobileNetV1, MobileNetV2, Network,
    NetworkBuilder, Op, ResNet, ShuffleNetV1,
};
use sepconv::ops::{Pool2d, PoolKind};
use sepconv::{
    cpu, Conv2dSpec, ConvKernel, Error, Fusion, Gpu, GpuNetwork, GpuTensor, Padding, Shape, Tensor,
    Tuning,
};

/// Tolerance for an average pool (as in tests/gpu_ops.rs): `8·√k·u·mean|x| + 2u·|y|`.
fn avg_tolerance(x: &Tensor, pool: &Pool2d, want: &Tensor) -> Vec<f32> {
    let abs = Tensor::new(x.shape(), x.data().iter().map(|v| v.abs()).collect()).unwrap();
    let mean_abs = sepconv::ops::cpu::pool2d(&abs, pool).unwrap();
    let k = (pool.kernel[0] * pool.kernel[1]) as f32;
    let u = f32::EPSILON / 2.0;
    mean_abs
        .data()
        .iter()
        .zip(want.data())
        .map(|(&m, &y)| 8.0 * k.sqrt() * u * m + 2.0 * u * y.abs())
        .collect()
}

/// Runs `net` both ways and checks it layer by layer and end to end. Returns the number of
/// nodes checked.
fn check_network(net: &Network, seed: u64) -> usize {
    let gpu = gpu();
    let weights = NetworkWeights::random(net, seed).unwrap();
    let x = random_input(net.input_shape(), seed).unwrap();
    let gnet = GpuNetwork::new(gpu, net, &weights).unwrap();
    let gx = GpuTensor::from_tensor(gpu, &x).unwrap();

    // Everything in one submission, read back only now.
    let gpu_outputs = gnet.run_all(&gx).unwrap();
    let got: Vec<Tensor> = gpu_outputs.iter().map(|t| t.read().unwrap()).collect();
    let want = cpu::network::forward(net, &weights, &x).unwrap();
    assert_eq!(got.len(), net.nodes().len());
    assert_eq!(got[0], x, "input copy");

    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let case = format!("{} / {} ({})", net.name(), node.name, node.kind());

        // 1. This node alone, on the GPU's inputs, into a poisoned output.
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &got[i]).collect();
        let gpu_inputs: Vec<&GpuTensor> = node.inputs.iter().map(|&i| &gpu_outputs[i]).collect();
        let reference = cpu::network::forward_node(net, &weights, id, &inputs).unwrap();
        let out = GpuTensor::full(gpu, node.output, f32::NAN).unwrap();
        gnet.run_node_into(id, &gpu_inputs, &out).unwrap();
        let alone = out.read().unwrap();
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
            Op::Pool(pool) if matches!(pool.kind, PoolKind::Avg { .. }) => {
                let tol = avg_tolerance(inputs[0], &pool, &reference);
                assert_matches(&case, seed, &alone, &reference, Some(&tol));
            }
            _ => assert_matches(&case, seed, &alone, &reference, None),
        }
        // The one-submission run computed the same thing as the node on its own.
        assert_matches(
            &format!("{case}, one submission"),
            seed,
            &got[id],
            &alone,
            None,
        );

        // 2. End to end against the CPU's own chain.
        let tol = chained_tolerance(&want[id]);
        assert_matches(
            &format!("{case}, end to end"),
            seed,
            &got[id],
            &want[id],
            Some(&tol),
        );
    }

    // The logits, through `run`.
    let logits = gnet.run(&gx).unwrap().read().unwrap();
    let last = &want[want.len() - 1];
    assert_eq!(logits.shape(), net.output_shape());
    let tol = chained_tolerance(last);
    assert_matches(
        &format!("{} logits", net.name()),
        seed,
        &logits,
        last,
        Some(&tol),
    );
    // The random weights give logits of order 1, not a degenerate constant.
    let spread = last.data().iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(spread > 0.05, "{}: logits are all near zero", net.name());
    net.nodes().len() - 1
}

#[test]
fn mobilenet_v1_forward_matches_cpu() {
    // α = 0.25 at 96×96, batch 2: the full 28-layer structure (3×3 conv, 13 separable blocks,
    // global average pool, classifier) with small channel counts.
    let net = MobileNetV1 {
        alpha: 0.25,
        resolution: 96,
        batch: 2,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_eq!(check_network(&net, 11), 29);
}

#[test]
fn mobilenet_v2_forward_matches_cpu() {
    // α = 0.5 at 64×64: 17 inverted residual blocks, 10 residual adds, linear bottlenecks.
    let net = MobileNetV2 {
        alpha: 0.5,
        resolution: 64,
        ..Default::default()
    }
    .build()
    .unwrap();
    check_network(&net, 12);
}

#[test]
fn resnext_blocks_run_on_the_gpu() {
    // Two ResNeXt bottlenecks, 8 groups of 8 channels: the first strided with a projected
    // shortcut, the second with the identity.
    let mut b = NetworkBuilder::new(
        "ResNeXt blocks",
        Shape::new(2, 32, 14, 14),
        Counting::WEIGHTS,
    )
    .unwrap();
    let input = b.input();
    let x = bottleneck(&mut b, "block1", input, 64, 128, 8, 2).unwrap();
    bottleneck(&mut b, "block2", x, 64, 128, 8, 1).unwrap();
    let net = b.build();
    assert_eq!(net.output_shape(), Shape::new(2, 128, 7, 7));
    assert_eq!(check_network(&net, 13), 9);
}

#[test]
fn shufflenet_units_run_on_the_gpu() {
    // Stage 2 of ShuffleNet g = 3: the stride-2 unit (ungrouped first 1×1, avg-pooled shortcut,
    // concatenation) and a stride-1 unit (grouped 1×1s, channel shuffle, residual add).
    let mut b = NetworkBuilder::new(
        "ShuffleNet units",
        Shape::new(1, 24, 16, 16),
        Counting::WEIGHTS,
    )
    .unwrap();
    let input = b.input();
    let x = shufflenet_unit(&mut b, "unit1", input, 240, 3, 2, false).unwrap();
    shufflenet_unit(&mut b, "unit2", x, 240, 3, 1, true).unwrap();
    let net = b.build();
    assert_eq!(net.output_shape(), Shape::new(1, 240, 8, 8));
    check_network(&net, 14);
}

#[test]
fn whole_shufflenet_and_resnext_run_on_the_gpu() {
    // The complete networks at small inputs: ShuffleNet 1× g = 3 at 64×64 (stem, 16 units,
    // classifier) and ResNeXt-50 32×4d at 32×32.
    let shufflenet = ShuffleNetV1 {
        resolution: 64,
        ..Default::default()
    }
    .build()
    .unwrap();
    check_network(&shufflenet, 15);
    let resnext = ResNet {
        resolution: 32,
        ..ResNet::resnext50_32x4d()
    }
    .build()
    .unwrap();
    check_network(&resnext, 16);
}

#[test]
fn batch_norm_folds_into_conv_weights_and_bias() {
    // conv (no bias) then batch norm, computed separately in f64, against the folded conv.
    let spec = Conv2dSpec::new(4, 6, [3, 3])
        .padding(Padding::uniform(1))
        .groups(2)
        .bias(true);
    let data = ConvData::new(&spec, Shape::new(1, 4, 5, 5), 21, false);
    let bn = BatchNorm {
        gamma: vec![0.5, 1.5, -1.0, 2.0, 0.75, 1.0],
        beta: vec![0.1, -0.2, 0.3, 0.0, -0.5, 0.25],
        mean: vec![0.2, -0.1, 0.0, 0.4, -0.3, 0.05],
        var: vec![0.5, 1.0, 2.0, 0.25, 1.5, 0.8],
        eps: 1e-3,
    };
    let plain = cpu::reference::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
    let mut want = plain.clone();
    let s = want.shape();
    for c in 0..s.c {
        let scale = f64::from(bn.gamma[c]) / (f64::from(bn.var[c]) + f64::from(bn.eps)).sqrt();
        for h in 0..s.h {
            for w in 0..s.w {
                let i = s.index(0, c, h, w);
                let y = (f64::from(plain.data()[i]) - f64::from(bn.mean[c])) * scale
                    + f64::from(bn.beta[c]);
                want.data_mut()[i] = y as f32;
            }
        }
    }
    let (folded, w, b) = fold_batch_norm(&spec, &data.weights, data.bias(), &bn).unwrap();
    let got = cpu::reference::conv2d(&folded, &data.input, &w, Some(&b)).unwrap();
    // Both sides round the 3×3×2 = 18-term sums and the scaling once or twice in f32: a few
    // ulps of the largest intermediate. 1e-5 absolute is ~100 ulps of values of order 1.
    for (g, e) in got.data().iter().zip(want.data()) {
        assert!((g - e).abs() < 1e-5 * (1.0 + e.abs()), "{g} vs {e}");
    }
    // Lengths are checked.
    let short = BatchNorm {
        gamma: vec![1.0; 5],
        ..bn.clone()
    };
    assert!(matches!(
        fold_batch_norm(&spec, &data.weights, data.bias(), &short),
        Err(Error::LengthMismatch { .. })
    ));
    let negative = BatchNorm {
        var: vec![-1.0; 6],
        ..bn
    };
    assert!(matches!(
        fold_batch_norm(&spec, &data.weights, data.bias(), &negative),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn random_weights_are_seeded() {
    let net = MobileNetV1 {
        alpha: 0.25,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let a = NetworkWeights::random(&net, 1).unwrap();
    assert_eq!(a, NetworkWeights::random(&net, 1).unwrap());
    assert_ne!(a, NetworkWeights::random(&net, 2).unwrap());
    // Folded batch norm gives every convolution a bias.
    for (id, node) in net.nodes().iter().enumerate() {
        if let Some(layer) = a.layer(id) {
            assert!(layer.spec.bias && layer.bias.is_some(), "{}", node.name);
        }
    }
}

#[test]
fn gpu_network_rejects_wrong_inputs() {
    let gpu = gpu();
    let net = MobileNetV1 {
        alpha: 0.25,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let weights = NetworkWeights::random(&net, 3).unwrap();
    let gnet = GpuNetwork::new(gpu, &net, &weights).unwrap();
    let wrong = GpuTensor::full(gpu, Shape::new(1, 3, 33, 32), 0.5).unwrap();
    assert!(matches!(gnet.run(&wrong), Err(Error::Incompatible { .. })));
    let x = GpuTensor::full(gpu, net.input_shape(), 0.5).unwrap();
    assert!(matches!(
        gnet.run_node(0, &[&x]),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        gnet.run_node(1, &[&x, &x]),
        Err(Error::Incompatible { .. })
    ));
    // Weights for another network are refused.
    let other = MobileNetV1 {
        alpha: 0.5,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let other_weights = NetworkWeights::random(&other, 3).unwrap();
    let layers = (0..net.nodes().len())
        .map(|id| other_weights.layer(id).cloned())
        .collect();
    assert!(NetworkWeights::new(&net, layers).is_err());
}

#[test]
fn separable_pairs_run_as_blocks_fused_or_not() {
    // MobileNet v1: 13 depthwise convs, each read only by a pointwise conv; MobileNet v2:
    // 17 inverted residual blocks whose depthwise conv feeds a linear projection.
    let v1 = MobileNetV1 {
        alpha: 0.25,
        resolution: 64,
        ..Default::default()
    }
    .build()
    .unwrap();
    let v2 = MobileNetV2 {
        alpha: 0.5,
        resolution: 64,
        ..Default::default()
    }
    .build()
    .unwrap();
    for (net, blocks) in [(&v1, 13), (&v2, 17)] {
        let weights = NetworkWeights::random(net, 21).unwrap();
        let x = random_input(net.input_shape(), 21).unwrap();
        let want = cpu::network::forward(net, &weights, &x).unwrap();
        let last = &want[want.len() - 1];
        let tol = chained_tolerance(last);
        for fusion in [Fusion::Never, Fusion::Always, Fusion::Auto] {
            // A Gpu of its own: the tuning applies to everything made on it afterwards.
            let gpu = Gpu::new().unwrap();
            gpu.tuner().set_tuning(Tuning::auto().with_fusion(fusion));
            let gnet = GpuNetwork::new(&gpu, net, &weights).unwrap();
            assert_eq!(gnet.block_count(), blocks, "{}", net.name());
            let gx = GpuTensor::from_tensor(&gpu, &x).unwrap();
            let logits = gnet.run(&gx).unwrap().read().unwrap();
            assert_matches(
                &format!("{} logits, {fusion:?}", net.name()),
                21,
                &logits,
                last,
                Some(&tol),
            );
        }
    }
}

/// Residual adds run in the epilogue of the conv (or separable block) that produces one of
/// their inputs: every add of MobileNet v2, EfficientNet-Lite0 and ResNeXt blocks folds, one
/// dispatch fewer each, and the folded run gives what the unfolded one gives, bit for bit
/// (the same sums, the same one `f32` add), and what the CPU gives. Under pinned windows and
/// two-kernel blocks, and, on devices that bind 7 storage buffers, under pinned tiled products
/// and fused blocks.
#[test]
fn residual_adds_fold_into_their_producers() {
    let mut resnext = NetworkBuilder::new(
        "ResNeXt blocks",
        Shape::new(1, 32, 14, 14),
        Counting::WEIGHTS,
    )
    .unwrap();
    let input = resnext.input();
    let x = bottleneck(&mut resnext, "block1", input, 64, 128, 8, 2).unwrap();
    bottleneck(&mut resnext, "block2", x, 64, 128, 8, 1).unwrap();
    let networks = [
        MobileNetV2 {
            alpha: 0.5,
            resolution: 64,
            ..Default::default()
        }
        .build()
        .unwrap(),
        EfficientNetLite {
            resolution: 64,
            ..EfficientNetLite::new(0).unwrap()
        }
        .build()
        .unwrap(),
        resnext.build(),
    ];
    let mut tunings = vec![Tuning::pinned()];
    if gpu().limits().max_storage_buffers_per_shader_stage >= 7 {
        tunings.push(
            Tuning::pinned()
                .with_kernel(ConvKernel::TiledGemm)
                .with_fusion(Fusion::Always),
        );
    }
    for tuning in tunings {
        // A device of its own with pinned kernels, so that the dispatch counts do not depend
        // on what the tuner measures (or on other tests' runs).
        let gpu = Gpu::new().unwrap();
        gpu.tuner().set_tuning(tuning);
        for (seed, net) in networks.iter().enumerate() {
            let case = format!("{} {tuning:?}", net.name());
            let adds = net
                .nodes()
                .iter()
                .filter(|n| matches!(n.op, Op::Add { .. }))
                .count();
            assert!(adds > 0, "{case}: no residual adds");
            let weights = NetworkWeights::random(net, seed as u64).unwrap();
            let x = random_input(net.input_shape(), seed as u64).unwrap();
            let gx = GpuTensor::from_tensor(&gpu, &x).unwrap();
            let folded = GpuNetwork::new(&gpu, net, &weights).unwrap();
            assert_eq!(folded.folded_adds(), adds, "{case}");
            let unfolded = GpuNetwork::new(&gpu, net, &weights)
                .unwrap()
                .with_folded_adds(false);
            assert_eq!(unfolded.folded_adds(), 0);
            let count = |network: &GpuNetwork| {
                let before = gpu.dispatch_count();
                let y = network.run(&gx).unwrap().read().unwrap();
                (y, gpu.dispatch_count() - before)
            };
            let (y_unfolded, d_unfolded) = count(&unfolded);
            let (y_folded, d_folded) = count(&folded);
            eprintln!(
                "{case}: {adds} residual adds, {d_unfolded} dispatches unfolded, {d_folded} folded"
            );
            assert_eq!(d_unfolded, d_folded + adds as u64, "{case}");
            assert_matches(&format!("{case} folded"), 0, &y_folded, &y_unfolded, None);
            let want = cpu::network::forward(net, &weights, &x).unwrap();
            let last = &want[want.len() - 1];
            let tol = chained_tolerance(last);
            assert_matches(
                &format!("{case} against the CPU"),
                0,
                &y_folded,
                last,
                Some(&tol),
            );
        }
    }
}
