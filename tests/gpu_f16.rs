//! f16 storage with f32 arithmetic on every kernel (depthwise, pointwise and grouped windows,
//! the tiled product unsplit and split-K, the fused block and the two-kernel block) and every
//! op, against the `f64` reference run on the f16-rounded input, weights and bias, within
//! `f16_tolerances` of tests/common; a plane wider than 2,048 pixels checked bit for bit;
//! raw f16 upload and read-back; and the typed errors: a device without `SHADER_F16` refuses
//! f16, mixed precisions are refused. Outputs are poisoned with f16 NaN (0x7e00) first.
//!
//! On an adapter without `SHADER_F16` (most GL drivers) the f16 runs are not possible: there
//! the tests check the refusal instead. Lavapipe (CI's Vulkan) must have it.

mod common;
mod limited;

use std::num::NonZeroUsize;

use common::{
    assert_matches, f16_tolerances, gpu, to_f16, ConvData, F16_SUBNORMAL_ERROR, F16_UNIT_ROUNDOFF,
};
use sepconv::half::f16;
use sepconv::ops::{cpu as ops, gpu as gpu_ops, Pool2d};
use sepconv::{
    cpu::reference, Activation, Conv2d, Conv2dSpec, ConvKernel, Error, Fusion, Gpu, GpuTensor,
    Padding, Precision, Residual, SeparableBlock, Shape, SplitK, Tensor, Tuning,
};

/// The shared GPU when it has f16; `None` (after checking that f16 is refused with the typed
/// error) where it has not. Lavapipe has `SHADER_F16`: there a missing feature fails.
fn f16_gpu() -> Option<&'static Gpu> {
    let gpu = gpu();
    if gpu.supports_f16() {
        return Some(gpu);
    }
    assert!(
        !(gpu.backend() == wgpu::Backend::Vulkan && gpu.adapter_name().contains("llvmpipe")),
        "lavapipe offers SHADER_F16, but {} came without it",
        gpu.adapter_name()
    );
    let err = GpuTensor::from_slice_as(gpu, Shape::new(1, 1, 1, 2), &[1.0, 2.0], Precision::F16)
        .unwrap_err();
    assert!(matches!(&err, Error::Unsupported { reason } if reason.contains("SHADER_F16")));
    eprintln!(
        "{} has no SHADER_F16: checked the refusal only",
        gpu.adapter_name()
    );
    None
}

/// A NaN-poisoned f16 tensor: every half 0x7e00.
fn poisoned(gpu: &Gpu, shape: Shape) -> GpuTensor {
    let nan = f16::from_bits(0x7e00);
    GpuTensor::from_f16(gpu, shape, &vec![nan; shape.len().unwrap()]).unwrap()
}

/// Runs `conv` (f16) on `x` (f32 values, uploaded as f16) into a poisoned f16 output.
fn run_f16(gpu: &Gpu, conv: &Conv2d, x: &Tensor) -> Tensor {
    let gx = GpuTensor::from_tensor_as(gpu, x, Precision::F16).unwrap();
    let y = poisoned(gpu, conv.output_shape(x.shape()).unwrap());
    conv.run_into(&gx, &y).unwrap();
    assert_eq!(y.precision(), Precision::F16);
    y.read().unwrap()
}

/// One kernel case: the spec, the input, the kernel pinned (None: the only one, depthwise),
/// the split-K setting, and how many partial sums pass through the f16 output on the way
/// (input-channel slices of the window kernels; see `f16_tolerances`).
struct Case {
    name: &'static str,
    spec: Conv2dSpec,
    input: Shape,
    kernel: Option<ConvKernel>,
    split_k: SplitK,
    partial_roundings: usize,
}

