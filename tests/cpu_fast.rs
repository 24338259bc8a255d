//! The fast CPU path against the `f64` reference: a case table over every kind and odd
//! geometry, the 41 benchmark layers, small-integer data that must match bit for bit, and the
//! same errors as the reference for bad input.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use sepconv::cpu::fast::{self, Conv2dCpu};
use sepconv::cpu::reference;
use sepconv::{networks::layers, Activation, Conv2dSpec, ConvKind, Error, Padding, Shape, Tensor};

/// One test case: a spec and an input shape.
struct Case {
    name: &'static str,
    spec: Conv2dSpec,
    input: Shape,
}

fn case(name: &'static str, spec: Conv2dSpec, input: [usize; 4]) -> Case {
    let [n, c, h, w] = input;
    Case {
        name,
        spec,
        input: Shape::new(n, c, h, w),
    }
}

/// Every kind and the geometry that trips indexing: odd sizes, H ≠ W, channel counts that
/// are not multiples of 4 or 16, stride 2 and 3, dilation with asymmetric padding,
/// multipliers, 3×1 and 1×7 kernels, batch 3, 1×1 inputs, SAME padding, and shapes that make
/// the fast path cut its work into many blocks (split rows, split channels).
fn cases() -> Vec<Case> {
    use Activation::{Relu, Relu6};
    let dw = Conv2dSpec::depthwise;
    let pw = Conv2dSpec::pointwise;
    let conv = Conv2dSpec::new;
    let p = Padding::uniform;
    vec![
        // Depthwise, 3×3 stride 1 (fused path).
        case(
            "dw3_s1_c13_17x13_b3_relu6",
            dw(13, [3, 3]).padding(p(1)).activation(Relu6),
            [3, 13, 17, 13],
        ),
        case("dw3_s1_valid", dw(5, [3, 3]), [1, 5, 9, 11]),
        case("dw3_s1_pad2", dw(4, [3, 3]).padding(p(2)), [2, 4, 6, 5]),
        case("dw3_s1_width2", dw(3, [3, 3]).padding(p(1)), [1, 3, 5, 2]),
        case(
            "dw3_s1_1x1_input",
            dw(6, [3, 3]).padding(p(1)),
            [2, 6, 1, 1],
        ),
        case(
            "dw3_s1_dil2_asym",
            dw(7, [3, 3])
                .dilation([2, 2])
                .padding(Padding::explicit(2, 1, 0, 3)),
            [1, 7, 13, 12],
        ),
        case(
            "dw3_s1_no_bias_relu",
            dw(9, [3, 3]).padding(p(1)).bias(false).activation(Relu),
            [1, 9, 8, 8],
        ),
        // Depthwise, 3×3 stride 2 (fused path).
        case(
            "dw3_s2_c8_17x13",
            dw(8, [3, 3]).stride([2, 2]).padding(p(1)),
            [1, 8, 17, 13],
        ),
        case(
            "dw3_s2_same_even",
            dw(5, [3, 3]).stride([2, 2]).padding(Padding::same()),
            [2, 5, 16, 14],
        ),
        case(
            "dw3_s2_dil2_asym",
            dw(4, [3, 3])
                .stride([2, 2])
                .dilation([2, 2])
                .padding(Padding::explicit(1, 3, 2, 0)),
            [1, 4, 15, 11],
        ),
        case(
            "dw3_s2_valid_odd",
            dw(3, [3, 3]).stride([2, 2]),
            [1, 3, 7, 9],
        ),
        // Depthwise, general path.
        case(
            "dw_mult2",
            dw(3, [3, 3]).multiplier(2).padding(p(1)),
            [2, 3, 11, 10],
        ),
        case(
            "dw_mult3_k5_s3",
            dw(5, [5, 5]).multiplier(3).stride([3, 3]).padding(p(2)),
            [1, 5, 17, 13],
        ),
        case(
            "dw_k3x1",
            dw(6, [3, 1]).padding(Padding::symmetric(1, 0)),
            [1, 6, 9, 7],
        ),
        case(
            "dw_k1x7",
            dw(6, [1, 7]).padding(Padding::symmetric(0, 3)),
            [1, 6, 9, 7],
        ),
        case(
            "dw_k7_s2_p3",
            dw(4, [7, 7]).stride([2, 2]).padding(p(3)),
            [1, 4, 13, 15],
        ),
        case(
            "dw3_stride_1x2",
            dw(5, [3, 3]).stride([1, 2]).padding(p(1)),
            [1, 5, 9, 10],
        ),
        case(
            "dw_k4_same",
            dw(3, [4, 4]).padding(Padding::same()),
            [1, 3, 7, 6],
        ),
        case(
            "dw_k5_dil3_s2",
            dw(3, [5, 5]).dilation([3, 3]).stride([2, 2]).padding(p(6)),
            [1, 3, 14, 11],
        ),
        case("dw_c1", dw(1, [3, 3]).padding(p(1)), [2, 1, 6, 7]),
        // Planes large enough to be cut into bands of rows (bounded scratch).
        case(
            "dw3_s1_bands",
            dw(2, [3, 3]).padding(p(1)),
            [1, 2, 120, 300],
        ),
        case(
            "dw3_s2_bands",
            dw(2, [3, 3]).stride([2, 2]).padding(p(1)),
            [1, 2, 131, 301],
        ),
        case(
            "dw_k5_dil2_bands",
            dw(2, [5, 5]).dilation([2, 2]).padding(p(3)),
            [1, 2, 97, 260],
        ),
        // Pointwise (direct product on NCHW).
        case(
            "pw_13_27_17x13_b3_relu",
            pw(13, 27).activation(Relu),
            [3, 13, 17, 13],
        ),
        case("pw_104_208", pw(104, 208), [1, 104, 14, 14]),
        case("pw_1x1_input", pw(64, 96), [2, 64, 1, 1]),
        case(
            "pw_256_512_7x7",
            pw(256, 512).activation(Relu6),
            [1, 256, 7, 7],
        ),
        case("pw_3_5_no_bias", pw(3, 5).bias(false), [1, 3, 5, 9]),
        case("pw_16_32_64x64", pw(16, 32), [1, 16, 64, 64]),
        // Strided or padded 1×1 (im2col path).
        case("pw_s2", pw(16, 32).stride([2, 2]), [1, 16, 17, 13]),
        case("pw_s3_b3", pw(13, 7).stride([3, 3]), [3, 13, 10, 11]),
        case(
            "pw_padded",
            pw(5, 6).padding(Padding::explicit(1, 0, 2, 1)),
            [1, 5, 6, 7],
        ),
        // Grouped and standard (im2col path).
        case(
            "conv3_s2_3_16_17x13",
            conv(3, 16, [3, 3])
                .stride([2, 2])
                .padding(p(1))
                .activation(Relu6),
            [1, 3, 17, 13],
        ),
        case(
            "grouped_g3_6_9",
            conv(6, 9, [3, 3]).groups(3).padding(p(1)),
            [2, 6, 9, 8],
        ),
        case(
            "grouped_g4_s2_b3",
            conv(16, 32, [3, 3]).groups(4).stride([2, 2]).padding(p(1)),
            [3, 16, 17, 13],
        ),
        case(
            "conv_k5_dil2_asym",
            conv(5, 7, [5, 5])
                .dilation([2, 2])
                .padding(Padding::explicit(3, 1, 0, 4)),
            [1, 5, 14, 13],
        ),
        case(
            "grouped_k1x7_g2",
            conv(8, 6, [1, 7])
                .groups(2)
                .padding(Padding::symmetric(0, 3)),
            [1, 8, 9, 11],
        ),
        case(
            "grouped_k3x1_g2",
            conv(8, 6, [3, 1])
                .groups(2)
                .padding(Padding::symmetric(1, 0)),
            [1, 8, 9, 11],
        ),
        case(
            "grouped_s3",
            conv(12, 8, [3, 3]).groups(4).stride([3, 3]),
            [1, 12, 16, 17],
        ),
        case(
            "conv_same_s2_even",
            conv(4, 6, [3, 3]).stride([2, 2]).padding(Padding::same()),
            [1, 4, 16, 16],
        ),
        case(
            "conv_1x1_input",
            conv(7, 5, [3, 3]).padding(p(1)),
            [2, 7, 1, 1],
        ),
        case(
            "grouped_1x1_g3_direct",
            conv(12, 24, [1, 1]).groups(3),
            [2, 12, 7, 9],
        ),
        case(
            "grouped_104_208_g13",
            conv(104, 208, [3, 3]).groups(13).padding(p(1)),
            [1, 104, 9, 9],
        ),
        // K = 512·9 = 4608 needs several pixel blocks of bounded scratch, cut mid-row.
        case(
            "conv_k4608_blocks",
            conv(512, 16, [3, 3]).padding(p(1)),
            [1, 512, 14, 14],
        ),
    ]
}

