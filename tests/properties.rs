//! Property tests: random valid specs of every kind, run on the GPU into a NaN-poisoned output
//! and compared with the f64 reference, on seeded normal data (with the tolerance from
//! `common::tolerances`) and on small integers (bit for bit where the activation rounds at most
//! once, `common::exact_activation`; within the tolerance otherwise).
//!
//! Reproducible: the generator is proptest with a fixed seed (override with
//! `SEPCONV_PROPTEST_SEED=<u64>`; `SEPCONV_PROPTEST_CASES=<n>` scales the case counts, which
//! are per test). A failure prints the shrunk case (spec, input shape, data seed) and the
//! generator seed; every failure found is kept as a fixed test in `regressions` below.
//!
//! The generators are kind-targeted so that each kernel family gets its share: depthwise (with
//! multipliers), pointwise (1×1, groups 1, no padding, any stride) and grouped (groups drawn
//! from the common divisors by building `c = groups · c_per_group`, standard convs included).
//! Kernels 1–7 per axis, strides and dilations 1–3, per-side padding 0–3 or `SAME_UPPER`,
//! batch 1–4, spatial sizes from the smallest that gives an output up, channel counts mostly
//! not multiples of 4, bias on and off, every activation, and the precision: one case in five
//! runs with f16 tensors and weights (`common::f16_tolerances` on f16-rounded data; on an
//! adapter without `SHADER_F16` such a case checks the refusal instead).

mod common;
mod limited;

