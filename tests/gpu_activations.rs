//! Every activation on every kernel's epilogue (depthwise, pointwise and grouped windows, the
//! tiled product unsplit and split, the fused block's two halves, the elementwise op) and on
//! the fast CPU path, against the `f64` reference: at the points where activations are hard
//! (±0, the kinks, large |x|, NaN in → NaN out) and on seeded random data. Outputs are
//! poisoned with NaN before each dispatch, so an element a kernel does not write fails (it
//! would have to be NaN where the reference is).

mod common;

use std::num::NonZeroUsize;

use common::{activation_error, exact_activation, gpu, tolerances, ConvData};
use sepconv::ops::{cpu as ops, gpu as gpu_ops};
use sepconv::{
    cpu::{fast, reference},
    Activation, Conv2d, Conv2dSpec, ConvKernel, Fusion, GpuTensor, Padding, SeparableBlock, Shape,
    SplitK, Tensor, Tuning,
};

/// The activations under test: one of each kind, and parameters off their defaults.
fn activations() -> Vec<Activation> {
    let mut all = Activation::ALL.to_vec();
    all.extend([
        Activation::LeakyRelu(0.2),
        Activation::LeakyRelu(-0.5),
        Activation::Clip { min: 0.0, max: 6.0 },
        Activation::Clip {
            min: -0.25,
            max: -0.25,
        },
        Activation::HardSigmoidOnnx {
            alpha: 1.0 / 6.0,
            beta: 0.5,
        },
        Activation::HardSigmoidOnnx {
            alpha: -0.75,
            beta: 0.125,
        },
    ]);
    all
}

/// Where activations are hard: signed zeros, both sides of every kink (0, ±3, 6 and `act`'s
/// own bounds), tiny and large magnitudes up to ±f32::MAX, exp's overflow points, and NaN.
fn hard_points(act: Activation) -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        f32::NAN,
        1e-30,
        -1e-30,
        1e-8,
        -1e-8,
        0.5,
        -0.5,
        1.0,
        -1.0,
        3.0,
        -3.0,
        6.0,
        2.9999998,
        -2.9999998,
        6.0000005,
        5.9999995,
        10.0,
        -10.0,
        20.0,
        -20.0,
        88.8,
        -88.8,
        104.0,
        -104.0,
        1e30,
        -1e30,
        f32::MAX,
        -f32::MAX,
    ];
    let kinks: Vec<f32> = match act {
        Activation::Clip { min, max } => vec![min, max],
        Activation::HardSigmoidOnnx { alpha, beta } => vec![-beta / alpha, (1.0 - beta) / alpha],
        _ => vec![],
    };
    for k in kinks {
        v.extend([
            k,
            f32::from_bits(k.to_bits() + 1),
            f32::from_bits(k.to_bits().max(1) - 1),
        ]);
    }
    v
}

/// Checks `got` against `want`: NaN exactly where the reference has NaN, elsewhere within
/// `tol[i]` (0: bit for bit, but +0 = −0).
#[track_caller]
fn check(case: &str, got: &Tensor, want: &Tensor, tol: &[f32]) {
    assert_eq!(got.shape(), want.shape(), "{case}: shape");
    let mut bad = Vec::new();
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else {
            g == w || (g - w).abs() <= tol[i]
        };
        if !ok && bad.len() < 5 {
            bad.push(format!(
                "  at {:?}: got {g:e}, want {w:e}, tolerance {:e}",
                got.shape().coords(i),
                tol[i]
            ));
        }
    }
    assert!(bad.is_empty(), "{case}: mismatches:\n{}", bad.join("\n"));
}

/// The activation's own error on exact inputs: the tolerance of a conv whose sums are exact.
fn own_error(act: Activation, want: &Tensor) -> Vec<f32> {
    let e = activation_error(act);
    want.data()
        .iter()
        .map(|y| e.relative * y.abs() + e.absolute)
        .collect()
}

/// Runs `conv` on `x` into a NaN-filled output.
fn run(conv: &Conv2d, x: &Tensor) -> Tensor {
    let gpu = gpu();
    let gx = GpuTensor::from_tensor(gpu, x).unwrap();
    let y = GpuTensor::full(gpu, conv.output_shape(x.shape()).unwrap(), f32::NAN).unwrap();
    conv.run_into(&gx, &y).unwrap();
    y.read().unwrap()
}