/// Seeded standard-normal data.
fn normal(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// Seeded integers in [-3, 3].
fn small_ints(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| rng.random_range(-3i32..=3) as f32)
        .collect()
}

/// Inputs, weights and bias for `spec` on `input` from `gen`.
struct Data {
    x: Tensor,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
}

fn data(
    spec: &Conv2dSpec,
    input: Shape,
    seed: u64,
    gen: fn(&mut StdRng, usize) -> Vec<f32>,
) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Tensor::new(input, gen(&mut rng, input.len().unwrap())).unwrap();
    let w = gen(&mut rng, spec.weight_count());
    let b = spec.bias.then(|| gen(&mut rng, spec.c_out));
    Data { x, w, b }
}

/// Tolerance for each output: `4 · sqrt(L) · 2⁻²⁴ · m`, where `L` is the number of terms in
/// the sum (`c_in/g · kh · kw` products plus the bias) and `m` is the same output computed by
/// the reference on `|x|`, `|w|`, `|b|` without activation, i.e. `|b| + Σ|x·w|`.
///
/// Why: each `f32` product and addition rounds with relative error at most `u = 2⁻²⁴`; the
/// error of a sum of `L` rounded terms is bounded by `γ_L · Σ|terms|` in the worst case and
/// grows like `sqrt(L) · u · Σ|terms|` for rounding errors of random sign (Higham, "Accuracy and
/// Stability of Numerical Algorithms", 2nd ed., §4.2 and §3.1). The blocked sums of the matrix
/// kernels do better still. The factor 4 covers the product roundings, the reference's own
/// final rounding to `f32`, and constant factors; ReLU/ReLU6 are 1-Lipschitz, so the bound
/// carries through the activation. An indexing mistake changes outputs by `O(|x·w|)`, which
/// is about `sqrt(L)` larger than this bound, so the check still catches it (see
/// `tolerance_check_catches_a_perturbed_weight`).
fn tolerances(spec: &Conv2dSpec, d: &Data) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
    let xa = Tensor::new(d.x.shape(), abs(d.x.data())).unwrap();
    let plain = spec.activation(Activation::None);
    let m = reference::conv2d(&plain, &xa, &abs(&d.w), d.b.as_deref().map(abs).as_deref()).unwrap();
    let terms = (spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1] + 1) as f32;
    let scale = 4.0 * terms.sqrt() * f32::EPSILON / 2.0;
    m.data().iter().map(|v| scale * v).collect()
}