use common::{
    assert_matches, exact_activation, f16_tolerances_over, gpu, residual_tolerances, tolerances,
    ConvData,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use sepconv::{
    cpu::reference, Activation, Conv2d, Conv2dSpec, ConvKind, Error, Gpu, GpuTensor, Padding,
    Precision, Residual, Shape, Tensor,
};

/// One generated case: the spec, the input shape, the seed of its data, and its residual add.
#[derive(Debug, Clone, Copy)]
struct Case {
    spec: Conv2dSpec,
    input: Shape,
    data_seed: u64,
    /// A residual add in the epilogue, with a seeded skip tensor of the output's shape.
    residual: Option<Residual>,
}

const DEFAULT_SEED: u64 = 0x5e9c_0a7f_2024_0001;

fn generator_seed() -> u64 {
    std::env::var("SEPCONV_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// `default` cases, or `SEPCONV_PROPTEST_CASES` if set.
fn case_count(default: u32) -> u32 {
    std::env::var("SEPCONV_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs `property` on `cases` cases from `strategy`; on failure panics with the shrunk case
/// and the seed that replays the run.
fn run_property<S>(
    name: &str,
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let seed = generator_seed();
    let mut runner = TestRunner::new(Config {
        cases: case_count(cases),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        // Each shrinking step runs the GPU; a few hundred steps find a small case quickly.
        max_shrink_iters: 400,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    match runner.run(&strategy, property) {
        Ok(()) => eprintln!(
            "{name}: {} cases passed in {:.1} s (seed {seed})",
            case_count(cases),
            started.elapsed().as_secs_f64()
        ),
        Err(TestError::Fail(reason, case)) => panic!(
            "{name} failed: {reason}\nshrunk case: {case:#?}\nreplay with SEPCONV_PROPTEST_SEED={seed}"
        ),
        Err(TestError::Abort(reason)) => panic!("{name} aborted: {reason} (seed {seed})"),
    }
}

/// Every kind, the parametrised ones with drawn parameters (quarters, so that integer data
/// stays exact through LeakyRelu and Clip); two thirds of the draws the common three. Each
/// kind is a pipeline constant, so every (geometry, kind) pair drawn compiles a pipeline: the
/// common three keep that count, and the suite's time, bounded (tests/gpu_activations.rs runs
/// every kind on every kernel).
fn activation() -> impl Strategy<Value = Activation> {
    let quarter = |lo: i32, hi: i32| (lo..=hi).prop_map(|q| q as f32 / 4.0);
    prop_oneof![
        8 => prop_oneof![
            Just(Activation::None),
            Just(Activation::Relu),
            Just(Activation::Relu6)
        ],
        1 => proptest::sample::select(Activation::ALL.to_vec()),
        1 => quarter(-8, 8).prop_map(Activation::LeakyRelu),
        1 => (quarter(-24, 8), quarter(0, 24)).prop_map(|(min, span)| Activation::Clip {
            min,
            max: min + span,
        }),
        1 => (quarter(-8, 8), quarter(-8, 8))
            .prop_map(|(alpha, beta)| Activation::HardSigmoidOnnx { alpha, beta }),
    ]
}

/// f32 four times in five, f16 once: every f16 draw compiles the f16 pipeline of its
/// (geometry, activation kind), so a fifth keeps the suite's compile time bounded while each
/// kernel family still sees about 150–200 f16 cases per run.
fn precision() -> impl Strategy<Value = Precision> {
    prop_oneof![4 => Just(Precision::F32), 1 => Just(Precision::F16)]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        9 => (0..=3usize, 0..=3usize, 0..=3usize, 0..=3usize)
            .prop_map(|(t, b, l, r)| Padding::explicit(t, b, l, r)),
        1 => Just(Padding::SameUpper),
    ]
}

/// Kernel, stride, dilation and padding of a spatial convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    padding: Padding,
}

/// Geometries per kernel family and generator seed. The depthwise and grouped kernels are
/// specialised (WGSL override constants) on kernel size, stride and dilation, and compiling
/// a pipeline costs about half a second on lavapipe, so each run draws its cases' kernel,
/// stride and dilation from a pool this size (drawn from the generator seed: another seed
/// covers other geometries), while padding, channels, groups, sizes, batch, bias and
/// activation vary freely per case.
const GEOMETRY_POOL: usize = 24;

/// `len` (kernel, stride, dilation) triples: kernels 1–7 per axis, strides and dilations
/// 1–3, drawn with `salt` from the generator seed. The first seven cover every kernel size.
fn geometry_pool(salt: u64, len: usize) -> Vec<[[usize; 2]; 3]> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(generator_seed() ^ salt);
    (0..len)
        .map(|i| {
            let mut pick = |lo: usize, hi: usize| rng.random_range(lo..=hi);
            let kernel = if i < 7 {
                [i + 1, 7 - i]
            } else {
                [pick(1, 7), pick(1, 7)]
            };
            [kernel, [pick(1, 3), pick(1, 3)], [pick(1, 3), pick(1, 3)]]
        })
        .collect()
}

fn geometry(pool: Vec<[[usize; 2]; 3]>) -> impl Strategy<Value = Geometry> {
    (prop::sample::select(pool), padding()).prop_map(|([kernel, stride, dilation], padding)| {
        Geometry {
            kernel,
            stride,
            dilation,
            padding,
        }
    })
}

impl Geometry {
    fn apply(self, spec: Conv2dSpec) -> Conv2dSpec {
        spec.stride(self.stride)
            .dilation(self.dilation)
            .padding(self.padding)
    }
}

/// The input shape: the smallest height and width that give a non-empty output, plus `extra`.
fn input_for(spec: &Conv2dSpec, n: usize, extra: [usize; 2]) -> Shape {
    let min = |axis: usize| match spec.padding {
        Padding::SameUpper => 1,
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => {
            let pads = if axis == 0 {
                top + bottom
            } else {
                left + right
            };
            let extent = spec.dilation[axis] * (spec.kernel[axis] - 1) + 1;
            extent.saturating_sub(pads).max(1)
        }
    };
    Shape::new(n, spec.c_in, min(0) + extra[0], min(1) + extra[1])
}

/// Epilogue and batch: bias, activation, batch size, extra rows/columns, data seed.
fn rest() -> impl Strategy<Value = (bool, Activation, usize, [usize; 2], u64)> {
    (
        any::<bool>(),
        activation(),
        1..=4usize,
        [0..=16usize, 0..=16usize],
        any::<u64>(),
    )
}

/// A residual add in half the cases, before or after the activation.
fn residual() -> impl Strategy<Value = Option<Residual>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Residual::BeforeActivation)),
        1 => Just(Some(Residual::AfterActivation)),
    ]
}

fn depthwise_cases(pool: usize) -> impl Strategy<Value = Case> {
    let geometries = geometry(geometry_pool(1, pool));
    (1..=13usize, 1..=3usize, geometries, rest(), residual()).prop_map(
        |(c, m, geo, (bias, act, n, extra, data_seed), residual)| {
            let spec = geo
                .apply(Conv2dSpec::depthwise(c, geo.kernel).multiplier(m))
                .bias(bias)
                .activation(act);
            Case {
                spec,
                input: input_for(&spec, n, extra),
                data_seed,
                residual,
            }
        },
    )
}

