//! The residual add in every kernel's epilogue (depthwise, pointwise and grouped windows, the
//! tiled product unsplit and split, the fused block and the two-kernel block), before and
//! after the activation, against the `f64` reference (`reference::conv2d_residual`); the
//! fast CPU path; the errors; runs split past the binding limit; and devices too small for
//! the tiled kernels' extra binding. Outputs are poisoned with NaN before each dispatch.

mod common;
mod limited;

use std::num::NonZeroUsize;

use common::{assert_matches, gpu, residual_tolerances, ConvData};
use sepconv::{
    cpu::{fast, reference},
    Activation, Conv2d, Conv2dSpec, ConvKernel, Error, Fusion, Gpu, GpuTensor, Padding, Residual,
    SeparableBlock, Shape, SplitK, Tensor, Tuning,
};

/// The tests of this binary run one at a time: on GL (llvmpipe) wgpu holds one context lock
/// per adapter and panics when a thread waits for it more than 6 s, which a CPU adapter
/// compiling these many pipelines for several tests at once (on a 2-core machine) can reach.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const PLACES: [Residual; 2] = [Residual::BeforeActivation, Residual::AfterActivation];

/// Activations whose place relative to the add matters (ReLU6's clamp, HardSwish's curve,
/// a negative slope) and the identity, where both places agree.
const ACTIVATIONS: [Activation; 4] = [
    Activation::None,
    Activation::Relu6,
    Activation::HardSwish,
    Activation::LeakyRelu(-0.5),
];

/// One kernel under test: a conv spec, an input shape and the tuning that picks the kernel.
struct Case {
    name: &'static str,
    spec: Conv2dSpec,
    input: Shape,
    tuning: Tuning,
}

fn pinned(kernel: ConvKernel, parts: usize) -> Tuning {
    Tuning::pinned()
        .with_kernel(kernel)
        .with_split_k(SplitK::Parts(NonZeroUsize::new(parts).unwrap()))
}

/// Every conv kernel: the three window kernels (the pointwise one with its input channels
/// over two weight windows, so that the add comes only with the slice that finishes the
/// sums), and the tiled product unsplit, split (the add in its second pass) and grouped.
fn cases() -> Vec<Case> {
    let windows = pinned(ConvKernel::UniformWindows, 1);
    let tiled = pinned(ConvKernel::TiledGemm, 1);
    vec![
        Case {
            name: "depthwise 3×3",
            spec: Conv2dSpec::depthwise(24, [3, 3]).padding(Padding::uniform(1)),
            input: Shape::new(2, 24, 9, 11),
            tuning: windows,
        },
        Case {
            name: "depthwise 5×5 stride 2 dilation 2, multiplier 2",
            spec: Conv2dSpec::depthwise(8, [5, 5])
                .multiplier(2)
                .stride([2, 2])
                .dilation([2, 2])
                .padding(Padding::same()),
            input: Shape::new(1, 8, 13, 12),
            tuning: windows,
        },
        Case {
            name: "pointwise windows, two slices",
            spec: Conv2dSpec::pointwise(1024, 40),
            input: Shape::new(1, 1024, 7, 7),
            tuning: windows,
        },
        Case {
            name: "grouped windows",
            spec: Conv2dSpec::new(32, 48, [3, 3])
                .groups(4)
                .padding(Padding::uniform(1)),
            input: Shape::new(1, 32, 10, 9),
            tuning: windows,
        },
        Case {
            name: "tiled pointwise",
            spec: Conv2dSpec::pointwise(72, 80).bias(false),
            input: Shape::new(2, 72, 9, 9),
            tuning: tiled,
        },
        Case {
            name: "tiled pointwise, split-K in 3",
            spec: Conv2dSpec::pointwise(256, 72),
            input: Shape::new(1, 256, 7, 7),
            tuning: pinned(ConvKernel::TiledGemm, 3),
        },
        Case {
            name: "tiled grouped 3×3 stride 2",
            spec: Conv2dSpec::new(32, 64, [3, 3])
                .groups(2)
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            input: Shape::new(1, 32, 11, 12),
            tuning: tiled,
        },
    ]
}