/// Runs `dw` then `pw` as one block along `fusion` on `x` into a NaN-filled output.
#[allow(clippy::too_many_arguments)]
fn run_block(
    fusion: Fusion,
    dw: Conv2dSpec,
    dw_w: &[f32],
    dw_b: Option<&[f32]>,
    pw: Conv2dSpec,
    pw_w: &[f32],
    pw_b: Option<&[f32]>,
    x: &Tensor,
) -> Tensor {
    let gpu = gpu();
    let block = SeparableBlock::new(
        Conv2d::new(gpu, dw, dw_w, dw_b).unwrap(),
        Conv2d::new(gpu, pw, pw_w, pw_b).unwrap(),
    )
    .unwrap()
    .with_tuning(Tuning::auto().with_fusion(fusion));
    let gx = GpuTensor::from_tensor(gpu, x).unwrap();
    let (_, out) = block.shapes(x.shape()).unwrap();
    let y = GpuTensor::full(gpu, out, f32::NAN).unwrap();
    block.run_into(&gx, &y).unwrap();
    y.read().unwrap()
}

/// Each hard point goes through a conv whose every output is `act(x · 1 + 0 · 0)` for one
/// input value x (the other channel of its sum is 0 with weight 0, the bias 0), so the sum is
/// exact and only the activation is tested: depthwise, pointwise and grouped windows and tiled
/// products, both halves of the fused block, the elementwise op, the fast CPU path and the
/// CPU op.
#[test]
fn hard_points_on_every_kernel() {
    let gpu = gpu();
    for act in activations() {
        let points = hard_points(act);
        let len = points.len();
        let zeros = vec![0.0; len];
        let plane = |c: usize, data: Vec<f32>| Tensor::new(Shape::new(1, c, 1, len), data).unwrap();
        // [points, zeros] and, for two groups, that twice.
        let x2 = plane(2, [points.clone(), zeros.clone()].concat());
        let x4 = plane(
            4,
            [points.clone(), zeros.clone(), points.clone(), zeros].concat(),
        );
        let convs = [
            ("depthwise", Conv2dSpec::depthwise(2, [1, 1]), &x2, None),
            (
                "pointwise windows",
                Conv2dSpec::pointwise(2, 5),
                &x2,
                Some(ConvKernel::UniformWindows),
            ),
            (
                "pointwise tiled",
                Conv2dSpec::pointwise(2, 5),
                &x2,
                Some(ConvKernel::TiledGemm),
            ),
            (
                "grouped windows",
                Conv2dSpec::new(4, 6, [1, 1]).groups(2),
                &x4,
                Some(ConvKernel::UniformWindows),
            ),
            (
                "grouped tiled",
                Conv2dSpec::new(4, 6, [1, 1]).groups(2),
                &x4,
                Some(ConvKernel::TiledGemm),
            ),
        ];
        // Weight 1 on each output's first input channel, 0 on the second.
        let ones_then_zeros = |spec: &Conv2dSpec| -> Vec<f32> {
            let per_oc = spec.weight_count() / spec.c_out;
            (0..spec.weight_count())
                .map(|i| if i % per_oc == 0 { 1.0 } else { 0.0 })
                .collect()
        };
        for (name, spec, x, kernel) in convs {
            let spec = spec.activation(act);
            let w = ones_then_zeros(&spec);
            let b = vec![0.0; spec.c_out];
            let want = reference::conv2d(&spec, x, &w, Some(&b)).unwrap();
            let tol = own_error(act, &want);
            let mut conv = Conv2d::new(gpu, spec, &w, Some(&b)).unwrap();
            if let Some(kernel) = kernel {
                conv = conv.with_tuning(Tuning::auto().with_kernel(kernel));
            }
            check(&format!("{act:?}, {name}"), &run(&conv, x), &want, &tol);
            let cpu = fast::conv2d(&spec, x, &w, Some(&b)).unwrap();
            check(&format!("{act:?}, {name}, cpu fast"), &cpu, &want, &tol);
        }

        // The fused block, the activation on either half (the other the identity).
        let dw = Conv2dSpec::depthwise(2, [1, 1]);
        let pw = Conv2dSpec::pointwise(2, 5);
        for (dw, pw) in [(dw.activation(act), pw), (dw, pw.activation(act))] {
            let (dw_w, pw_w) = (vec![1.0; 2], ones_then_zeros(&pw));
            let (dw_b, pw_b) = (vec![0.0; 2], vec![0.0; 5]);
            let mid = reference::conv2d(&dw, &x2, &dw_w, Some(&dw_b)).unwrap();
            let want = reference::conv2d(&pw, &mid, &pw_w, Some(&pw_b)).unwrap();
            let tol = own_error(act, &want);
            let run =
                |fusion| run_block(fusion, dw, &dw_w, Some(&dw_b), pw, &pw_w, Some(&pw_b), &x2);
            check(
                &format!("{act:?}, fused block"),
                &run(Fusion::Always),
                &want,
                &tol,
            );
            check(
                &format!("{act:?}, two-kernel block"),
                &run(Fusion::Never),
                &want,
                &tol,
            );
        }

        let x1 = plane(1, points.clone());
        // The elementwise op, GPU and CPU.
        let want = Tensor::new(
            x1.shape(),
            points
                .iter()
                .map(|&p| act.apply_f64(p.into()) as f32)
                .collect(),
        )
        .unwrap();
        let tol = own_error(act, &want);
        let gx = GpuTensor::from_tensor(gpu, &x1).unwrap();
        let y = GpuTensor::full(gpu, x1.shape(), f32::NAN).unwrap();
        gpu_ops::activation_into(&gx, &y, act).unwrap();
        check(&format!("{act:?}, gpu op"), &y.read().unwrap(), &want, &tol);
        check(
            &format!("{act:?}, cpu op"),
            &ops::activation(&x1, act).unwrap(),
            &want,
            &tol,
        );
    }
}