fn pointwise_cases() -> impl Strategy<Value = Case> {
    (
        // c_in = 1 would be a single-channel depthwise conv; that generator covers it.
        2..=70usize,
        1..=70usize,
        [1..=3usize, 1..=3usize],
        rest(),
        [1..=12usize, 1..=12usize],
        residual(),
    )
        .prop_map(
            |(c_in, c_out, stride, (bias, act, n, _, data_seed), [h, w], residual)| {
                let spec = Conv2dSpec::pointwise(c_in, c_out)
                    .stride(stride)
                    .bias(bias)
                    .activation(act);
                Case {
                    spec,
                    input: Shape::new(n, c_in, h, w),
                    data_seed,
                    residual,
                }
            },
        )
}

/// Grouped and standard convolutions: `groups` 1–4, 2–4 input and 1–4 output channels per
/// group (so never depthwise), i.e. `groups` is a common divisor of `c_in` and `c_out`.
fn grouped_cases(pool: usize) -> impl Strategy<Value = Case> {
    let geometries = geometry(geometry_pool(2, pool));
    (
        1..=4usize,
        2..=4usize,
        1..=4usize,
        geometries,
        rest(),
        residual(),
    )
        .prop_map(
            |(g, cin_g, cout_g, geo, (bias, act, n, extra, data_seed), residual)| {
                let spec = geo
                    .apply(Conv2dSpec::new(g * cin_g, g * cout_g, geo.kernel).groups(g))
                    .bias(bias)
                    .activation(act);
                Case {
                    spec,
                    input: input_for(&spec, n, extra),
                    data_seed,
                    residual,
                }
            },
        )
}

/// Runs `spec` on `gpu` with tensors and weights in `precision` into a NaN-filled output,
/// with `skip` added where it says, and
/// reads it back.
fn run_gpu(
    gpu: &Gpu,
    spec: Conv2dSpec,
    data: &ConvData,
    precision: Precision,
    skip: Option<(&Tensor, Residual)>,
) -> Result<Tensor, TestCaseError> {
    let fail = |what: &str, e: sepconv::Error| TestCaseError::fail(format!("{what}: {e}"));
    let conv = Conv2d::new(gpu, spec, &data.weights, data.bias())
        .and_then(|c| c.with_precision(precision))
        .map_err(|e| fail("conv", e))?;
    let x =
        GpuTensor::from_tensor_as(gpu, &data.input, precision).map_err(|e| fail("upload", e))?;
    let out_shape = conv.output_shape(x.shape()).map_err(|e| fail("shape", e))?;
    let y =
        GpuTensor::full_as(gpu, out_shape, f32::NAN, precision).map_err(|e| fail("output", e))?;
    match skip {
        None => conv.run_into(&x, &y),
        Some((skip, residual)) => {
            let s = GpuTensor::from_tensor_as(gpu, skip, precision).map_err(|e| fail("skip", e))?;
            conv.run_residual_into(&x, &s, residual, &y)
        }
    }
    .map_err(|e| fail("dispatch", e))?;
    y.read().map_err(|e| fail("readback", e))
}

/// The property: the GPU (and every other implementation under test) matches the reference,
/// within tolerance on normal data and exactly on small integers.
fn matches_reference(
    (case, precision): (Case, Precision),
    expected_kind: Option<ConvKind>,
) -> Result<(), TestCaseError> {
    if precision == Precision::F16 {
        if let Some(kind) = expected_kind {
            prop_assert_eq!(case.spec.kind(), kind, "generator produced the wrong kind");
        }
        return matches_reference_in_f16(gpu(), case);
    }
    matches_reference_on(gpu(), case, expected_kind)
}