fn cases() -> Vec<Case> {
    let case = |name, spec, input, kernel| Case {
        name,
        spec,
        input,
        kernel,
        split_k: SplitK::Auto,
        partial_roundings: 0,
    };
    let three = SplitK::Parts(NonZeroUsize::new(3).unwrap());
    vec![
        case(
            "depthwise 3x3",
            Conv2dSpec::depthwise(8, [3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu6),
            Shape::new(2, 8, 9, 11),
            None,
        ),
        case(
            "depthwise ×2, 5x5 stride 2",
            Conv2dSpec::depthwise(6, [5, 5])
                .multiplier(2)
                .stride([2, 2])
                .padding(Padding::same()),
            Shape::new(1, 6, 13, 10),
            None,
        ),
        case(
            "depthwise 3x3 dilation 2",
            Conv2dSpec::depthwise(5, [3, 3])
                .dilation([2, 2])
                .padding(Padding::uniform(2))
                .activation(Activation::HardSwish),
            Shape::new(1, 5, 12, 12),
            None,
        ),
        case(
            "pointwise windows",
            Conv2dSpec::pointwise(24, 20).activation(Activation::Silu),
            Shape::new(1, 24, 7, 9),
            Some(ConvKernel::UniformWindows),
        ),
        Case {
            // 600 input channels × a 32-channel tile pass one 64 KiB window: two slices,
            // the first one's partial sums rounded to f16 in the output.
            partial_roundings: 1,
            ..case(
                "pointwise windows, two input-channel slices",
                Conv2dSpec::pointwise(600, 40),
                Shape::new(1, 600, 4, 5),
                Some(ConvKernel::UniformWindows),
            )
        },
        case(
            "pointwise tiled",
            Conv2dSpec::pointwise(24, 70).activation(Activation::Relu),
            Shape::new(1, 24, 7, 9),
            Some(ConvKernel::TiledGemm),
        ),
        Case {
            split_k: three,
            ..case(
                "pointwise tiled, split-K in 3",
                Conv2dSpec::pointwise(200, 20).activation(Activation::Tanh),
                Shape::new(1, 200, 5, 5),
                Some(ConvKernel::TiledGemm),
            )
        },
        case(
            "grouped windows",
            Conv2dSpec::new(16, 24, [3, 3])
                .groups(4)
                .padding(Padding::uniform(1)),
            Shape::new(1, 16, 8, 7),
            Some(ConvKernel::UniformWindows),
        ),
        case(
            "grouped tiled, stride 2",
            Conv2dSpec::new(32, 64, [3, 3])
                .groups(2)
                .stride([2, 2])
                .padding(Padding::uniform(1))
                .activation(Activation::LeakyRelu(0.1)),
            Shape::new(1, 32, 9, 8),
            Some(ConvKernel::TiledGemm),
        ),
        case(
            "standard 3x3 windows",
            Conv2dSpec::new(3, 16, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            Shape::new(2, 3, 11, 11),
            Some(ConvKernel::UniformWindows),
        ),
    ]
}

#[test]
fn every_kernel_within_the_f16_tolerance() {
    let Some(gpu) = f16_gpu() else { return };
    for (i, case) in cases().into_iter().enumerate() {
        let seed = 40 + i as u64;
        let data = ConvData::new(&case.spec, case.input, seed, false).rounded_to_f16();
        let mut conv = Conv2d::new(gpu, case.spec, &data.weights, data.bias())
            .unwrap()
            .with_precision(Precision::F16)
            .unwrap();
        if let Some(kernel) = case.kernel {
            conv = conv.with_tuning(
                Tuning::auto()
                    .with_kernel(kernel)
                    .with_split_k(case.split_k),
            );
            assert_eq!(
                conv.chosen_kernel(case.input),
                Some(kernel),
                "{}",
                case.name
            );
        }
        if case.split_k != SplitK::Auto {
            assert_eq!(conv.split_k_parts(case.input).unwrap(), 3, "{}", case.name);
        }
        if case.partial_roundings > 0 {
            assert_eq!(
                conv.dispatch_count(),
                4,
                "{}: 2 blocks × 2 slices",
                case.name
            );
        }
        let got = run_f16(gpu, &conv, &data.input);
        let want = reference::conv2d(&case.spec, &data.input, &data.weights, data.bias()).unwrap();
        let tol = f16_tolerances(&case.spec, &data, &want, case.partial_roundings);
        assert_matches(case.name, seed, &got, &want, Some(&tol));
        let worst = got
            .data()
            .iter()
            .zip(want.data())
            .zip(&tol)
            .map(|((g, w), t)| (g - w).abs() / t)
            .fold(0f32, f32::max);
        eprintln!("{}: worst |diff| / tolerance {worst:.3}", case.name);
        // Every value read back is an f16 value (the output was stored as f16, not f32).
        assert_eq!(got.data(), to_f16(got.data()), "{}", case.name);
    }
}

/// The tolerance of an f16 block through its f16 intermediate `mid` (the two-kernel path;
/// the fused kernel keeps the depthwise values in f32, which only lowers its error).
///
/// The intermediate the pointwise half reads differs from the reference's `mid` by the
/// depthwise half's own error (`f16_tolerances`, its f16 rounding included), `δ`; the
/// pointwise sums carry it on as `Σ|w_pw|·δ` (the reference run on `δ` and `|w_pw|`), times
/// the pointwise activation's Lipschitz constant; the pointwise half then adds its own error
/// on the reference's intermediate.
fn block_tolerance(
    dw: &Conv2dSpec,
    dw_data: &ConvData,
    pw: &Conv2dSpec,
    pw_data: &ConvData,
    mid: &Tensor,
    want: &Tensor,
) -> Vec<f32> {
    let delta = f16_tolerances(dw, dw_data, mid, 0);
    let delta = Tensor::new(mid.shape(), delta).unwrap();
    let abs_w: Vec<f32> = pw_data.weights.iter().map(|w| w.abs()).collect();
    let carried = reference::conv2d(
        &pw.activation(Activation::None).bias(false),
        &delta,
        &abs_w,
        None,
    )
    .unwrap();
    let lipschitz = common::activation_error(pw.activation).lipschitz;
    let own = f16_tolerances(pw, pw_data, want, 0);
    own.iter()
        .zip(carried.data())
        .map(|(&o, &c)| o + lipschitz * c * (1.0 + F16_UNIT_ROUNDOFF))
        .collect()
}

#[test]
fn separable_block_fused_and_two_kernels_within_the_f16_tolerance() {
    let Some(gpu) = f16_gpu() else { return };
    let blocks = [
        (
            Conv2dSpec::depthwise(16, [3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu6),
            Conv2dSpec::pointwise(16, 72).activation(Activation::HardSwish),
            Shape::new(1, 16, 9, 10),
        ),
        (
            Conv2dSpec::depthwise(24, [5, 5])
                .stride([2, 2])
                .padding(Padding::same())
                .activation(Activation::Silu),
            Conv2dSpec::pointwise(24, 40),
            Shape::new(2, 24, 11, 11),
        ),
    ];
    for (i, (dw, pw, input)) in blocks.into_iter().enumerate() {
        let seed = 70 + i as u64;
        let d = ConvData::new(&dw, input, seed, false).rounded_to_f16();
        let mid = reference::conv2d(&dw, &d.input, &d.weights, d.bias()).unwrap();
        let p = ConvData::new(&pw, mid.shape(), seed + 1, false).rounded_to_f16();
        let want = reference::conv2d(&pw, &mid, &p.weights, p.bias()).unwrap();
        let tol = block_tolerance(&dw, &d, &pw, &p, &mid, &want);
        for fusion in [Fusion::Always, Fusion::Never] {
            let block = SeparableBlock::new(
                Conv2d::new(gpu, dw, &d.weights, d.bias()).unwrap(),
                Conv2d::new(gpu, pw, &p.weights, p.bias()).unwrap(),
            )
            .unwrap()
            .with_precision(Precision::F16)
            .unwrap()
            .with_tuning(Tuning::auto().with_fusion(fusion));
            let gx = GpuTensor::from_tensor_as(gpu, &d.input, Precision::F16).unwrap();
            let y = poisoned(gpu, want.shape());
            block.run_into(&gx, &y).unwrap();
            let case = format!("block {i}, {fusion:?}");
            assert_matches(&case, seed, &y.read().unwrap(), &want, Some(&tol));
        }
    }
}

/// A plane 3,000 pixels wide (past 2,048, where f16 stops counting every integer): index
/// arithmetic in f16 would skip or repeat pixels there. Small integers make every sum and
/// output exact in f16 (|y| ≤ 9·9 + 3 < 2,048), so the check is bit for bit.
#[test]
fn planes_wider_than_2048_pixels_are_exact() {
    let Some(gpu) = f16_gpu() else { return };
    let input = Shape::new(1, 4, 3, 3000);
    let convs = [
        (
            "depthwise 3x3",
            Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1)),
            None,
        ),
        (
            "pointwise windows",
            Conv2dSpec::pointwise(4, 8),
            Some(ConvKernel::UniformWindows),
        ),
        (
            "pointwise tiled",
            Conv2dSpec::pointwise(4, 8),
            Some(ConvKernel::TiledGemm),
        ),
        (
            "grouped 1x3 windows",
            Conv2dSpec::new(4, 4, [1, 3])
                .groups(2)
                .padding(Padding::uniform(1)),
            Some(ConvKernel::UniformWindows),
        ),
    ];
    for (i, (name, spec, kernel)) in convs.into_iter().enumerate() {
        let seed = 90 + i as u64;
        let data = ConvData::new(&spec, input, seed, true);
        let mut conv = Conv2d::new(gpu, spec, &data.weights, data.bias())
            .unwrap()
            .with_precision(Precision::F16)
            .unwrap();
        if let Some(kernel) = kernel {
            conv = conv.with_tuning(Tuning::auto().with_kernel(kernel));
        }
        let got = run_f16(gpu, &conv, &data.input);
        let want = reference::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
        assert!(want.data().iter().all(|y| y.abs() < 2048.0), "{name}");
        assert_matches(name, seed, &got, &want, None);
    }
    // The fused block on the same plane.
    let dw = Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(4, 8);
    let d = ConvData::new(&dw, input, 95, true);
    let mid = reference::conv2d(&dw, &d.input, &d.weights, d.bias()).unwrap();
    // Small pointwise weights (0 or ±1) keep the block's outputs below 2,048 too.
    let pw_w: Vec<f32> = common::small_ints(96, pw.weight_count())
        .iter()
        .map(|w| w.signum())
        .collect();
    let pw_b = common::small_ints(97, 8);
    let want = reference::conv2d(&pw, &mid, &pw_w, Some(&pw_b)).unwrap();
    assert!(want.data().iter().all(|y| y.abs() < 2048.0));
    let block = SeparableBlock::new(
        Conv2d::new(gpu, dw, &d.weights, d.bias()).unwrap(),
        Conv2d::new(gpu, pw, &pw_w, Some(&pw_b)).unwrap(),
    )
    .unwrap()
    .with_precision(Precision::F16)
    .unwrap()
    .with_tuning(Tuning::auto().with_fusion(Fusion::Always));
    let gx = GpuTensor::from_tensor_as(gpu, &d.input, Precision::F16).unwrap();
    let y = poisoned(gpu, want.shape());
    block.run_into(&gx, &y).unwrap();
    assert_matches("fused block", 95, &y.read().unwrap(), &want, None);
}

/// Every op on f16 tensors: add, concat and activation (one f32 operation and one rounding
/// to f16 per element), pooling (max exact; averages sum in f32), channel shuffle (a copy,
/// exact).
#[test]
fn ops_on_f16_tensors() {
    let Some(gpu) = f16_gpu() else { return };
    let shape = Shape::new(2, 6, 7, 9);
    let host = |seed| Tensor::new(shape, to_f16(&common::normal(seed, shape.len().unwrap())));
    let (a, b) = (host(1).unwrap(), host(2).unwrap());
    let up = |t: &Tensor| GpuTensor::from_tensor_as(gpu, t, Precision::F16).unwrap();
    let (ga, gb) = (up(&a), up(&b));
    // One f32 operation (u₃₂) and the rounding to f16 (u₁₆) of the result, or the subnormal
    // step; the activation's own error on top.
    let rounded_once = |want: &Tensor, act: Activation| -> Vec<f32> {
        let e = common::activation_error(act);
        want.data()
            .iter()
            .map(|&y| {
                (F16_UNIT_ROUNDOFF + e.relative + f32::EPSILON) * y.abs()
                    + e.absolute
                    + F16_SUBNORMAL_ERROR
            })
            .collect()
    };
    let check = |name: &str, got: GpuTensor, want: Tensor, tol: Option<&[f32]>| {
        assert_eq!(got.precision(), Precision::F16, "{name}");
        assert_matches(name, 0, &got.read().unwrap(), &want, tol);
    };

    let act = Activation::Relu6;
    let want = ops::add(&a, &b, act).unwrap();
    let y = poisoned(gpu, shape);
    gpu_ops::add_into(&ga, &gb, &y, act).unwrap();
    check("add", y, want.clone(), Some(&rounded_once(&want, act)));

    let want = ops::concat(&a, &b, Activation::None).unwrap();
    check(
        "concat",
        gpu_ops::concat(&ga, &gb, Activation::None).unwrap(),
        want,
        None,
    );

    let act = Activation::Sigmoid;
    let want = ops::activation(&a, act).unwrap();
    let tol = rounded_once(&want, act);
    check(
        "activation",
        gpu_ops::activation(&ga, act).unwrap(),
        want,
        Some(&tol),
    );

    let max = Pool2d::max([3, 3], [2, 2], Padding::uniform(1));
    check(
        "max pool",
        gpu_ops::pool2d(&ga, &max).unwrap(),
        ops::pool2d(&a, &max).unwrap(),
        None,
    );
    // Averages of k f16 values: the f32 sum's error (k·u₃₂ of Σ|x|, over k) and the
    // rounding to f16.
    for (name, pool) in [
        ("avg pool", Pool2d::avg([3, 3], [2, 2], Padding::uniform(1))),
        ("global avg pool", Pool2d::global_avg(7, 9)),
    ] {
        let want = ops::pool2d(&a, &pool).unwrap();
        let abs = Tensor::new(shape, a.data().iter().map(|v| v.abs()).collect()).unwrap();
        let mean_abs = ops::pool2d(&abs, &pool).unwrap();
        let k = (pool.kernel[0] * pool.kernel[1]) as f32;
        let tol: Vec<f32> = want
            .data()
            .iter()
            .zip(mean_abs.data())
            .map(|(&y, &m)| {
                (k + 2.0) * f32::EPSILON * m + F16_UNIT_ROUNDOFF * y.abs() + F16_SUBNORMAL_ERROR
            })
            .collect();
        check(name, gpu_ops::pool2d(&ga, &pool).unwrap(), want, Some(&tol));
    }

    check(
        "channel shuffle",
        gpu_ops::channel_shuffle(&ga, 3).unwrap(),
        ops::channel_shuffle(&a, 3).unwrap(),
        None,
    );
}

/// Raw halves go up and come back bit for bit (subnormals, ±0, ±∞ and NaN included), an odd
/// count among them; f32 uploads round to nearest; an f32 tensor reads back as rounded halves.
#[test]
fn raw_f16_round_trip() {
    let Some(gpu) = f16_gpu() else { return };
    let halves: Vec<f16> = [
        0x0000u16, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00,
        0xfc00, 0x7e00, 0x3555, 0xc248,
    ]
    .into_iter()
    .map(f16::from_bits)
    .collect();
    let shape = Shape::new(1, 1, 3, 5);
    let t = GpuTensor::from_f16(gpu, shape, &halves).unwrap();
    assert_eq!(t.precision(), Precision::F16);
    assert_eq!(t.buffer().size(), 32, "15 halves in 8 whole words");
    let back = t.read_f16().unwrap();
    let bits = |v: &[f16]| v.iter().map(|h| h.to_bits()).collect::<Vec<u16>>();
    assert_eq!(bits(&back), bits(&halves));
    // Widened exactly to f32.
    let wide = t.read().unwrap();
    for (w, h) in wide.data().iter().zip(&halves) {
        assert!(w.to_bits() == h.to_f32().to_bits() || (w.is_nan() && h.is_nan()));
    }
    // f32 values uploaded as f16 round to nearest, ties to even.
    let values = [0.1f32, 1.0 + 1.0 / 2048.0, 65519.0, 65520.0, -1e-8, 3e-5];
    let shape = Shape::new(1, 1, 1, 6);
    let t = GpuTensor::from_slice_as(gpu, shape, &values, Precision::F16).unwrap();
    let want: Vec<u16> = values.iter().map(|&v| f16::from_f32(v).to_bits()).collect();
    assert_eq!(bits(&t.read_f16().unwrap()), want);
    assert_eq!(t.read().unwrap().data()[3], f32::INFINITY);
    // An f32 tensor read as halves: rounded on the host.
    let t = GpuTensor::from_slice(gpu, shape, &values).unwrap();
    assert_eq!(bits(&t.read_f16().unwrap()), want);
}

/// A run whose tensors are not in the conv's (or block's, op's, network's) precision is a
/// typed error naming the tensor, before anything is dispatched.
#[test]
fn mixed_precisions_are_refused() {
    let Some(gpu) = f16_gpu() else { return };
    let spec = Conv2dSpec::pointwise(4, 4).bias(false);
    let shape = Shape::new(1, 4, 2, 2);
    let f32_conv = Conv2d::new(gpu, spec, &[0.5; 16], None).unwrap();
    let f16_conv = Conv2d::new(gpu, spec, &[0.5; 16], None)
        .unwrap()
        .with_precision(Precision::F16)
        .unwrap();
    let x32 = GpuTensor::from_slice(gpu, shape, &[1.0; 16]).unwrap();
    let x16 = GpuTensor::from_slice_as(gpu, shape, &[1.0; 16], Precision::F16).unwrap();
    let mismatch = |err: Error, what: &'static str, expected, got| {
        assert_eq!(
            err,
            Error::PrecisionMismatch {
                what,
                expected,
                got
            }
        );
        assert!(err.to_string().contains("from_slice_as"), "{err}");
    };
    let (f16, f32) = (Precision::F16, Precision::F32);
    mismatch(
        f16_conv.run(&x32).unwrap_err(),
        "the input tensor",
        f16,
        f32,
    );
    mismatch(
        f32_conv.run(&x16).unwrap_err(),
        "the input tensor",
        f32,
        f16,
    );
    let y32 = GpuTensor::full(gpu, shape, 0.0).unwrap();
    let err = f16_conv.run_into(&x16, &y32).unwrap_err();
    mismatch(err, "the output tensor", f16, f32);
    let err = gpu_ops::add(&x16, &x32, Activation::None).unwrap_err();
    mismatch(err, "the op's second input tensor", f16, f32);
    // A block's halves share a precision.
    let dw = Conv2dSpec::depthwise(4, [3, 3]).bias(false);
    let dw_conv = Conv2d::new(gpu, dw, &[0.1; 36], None).unwrap();
    let err = SeparableBlock::new(dw_conv, f16_conv).unwrap_err();
    assert!(matches!(err, Error::PrecisionMismatch { .. }), "{err:?}");
    // Same precision still runs.
    let y = f32_conv.run(&x32).unwrap();
    assert_eq!(y.read().unwrap().data(), &[2.0; 16]);
}