/// Number of outputs of `got` outside `tol` of `want`, and a description of the worst one.
fn mismatches(got: &Tensor, want: &Tensor, tol: &[f32]) -> (usize, String) {
    assert_eq!(got.shape(), want.shape());
    let mut count = 0;
    let mut worst = (0f32, 0usize);
    for (i, ((g, w), t)) in got.data().iter().zip(want.data()).zip(tol).enumerate() {
        let err = (g - w).abs();
        // NaN counts as a mismatch.
        if err.is_nan() || err > *t {
            count += 1;
        }
        let ratio = if *t > 0.0 { err / t } else { err };
        if ratio.is_nan() || ratio > worst.0 {
            worst = (ratio, i);
        }
    }
    let i = worst.1;
    let detail = format!(
        "worst at {:?}: got {}, want {}, tolerance {} (err/tol {:.3})",
        want.shape().coords(i),
        got.data()[i],
        want.data()[i],
        tol[i],
        worst.0
    );
    (count, detail)
}

#[track_caller]
fn check_close(name: &str, spec: &Conv2dSpec, input: Shape, seed: u64) {
    let d = data(spec, input, seed, normal);
    let want = reference::conv2d(spec, &d.x, &d.w, d.b.as_deref()).unwrap();
    let got = fast::conv2d(spec, &d.x, &d.w, d.b.as_deref()).unwrap();
    let tol = tolerances(spec, &d);
    let (bad, detail) = mismatches(&got, &want, &tol);
    assert_eq!(
        bad,
        0,
        "{name} ({}, seed {seed}): {bad} outputs out of tolerance; {detail}",
        spec.kind()
    );
}

