//! The CPU reference, [`sepconv::cpu::reference::conv2d`], checked on its own.
//!
//! Every GPU result is compared with this reference, so it must not be trusted because it
//! agrees with itself or with a kernel written by the same hands (the way a grouped-conv bug
//! survived in burn, tracel-ai/burn#2286: the reference backend was wrong in the same way).
//! Four independent sources of truth:
//!
//! 1. hand-worked cases, with the arithmetic in comments;
//! 2. golden values from numpy/scipy (`tests/golden/make_golden.py`, two unrelated
//!    implementations that must agree before anything is printed), in `tests/golden/cases.rs`;
//! 3. identities between kinds on seeded random data (depthwise, pointwise and grouped
//!    rewritten as standard convolutions or a matrix product; `SameUpper` as explicit pads;
//!    bias as a separate add);
//! 4. small-integer data, where every `f32` result is exact and must equal an `i64` convolution
//!    written here in scatter form (input pixel → the outputs it feeds), not in the reference's
//!    gather form.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sepconv::cpu::reference::conv2d;
use sepconv::{Activation, Conv2dSpec, Padding, Pads, Shape, Tensor};

// ---------------------------------------------------------------------------------------------
// Helpers (each has a test of its own at the end of the file).

/// A tensor of `shape` from NCHW `data`.
fn tensor(shape: Shape, data: Vec<f32>) -> Tensor {
    Tensor::new(shape, data).expect("test data length matches its shape")
}

/// `len` values uniform in [-1, 1) from `seed`.
fn seeded(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// `len` integers in [-3, 3] from `seed`, as `i64`.
fn small_ints(seed: u64, len: usize) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-3i64..=3)).collect()
}

fn to_f32(v: &[i64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Runs the reference, failing the test with the case name on an error.
fn run(spec: &Conv2dSpec, x: &Tensor, w: &[f32], b: Option<&[f32]>, ctx: &str) -> Tensor {
    conv2d(spec, x, w, b).unwrap_or_else(|e| panic!("{ctx}: reference failed: {e}"))
}

/// Distance between two finite `f32`s in units in the last place (adjacent floats are 1
/// apart; `0.0` and `-0.0` are 0 apart).
fn ulps(a: f32, b: f32) -> u64 {
    // Map the sign-magnitude bit patterns onto one monotonic integer line.
    fn key(x: f32) -> i64 {
        let bits = i64::from(x.to_bits());
        if bits & 0x8000_0000 != 0 {
            -(bits & 0x7fff_ffff)
        } else {
            bits
        }
    }
    key(a).abs_diff(key(b))
}

/// Asserts `got` and `want` have the same length and each pair is within `max_ulps` ulps or
/// `abs_floor` absolutely (the floor is for results that cancel to near zero, where a tiny
/// absolute difference is many ulps).
#[track_caller]
fn assert_ulps(got: &[f32], want: &[f32], max_ulps: u64, abs_floor: f32, ctx: &str) {
    assert_eq!(got.len(), want.len(), "{ctx}: lengths differ");
    let bad: Vec<_> = got
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (&g, &w))| ulps(g, w) > max_ulps && (g - w).abs() > abs_floor)
        .collect();
    assert!(
        bad.is_empty(),
        "{ctx}: {} of {} values differ by more than {max_ulps} ulps (and {abs_floor:e}); first: {:?}",
        bad.len(),
        got.len(),
        &bad[..bad.len().min(5)]
    );
}

/// The channels `range` of every batch item of `x`.
fn slice_channels(x: &Tensor, range: std::ops::Range<usize>) -> Tensor {
    let s = x.shape();
    let plane = s.h * s.w;
    let mut data = Vec::new();
    for n in 0..s.n {
        let start = (n * s.c + range.start) * plane;
        let end = (n * s.c + range.end) * plane;
        data.extend_from_slice(&x.data()[start..end]);
    }
    tensor(Shape::new(s.n, range.len(), s.h, s.w), data)
}

/// Concatenates tensors along the channel axis (same n, h, w).
fn concat_channels(parts: &[Tensor]) -> Tensor {
    let first = parts[0].shape();
    let c: usize = parts.iter().map(|p| p.shape().c).sum();
    let mut data = Vec::new();
    for n in 0..first.n {
        for p in parts {
            let s = p.shape();
            assert_eq!((s.n, s.h, s.w), (first.n, first.h, first.w));
            let plane = s.c * s.h * s.w;
            data.extend_from_slice(&p.data()[n * plane..(n + 1) * plane]);
        }
    }
    tensor(Shape::new(first.n, c, first.h, first.w), data)
}

/// PyTorch's output size, written out here so the crate's own `output_hw` is not used as
/// the oracle.
fn torch_out(input: usize, pad_total: usize, k: usize, s: usize, d: usize) -> usize {
    (input + pad_total - d * (k - 1) - 1) / s + 1
}