/// A device made without `SHADER_F16` (requested with no features, on the same adapter)
/// refuses every f16 request with `Error::Unsupported` naming the feature and the adapter,
/// and keeps running f32.
#[test]
fn a_device_without_shader_f16_refuses_f16_and_runs_f32() {
    let (device, queue) = limited::device_with_limits(gpu(), |_| {});
    assert!(!device.features().contains(wgpu::Features::SHADER_F16));
    let bare = Gpu::from_device(device, queue).unwrap();
    assert!(!bare.supports_f16());
    let refused = |what: &str, err: Error| match &err {
        Error::Unsupported { reason } => {
            assert!(reason.contains("SHADER_F16"), "{what}: {reason}");
            assert!(reason.contains(bare.adapter_name()), "{what}: {reason}");
        }
        other => panic!("{what}: {other:?}"),
    };
    let shape = Shape::new(1, 4, 3, 3);
    let data = vec![1.0; 36];
    refused(
        "upload",
        GpuTensor::from_slice_as(&bare, shape, &data, Precision::F16).unwrap_err(),
    );
    refused(
        "raw upload",
        GpuTensor::from_f16(&bare, shape, &[f16::ONE; 36]).unwrap_err(),
    );
    refused(
        "full",
        GpuTensor::full_as(&bare, shape, f32::NAN, Precision::F16).unwrap_err(),
    );
    let spec = Conv2dSpec::depthwise(4, [3, 3])
        .padding(Padding::uniform(1))
        .bias(false);
    let conv = Conv2d::new(&bare, spec, &[0.25; 36], None).unwrap();
    let conv = match conv.with_precision(Precision::F16) {
        Err(err) => {
            refused("conv", err);
            Conv2d::new(&bare, spec, &[0.25; 36], None).unwrap()
        }
        Ok(_) => panic!("an f16 conv on a device without SHADER_F16"),
    };
    let net = sepconv::networks::mobilenet_v1(0.25, 32).unwrap();
    let weights = sepconv::networks::weights::NetworkWeights::random(&net, 1).unwrap();
    refused(
        "network",
        sepconv::GpuNetwork::new_as(&bare, &net, &weights, Precision::F16).unwrap_err(),
    );
    // f32 keeps working on it.
    let x = GpuTensor::from_slice(&bare, shape, &data).unwrap();
    let y = conv.run(&x).unwrap().read().unwrap();
    let want =
        reference::conv2d(&spec, &Tensor::new(shape, data).unwrap(), &[0.25; 36], None).unwrap();
    assert_matches("f32 on the bare device", 0, &y, &want, None);
}