#[test]
fn fast_matches_reference_on_every_case() {
    for (i, c) in cases().iter().enumerate() {
        check_close(c.name, &c.spec, c.input, 1000 + i as u64);
    }
}

#[test]
fn case_table_covers_every_kind() {
    let kinds: Vec<ConvKind> = cases().iter().map(|c| c.spec.kind()).collect();
    assert!(kinds.contains(&ConvKind::Depthwise { multiplier: 1 }));
    assert!(kinds.contains(&ConvKind::Depthwise { multiplier: 2 }));
    assert!(kinds.contains(&ConvKind::Depthwise { multiplier: 3 }));
    assert!(kinds.contains(&ConvKind::Pointwise));
    assert!(kinds.contains(&ConvKind::General));
}

#[test]
fn small_integers_match_bit_for_bit() {
    // Integers in [-3, 3]: every product and partial sum is an integer far below 2^24, so
    // every f32 operation is exact in any order and the results must be identical.
    for (i, c) in cases().iter().enumerate() {
        let d = data(&c.spec, c.input, 2000 + i as u64, small_ints);
        let want = reference::conv2d(&c.spec, &d.x, &d.w, d.b.as_deref()).unwrap();
        let got = fast::conv2d(&c.spec, &d.x, &d.w, d.b.as_deref()).unwrap();
        let diff = got
            .data()
            .iter()
            .zip(want.data())
            .position(|(g, w)| g.to_bits() != w.to_bits());
        if let Some(j) = diff {
            panic!(
                "{}: first difference at {:?}: got {}, want {}",
                c.name,
                want.shape().coords(j),
                got.data()[j],
                want.data()[j]
            );
        }
    }
}

#[test]
fn tolerance_check_catches_a_perturbed_weight() {
    // The comparison above must be able to fail: change one weight by 1 (its typical size, as
    // when an indexing mistake picks a wrong weight) and the outputs that use it must fall
    // outside the tolerance, even with the widest reduction of the table (L = 4609).
    for name in [
        "dw3_s1_c13_17x13_b3_relu6",
        "pw_104_208",
        "grouped_g4_s2_b3",
        "conv_k4608_blocks",
    ] {
        let c = cases().into_iter().find(|c| c.name == name).unwrap();
        let spec = c.spec.activation(Activation::None);
        let d = data(&spec, c.input, 7, normal);
        let want = reference::conv2d(&spec, &d.x, &d.w, d.b.as_deref()).unwrap();
        let mut w = d.w.clone();
        w[0] += 1.0;
        let got = fast::conv2d(&spec, &d.x, &w, d.b.as_deref()).unwrap();
        let (bad, _) = mismatches(&got, &want, &tolerances(&spec, &d));
        assert!(bad > 0, "{name}: a perturbed weight went unnoticed");
    }
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "runs the f64 reference on 1.5 G MACs; use cargo test --release"
)]
fn fast_matches_reference_on_all_benchmark_layers() {
    // Layers in parallel: the reference is single-threaded.
    use rayon::prelude::*;
    layers::LAYERS.par_iter().enumerate().for_each(|(i, l)| {
        let input = Shape {
            n: 1,
            ..l.input_shape()
        };
        check_close(l.name, &l.spec(), input, 3000 + i as u64);
    });
}

