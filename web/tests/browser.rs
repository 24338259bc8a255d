//! The browser test suite: sepconv on WebGPU in headless Chromium (SwiftShader's software
//! Vulkan under Chromium's Dawn), against the CPU reference, as the native tests do.
//!
//! Every kernel family (depthwise, pointwise and grouped with both kernels, split-K, the
//! general direct convolution, the fused separable kernel) runs on seeded data into an
//! output poisoned with NaN first, so an element the shader never wrote fails; then a
//! separable block both ways and two small whole networks (MobileNet v1 α = 0.25 at 64×64 and
//! two ShuffleNet units: grouped 1×1, shuffle, depthwise, average pool, concatenation,
//! residual add) node by node and end to end. Sizes are small: SwiftShader on two busy cores.
//!
//! Run with `cargo test --release` in `web/` (see `.cargo/config.toml` and `webdriver.json`).
#![cfg(target_arch = "wasm32")]

use std::num::NonZeroUsize;

use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{shufflenet_unit, Counting, Network, NetworkBuilder, Op};
use sepconv::ops::PoolKind;
use sepconv::{
    cpu, Conv2d, Conv2dSpec, ConvKernel, Error, Fusion, Gpu, GpuNetwork, GpuTensor, Padding,
    SeparableBlock, Shape, SplitK, Tensor, Tuning,
};
use sepconv_web::check::{self, ConvData};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

async fn gpu() -> Gpu {
    let gpu = Gpu::new_async()
        .await
        .unwrap_or_else(|e| panic!("no WebGPU adapter (is --enable-unsafe-webgpu set?): {e}"));
    web_sys_log(&format!(
        "adapter: {} ({:?})",
        gpu.adapter_name(),
        gpu.backend()
    ));
    gpu
}

fn web_sys_log(s: &str) {
    wasm_bindgen_test::console_log!("{s}");
}

/// Runs `conv` on the case's data into a NaN-poisoned output and checks it against the
/// reference within the tolerance of `check::tolerances`.
async fn check_conv(gpu: &Gpu, case: &str, spec: Conv2dSpec, input: Shape, kernel: ConvKernel) {
    check_conv_split(gpu, case, spec, input, kernel, SplitK::Auto).await;
}

async fn check_conv_split(
    gpu: &Gpu,
    case: &str,
    spec: Conv2dSpec,
    input: Shape,
    kernel: ConvKernel,
    split_k: SplitK,
) {
    let seed = 7 + input.len().unwrap() as u64;
    let data = ConvData::new(&spec, input, seed).unwrap();
    let want = data.reference(&spec).unwrap();
    let tol = check::tolerances(&spec, &data, &want).unwrap();
    let got = run_conv(gpu, spec, kernel, split_k, &data).await;
    let ratio = check::worst_ratio(got.data(), want.data(), Some(&tol));
    assert!(
        ratio <= 1.0,
        "{case} ({kernel:?}, {split_k:?}): worst |diff|/tolerance {ratio}"
    );
    // Small integers: the sums are exact in f32, so GPU and reference agree bit for bit.
    let exact = ConvData {
        input: Tensor::new(input, check::small_ints(seed, input.len().unwrap())).unwrap(),
        weights: check::small_ints(seed ^ 1, spec.weight_count()),
        bias: spec.bias.then(|| check::small_ints(seed ^ 2, spec.c_out)),
    };
    let want = exact.reference(&spec).unwrap();
    let got = run_conv(gpu, spec, kernel, split_k, &exact).await;
    let ratio = check::worst_ratio(got.data(), want.data(), None);
    assert!(
        ratio == 0.0,
        "{case} ({kernel:?}): not bit-exact on small integers"
    );
}