/// A whole network with f16 activations against the f32 GPU run of the same weights: the
/// logits agree within a chained f16 tolerance and the top class is the same. (The pretrained
/// networks' test, with real photos, is in tests/pretrained.rs.)
#[test]
fn whole_network_in_f16_follows_f32() {
    let Some(gpu) = f16_gpu() else { return };
    let net = sepconv::networks::mobilenet_v2(0.35, 64).unwrap();
    let weights = sepconv::networks::weights::NetworkWeights::random(&net, 3).unwrap();
    let x = sepconv::networks::weights::random_input(net.input_shape(), 3).unwrap();
    let f32_net = sepconv::GpuNetwork::new(gpu, &net, &weights).unwrap();
    let f16_net = sepconv::GpuNetwork::new_as(gpu, &net, &weights, Precision::F16).unwrap();
    assert_eq!(f16_net.precision(), Precision::F16);
    let want = f32_net
        .run(&GpuTensor::from_tensor(gpu, &x).unwrap())
        .unwrap()
        .read()
        .unwrap();
    let got = f16_net
        .run(&GpuTensor::from_tensor_as(gpu, &x, Precision::F16).unwrap())
        .unwrap();
    assert_eq!(got.precision(), Precision::F16);
    let got = got.read().unwrap();
    // Each of the ~50 layers rounds its output to f16 (u₁₆ ≈ 4.9e-4 relative) and reads
    // weights rounded to f16; the errors add up like a random walk through the layers, so
    // a few percent of the logits' RMS bounds the chain, while a broken layer moves logits
    // by their whole size.
    let rms = (want.data().iter().map(|v| v * v).sum::<f32>() / want.data().len() as f32).sqrt();
    let worst = got
        .data()
        .iter()
        .zip(want.data())
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    eprintln!("f16 against f32 logits: worst |diff| {worst:e}, rms {rms:e}");
    assert!(worst <= 0.05 * rms, "worst {worst:e} against rms {rms:e}");
    let top = |t: &Tensor| {
        t.data()
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(top(&got), top(&want));
}

/// A residual add in f16: the skip tensor is f16 like the output, added in f32 before the one
/// rounding (before or after the activation), on the window kernels and on the split tiled
/// product (whose second pass adds it); a skip tensor of the other precision is refused.
#[test]
fn residual_add_in_f16() {
    let Some(gpu) = f16_gpu() else { return };
    let three = SplitK::Parts(NonZeroUsize::new(3).unwrap());
    let cases = [
        (
            ConvKernel::UniformWindows,
            SplitK::Auto,
            Residual::AfterActivation,
        ),
        (
            ConvKernel::UniformWindows,
            SplitK::Auto,
            Residual::BeforeActivation,
        ),
        (ConvKernel::TiledGemm, three, Residual::AfterActivation),
        (ConvKernel::TiledGemm, three, Residual::BeforeActivation),
    ];
    let spec = Conv2dSpec::pointwise(120, 24).activation(Activation::Relu6);
    let input = Shape::new(1, 120, 5, 6);
    let out = spec.output_shape(input).unwrap();
    for (i, (kernel, split_k, residual)) in cases.into_iter().enumerate() {
        let seed = 120 + i as u64;
        let data = ConvData::new(&spec, input, seed, false).rounded_to_f16();
        let skip = Tensor::new(out, to_f16(&common::normal(seed + 7, out.len().unwrap()))).unwrap();
        let conv = Conv2d::new(gpu, spec, &data.weights, data.bias())
            .unwrap()
            .with_precision(Precision::F16)
            .unwrap()
            .with_tuning(Tuning::auto().with_kernel(kernel).with_split_k(split_k));
        let gx = GpuTensor::from_tensor_as(gpu, &data.input, Precision::F16).unwrap();
        let gs = GpuTensor::from_tensor_as(gpu, &skip, Precision::F16).unwrap();
        let y = poisoned(gpu, out);
        conv.run_residual_into(&gx, &gs, residual, &y).unwrap();
        let want = reference::conv2d_residual(
            &spec,
            &data.input,
            &data.weights,
            data.bias(),
            &skip,
            residual,
        )
        .unwrap();
        let t32 = common::residual_tolerances(&spec, &data, &skip, &want);
        let tol = common::f16_tolerances_over(t32, &spec, &data, &want, 0);
        let case = format!("{kernel:?}, {split_k:?}, {residual:?}");
        assert_matches(&case, seed, &y.read().unwrap(), &want, Some(&tol));
        // An f32 skip tensor for an f16 run.
        let skip32 = GpuTensor::from_tensor(gpu, &skip).unwrap();
        let err = conv
            .run_residual_into(&gx, &skip32, residual, &y)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::PrecisionMismatch {
                    what: "the skip tensor",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