/// Every activation on every kernel with seeded data (normal, and small integers where the
/// activation rounds at most once, bit for bit), against the reference within the
/// tolerance of tests/common.
#[test]
fn random_data_on_every_kernel() {
    let slices = SplitK::Parts(NonZeroUsize::new(3).unwrap());
    let convs = [
        (
            "depthwise 3x3",
            Conv2dSpec::depthwise(8, [3, 3]).padding(Padding::uniform(1)),
            Shape::new(2, 8, 9, 11),
            None,
            SplitK::Auto,
        ),
        (
            "depthwise ×2 stride 2",
            Conv2dSpec::depthwise(6, [3, 3])
                .multiplier(2)
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            Shape::new(1, 6, 13, 10),
            None,
            SplitK::Auto,
        ),
        (
            "pointwise windows",
            Conv2dSpec::pointwise(24, 20),
            Shape::new(1, 24, 7, 9),
            Some(ConvKernel::UniformWindows),
            SplitK::Auto,
        ),
        (
            "pointwise tiled",
            Conv2dSpec::pointwise(24, 20),
            Shape::new(1, 24, 7, 9),
            Some(ConvKernel::TiledGemm),
            SplitK::Auto,
        ),
        (
            "pointwise tiled, split in 3",
            Conv2dSpec::pointwise(64, 20),
            Shape::new(1, 64, 5, 5),
            Some(ConvKernel::TiledGemm),
            slices,
        ),
        (
            "grouped windows",
            Conv2dSpec::new(16, 24, [3, 3])
                .groups(4)
                .padding(Padding::uniform(1)),
            Shape::new(1, 16, 8, 7),
            Some(ConvKernel::UniformWindows),
            SplitK::Auto,
        ),
        (
            "grouped tiled",
            Conv2dSpec::new(16, 24, [3, 3])
                .groups(4)
                .padding(Padding::uniform(1)),
            Shape::new(1, 16, 8, 7),
            Some(ConvKernel::TiledGemm),
            SplitK::Auto,
        ),
    ];
    for (i, act) in activations().into_iter().enumerate() {
        for (j, (name, spec, input, kernel, split_k)) in convs.iter().enumerate() {
            let spec = spec.activation(act);
            let seed = (100 * i + j) as u64;
            for exact in [false, true] {
                let data = ConvData::new(&spec, *input, seed, exact);
                let want =
                    reference::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
                let tol = if exact && exact_activation(act) {
                    vec![0.0; want.data().len()]
                } else {
                    tolerances(&spec, &data, &want)
                };
                let mut tuning = Tuning::auto().with_split_k(*split_k);
                if let Some(kernel) = kernel {
                    tuning = tuning.with_kernel(*kernel);
                }
                let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias())
                    .unwrap()
                    .with_tuning(tuning);
                let case = format!("{act:?}, {name}, exact {exact} (seed {seed})");
                check(&case, &run(&conv, &data.input), &want, &tol);
                let cpu = fast::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
                check(&format!("{case}, cpu fast"), &cpu, &want, &tol);
            }
        }
    }
}