/// The f16 property: on f16-rounded data (normal and small integers), the f16 run is within
/// `f16_tolerances` of the reference. Where the adapter has no f16, the conv is refused with
/// `Error::Unsupported` naming `SHADER_F16`.
fn matches_reference_in_f16(gpu: &Gpu, case: Case) -> Result<(), TestCaseError> {
    let Case {
        spec,
        input,
        data_seed,
        residual,
    } = case;
    if !gpu.supports_f16() {
        let data = ConvData::new(&spec, input, data_seed, false);
        let refused = Conv2d::new(gpu, spec, &data.weights, data.bias())
            .and_then(|c| c.with_precision(Precision::F16));
        return match refused {
            Err(Error::Unsupported { reason }) if reason.contains("SHADER_F16") => Ok(()),
            other => Err(TestCaseError::fail(format!(
                "f16 without SHADER_F16: {:?}",
                other.map(|_| "a conv")
            ))),
        };
    }
    let out_shape = spec
        .output_shape(input)
        .map_err(|e| TestCaseError::fail(format!("output shape: {e}")))?;
    let out_len = out_shape.len().expect("output size");
    for exact in [false, true] {
        let data = ConvData::new(&spec, input, data_seed, exact).rounded_to_f16();
        let gen = if exact {
            common::small_ints
        } else {
            common::normal
        };
        // The skip tensor as an f16 tensor holds it.
        let skip = residual.map(|r| {
            let s = common::to_f16(&gen(data_seed ^ 0x5eed_0003, out_len));
            (Tensor::new(out_shape, s).expect("skip"), r)
        });
        let skip_ref = skip.as_ref().map(|(s, r)| (s, *r));
        let want = match skip_ref {
            None => reference::conv2d(&spec, &data.input, &data.weights, data.bias()),
            Some((s, r)) => {
                reference::conv2d_residual(&spec, &data.input, &data.weights, data.bias(), s, r)
            }
        }
        .map_err(|e| TestCaseError::fail(format!("reference: {e}")))?;
        // Window kernels slice input channels only past 4,096 weight vec4s per block, which
        // these channel counts never reach: no partial sums pass through f16.
        let t32 = match skip_ref {
            None => tolerances(&spec, &data, &want),
            Some((s, _)) => residual_tolerances(&spec, &data, s, &want),
        };
        let tol = f16_tolerances_over(t32, &spec, &data, &want, 0);
        let label = format!(
            "f16, {}, {residual:?}",
            if exact { "integers" } else { "normal" }
        );
        let got = run_gpu(gpu, spec, &data, Precision::F16, skip_ref)?;
        assert_matches(&label, data_seed, &got, &want, Some(&tol));
    }
    Ok(())
}

fn matches_reference_on(
    gpu: &Gpu,
    case: Case,
    expected_kind: Option<ConvKind>,
) -> Result<(), TestCaseError> {
    let Case {
        spec,
        input,
        data_seed,
        residual,
    } = case;
    if let Some(kind) = expected_kind {
        prop_assert_eq!(spec.kind(), kind, "generator produced the wrong kind");
    }
    let out_shape = spec
        .output_shape(input)
        .map_err(|e| TestCaseError::fail(format!("output shape: {e}")))?;
    let out_len = out_shape.len().expect("output size");
    for exact in [false, true] {
        let data = ConvData::new(&spec, input, data_seed, exact);
        let gen = if exact {
            common::small_ints
        } else {
            common::normal
        };
        let skip = residual.map(|r| {
            let s = Tensor::new(out_shape, gen(data_seed ^ 0x5eed_0003, out_len)).expect("skip");
            (s, r)
        });
        let skip_ref = skip.as_ref().map(|(s, r)| (s, *r));
        let want = match skip_ref {
            None => reference::conv2d(&spec, &data.input, &data.weights, data.bias()),
            Some((s, r)) => {
                reference::conv2d_residual(&spec, &data.input, &data.weights, data.bias(), s, r)
            }
        }
        .map_err(|e| TestCaseError::fail(format!("reference: {e}")))?;
        // Integers stay exact through activations that round at most once, and through an
        // add before them; an add after one that rounds (LeakyRelu's α·y) rounds again.
        let exact_sums = exact_activation(spec.activation)
            && !(residual == Some(Residual::AfterActivation)
                && matches!(spec.activation, Activation::LeakyRelu(_)));
        let tol = (!exact || !exact_sums).then(|| match skip_ref {
            None => tolerances(&spec, &data, &want),
            Some((s, _)) => residual_tolerances(&spec, &data, s, &want),
        });
        let label = match residual {
            None => (if exact { "integers" } else { "normal" }).to_string(),
            Some(r) => format!("{}, {r:?}", if exact { "integers" } else { "normal" }),
        };
        let got = run_gpu(gpu, spec, &data, Precision::F32, skip_ref)?;
        assert_matches(
            &format!("gpu, {label}"),
            data_seed,
            &got,
            &want,
            tol.as_deref(),
        );
        // The fast CPU path, against the same reference and the same bound.
        let fast = match skip_ref {
            None => sepconv::cpu::fast::conv2d(&spec, &data.input, &data.weights, data.bias()),
            Some((s, r)) => sepconv::cpu::fast::Conv2dCpu::new(spec, &data.weights, data.bias())
                .and_then(|conv| conv.run_residual(&data.input, s, r)),
        }
        .map_err(|e| TestCaseError::fail(format!("cpu::fast: {e}")))?;
        assert_matches(
            &format!("cpu fast, {label}"),
            data_seed,
            &fast,
            &want,
            tol.as_deref(),
        );
    }
    Ok(())
}

/// Counts the f16 draws a property ran, and checks at the end that there were some: a
/// property that never drew f16 would check nothing of it.
struct F16Draws(std::sync::atomic::AtomicUsize);