#[test]
fn batch_layers_match_at_full_batch() {
    // The two batch-8 benchmark layers at their real batch size, since batching changes how
    // the fast path cuts its work.
    for name in ["mbv1_dw2_b8", "mbv1_pw6_b8"] {
        let l = layers::find(name).unwrap();
        let spec = l.spec().activation(Activation::Relu6);
        let mut input = l.input_shape();
        if cfg!(debug_assertions) {
            // The f64 reference is slow unoptimised; keep the batch, shrink the image.
            input.h = input.h.min(8);
            input.w = input.w.min(8);
        }
        check_close(name, &spec, input, 42);
    }
}

#[test]
fn conv2d_cpu_matches_the_free_function_and_reuses_output() {
    for c in cases().iter().step_by(3) {
        let d = data(&c.spec, c.input, 5, normal);
        let free = fast::conv2d(&c.spec, &d.x, &d.w, d.b.as_deref()).unwrap();
        let conv = Conv2dCpu::new(c.spec, &d.w, d.b.as_deref()).unwrap();
        assert_eq!(conv.spec(), &c.spec);
        assert_eq!(conv.run(&d.x).unwrap(), free, "{}", c.name);
        // run_into overwrites whatever the output held.
        let mut out = Tensor::full(free.shape(), f32::NAN).unwrap();
        conv.run_into(&d.x, &mut out).unwrap();
        assert_eq!(out, free, "{}", c.name);
    }
}

/// A spec, input, weights and bias of which one is wrong.
type BadCall = (Conv2dSpec, Tensor, Vec<f32>, Option<Vec<f32>>);

#[test]
fn errors_are_the_references() {
    let spec = Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1));
    let x = Tensor::full(Shape::new(1, 4, 5, 5), 1.0).unwrap();
    let w = vec![1.0; spec.weight_count()];
    let b = vec![0.0; 4];
    let bad_inputs: Vec<BadCall> = vec![
        (
            spec,
            Tensor::full(Shape::new(1, 3, 5, 5), 1.0).unwrap(),
            w.clone(),
            Some(b.clone()),
        ),
        (spec, x.clone(), vec![1.0; 35], Some(b.clone())),
        (spec, x.clone(), w.clone(), None),
        (spec, x.clone(), w.clone(), Some(vec![0.0; 3])),
        (spec.groups(3), x.clone(), w.clone(), Some(b.clone())),
        (
            spec.padding(Padding::valid()).dilation([3, 3]),
            x.clone(),
            w.clone(),
            Some(b.clone()),
        ),
        (spec.stride([0, 1]), x.clone(), w.clone(), Some(b.clone())),
    ];
    for (s, x, w, b) in bad_inputs {
        let want = reference::conv2d(&s, &x, &w, b.as_deref()).unwrap_err();
        let got = fast::conv2d(&s, &x, &w, b.as_deref()).unwrap_err();
        assert_eq!(got, want);
        let built = Conv2dCpu::new(s, &w, b.as_deref()).and_then(|c| c.run(&x));
        assert_eq!(built.unwrap_err(), want);
    }
    // run_into with the wrong output shape.
    let conv = Conv2dCpu::new(spec, &w, Some(&b)).unwrap();
    let mut out = Tensor::full(Shape::new(1, 4, 5, 4), 0.0).unwrap();
    assert!(matches!(
        conv.run_into(&x, &mut out),
        Err(Error::LengthMismatch { .. })
    ));
}