/// The fused block with every activation on each half, on seeded normal data, against two
/// reference calls (the tolerance of the pointwise stage plus the depthwise stage's carried
/// through the pointwise weights, as in tests/gpu_conv.rs).
#[test]
fn fused_block_with_every_activation() {
    let input = Shape::new(1, 16, 9, 9);
    for (i, act) in activations().into_iter().enumerate() {
        let plain_dw = Conv2dSpec::depthwise(16, [3, 3]).padding(Padding::uniform(1));
        let plain_pw = Conv2dSpec::pointwise(16, 24);
        for (dw, pw) in [
            (plain_dw.activation(act), plain_pw),
            (plain_dw, plain_pw.activation(act)),
        ] {
            let seed = 7000 + i as u64;
            let d = ConvData::new(&dw, input, seed, false);
            let p = ConvData::new(&pw, Shape::new(1, 16, 1, 1), seed + 1, false);
            let mid = reference::conv2d(&dw, &d.input, &d.weights, d.bias()).unwrap();
            let want = reference::conv2d(&pw, &mid, &p.weights, p.bias()).unwrap();
            let pw_data = ConvData {
                input: mid.clone(),
                weights: p.weights.clone(),
                bias: p.bias.clone(),
            };
            let mut tol = tolerances(&pw, &pw_data, &want);
            let max_dw = tolerances(&dw, &d, &mid).into_iter().fold(0.0f32, f32::max);
            let w_sum = p
                .weights
                .chunks(pw.c_in)
                .map(|r| r.iter().map(|w| w.abs()).sum::<f32>())
                .fold(0.0f32, f32::max);
            let lip = activation_error(pw.activation).lipschitz;
            tol.iter_mut().for_each(|t| *t += lip * max_dw * w_sum);
            for fusion in [Fusion::Always, Fusion::Never] {
                let got = run_block(
                    fusion,
                    dw,
                    &d.weights,
                    d.bias(),
                    pw,
                    &p.weights,
                    p.bias(),
                    &d.input,
                );
                let case = format!("{:?} / {:?}, {fusion:?}", dw.activation, pw.activation);
                check(&case, &got, &want, &tol);
            }
        }
    }
}

/// Parameters that make no activation are refused with a typed error, by specs and ops.
#[test]
fn invalid_parameters_are_refused() {
    let x = Tensor::new(Shape::new(1, 1, 1, 2), vec![1.0, 2.0]).unwrap();
    for act in [
        Activation::Clip { min: 2.0, max: 1.0 },
        Activation::LeakyRelu(f32::NAN),
        Activation::HardSigmoidOnnx {
            alpha: f32::INFINITY,
            beta: 0.5,
        },
    ] {
        let spec = Conv2dSpec::pointwise(1, 1).activation(act);
        let err = spec.validate().unwrap_err();
        assert!(
            matches!(err, sepconv::Error::InvalidArgument { .. }),
            "{act:?}: {err}"
        );
        assert!(
            Conv2d::new(gpu(), spec, &[1.0], Some(&[0.0])).is_err(),
            "{act:?}"
        );
        assert!(ops::activation(&x, act).is_err(), "{act:?}");
        let gx = GpuTensor::from_tensor(gpu(), &x).unwrap();
        assert!(gpu_ops::activation(&gx, act).is_err(), "{act:?}");
    }
}