/// Runs `conv` on `x` with `skip` added at `place` into a NaN-filled output.
fn run_residual(
    conv: &Conv2d,
    x: &Tensor,
    skip: &Tensor,
    place: Residual,
) -> sepconv::Result<Tensor> {
    let gpu = conv.gpu();
    let gx = GpuTensor::from_tensor(gpu, x)?;
    let gs = GpuTensor::from_tensor(gpu, skip)?;
    let y = GpuTensor::full(gpu, conv.output_shape(x.shape())?, f32::NAN)?;
    conv.run_residual_into(&gx, &gs, place, &y)?;
    y.read()
}

/// Seeded random data, every activation, both places, every kernel: within the tolerance of
/// the sums and the add (`residual_tolerances`).
#[test]
fn random_data_on_every_kernel() {
    let _serial = one_at_a_time();
    let gpu = gpu();
    for (c, case) in cases().iter().enumerate() {
        // Two activations per kernel, each activation on several kernels (a pipeline per
        // kind and place costs a compilation on a CPU adapter).
        for a in 0..2 {
            let act = ACTIVATIONS[(c + a) % ACTIVATIONS.len()];
            let spec = case.spec.activation(act);
            let seed = (c * 10 + a) as u64;
            let data = ConvData::new(&spec, case.input, seed, false);
            let out = spec.output_shape(case.input).unwrap();
            let skip = Tensor::new(out, common::normal(seed + 99, out.len().unwrap())).unwrap();
            let conv = Conv2d::new(gpu, spec, &data.weights, data.bias())
                .unwrap()
                .with_tuning(case.tuning);
            for place in PLACES {
                let label = format!("{} {act:?} {place:?}", case.name);
                let want = reference::conv2d_residual(
                    &spec,
                    &data.input,
                    &data.weights,
                    data.bias(),
                    &skip,
                    place,
                )
                .unwrap();
                // Where the device cannot bind the tiled product's skip (OpenGL ES: 4 storage
                // buffers), the pinned tiled cases run on the windows.
                let got = run_residual(&conv, &data.input, &skip, place).unwrap();
                let tol = residual_tolerances(&spec, &data, &skip, &want);
                assert_matches(&label, seed, &got, &want, Some(&tol));
                // The fast CPU path: the same contract.
                let cpu = fast::Conv2dCpu::new(spec, &data.weights, data.bias())
                    .unwrap()
                    .run_residual(&data.input, &skip, place)
                    .unwrap();
                assert_matches(&format!("{label}, CPU"), seed, &cpu, &want, Some(&tol));
            }
        }
    }
}

/// Small integers make every sum and add exact: each kernel must match bit for bit, so a
/// skip element read from a neighbour's index cannot hide under a tolerance.
#[test]
fn integer_data_match_bit_for_bit() {
    let _serial = one_at_a_time();
    let gpu = gpu();
    for (c, case) in cases().iter().enumerate() {
        for place in PLACES {
            let spec = case.spec.activation(Activation::Relu);
            let seed = 500 + c as u64;
            let data = ConvData::new(&spec, case.input, seed, true);
            let out = spec.output_shape(case.input).unwrap();
            let skip = Tensor::new(out, common::small_ints(seed + 1, out.len().unwrap())).unwrap();
            let want = reference::conv2d_residual(
                &spec,
                &data.input,
                &data.weights,
                data.bias(),
                &skip,
                place,
            )
            .unwrap();
            let conv = Conv2d::new(gpu, spec, &data.weights, data.bias())
                .unwrap()
                .with_tuning(case.tuning);
            let got = run_residual(&conv, &data.input, &skip, place).unwrap();
            let label = format!("{} {place:?}", case.name);
            assert_matches(&label, seed, &got, &want, None);
        }
    }
}