/// ONNX `SAME_UPPER` pads for one axis, `(begin, end)`: output `ceil(in/s)`, total padding
/// `max(0, (out-1)·s + d·(k-1) + 1 - in)`, the odd pixel at the end.
fn same_upper(input: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let out = input.div_ceil(s);
    let total = ((out - 1) * s + d * (k - 1) + 1).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// Pads for `spec` on an `h × w` input, without asking the crate.
fn pads_of(spec: &Conv2dSpec, h: usize, w: usize) -> Pads {
    match spec.padding {
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => Pads {
            top,
            bottom,
            left,
            right,
        },
        Padding::SameUpper => {
            let (top, bottom) = same_upper(h, spec.kernel[0], spec.stride[0], spec.dilation[0]);
            let (left, right) = same_upper(w, spec.kernel[1], spec.stride[1], spec.dilation[1]);
            Pads {
                top,
                bottom,
                left,
                right,
            }
        }
    }
}

/// Exact integer convolution in scatter form: every input pixel adds its contribution to each
/// output it lies under. Input channel `ic` feeds only the output channels of its group
/// `ic / (c_in/groups)`. Returns the output shape and NCHW data.
fn conv_i64_scatter(
    spec: &Conv2dSpec,
    xs: Shape,
    x: &[i64],
    w: &[i64],
    b: Option<&[i64]>,
) -> (Shape, Vec<i64>) {
    let p = pads_of(spec, xs.h, xs.w);
    let [kh, kw] = spec.kernel;
    let [sh, sw] = spec.stride;
    let [dh, dw] = spec.dilation;
    let oh_n = torch_out(xs.h, p.top + p.bottom, kh, sh, dh);
    let ow_n = torch_out(xs.w, p.left + p.right, kw, sw, dw);
    let os = Shape::new(xs.n, spec.c_out, oh_n, ow_n);
    let cin_g = spec.c_in / spec.groups;
    let cout_g = spec.c_out / spec.groups;
    let mut y = vec![0i64; os.n * os.c * os.h * os.w];
    for n in 0..os.n {
        for oc in 0..os.c {
            for i in 0..os.h * os.w {
                y[(n * os.c + oc) * os.h * os.w + i] = b.map_or(0, |b| b[oc]);
            }
        }
    }
    for n in 0..xs.n {
        for ic in 0..xs.c {
            let g = ic / cin_g;
            let icg = ic % cin_g;
            for ih in 0..xs.h {
                for iw in 0..xs.w {
                    let xv = x[((n * xs.c + ic) * xs.h + ih) * xs.w + iw];
                    for oc in g * cout_g..(g + 1) * cout_g {
                        for ky in 0..kh {
                            // Output row oh reads padded row oh·sh + ky·dh, i.e. input row
                            // oh·sh + ky·dh - top. Solve for oh.
                            let num = (ih + p.top) as i64 - (ky * dh) as i64;
                            if num < 0 || num % sh as i64 != 0 || num / sh as i64 >= oh_n as i64 {
                                continue;
                            }
                            let oh = (num / sh as i64) as usize;
                            for kx in 0..kw {
                                let num = (iw + p.left) as i64 - (kx * dw) as i64;
                                if num < 0 || num % sw as i64 != 0 || num / sw as i64 >= ow_n as i64
                                {
                                    continue;
                                }
                                let ow = (num / sw as i64) as usize;
                                let wv = w[((oc * cin_g + icg) * kh + ky) * kw + kx];
                                y[((n * os.c + oc) * os.h + oh) * os.w + ow] += xv * wv;
                            }
                        }
                    }
                }
            }
        }
    }
    for v in &mut y {
        *v = match spec.activation {
            Activation::None => *v,
            Activation::Relu => (*v).max(0),
            Activation::Relu6 => (*v).clamp(0, 6),
            other => unreachable!("the integer oracle covers None, Relu and Relu6, not {other:?}"),
        };
    }
    (os, y)
}

// ---------------------------------------------------------------------------------------------
// 1. Hand-worked cases.

/// The input 1..9 as one 3×3 plane:
/// ```text
/// 1 2 3
/// 4 5 6
/// 7 8 9
/// ```
fn one_to_nine() -> Tensor {
    tensor(Shape::new(1, 1, 3, 3), (1..=9).map(|v| v as f32).collect())
}

#[test]
fn standard_2x2_kernel_on_3x3_hand_worked() {
    // Kernel [[1, 2], [3, 4]] slid over the 3×3 input (cross-correlation, no flip):
    //   (0,0): 1·1 + 2·2 + 3·4 + 4·5 = 1 + 4 + 12 + 20 = 37
    //   (0,1): 1·2 + 2·3 + 3·5 + 4·6 = 2 + 6 + 15 + 24 = 47
    //   (1,0): 1·4 + 2·5 + 3·7 + 4·8 = 4 + 10 + 21 + 32 = 67
    //   (1,1): 1·5 + 2·6 + 3·8 + 4·9 = 5 + 12 + 24 + 36 = 77
    let spec = Conv2dSpec::new(1, 1, [2, 2]).bias(false);
    let y = run(&spec, &one_to_nine(), &[1.0, 2.0, 3.0, 4.0], None, "2x2");
    assert_eq!(y.shape(), Shape::new(1, 1, 2, 2));
    assert_eq!(y.data(), &[37.0, 47.0, 67.0, 77.0]);
}

#[test]
fn padding_1_hand_worked() {
    // Same kernel [[1, 2], [3, 4]], one zero row/column on every side. Padded input:
    //   0 0 0 0 0
    //   0 1 2 3 0
    //   0 4 5 6 0
    //   0 7 8 9 0
    //   0 0 0 0 0
    // Output (5 - 2 + 1 = 4 per axis), out(i,j) = p(i,j) + 2p(i,j+1) + 3p(i+1,j) + 4p(i+1,j+1):
    //   row 0: 4·1 = 4 | 3·1 + 4·2 = 11 | 3·2 + 4·3 = 18 | 3·3 = 9
    //   row 1: 2·1 + 4·4 = 18 | 1 + 4 + 12 + 20 = 37 | 2 + 6 + 15 + 24 = 47 | 3 + 3·6 = 21
    //   row 2: 2·4 + 4·7 = 36 | 4 + 10 + 21 + 32 = 67 | 5 + 12 + 24 + 36 = 77 | 6 + 3·9 = 33
    //   row 3: 2·7 = 14 | 7 + 2·8 = 23 | 8 + 2·9 = 26 | 9
    let spec = Conv2dSpec::new(1, 1, [2, 2])
        .bias(false)
        .padding(Padding::uniform(1));
    let y = run(&spec, &one_to_nine(), &[1.0, 2.0, 3.0, 4.0], None, "pad 1");
    assert_eq!(y.shape(), Shape::new(1, 1, 4, 4));
    #[rustfmt::skip]
    let want = [
        4.0, 11.0, 18.0, 9.0,
        18.0, 37.0, 47.0, 21.0,
        36.0, 67.0, 77.0, 33.0,
        14.0, 23.0, 26.0, 9.0,
    ];
    assert_eq!(y.data(), &want);
}

#[test]
fn stride2_hand_worked_and_not_flipped() {
    // Input 5×5, x(r,c) = 5r + c + 1 (1..25). Kernel 3×3 with only two taps:
    //   [[1, 0, 0],
    //    [0, 0, 0],
    //    [0, 0, 2]]  → out(oh,ow) = x(2oh, 2ow) + 2·x(2oh+2, 2ow+2)
    // Output (5 - 3)/2 + 1 = 2 per axis:
    //   (0,0): x(0,0) + 2x(2,2) = 1 + 2·13 = 27
    //   (0,1): x(0,2) + 2x(2,4) = 3 + 2·15 = 33
    //   (1,0): x(2,0) + 2x(4,2) = 11 + 2·23 = 57
    //   (1,1): x(2,2) + 2x(4,4) = 13 + 2·25 = 63
    // A flipped kernel (true convolution) would give 2·1 + 13 = 15 at (0,0).
    let x = tensor(Shape::new(1, 1, 5, 5), (1..=25).map(|v| v as f32).collect());
    let mut w = [0.0f32; 9];
    w[0] = 1.0;
    w[8] = 2.0;
    let spec = Conv2dSpec::new(1, 1, [3, 3]).bias(false).stride([2, 2]);
    let y = run(&spec, &x, &w, None, "stride 2");
    assert_eq!(y.shape(), Shape::new(1, 1, 2, 2));
    assert_eq!(y.data(), &[27.0, 33.0, 57.0, 63.0]);
}

#[test]
fn dilation2_asymmetric_padding_hand_worked() {
    // Input 4×5, x(r,c) = 5r + c + 1:
    //    1  2  3  4  5
    //    6  7  8  9 10
    //   11 12 13 14 15
    //   16 17 18 19 20
    // Kernel [[1, 2], [3, 4]], dilation 2, padding top 1, bottom 0, left 0, right 2.
    // Output h = (4 + 1 - 2·1 - 1)/1 + 1 = 3, w = (5 + 2 - 2 - 1)/1 + 1 = 5.
    // out(oh,ow) = 1·x(oh-1, ow) + 2·x(oh-1, ow+2) + 3·x(oh+1, ow) + 4·x(oh+1, ow+2),
    // zero outside the input (row -1 is top padding, columns 5 and 6 are right padding).
    //   oh 0 (rows -1, 1): 3·6 + 4·8 = 50 | 3·7 + 4·9 = 57 | 3·8 + 4·10 = 64 | 3·9 = 27 | 3·10 = 30
    //   oh 1 (rows 0, 2):  1 + 2·3 + 3·11 + 4·13 = 92 | 2 + 8 + 36 + 56 = 102
    //                      | 3 + 10 + 39 + 60 = 112 | 4 + 3·14 = 46 | 5 + 3·15 = 50
    //   oh 2 (rows 1, 3):  6 + 2·8 + 3·16 + 4·18 = 142 | 7 + 18 + 51 + 76 = 152
    //                      | 8 + 20 + 54 + 80 = 162 | 9 + 3·19 = 66 | 10 + 3·20 = 70
    let x = tensor(Shape::new(1, 1, 4, 5), (1..=20).map(|v| v as f32).collect());
    let spec = Conv2dSpec::new(1, 1, [2, 2])
        .bias(false)
        .dilation([2, 2])
        .padding(Padding::explicit(1, 0, 0, 2));
    let y = run(&spec, &x, &[1.0, 2.0, 3.0, 4.0], None, "dilation 2");
    assert_eq!(y.shape(), Shape::new(1, 1, 3, 5));
    #[rustfmt::skip]
    let want = [
        50.0, 57.0, 64.0, 27.0, 30.0,
        92.0, 102.0, 112.0, 46.0, 50.0,
        142.0, 152.0, 162.0, 66.0, 70.0,
    ];
    assert_eq!(y.data(), &want);
}

#[test]
fn bias_then_activation_hand_worked() {
    // 1×1 kernel of weight 2, bias 1, input [1, -2, 3, -4]:
    //   before the activation 2x + 1 = [3, -3, 7, -7]
    //   ReLU  → [3, 0, 7, 0]
    //   ReLU6 → [3, 0, 6, 0] (7 clamped to 6)
    // The bias is added before the activation: ReLU(2·(-2)) + 1 would give 1, not 0.
    let x = tensor(Shape::new(1, 1, 2, 2), vec![1.0, -2.0, 3.0, -4.0]);
    for (act, want) in [
        (Activation::None, [3.0, -3.0, 7.0, -7.0]),
        (Activation::Relu, [3.0, 0.0, 7.0, 0.0]),
        (Activation::Relu6, [3.0, 0.0, 6.0, 0.0]),
    ] {
        let spec = Conv2dSpec::new(1, 1, [1, 1]).activation(act);
        let y = run(&spec, &x, &[2.0], Some(&[1.0]), "bias + activation");
        assert_eq!(y.data(), &want, "{act:?}");
    }
}

#[test]
fn grouped_output_channel_group_is_oc_div_cout_per_group() {
    // c_in 4, c_out 6, 2 groups: c_in/g = 2, c_out/g = 3. PyTorch: oc 0..3 read input
    // channels 0,1 (group 0); oc 3..6 read channels 2,3 (group 1). 1×1 kernel, 1×1 input
    // x = [1, 10, 100, 1000], weights [c_out, 2] = [1,2], [3,4], [5,6], [7,8], [9,10], [11,12]:
    //   oc0 = 1·1 + 2·10 = 21          oc3 = 7·100 + 8·1000 = 8700
    //   oc1 = 3·1 + 4·10 = 43          oc4 = 9·100 + 10·1000 = 10900
    //   oc2 = 5·1 + 6·10 = 65          oc5 = 11·100 + 12·1000 = 13100
    // The interleaved rule group = oc % groups would give oc1 = 3·100 + 4·1000 = 4300 and
    // oc4 = 9·1 + 10·10 = 109 instead.
    let x = tensor(Shape::new(1, 4, 1, 1), vec![1.0, 10.0, 100.0, 1000.0]);
    let w: Vec<f32> = (1..=12).map(|v| v as f32).collect();
    let spec = Conv2dSpec::new(4, 6, [1, 1]).groups(2).bias(false);
    let y = run(&spec, &x, &w, None, "grouped");
    assert_eq!(y.data(), &[21.0, 43.0, 65.0, 8700.0, 10900.0, 13100.0]);
}

#[test]
fn depthwise_multiplier2_output_channel_reads_input_oc_div_2() {
    // c_in 2, multiplier 2 → c_out 4, groups 2: oc 0,1 read channel 0, oc 2,3 read channel 1.
    // Input planes (2×2): ch0 = [1, 2, 3, 4], ch1 = [10, 20, 30, 40]. 2×2 kernels, 1×1 output:
    //   oc0: [1, 0, 0, 0]  · ch0 = 1
    //   oc1: [0, 0, 0, 1]  · ch0 = 4        (oc % c_in would read ch1: 40)
    //   oc2: [1, 1, 1, 1]  · ch1 = 100
    //   oc3: [0, -1, 0, 2] · ch1 = -20 + 80 = 60
    let x = tensor(
        Shape::new(1, 2, 2, 2),
        vec![1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0],
    );
    #[rustfmt::skip]
    let w = [
        1.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 1.0,
        1.0, 1.0, 1.0, 1.0,
        0.0, -1.0, 0.0, 2.0,
    ];
    let spec = Conv2dSpec::depthwise(2, [2, 2]).multiplier(2).bias(false);
    assert_eq!(spec.c_out, 4);
    let y = run(&spec, &x, &w, None, "depthwise x2");
    assert_eq!(y.shape(), Shape::new(1, 4, 1, 1));
    assert_eq!(y.data(), &[1.0, 4.0, 100.0, 60.0]);
}

#[test]
fn batch_items_do_not_mix() {
    // Two batch items through a 1×1 conv 2 → 1 with weights [1, 10] and bias 0.5:
    //   item 0: x = [1, 2]   → 1 + 20 + 0.5 = 21.5
    //   item 1: x = [-3, 4]  → -3 + 40 + 0.5 = 37.5
    let x = tensor(Shape::new(2, 2, 1, 1), vec![1.0, 2.0, -3.0, 4.0]);
    let spec = Conv2dSpec::pointwise(2, 1);
    let y = run(&spec, &x, &[1.0, 10.0], Some(&[0.5]), "batch");
    assert_eq!(y.shape(), Shape::new(2, 1, 1, 1));
    assert_eq!(y.data(), &[21.5, 37.5]);
}

// ---------------------------------------------------------------------------------------------
// 2. Golden values from numpy/scipy.

/// One convolution computed by `tests/golden/make_golden.py`.
struct GoldenCase {
    name: &'static str,
    spec: Conv2dSpec,
    input_shape: Shape,
    input: &'static [f32],
    weights: &'static [f32],
    bias: Option<&'static [f32]>,
    output_shape: Shape,
    output: &'static [f32],
}

// Generated; see the header of the file for the command that regenerates it.
include!("golden/cases.rs");

#[test]
fn golden_values_from_numpy_and_scipy() {
    // The script and the reference both multiply the same f32 values exactly in f64 (24 + 24
    // significant bits fit in 53) and sum at most 27 products per output in f64, only in a
    // different order: the sums differ by at most ~27·2⁻⁵³·Σ|terms| < 1e-13. Each rounds once
    // to f32, so results agree to 1 ulp, or to 1e-12 absolutely where they cancel to near
    // zero. 2 ulps leaves a margin and still catches any wrong tap (an error of one product
    // is ~1e-3 or more with these data).
    assert_eq!(GOLDEN.len(), 10, "every generated case is checked");
    for case in GOLDEN {
        let x = tensor(case.input_shape, case.input.to_vec());
        let y = run(&case.spec, &x, case.weights, case.bias, case.name);
        assert_eq!(y.shape(), case.output_shape, "{}", case.name);
        assert_ulps(y.data(), case.output, 2, 1e-12, case.name);
    }
}

#[test]
fn golden_cases_cover_what_they_claim() {
    // Guards against the script's table drifting: each property the golden set is meant to
    // cover must be present in at least one case.
    let any = |f: &dyn Fn(&GoldenCase) -> bool| GOLDEN.iter().any(f);
    assert!(any(&|c| c.spec.groups == 2 && c.spec.c_in != c.spec.groups));
    assert!(any(
        &|c| c.spec.groups == c.spec.c_in && c.spec.c_out == 2 * c.spec.c_in
    ));
    assert!(any(&|c| c.spec.stride == [2, 2]));
    assert!(any(&|c| c.spec.dilation == [2, 2]));
    assert!(any(&|c| c.spec.kernel == [3, 1]));
    assert!(any(&|c| c.spec.kernel == [1, 3]));
    assert!(any(&|c| c.input_shape.n == 2));
    assert!(any(&|c| (c.input_shape.h, c.input_shape.w) == (5, 7)));
    assert!(any(&|c| c.bias.is_none()));
    assert!(any(&|c| c.spec.activation == Activation::Relu));
    assert!(any(&|c| c.spec.activation == Activation::Relu6));
    assert!(any(&|c| matches!(
        c.spec.padding,
        Padding::Explicit { top, bottom, left, right } if top != bottom || left != right
    )));
    // In every grouped case with more than one output channel per group, the interleaved
    // rule oc % groups names a different group for some channel, so the golden values tell
    // the two rules apart.
    assert!(any(&|c| c.spec.groups > 1
        && c.spec.groups < c.spec.c_in
        && c.spec.c_out / c.spec.groups > 1));
}

// ---------------------------------------------------------------------------------------------
// 3. Identities between kinds on seeded random data.

#[test]
fn depthwise_equals_per_channel_single_channel_convs() {
    // Depthwise with multiplier m is grouped with g = c_in: input channel c alone, through the
    // m filters oc = c·m .. c·m + m, is a standard 1 → m conv. Same taps in the same order,
    // so the results are bit-identical.
    for (seed, m) in [(11u64, 1usize), (12, 2), (13, 3)] {
        let c = 5;
        let base = Conv2dSpec::depthwise(c, [3, 3])
            .multiplier(m)
            .stride([2, 1])
            .padding(Padding::explicit(1, 2, 0, 1));
        let xs = Shape::new(2, c, 9, 7);
        let x = tensor(xs, seeded(seed, xs.len().unwrap()));
        let w = seeded(seed + 100, base.weight_count());
        let b = seeded(seed + 200, c * m);
        let whole = run(&base, &x, &w, Some(&b), "depthwise");

        let per = base.kernel[0] * base.kernel[1] * m;
        let parts: Vec<Tensor> = (0..c)
            .map(|ch| {
                let one = Conv2dSpec {
                    c_in: 1,
                    c_out: m,
                    groups: 1,
                    ..base
                };
                run(
                    &one,
                    &slice_channels(&x, ch..ch + 1),
                    &w[ch * per..(ch + 1) * per],
                    Some(&b[ch * m..(ch + 1) * m]),
                    "one channel",
                )
            })
            .collect();
        assert_eq!(
            whole,
            concat_channels(&parts),
            "multiplier {m}, seed {seed}"
        );
    }
}

#[test]
fn grouped_equals_concatenated_per_group_standard_convs() {
    // Group g reads input channels g·c_in/G .. and owns output channels g·c_out/G .. with
    // weights [g·c_out/G .., :, :, :]: run each as a standard conv and concatenate.
    // Same taps in the same order, so bit-identical. c_in/G != c_out/G in both cases, so a
    // mix-up of the two per-group counts fails.
    let cases = [
        (
            21u64,
            Conv2dSpec::new(6, 9, [3, 2])
                .groups(3)
                .stride([1, 2])
                .dilation([2, 1])
                .padding(Padding::explicit(2, 0, 1, 1)),
            Shape::new(2, 6, 7, 5),
        ),
        (
            22,
            Conv2dSpec::new(4, 2, [3, 3])
                .groups(2)
                .padding(Padding::uniform(1))
                .activation(Activation::Relu),
            Shape::new(1, 4, 5, 7),
        ),
    ];
    for (seed, spec, xs) in cases {
        let x = tensor(xs, seeded(seed, xs.len().unwrap()));
        let w = seeded(seed + 100, spec.weight_count());
        let b = seeded(seed + 200, spec.c_out);
        let whole = run(&spec, &x, &w, Some(&b), "grouped");

        let (cin_g, cout_g) = (spec.c_in / spec.groups, spec.c_out / spec.groups);
        let per_group_w = cout_g * cin_g * spec.kernel[0] * spec.kernel[1];
        let parts: Vec<Tensor> = (0..spec.groups)
            .map(|g| {
                let std = Conv2dSpec {
                    c_in: cin_g,
                    c_out: cout_g,
                    groups: 1,
                    ..spec
                };
                run(
                    &std,
                    &slice_channels(&x, g * cin_g..(g + 1) * cin_g),
                    &w[g * per_group_w..(g + 1) * per_group_w],
                    Some(&b[g * cout_g..(g + 1) * cout_g]),
                    "one group",
                )
            })
            .collect();
        assert_eq!(whole, concat_channels(&parts), "seed {seed}");
    }
}

#[test]
fn pointwise_equals_matrix_product() {
    // A 1×1 conv is Y[o, p] = Σ_i W[o, i]·X[i, p] + b[o] per batch item, p over the kept pixels
    // (every stride-th row and column). The product below is in f64 and adds the bias last
    // (the reference starts from it), so the two can differ by rounding only: 2 ulps or 1e-12,
    // as for the golden values (13 products per output).
    for (seed, stride) in [(31u64, [1usize, 1usize]), (32, [2, 3])] {
        let (c_in, c_out) = (13, 7);
        let xs = Shape::new(2, c_in, 5, 8);
        let spec = Conv2dSpec::pointwise(c_in, c_out).stride(stride);
        let x = tensor(xs, seeded(seed, xs.len().unwrap()));
        let w = seeded(seed + 100, c_out * c_in);
        let b = seeded(seed + 200, c_out);
        let y = run(&spec, &x, &w, Some(&b), "pointwise");

        let (oh, ow) = ((xs.h - 1) / stride[0] + 1, (xs.w - 1) / stride[1] + 1);
        assert_eq!(y.shape(), Shape::new(xs.n, c_out, oh, ow));
        let mut want = Vec::new();
        for n in 0..xs.n {
            // X: [c_in, pixels] matrix of the kept pixels.
            let pixels: Vec<(usize, usize)> = (0..oh)
                .flat_map(|r| (0..ow).map(move |c| (r * stride[0], c * stride[1])))
                .collect();
            let xm: Vec<Vec<f64>> = (0..c_in)
                .map(|i| {
                    pixels
                        .iter()
                        .map(|&(r, c)| f64::from(x.at(n, i, r, c)))
                        .collect()
                })
                .collect();
            // Y = W·X, row o of Y accumulated as Σ_i W[o, i]·(row i of X).
            for o in 0..c_out {
                let mut row = vec![0f64; pixels.len()];
                for (i, x_row) in xm.iter().enumerate() {
                    let wv = f64::from(w[o * c_in + i]);
                    for (acc, &xv) in row.iter_mut().zip(x_row) {
                        *acc += wv * xv;
                    }
                }
                want.extend(row.iter().map(|&dot| (dot + f64::from(b[o])) as f32));
            }
        }
        assert_ulps(y.data(), &want, 2, 1e-12, &format!("stride {stride:?}"));
    }
}

#[test]
fn same_upper_equals_the_explicit_pads_it_resolves_to() {
    // (h, w, kernel, stride, dilation): stride > 1, even kernels, non-square inputs, an input
    // smaller than the kernel, and a case where no padding is needed.
    let cases = [
        (7, 10, [2, 4], [2, 3], [1, 1]),
        (6, 8, [4, 2], [2, 2], [1, 2]),
        (9, 6, [5, 3], [3, 2], [2, 1]),
        (5, 5, [4, 4], [1, 1], [1, 1]),
        (1, 4, [3, 3], [1, 2], [1, 1]),
        (8, 7, [1, 1], [3, 3], [1, 1]),
    ];
    for (i, (h, w, kernel, stride, dilation)) in cases.into_iter().enumerate() {
        let same = Conv2dSpec::new(3, 4, kernel)
            .stride(stride)
            .dilation(dilation)
            .padding(Padding::same());
        let (top, bottom) = same_upper(h, kernel[0], stride[0], dilation[0]);
        let (left, right) = same_upper(w, kernel[1], stride[1], dilation[1]);
        let ctx = format!("{h}x{w} k{kernel:?} s{stride:?} d{dilation:?}");
        assert_eq!(
            same.pads(h, w),
            Pads {
                top,
                bottom,
                left,
                right
            },
            "{ctx}"
        );
        let explicit = same.padding(Padding::explicit(top, bottom, left, right));
        let xs = Shape::new(1, 3, h, w);
        let seed = 41 + i as u64;
        let x = tensor(xs, seeded(seed, xs.len().unwrap()));
        let wt = seeded(seed + 100, same.weight_count());
        let b = seeded(seed + 200, 4);
        let y_same = run(&same, &x, &wt, Some(&b), &ctx);
        // SAME: output ceil(in / stride) on each axis.
        assert_eq!(
            y_same.shape(),
            Shape::new(1, 4, h.div_ceil(stride[0]), w.div_ceil(stride[1])),
            "{ctx}"
        );
        assert_eq!(y_same, run(&explicit, &x, &wt, Some(&b), &ctx), "{ctx}");
    }
}

#[test]
fn bias_equals_no_bias_plus_per_channel_add() {
    // Grouped with c_out/g = 3 and depthwise with multiplier 2, so a bias indexed by the wrong
    // channel shows. The activation is applied after the bias, so it is checked here too.
    let specs = [
        Conv2dSpec::new(4, 6, [3, 3])
            .groups(2)
            .padding(Padding::uniform(1)),
        Conv2dSpec::depthwise(3, [3, 3])
            .multiplier(2)
            .stride([2, 2])
            .padding(Padding::uniform(1)),
    ];
    for (i, spec) in specs.into_iter().enumerate() {
        let xs = Shape::new(2, spec.c_in, 6, 5);
        for act in [Activation::None, Activation::Relu, Activation::Relu6] {
            let with = spec.activation(act);
            let without = spec.bias(false).activation(Activation::None);

            // Small integers: every sum is exact, so the identity holds bit for bit.
            let seed = 51 + i as u64;
            let x = tensor(xs, to_f32(&small_ints(seed, xs.len().unwrap())));
            let w = to_f32(&small_ints(seed + 100, spec.weight_count()));
            let b = to_f32(&small_ints(seed + 200, spec.c_out));
            let y = run(&with, &x, &w, Some(&b), "with bias");
            let z = run(&without, &x, &w, None, "without bias");
            let os = z.shape();
            let plane = os.h * os.w;
            let want: Vec<f32> = z
                .data()
                .iter()
                .enumerate()
                .map(|(j, &v)| act.apply(v + b[(j / plane) % os.c]))
                .collect();
            assert_eq!(y.data(), &want[..], "integers, spec {i}, {act:?}");

            // Random data: y = f32(S + b) against f32(f32(S) + b), S the f64 sum. The inner
            // rounding moves S by at most 2⁻²⁴|S|, the outer roundings by 2⁻²⁴|S + b| each,
            // so |y - want| <= 2⁻²⁴(|S| + 2|S + b|); 2⁻²³ per term leaves a factor-2 margin.
            let x = tensor(xs, seeded(seed, xs.len().unwrap()));
            let w = seeded(seed + 100, spec.weight_count());
            let b = seeded(seed + 200, spec.c_out);
            let y = run(&with, &x, &w, Some(&b), "with bias");
            let z = run(&without, &x, &w, None, "without bias");
            for (j, (&got, &s)) in y.data().iter().zip(z.data()).enumerate() {
                let bias = b[(j / plane) % os.c];
                let want = act.apply(s + bias);
                let tol = 2f32.powi(-23) * (s.abs() + 2.0 * (s + bias).abs());
                assert!(
                    (got - want).abs() <= tol,
                    "random, spec {i}, {act:?}, index {j}: {got} vs {want} (tol {tol:e})"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Exact small-integer data against an i64 convolution.

#[test]
fn small_integers_match_i64_scatter_conv_exactly() {
    // Values in [-3, 3]: each product is at most 9 and each output sums at most
    // c_in/g·kh·kw products plus a bias, far below 2²⁴, so every partial sum is an integer
    // that f64 and f32 hold exactly. The reference must equal the i64 result bit for bit.
    let cases = [
        (
            "standard 3x3 pad 1 batch 2 on 5x7",
            Conv2dSpec::new(3, 4, [3, 3]).padding(Padding::uniform(1)),
            Shape::new(2, 3, 5, 7),
        ),
        (
            "depthwise x2 stride 2 asymmetric pad",
            Conv2dSpec::depthwise(3, [3, 3])
                .multiplier(2)
                .stride([2, 2])
                .padding(Padding::explicit(0, 2, 1, 0)),
            Shape::new(1, 3, 7, 6),
        ),
        (
            "grouped g2 dilation 2 non-square kernel",
            Conv2dSpec::new(4, 6, [3, 2])
                .groups(2)
                .dilation([2, 2])
                .padding(Padding::explicit(2, 1, 1, 1)),
            Shape::new(2, 4, 6, 7),
        ),
        (
            "grouped g3 stride 3 relu6",
            Conv2dSpec::new(6, 3, [2, 3])
                .groups(3)
                .stride([3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu6),
            Shape::new(1, 6, 8, 9),
        ),
        (
            "pointwise 13 -> 7 stride 2 relu",
            Conv2dSpec::pointwise(13, 7)
                .stride([2, 2])
                .activation(Activation::Relu),
            Shape::new(2, 13, 5, 5),
        ),
        (
            "same upper even kernel stride 2 non-square",
            Conv2dSpec::new(2, 3, [4, 2])
                .stride([2, 2])
                .padding(Padding::same()),
            Shape::new(1, 2, 7, 10),
        ),
        (
            "no bias, 1x1 input, kernel larger than input",
            Conv2dSpec::new(2, 2, [3, 3])
                .padding(Padding::uniform(1))
                .bias(false),
            Shape::new(1, 2, 1, 1),
        ),
    ];
    for (i, (name, spec, xs)) in cases.into_iter().enumerate() {
        let seed = 61 + i as u64;
        let x = small_ints(seed, xs.len().unwrap());
        let w = small_ints(seed + 100, spec.weight_count());
        let b = spec.bias.then(|| small_ints(seed + 200, spec.c_out));
        let (want_shape, want) = conv_i64_scatter(&spec, xs, &x, &w, b.as_deref());
        // The data must exercise the case: an all-zero result would prove little.
        assert!(want.iter().any(|&v| v != 0), "{name}: all-zero result");
        let y = run(
            &spec,
            &tensor(xs, to_f32(&x)),
            &to_f32(&w),
            b.as_deref().map(to_f32).as_deref(),
            name,
        );
        assert_eq!(y.shape(), want_shape, "{name}");
        assert_eq!(y.data(), &to_f32(&want)[..], "{name}, seed {seed}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tests of the helpers above.

#[test]
fn helper_ulps_counts_adjacent_floats() {
    let one = 1.0f32;
    let next = f32::from_bits(one.to_bits() + 1);
    assert_eq!(ulps(one, one), 0);
    assert_eq!(ulps(one, next), 1);
    assert_eq!(ulps(next, one), 1);
    assert_eq!(ulps(0.0, -0.0), 0);
    // Across zero: the smallest positive and negative subnormals are 2 apart.
    assert_eq!(ulps(f32::from_bits(1), -f32::from_bits(1)), 2);
    assert!(ulps(1.0, -1.0) > 1 << 30);
    assert_eq!(ulps(2.0, f32::from_bits(2f32.to_bits() - 3)), 3);
}

#[test]
#[should_panic(expected = "differ by more than 2 ulps")]
fn helper_assert_ulps_rejects_a_3_ulp_difference() {
    let a = 1.5f32;
    let b = f32::from_bits(a.to_bits() + 3);
    assert_ulps(&[0.25, a], &[0.25, b], 2, 1e-12, "helper");
}

#[test]
fn helper_slice_and_concat_channels_round_trip() {
    let xs = Shape::new(2, 5, 3, 2);
    let x = tensor(xs, seeded(1, xs.len().unwrap()));
    let parts = [
        slice_channels(&x, 0..2),
        slice_channels(&x, 2..3),
        slice_channels(&x, 3..5),
    ];
    assert_eq!(parts[1].shape(), Shape::new(2, 1, 3, 2));
    assert_eq!(parts[1].at(1, 0, 2, 1), x.at(1, 2, 2, 1));
    assert_eq!(concat_channels(&parts), x);
}

#[test]
fn helper_i64_scatter_conv_matches_the_hand_worked_cases() {
    // The 3×3 / 2×2 case with padding 1 (see `padding_1_hand_worked`).
    let spec = Conv2dSpec::new(1, 1, [2, 2])
        .bias(false)
        .padding(Padding::uniform(1));
    let x: Vec<i64> = (1..=9).collect();
    let (s, y) = conv_i64_scatter(&spec, Shape::new(1, 1, 3, 3), &x, &[1, 2, 3, 4], None);
    assert_eq!(s, Shape::new(1, 1, 4, 4));
    assert_eq!(
        y,
        [4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9]
    );
    // The dilation-2, asymmetric-padding case (see `dilation2_asymmetric_padding_hand_worked`).
    let spec = Conv2dSpec::new(1, 1, [2, 2])
        .bias(false)
        .dilation([2, 2])
        .padding(Padding::explicit(1, 0, 0, 2));
    let x: Vec<i64> = (1..=20).collect();
    let (s, y) = conv_i64_scatter(&spec, Shape::new(1, 1, 4, 5), &x, &[1, 2, 3, 4], None);
    assert_eq!(s, Shape::new(1, 1, 3, 5));
    assert_eq!(
        y,
        [50, 57, 64, 27, 30, 92, 102, 112, 46, 50, 142, 152, 162, 66, 70]
    );
    // The grouped case: group by ic / (c_in/g) on the input side, bias and ReLU6.
    let spec = Conv2dSpec::new(4, 6, [1, 1])
        .groups(2)
        .activation(Activation::Relu6);
    let w: Vec<i64> = (1..=12).collect();
    let (_, y) = conv_i64_scatter(
        &spec,
        Shape::new(1, 4, 1, 1),
        &[1, 0, 0, -1],
        &w,
        Some(&[0, 1, 2, 3, 4, 5]),
    );
    // oc0..2 = w[oc,0]·1 + bias = 1, 4, 7 → ReLU6 → 1, 4, 6;
    // oc3..5 = -w[oc,1] + bias = -8 + 3, -10 + 4, -12 + 5 → 0, 0, 0.
    assert_eq!(y, [1, 4, 6, 0, 0, 0]);
}