/// One run of the conv on `data` into an output poisoned with NaN first, read back.
async fn run_conv(
    gpu: &Gpu,
    spec: Conv2dSpec,
    kernel: ConvKernel,
    split_k: SplitK,
    data: &ConvData,
) -> Tensor {
    let conv = Conv2d::new(gpu, spec, &data.weights, data.bias.as_deref())
        .unwrap()
        .with_tuning(Tuning::auto().with_kernel(kernel).with_split_k(split_k));
    let x = GpuTensor::from_tensor(gpu, &data.input).unwrap();
    let output = conv.output_shape(data.input.shape()).unwrap();
    let y = GpuTensor::full(gpu, output, f32::NAN).unwrap();
    conv.run_into(&x, &y).unwrap();
    y.read_async().await.unwrap()
}

#[wasm_bindgen_test]
async fn depthwise_matches_reference() {
    let gpu = gpu().await;
    let cases = [
        (
            "3x3 s1",
            Conv2dSpec::depthwise(16, [3, 3]).padding(Padding::uniform(1)),
            17,
        ),
        (
            "3x3 s2",
            Conv2dSpec::depthwise(24, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            15,
        ),
        (
            "5x5 dilated",
            Conv2dSpec::depthwise(8, [5, 5])
                .dilation([2, 2])
                .padding(Padding::uniform(4)),
            13,
        ),
        (
            "multiplier 2",
            Conv2dSpec::new(8, 16, [3, 3])
                .groups(8)
                .padding(Padding::uniform(1)),
            9,
        ),
    ];
    for (case, spec, hw) in cases {
        let spec = spec.bias(true);
        check_conv(
            &gpu,
            case,
            spec,
            Shape::new(2, spec.c_in, hw, hw + 2),
            ConvKernel::Auto,
        )
        .await;
    }
}

#[wasm_bindgen_test]
async fn pointwise_matches_reference_with_both_kernels_and_split_k() {
    let gpu = gpu().await;
    let spec = Conv2dSpec::pointwise(48, 80).bias(true);
    let input = Shape::new(1, 48, 11, 13);
    for kernel in [ConvKernel::UniformWindows, ConvKernel::TiledGemm] {
        check_conv(&gpu, "pointwise", spec, input, kernel).await;
    }
    let four = SplitK::Parts(NonZeroUsize::new(4).unwrap());
    let deep = Conv2dSpec::pointwise(256, 64).bias(true);
    check_conv_split(
        &gpu,
        "pointwise split-K",
        deep,
        Shape::new(1, 256, 5, 5),
        ConvKernel::TiledGemm,
        four,
    )
    .await;
}

#[wasm_bindgen_test]
async fn grouped_and_standard_convs_match_reference() {
    let gpu = gpu().await;
    let grouped = Conv2dSpec::new(32, 64, [3, 3])
        .groups(4)
        .padding(Padding::uniform(1))
        .bias(true);
    for kernel in [ConvKernel::UniformWindows, ConvKernel::TiledGemm] {
        check_conv(
            &gpu,
            "grouped g=4",
            grouped,
            Shape::new(1, 32, 10, 9),
            kernel,
        )
        .await;
    }
    // MobileNet's first layer: a standard 3×3, stride 2, 3 → 32 channels.
    let stem = Conv2dSpec::new(3, 32, [3, 3])
        .stride([2, 2])
        .padding(Padding::uniform(1))
        .bias(true);
    check_conv(
        &gpu,
        "standard stem",
        stem,
        Shape::new(1, 3, 33, 31),
        ConvKernel::Auto,
    )
    .await;
}

#[wasm_bindgen_test]
async fn separable_block_matches_reference_fused_and_not() {
    let gpu = gpu().await;
    let dw = Conv2dSpec::depthwise(32, [3, 3])
        .stride([2, 2])
        .padding(Padding::uniform(1))
        .bias(true);
    let pw = Conv2dSpec::pointwise(32, 48).bias(true);
    let input = Shape::new(1, 32, 18, 18);
    let data = ConvData::new(&dw, input, 3).unwrap();
    let pw_w = check::uniform(4, pw.weight_count());
    let pw_b = check::uniform(5, pw.c_out);
    let mid = data.reference(&dw).unwrap();
    let want = cpu::reference::conv2d(&pw, &mid, &pw_w, Some(&pw_b)).unwrap();
    // Two layers: the pointwise bound on the reference's intermediate, plus what the
    // intermediate's own rounding (the depthwise bound) carries through |w_pw|.
    let mid_data = ConvData {
        input: mid.clone(),
        weights: pw_w.clone(),
        bias: Some(pw_b.clone()),
    };
    let tol_pw = check::tolerances(&pw, &mid_data, &want).unwrap();
    let tol_dw = check::tolerances(&dw, &data, &mid).unwrap();
    let carried = {
        let t = Tensor::new(mid.shape(), tol_dw).unwrap();
        let abs_w: Vec<f32> = pw_w.iter().map(|w| w.abs()).collect();
        cpu::reference::conv2d(&pw.bias(false), &t, &abs_w, None).unwrap()
    };
    let tol: Vec<f32> = tol_pw
        .iter()
        .zip(carried.data())
        .map(|(a, b)| a + b)
        .collect();
    for fusion in [Fusion::Never, Fusion::Always] {
        let block = SeparableBlock::new(
            Conv2d::new(&gpu, dw, &data.weights, data.bias.as_deref()).unwrap(),
            Conv2d::new(&gpu, pw, &pw_w, Some(&pw_b)).unwrap(),
        )
        .unwrap()
        .with_tuning(Tuning::auto().with_fusion(fusion));
        let x = GpuTensor::from_tensor(&gpu, &data.input).unwrap();
        let y = GpuTensor::full(&gpu, want.shape(), f32::NAN).unwrap();
        block.run_into(&x, &y).unwrap();
        let got = y.read_async().await.unwrap();
        let ratio = check::worst_ratio(got.data(), want.data(), Some(&tol));
        assert!(
            ratio <= 1.0,
            "separable block {fusion:?}: worst |diff|/tolerance {ratio}"
        );
    }
}

/// Every node of `net` alone on the GPU's own inputs into a NaN-poisoned output against the
/// reference node (convolutions and average pools within their rounding bounds, every other
/// op bit for bit), and the logits end to end within the native chained bound.
async fn check_network(gpu: &Gpu, net: &Network, seed: u64) {
    let weights = NetworkWeights::random(net, seed).unwrap();
    let x = random_input(net.input_shape(), seed).unwrap();
    let gnet = GpuNetwork::new(gpu, net, &weights).unwrap();
    let outputs = gnet
        .run_all(&GpuTensor::from_tensor(gpu, &x).unwrap())
        .unwrap();
    let mut got = Vec::new();
    for t in &outputs {
        got.push(t.read_async().await.unwrap());
    }
    let want = cpu::network::forward(net, &weights, &x).unwrap();
    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &got[i]).collect();
        let gpu_inputs: Vec<&GpuTensor> = node.inputs.iter().map(|&i| &outputs[i]).collect();
        let reference = cpu::network::forward_node(net, &weights, id, &inputs).unwrap();
        let out = GpuTensor::full(gpu, node.output, f32::NAN).unwrap();
        gnet.run_node_into(id, &gpu_inputs, &out).unwrap();
        let alone = out.read_async().await.unwrap();
        let tol = match node.op {
            Op::Conv { .. } | Op::FullyConnected { .. } => {
                let layer = weights.layer(id).unwrap();
                let data = ConvData {
                    input: inputs[0].clone(),
                    weights: layer.weights.clone(),
                    bias: layer.bias.clone(),
                };
                check::tolerances(&layer.spec, &data, &reference).unwrap()
            }
            // An average rounds once per tap: 8·√k·u·mean|x| + 2u·|y|, as natively.
            Op::Pool(pool) if matches!(pool.kind, PoolKind::Avg { .. }) => {
                let abs: Vec<f32> = inputs[0].data().iter().map(|v| v.abs()).collect();
                let abs = Tensor::new(inputs[0].shape(), abs).unwrap();
                let mean_abs = sepconv::ops::cpu::pool2d(&abs, &pool).unwrap();
                let k = (pool.kernel[0] * pool.kernel[1]) as f32;
                let u = f32::EPSILON / 2.0;
                let mean_abs = mean_abs.data().iter().zip(reference.data());
                mean_abs
                    .map(|(&m, &y)| 8.0 * k.sqrt() * u * m + 2.0 * u * y.abs())
                    .collect()
            }
            // Add, concatenation, shuffle, max pooling, flatten: bit for bit.
            _ => Vec::new(),
        };
        let tol = (!tol.is_empty()).then_some(tol.as_slice());
        let ratio = check::worst_ratio(alone.data(), reference.data(), tol);
        assert!(
            ratio <= 1.0,
            "{} / {} ({}): worst |diff|/tolerance {ratio}",
            net.name(),
            node.name,
            node.kind()
        );
        let last = want.len() - 1;
        if id == last {
            let tol = check::chained_tolerance(want[last].data());
            let ratio = check::worst_ratio(got[last].data(), want[last].data(), Some(&tol));
            assert!(
                ratio <= 1.0,
                "{}: logits end to end, worst |diff|/tolerance {ratio}",
                net.name()
            );
        }
    }
}