/// A separable block adds the skip in its pointwise half's epilogue, on the fused path (one
/// dispatch for the whole block, on devices that can bind its 7 storage buffers) and on two
/// kernels.
#[test]
fn separable_blocks_on_both_paths() {
    let _serial = one_at_a_time();
    let gpu = gpu();
    let dw = Conv2dSpec::depthwise(40, [3, 3])
        .padding(Padding::uniform(1))
        .activation(Activation::Relu6);
    let input = Shape::new(1, 40, 10, 10);
    let x = Tensor::new(input, common::normal(1, input.len().unwrap())).unwrap();
    let dw_w = common::normal(2, dw.weight_count());
    let dw_b = common::normal(3, 40);
    let mid = reference::conv2d(&dw, &x, &dw_w, Some(&dw_b)).unwrap();
    for (a, act) in [Activation::None, Activation::Relu].into_iter().enumerate() {
        let pw = Conv2dSpec::pointwise(40, 72).activation(act);
        let pw_w = common::normal(4 + a as u64, pw.weight_count());
        let pw_b = common::normal(6, 72);
        let data = ConvData {
            input: mid.clone(),
            weights: pw_w.clone(),
            bias: Some(pw_b.clone()),
        };
        let out = pw.output_shape(mid.shape()).unwrap();
        let skip = Tensor::new(out, common::normal(7, out.len().unwrap())).unwrap();
        for place in PLACES {
            let want =
                reference::conv2d_residual(&pw, &mid, &pw_w, Some(&pw_b), &skip, place).unwrap();
            // The depthwise half's rounding reaches the product through |w|: the tolerance of
            // the sums covers it at this size (40 channels, values of order 1).
            let tol: Vec<f32> = residual_tolerances(&pw, &data, &skip, &want)
                .iter()
                .map(|t| 4.0 * t)
                .collect();
            for fusion in [Fusion::Always, Fusion::Never] {
                let block = SeparableBlock::new(
                    Conv2d::new(gpu, dw, &dw_w, Some(&dw_b)).unwrap(),
                    Conv2d::new(gpu, pw, &pw_w, Some(&pw_b)).unwrap(),
                )
                .unwrap()
                .with_tuning(Tuning::auto().with_fusion(fusion));
                let gx = GpuTensor::from_tensor(gpu, &x).unwrap();
                let gs = GpuTensor::from_tensor(gpu, &skip).unwrap();
                let y = GpuTensor::full(gpu, out, f32::NAN).unwrap();
                let label = format!("block {act:?} {place:?} {fusion:?}");
                match block.run_residual_into(&gx, &gs, place, &y) {
                    // Devices that cannot bind the fused kernel (OpenGL ES) refuse it by name.
                    Err(Error::Unsupported { reason }) if fusion == Fusion::Always => {
                        assert!(
                            gpu.limits().max_storage_buffers_per_shader_stage < 7,
                            "{label}: {reason}"
                        );
                    }
                    result => {
                        result.unwrap();
                        assert_matches(&label, 7, &y.read().unwrap(), &want, Some(&tol));
                    }
                }
            }
        }
    }
}

/// The skip tensor is checked like the output: its shape, its device, and that it is not the
/// output itself (one pass reads the skip and writes the output).
#[test]
fn a_wrong_skip_tensor_is_refused() {
    let _serial = one_at_a_time();
    let gpu = gpu();
    let spec = Conv2dSpec::pointwise(8, 16);
    let conv = Conv2d::new(
        gpu,
        spec,
        &common::normal(1, spec.weight_count()),
        Some(&[0.5; 16]),
    )
    .unwrap();
    let x = GpuTensor::full(gpu, Shape::new(1, 8, 4, 4), 1.0).unwrap();
    let wrong = GpuTensor::full(gpu, Shape::new(1, 16, 4, 3), 1.0).unwrap();
    match conv.run_residual(&x, &wrong, Residual::AfterActivation) {
        Err(Error::LengthMismatch { what, hint, .. }) => {
            assert_eq!(what, "skip tensor");
            let hint = hint.unwrap();
            assert!(
                hint.contains("1x16x4x4") && hint.contains("1x16x4x3"),
                "{hint}"
            );
        }
        other => panic!("a skip of the wrong shape: {other:?}"),
    }
    let y = GpuTensor::full(gpu, Shape::new(1, 16, 4, 4), 1.0).unwrap();
    assert!(matches!(
        conv.run_residual_into(&x, &y, Residual::BeforeActivation, &y),
        Err(Error::Incompatible { .. })
    ));
    let other_gpu = Gpu::new().unwrap();
    let elsewhere = GpuTensor::full(&other_gpu, Shape::new(1, 16, 4, 4), 1.0).unwrap();
    assert!(matches!(
        conv.run_residual(&x, &elsewhere, Residual::AfterActivation),
        Err(Error::DeviceMismatch {
            what: "the skip tensor"
        })
    ));
    // The reference and the fast CPU path refuse a wrong shape alike.
    let host_x = Tensor::full(Shape::new(1, 8, 4, 4), 1.0).unwrap();
    let host_skip = Tensor::full(Shape::new(1, 16, 4, 3), 1.0).unwrap();
    let w = common::normal(1, spec.weight_count());
    assert!(matches!(
        reference::conv2d_residual(
            &spec,
            &host_x,
            &w,
            Some(&[0.5; 16]),
            &host_skip,
            Residual::AfterActivation
        ),
        Err(Error::LengthMismatch {
            what: "skip tensor",
            ..
        })
    ));
    assert!(matches!(
        fast::Conv2dCpu::new(spec, &w, Some(&[0.5; 16]))
            .unwrap()
            .run_residual(&host_x, &host_skip, Residual::AfterActivation),
        Err(Error::LengthMismatch {
            what: "skip tensor",
            ..
        })
    ));
}