impl F16Draws {
    fn new() -> Self {
        Self(std::sync::atomic::AtomicUsize::new(0))
    }

    fn count(&self, precision: Precision) {
        if precision == Precision::F16 {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// At least a tenth of the `cases` (a fifth are drawn f16 on average).
    fn check(self, name: &str, cases: u32) {
        let drawn = self.0.into_inner();
        eprintln!("{name}: {drawn} f16 cases");
        let least = case_count(cases) as usize / 10;
        assert!(drawn >= least, "{name}: only {drawn} f16 cases were drawn");
    }
}

#[test]
fn depthwise_matches_reference_on_random_specs() {
    let cases = (depthwise_cases(GEOMETRY_POOL), precision());
    let f16 = F16Draws::new();
    run_property("depthwise", 1000, cases, |case| {
        f16.count(case.1);
        let m = case.0.spec.c_out / case.0.spec.c_in;
        matches_reference(case, Some(ConvKind::Depthwise { multiplier: m }))
    });
    f16.check("depthwise", 1000);
}

#[test]
fn pointwise_matches_reference_on_random_specs() {
    let f16 = F16Draws::new();
    run_property("pointwise", 700, (pointwise_cases(), precision()), |case| {
        f16.count(case.1);
        matches_reference(case, Some(ConvKind::Pointwise))
    });
    f16.check("pointwise", 700);
}

#[test]
fn grouped_matches_reference_on_random_specs() {
    let cases = (grouped_cases(GEOMETRY_POOL), precision());
    let f16 = F16Draws::new();
    run_property("grouped", 1000, cases, |case| {
        f16.count(case.1);
        // A 1×1 unpadded standard conv is pointwise; every other case here is grouped.
        matches_reference(case, None)
    });
    f16.check("grouped", 1000);
}

/// Binding limits of the devices the split property runs on, in bytes: small enough that
/// most generated cases are split into several pieces, over the batch and over rows.
/// (Each device compiles its own pipelines, so two devices and a smaller geometry pool.)
const SPLIT_LIMITS: [u64; 2] = [1024, 8192];

/// Whether `spec` on `input` cannot be split under a binding limit of `limit` bytes: one
/// output row (all channels) or the input rows it reads (all of them when there is a single
/// output row) need more.
fn unsplittable(spec: &Conv2dSpec, input: Shape, limit: u64) -> bool {
    let out = spec.output_shape(input).expect("valid case");
    let extent = spec.dilation[0] * (spec.kernel[0] - 1) + 1;
    let rows = if out.h == 1 {
        input.h
    } else {
        input.h.min(extent)
    };
    let elements = [input.c * rows * input.w, out.c * out.w];
    elements.iter().any(|&e| e as u64 * 4 > limit)
}

#[test]
fn split_runs_match_reference_on_random_specs() {
    let gpus = SPLIT_LIMITS.map(|bytes| limited::gpu_with_binding_limit(gpu(), bytes));
    let split = std::sync::atomic::AtomicUsize::new(0);
    let refused = std::sync::atomic::AtomicUsize::new(0);
    let cases = prop_oneof![
        depthwise_cases(GEOMETRY_POOL / 3),
        pointwise_cases(),
        grouped_cases(GEOMETRY_POOL / 3)
    ];
    run_property(
        "split",
        400,
        (cases, 0..SPLIT_LIMITS.len()),
        |(case, which)| {
            let gpu = &gpus[which];
            let limit = SPLIT_LIMITS[which];
            let data = ConvData::new(&case.spec, case.input, case.data_seed, true);
            let planned = Conv2d::new(gpu, case.spec, &data.weights, data.bias())
                .and_then(|conv| conv.split_count(case.input));
            match planned {
                Ok(count) => {
                    prop_assert!(
                        !unsplittable(&case.spec, case.input, limit),
                        "planned {count} pieces for an unsplittable case"
                    );
                    if count > 1 {
                        split.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    matches_reference_on(gpu, case, None)
                }
                Err(Error::TooLarge { .. }) => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    prop_assert!(
                        unsplittable(&case.spec, case.input, limit),
                        "refused a case that can be split"
                    );
                    Ok(())
                }
                Err(e) => Err(TestCaseError::fail(format!("unexpected error: {e}"))),
            }
        },
    );
    let (split, refused) = (split.into_inner(), refused.into_inner());
    eprintln!("split: {split} cases split, {refused} refused as unsplittable");
    // The property only means something if many cases were actually split.
    assert!(split >= 120, "only {split} of the cases were split");
}