#[wasm_bindgen_test]
async fn small_mobilenet_v1_matches_reference() {
    let gpu = gpu().await;
    let net = sepconv::networks::mobilenet_v1(0.25, 64).unwrap();
    check_network(&gpu, &net, 11).await;
}

#[wasm_bindgen_test]
async fn shufflenet_units_match_reference() {
    let gpu = gpu().await;
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
    check_network(&gpu, &net, 14).await;
}

#[wasm_bindgen_test]
async fn blocking_calls_are_typed_errors_on_the_web() {
    let gpu = gpu().await;
    assert!(matches!(gpu.wait(), Err(Error::Unsupported { .. })));
}

#[wasm_bindgen_test]
fn the_check_catches_unwritten_and_wrong_elements() {
    // The comparison every test above relies on: NaN (an element the shader never wrote into
    // the poisoned output) and one wrong tap fail; equal values pass.
    let want = [1.0f32, -2.0, 3.0];
    let tol = [1e-6f32; 3];
    assert_eq!(check::worst_ratio(&want, &want, Some(&tol)), 0.0);
    assert_eq!(
        check::worst_ratio(&[1.0, f32::NAN, 3.0], &want, Some(&tol)),
        f64::INFINITY
    );
    assert!(check::worst_ratio(&[1.0, -2.0, 3.1], &want, Some(&tol)) > 1.0);
    assert_eq!(
        check::worst_ratio(&[1.0, -2.0, 3.000001], &want, None),
        f64::INFINITY
    );
    assert_eq!(
        check::worst_ratio(&want[..2], &want, Some(&tol)),
        f64::INFINITY
    );
}

#[wasm_bindgen_test]
async fn a_destroyed_device_gives_typed_errors_not_panics() {
    // The browser reports the loss (and any error it causes) asynchronously; a read after it
    // must come back as an error, and the calls after that too.
    let gpu = gpu().await;
    let x = GpuTensor::from_slice(&gpu, Shape::new(1, 1, 2, 2), &[1.0, 2.0, 3.0, 4.0]).unwrap();
    gpu.device().destroy();
    assert!(
        x.read_async().await.is_err(),
        "read after destroy succeeded"
    );
    let conv = Conv2d::new(&gpu, Conv2dSpec::pointwise(1, 1), &[1.0], Some(&[0.0]));
    let again = match conv {
        Err(e) => Err(e),
        Ok(conv) => match conv.run(&x) {
            Err(e) => Err(e),
            Ok(y) => y.read_async().await.map(|_| ()),
        },
    };
    assert!(again.is_err(), "a conv after destroy succeeded");
}