/// A run split past the binding limit cuts the skip tensor as it cuts the output (in place
/// where aligned, through a scratch copy otherwise), bit for bit on integers.
#[test]
fn runs_split_past_the_binding_limit_split_the_skip_too() {
    let _serial = one_at_a_time();
    // 4 KiB = 1,024 floats per binding.
    let gpu = limited::gpu_with_binding_limit(gpu(), 4096);
    for (spec, input, kernel) in [
        (
            Conv2dSpec::depthwise(5, [3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu),
            Shape::new(4, 5, 7, 13),
            ConvKernel::UniformWindows,
        ),
        (
            Conv2dSpec::pointwise(6, 12).activation(Activation::Relu6),
            Shape::new(1, 6, 30, 17),
            ConvKernel::UniformWindows,
        ),
        (
            Conv2dSpec::pointwise(6, 20).activation(Activation::Relu6),
            Shape::new(1, 6, 30, 11),
            ConvKernel::TiledGemm,
        ),
    ] {
        for place in PLACES {
            let data = ConvData::new(&spec, input, 3, true);
            let out = spec.output_shape(input).unwrap();
            let skip = Tensor::new(out, common::small_ints(4, out.len().unwrap())).unwrap();
            let want = reference::conv2d_residual(
                &spec,
                &data.input,
                &data.weights,
                data.bias(),
                &skip,
                place,
            )
            .unwrap();
            let conv = Conv2d::new(&gpu, spec, &data.weights, data.bias())
                .unwrap()
                .with_tuning(pinned(kernel, 1));
            let pieces = conv.split_count(input).unwrap();
            assert!(pieces > 1, "{spec:?} on {input}: not split");
            let got = run_residual(&conv, &data.input, &skip, place).unwrap();
            let label = format!("{:?} {kernel:?} in {pieces} pieces, {place:?}", spec.kind());
            assert_matches(&label, 3, &got, &want, None);
        }
    }
}

/// A device with 4 storage buffers per stage (OpenGL ES 3.1's minimum) runs a residual add on
/// the window kernels: the tiled product, which would need a fifth, is not measured or taken
/// under `ConvKernel::Auto`, and pinned it gives way to the windows for runs with a skip. A
/// fused block pinned there is refused by name.
#[test]
fn four_storage_buffers_fall_back_to_the_windows() {
    let _serial = one_at_a_time();
    let (device, queue) = limited::device_with_limits(gpu(), |l| {
        l.max_storage_buffers_per_shader_stage = 4;
    });
    let small = Gpu::from_device(device, queue).unwrap();
    let spec = Conv2dSpec::pointwise(64, 96);
    let input = Shape::new(1, 64, 14, 14);
    let data = ConvData::new(&spec, input, 9, true);
    let out = spec.output_shape(input).unwrap();
    let skip = Tensor::new(out, common::small_ints(10, out.len().unwrap())).unwrap();
    let want = reference::conv2d_residual(
        &spec,
        &data.input,
        &data.weights,
        data.bias(),
        &skip,
        Residual::AfterActivation,
    )
    .unwrap();
    let auto = Conv2d::new(&small, spec, &data.weights, data.bias())
        .unwrap()
        .with_tuning(Tuning::auto());
    let got = run_residual(&auto, &data.input, &skip, Residual::AfterActivation).unwrap();
    assert_matches("auto on 4 storage buffers", 9, &got, &want, None);
    let tiled = Conv2d::new(&small, spec, &data.weights, data.bias())
        .unwrap()
        .with_tuning(pinned(ConvKernel::TiledGemm, 1));
    let got = run_residual(&tiled, &data.input, &skip, Residual::AfterActivation).unwrap();
    assert_matches("pinned tiled on 4 storage buffers", 9, &got, &want, None);
    let dw = Conv2dSpec::depthwise(64, [3, 3]).padding(Padding::uniform(1));
    let dw_weights = common::small_ints(1, dw.weight_count());
    let block = SeparableBlock::new(
        Conv2d::new(&small, dw, &dw_weights, Some(&[0.0; 64])).unwrap(),
        Conv2d::new(&small, spec, &data.weights, data.bias()).unwrap(),
    )
    .unwrap()
    .with_tuning(Tuning::auto().with_fusion(Fusion::Always));
    let x = GpuTensor::from_tensor(&small, &data.input).unwrap();
    let s = GpuTensor::from_tensor(&small, &skip).unwrap();
    match block.run_residual(&x, &s, Residual::AfterActivation) {
        Err(Error::Unsupported { reason }) => {
            assert!(reason.contains("storage buffers"), "{reason}");
        }
        other => panic!("a fused block on 4 storage buffers: {other:?}"),
    }
}

/// A device with 3 storage buffers per stage cannot bind a skip tensor at all: a residual add
/// is refused by name, and a network runs its adds apart (and runs).
#[test]
fn three_storage_buffers_refuse_the_skip_and_networks_run_adds_apart() {
    let _serial = one_at_a_time();
    let (device, queue) = limited::device_with_limits(gpu(), |l| {
        l.max_storage_buffers_per_shader_stage = 3;
    });
    let small = Gpu::from_device(device, queue).unwrap();
    let spec = Conv2dSpec::pointwise(8, 16);
    let conv = Conv2d::new(
        &small,
        spec,
        &common::small_ints(1, spec.weight_count()),
        Some(&[0.0; 16]),
    )
    .unwrap();
    let x = GpuTensor::full(&small, Shape::new(1, 8, 4, 4), 1.0).unwrap();
    let skip = GpuTensor::full(&small, Shape::new(1, 16, 4, 4), 1.0).unwrap();
    match conv.run_residual(&x, &skip, Residual::AfterActivation) {
        Err(Error::Unsupported { reason }) => {
            assert!(reason.contains("storage buffers"), "{reason}")
        }
        other => panic!("a residual add on 3 storage buffers: {other:?}"),
    }
    let net = sepconv::networks::MobileNetV2 {
        alpha: 0.35,
        resolution: 32,
        ..Default::default()
    }
    .build()
    .unwrap();
    let weights = sepconv::networks::weights::NetworkWeights::random(&net, 1).unwrap();
    let input = sepconv::networks::weights::random_input(net.input_shape(), 1).unwrap();
    let gnet = sepconv::GpuNetwork::new(&small, &net, &weights).unwrap();
    assert_eq!(gnet.folded_adds(), 0);
    let got = gnet
        .run(&GpuTensor::from_tensor(&small, &input).unwrap())
        .unwrap()
        .read()
        .unwrap();
    let want = sepconv::cpu::network::forward(&net, &weights, &input).unwrap();
    let last = &want[want.len() - 1];
    assert_matches(
        "MobileNet v2 on 3 storage buffers",
        1,
        &got,
        last,
        Some(&common::chained_tolerance(last)),
    );
}
