//! Bad input never panics: arbitrary, mostly invalid specs, shapes, paddings and slice
//! lengths, huge values (`usize::MAX`, products that overflow) included, go through every
//! public constructor and function. Each must return `Ok` or a typed `Err` (whose message
//! formats), never panic; each call runs under `catch_unwind` so a panic is reported with
//! the function's name and the shrunk input.
//!
//! Seeded like tests/properties.rs (`SEPCONV_PROPTEST_SEED`, `SEPCONV_PROPTEST_CASES`).
//! .ci/run also runs this file with overflow checks on in the library, so that an
//! arithmetic overflow counts as the panic it would be in a debug build.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::gpu;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use sepconv::{
    accounting, cpu::reference, Activation, Conv2d, Conv2dSpec, Error, GpuTensor, Padding,
    SeparableBlock, Shape, Tensor,
};

/// Calls `f`, turning a panic into a test failure that names `what`.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        TestCaseError::fail(format!("{what} panicked: {msg}"))
    })
}

/// `Ok`, or a typed error whose message formats without panicking.
fn typed<T>(what: &str, r: Result<T, Error>) -> Result<Option<T>, TestCaseError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let msg = no_panic(&format!("{what}: Display of {e:?}"), || e.to_string())?;
            prop_assert!(!msg.is_empty(), "{what}: empty message for {e:?}");
            Ok(None)
        }
    }
}

/// Sizes: mostly small (0 included), sometimes the edges of the integer types, sometimes
/// anything.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        8 => 0..=9usize,
        2 => prop::sample::select(vec![
            usize::MAX,
            usize::MAX - 1,
            usize::MAX / 2 + 1,
            1 << 32,
            u32::MAX as usize,
            i32::MAX as usize,
            (i32::MAX as usize) + 1,
            1 << 20,
            65_536,
        ]),
        1 => any::<usize>(),
    ]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        4 => (size(), size(), size(), size()).prop_map(|(t, b, l, r)| Padding::explicit(t, b, l, r)),
        1 => Just(Padding::SameUpper),
    ]
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Relu6)
    ]
}

fn spec() -> impl Strategy<Value = Conv2dSpec> {
    (
        (size(), size(), [size(), size()]),
        ([size(), size()], padding(), [size(), size()]),
        (size(), any::<bool>(), activation()),
    )
        .prop_map(
            |((c_in, c_out, kernel), (stride, padding, dilation), (groups, bias, activation))| {
                Conv2dSpec {
                    c_in,
                    c_out,
                    kernel,
                    stride,
                    padding,
                    dilation,
                    groups,
                    bias,
                    activation,
                }
            },
        )
}

/// Kernel, stride and dilation of the near-valid specs: a few, because each is a separately
/// compiled pipeline (override constants) on the GPU.
const GEOMETRIES: [([usize; 2], [usize; 2], [usize; 2]); 6] = [
    ([1, 1], [1, 1], [1, 1]),
    ([3, 3], [1, 1], [1, 1]),
    ([3, 3], [2, 2], [1, 1]),
    ([3, 1], [1, 2], [2, 1]),
    ([2, 4], [3, 1], [1, 2]),
    ([5, 5], [1, 1], [2, 2]),
];

/// A valid small spec with, half the time, one field replaced by an arbitrary size: close
/// enough to valid that the later checks (and the GPU) are reached.
fn near_valid_spec() -> impl Strategy<Value = Conv2dSpec> {
    (
        (1..=4usize, 1..=3usize, 1..=3usize),
        (prop::sample::select(GEOMETRIES.to_vec()), 0..=2usize),
        (
            any::<bool>(),
            activation(),
            prop::option::of((0..9usize, size())),
        ),
    )
        .prop_map(
            |(
                (g, cin_g, cout_g),
                ((kernel, stride, dilation), p),
                (bias, activation, mutation),
            )| {
                let mut spec = Conv2dSpec::new(g * cin_g, g * cout_g, kernel)
                    .groups(g)
                    .stride(stride)
                    .dilation(dilation)
                    .padding(Padding::uniform(p))
                    .bias(bias)
                    .activation(activation);
                if let Some((field, v)) = mutation {
                    match field {
                        0 => spec.c_in = v,
                        1 => spec.c_out = v,
                        2 => spec.kernel[0] = v,
                        3 => spec.kernel[1] = v,
                        4 => spec.stride[0] = v,
                        5 => spec.dilation[1] = v,
                        6 => spec.groups = v,
                        7 => spec.padding = Padding::explicit(v, 0, 1, v),
                        _ => spec.padding = Padding::SameUpper,
                    }
                }
                spec
            },
        )
}

/// A shape for `spec`: its channels and a small size, sometimes one dimension arbitrary.
fn shape_for(spec: Conv2dSpec) -> impl Strategy<Value = Shape> {
    (
        1..=3usize,
        1..=12usize,
        1..=12usize,
        prop::option::of((0..4usize, size())),
    )
        .prop_map(move |(n, h, w, mutation)| {
            let mut s = Shape::new(n, spec.c_in, h, w);
            match mutation {
                Some((0, v)) => s.n = v,
                Some((1, v)) => s.c = v,
                Some((2, v)) => s.h = v,
                Some((_, v)) => s.w = v,
                None => {}
            }
            s
        })
}

fn shape() -> impl Strategy<Value = Shape> {
    (size(), size(), size(), size()).prop_map(|(n, c, h, w)| Shape::new(n, c, h, w))
}

/// A slice length: usually the one the spec asks for (when that is small), else anything small.
fn length(wanted: usize) -> impl Strategy<Value = usize> {
    let exact = if wanted <= 4096 { wanted } else { 7 };
    prop_oneof![2 => Just(exact), 1 => 0..=40usize]
}

/// `c_out · c_in/groups · kh · kw`, saturating, 0 for zero groups.
fn weight_count(spec: &Conv2dSpec) -> usize {
    spec.c_out
        .saturating_mul(spec.c_in.checked_div(spec.groups).unwrap_or(0))
        .saturating_mul(spec.kernel[0])
        .saturating_mul(spec.kernel[1])
}

#[derive(Debug, Clone)]
struct Input {
    spec: Conv2dSpec,
    /// A second spec, for the separable and chaining functions.
    other: Conv2dSpec,
    shape: Shape,
    weights: usize,
    bias: Option<usize>,
    data: usize,
    seed: u64,
}

fn input() -> impl Strategy<Value = Input> {
    let wild = (spec(), spec(), shape(), any::<u64>());
    let near = (near_valid_spec(), near_valid_spec(), any::<u64>()).prop_flat_map(
        |(spec, other, seed)| {
            // The second spec chains after the first half the time (for separable blocks).
            let other = Conv2dSpec {
                c_in: spec.c_out,
                ..other
            };
            (Just(spec), Just(other), shape_for(spec), Just(seed))
        },
    );
    prop_oneof![1 => wild, 2 => near]
        .prop_flat_map(|(spec, other, shape, seed)| {
            let shape_len = shape.len().unwrap_or(usize::MAX);
            (
                Just((spec, other, shape, seed)),
                // The weight count computed here, not by the crate, so that a panic in the
                // crate's arithmetic shows up inside the property rather than the generator.
                length(weight_count(&spec)),
                prop::option::of(length(spec.c_out)),
                length(shape_len),
            )
        })
        .prop_map(|((spec, other, shape, seed), weights, bias, data)| Input {
            spec,
            other,
            shape,
            weights,
            bias,
            data,
            seed,
        })
}

/// How often each stage was reached, to show the generator gets past validation.
static REACHED: [std::sync::atomic::AtomicUsize; 4] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 4];
const STAGES: [&str; 4] = ["valid spec", "reference run", "Conv2d built", "GPU run"];

fn reached(stage: usize) {
    REACHED[stage].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The GPU for one case. Kernels are compiled per kernel size, stride and dilation and a
/// `Gpu` keeps every pipeline it compiled, so with arbitrary geometries a long run would
/// accumulate thousands (a 300,000-case run reached 24 GB); a fresh `Gpu` every 200 cases
/// bounds that.
fn fuzz_gpu() -> sepconv::Gpu {
    static SLOT: std::sync::Mutex<Option<(sepconv::Gpu, usize)>> = std::sync::Mutex::new(None);
    let mut slot = SLOT.lock().unwrap_or_else(|e| e.into_inner());
    match slot.as_mut() {
        Some((gpu, uses)) if *uses < 200 => {
            *uses += 1;
            gpu.clone()
        }
        _ => {
            let gpu = if slot.is_none() {
                gpu().clone()
            } else {
                sepconv::Gpu::new().expect("a fresh GPU")
            };
            *slot = Some((gpu.clone(), 1));
            gpu
        }
    }
}

/// Work small enough to run for real on the reference and the GPU.
const MAX_MACS: u64 = 200_000;

fn check(inp: Input) -> Result<(), TestCaseError> {
    let Input {
        spec,
        other,
        shape,
        weights,
        bias,
        data,
        seed,
    } = inp;

    // Spec arithmetic.
    let valid = typed("validate", no_panic("validate", || spec.validate())?)?.is_some();
    if valid {
        reached(0);
    }
    no_panic("kind / counts / pads", || {
        let _ = (
            spec.kind().to_string(),
            spec.weight_count(),
            spec.param_count(),
        );
        let _ = (
            spec.c_in_per_group(),
            spec.c_out_per_group(),
            spec.weight_dims(),
        );
        let _ = (spec.as_standard(), spec.pads(shape.h, shape.w));
        let _ = spec.multiplier(shape.n);
    })?;
    let hw = typed(
        "output_hw",
        no_panic("output_hw", || spec.output_hw(shape.h, shape.w))?,
    )?;
    let out = typed(
        "output_shape",
        no_panic("output_shape", || spec.output_shape(shape))?,
    )?;
    let macs = typed("macs", no_panic("macs", || spec.macs(shape))?)?;
    let params_ok = typed(
        "check_parameters",
        no_panic("check_parameters", || spec.check_parameters(weights, bias))?,
    )?
    .is_some();
    // Consistency: nothing is accepted that validation rejects.
    if !valid {
        prop_assert!(hw.is_none() && out.is_none() && macs.is_none() && !params_ok);
    }
    if let Some(out) = out {
        prop_assert_eq!(
            [out.h, out.w],
            hw.expect("output_hw agrees with output_shape")
        );
    }
    if valid {
        // The exact lengths are accepted.
        let bias_len = spec.bias.then_some(spec.c_out);
        let exact = no_panic("check_parameters(exact)", || {
            spec.check_parameters(spec.weight_count(), bias_len)
        })?;
        prop_assert_eq!(exact, Ok(()));
    }

    // Shapes and host tensors.
    no_panic("Shape", || {
        let _ = (
            shape.len(),
            shape.validate(),
            shape.is_empty(),
            shape.to_string(),
        );
        let _ = (
            shape.index(shape.n, shape.c, shape.h, shape.w),
            shape.coords(seed as usize),
        );
    })?;
    let small_shape = shape.len().is_ok_and(|l| l <= 4096);
    let tensor = typed(
        "Tensor::new",
        no_panic("Tensor::new", || Tensor::new(shape, vec![0.5; data]))?,
    )?;
    if small_shape || shape.len().is_ok_and(|l| l >= 1 << 40) {
        // Either cheap, or far beyond any machine's memory: an error, not an abort.
        typed(
            "Tensor::full",
            no_panic("Tensor::full", || Tensor::full(shape, 1.0))?,
        )?;
    }
    if let Some(t) = &tensor {
        no_panic("Tensor::get", || {
            let _ = t.get(shape.n, 0, 0, 0);
            let _ = t.get(usize::MAX, usize::MAX, usize::MAX, usize::MAX);
            let _ = t.get(0, 0, 0, 0);
        })?;
    }

    // The reference, when the work is small (large valid work is slow, not wrong).
    let w = common::normal(seed, weights);
    let b = bias.map(|len| common::normal(seed ^ 1, len));
    let cheap = macs.is_none_or(|m| m <= MAX_MACS);
    if let (Some(t), true) = (&tensor, cheap) {
        let raw = no_panic("reference::conv2d", || {
            reference::conv2d(&spec, t, &w, b.as_deref())
        })?;
        // An output too large for memory (its MACs overflow u64, so it counts as cheap
        // here) is refused when allocated.
        let unallocatable = matches!(raw, Err(Error::HostAllocation { .. }));
        let r = typed("reference::conv2d", raw)?;
        prop_assert_eq!(
            r.is_some() || unallocatable,
            valid && params_ok && out.is_some()
        );
        if r.is_some() {
            reached(1);
        }
    }

    // Accounting.
    no_panic("accounting", || {
        let _ = accounting::Cost::of(&spec, shape).map(|c| c + c);
        let _ =
            accounting::grouped_vs_standard(&spec, shape).map(|c| (c.param_ratio(), c.mac_ratio()));
        let _ = accounting::separable_vs_standard(&spec, &other, shape)
            .map(|c| (c.param_ratio(), c.mac_ratio()));
        let _ = accounting::separable_ratio(spec.c_out, spec.kernel[0]);
    })?;
    if let (Some(t), true) = (&tensor, cheap) {
        let ow = common::normal(seed ^ 2, weight_count(&other).min(4096));
        let ob = other
            .bias
            .then(|| common::normal(seed ^ 3, other.c_out.min(4096)));
        let other_cheap = out.is_some_and(|o| other.macs(o).is_ok_and(|m| m <= MAX_MACS));
        if other_cheap || out.is_none() {
            no_panic("reference::separable_block", || {
                let _ = reference::separable_block(
                    (&spec, &w, b.as_deref()),
                    (&other, &ow, ob.as_deref()),
                    t,
                );
            })?;
        }
    }

    // The GPU: tensors, convs, blocks. Only small buffers are ever made.
    let gpu = &fuzz_gpu();
    let x = typed(
        "GpuTensor::from_slice",
        no_panic("GpuTensor::from_slice", || {
            GpuTensor::from_slice(gpu, shape, &vec![0.25; data])
        })?,
    )?;
    if !small_shape {
        // Beyond 4,096 elements only errors are expected (the data has at most 4,096).
        prop_assert!(x.is_none());
    }
    let conv = typed(
        "Conv2d::new",
        no_panic("Conv2d::new", || Conv2d::new(gpu, spec, &w, b.as_deref()))?,
    )?;
    if let Some(conv) = &conv {
        reached(2);
        typed(
            "Conv2d::output_shape",
            no_panic("Conv2d::output_shape", || conv.output_shape(shape))?,
        )?;
        typed(
            "Conv2d::split_count",
            no_panic("split_count", || conv.split_count(shape))?,
        )?;
        typed(
            "Conv2d::dispatch_grid",
            no_panic("dispatch_grid", || conv.dispatch_grid(shape))?,
        )?;
        if let (Some(x), true) = (&x, cheap) {
            if let Some(y) = typed("Conv2d::run", no_panic("Conv2d::run", || conv.run(x))?)? {
                reached(3);
                typed("read", no_panic("GpuTensor::read", || y.read())?)?;
            }
        }
        let ow = common::normal(seed ^ 2, weight_count(&other).min(4096));
        let ob = other
            .bias
            .then(|| common::normal(seed ^ 3, other.c_out.min(4096)));
        if let Some(second) = typed(
            "Conv2d::new (other)",
            no_panic("Conv2d::new", || {
                Conv2d::new(gpu, other, &ow, ob.as_deref())
            })?,
        )? {
            let first = typed(
                "Conv2d::new (again)",
                no_panic("Conv2d::new", || Conv2d::new(gpu, spec, &w, b.as_deref()))?,
            )?
            .expect("the same conv builds twice");
            let block = typed(
                "SeparableBlock::new",
                no_panic("SeparableBlock::new", || SeparableBlock::new(first, second))?,
            )?;
            if let Some(block) = block {
                typed(
                    "SeparableBlock::shapes",
                    no_panic("shapes", || block.shapes(shape))?,
                )?;
            }
        }
    }
    Ok(())
}

#[test]
fn arbitrary_input_never_panics() {
    let seed = std::env::var("SEPCONV_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5e9c_0a7f_2024_0002u64);
    let cases = std::env::var("SEPCONV_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    match runner.run(&input(), check) {
        Ok(()) => {
            let counts: Vec<String> = STAGES
                .iter()
                .zip(&REACHED)
                .map(|(s, n)| format!("{s}: {}", n.load(std::sync::atomic::Ordering::Relaxed)))
                .collect();
            eprintln!(
                "robustness: {cases} cases passed in {:.1} s (seed {seed}); reached {}",
                started.elapsed().as_secs_f64(),
                counts.join(", ")
            );
        }
        Err(TestError::Fail(reason, case)) => {
            panic!("{reason}\nshrunk input: {case:#?}\nreplay with SEPCONV_PROPTEST_SEED={seed}")
        }
        Err(TestError::Abort(reason)) => panic!("aborted: {reason} (seed {seed})"),
    }
}

/// Panics found in src/ (the first by this property on the code before the fixes, the rest
/// by reading the arithmetic that user values reach), kept as fixed cases.
#[test]
fn regressions_never_panic() {
    let cases = [
        // groups = 0: weight_count divided by zero.
        Conv2dSpec::new(3, 3, [3, 3]).groups(0),
        // dilation·(kernel - 1) = usize::MAX: the extent + 1 overflowed.
        Conv2dSpec::new(1, 1, [2, 1]).dilation([usize::MAX, 1]),
        // SAME_UPPER with a zero stride: div_ceil by zero in pads().
        Conv2dSpec::new(1, 1, [3, 3])
            .stride([0, 1])
            .padding(Padding::same()),
        // A zero kernel: (k - 1) underflowed in pads().
        Conv2dSpec::new(1, 1, [0, 3]).padding(Padding::same()),
        // c_out saturated by a huge multiplier.
        Conv2dSpec::depthwise(3, [1, 1]).multiplier(usize::MAX),
    ];
    // Found by a 2,000,000-case run: an output of 1.2·10^19 elements (padding u32::MAX)
    // fits usize, its MACs overflow, and the reference refuses the allocation: a typed
    // error the property had not expected.
    let huge = Conv2dSpec::new(3, 3, [1, 2])
        .stride([3, 3])
        .padding(Padding::explicit(
            u32::MAX as usize,
            0,
            1,
            u32::MAX as usize,
        ))
        .bias(false);
    let x = Tensor::full(Shape::new(2, 3, 5, 7), 1.0).unwrap();
    assert!(matches!(
        reference::conv2d(&huge, &x, &[1.0; 18], None),
        Err(Error::HostAllocation { .. })
    ));
    for spec in cases {
        let shape = Shape::new(1, spec.c_in, 5, 5);
        let input = Input {
            spec,
            other: Conv2dSpec::pointwise(spec.c_out, 2),
            shape,
            weights: 9,
            bias: Some(3),
            data: 25 * spec.c_in.min(8),
            seed: 1,
        };
        if let Err(e) = check(input) {
            panic!("{spec:?}: {e}");
        }
    }
    // Found by a 200,000-case run with overflow checks: an input of 4.7·10^18 elements fits
    // usize but its bytes overflow u64 in Conv2d::output_shape's buffer check (which, without
    // overflow checks, wrapped to a small size and passed).
    let spec = Conv2dSpec::new(3, 1, [5, 5])
        .padding(Padding::same())
        .dilation([2, 2])
        .bias(false);
    let conv = Conv2d::new(gpu(), spec, &[1.0; 75], None).unwrap();
    let err = conv
        .output_shape(Shape::new(1_582_528_360_012_964_618, 3, 1, 1))
        .unwrap_err();
    assert!(matches!(err, Error::Overflow { .. }), "{err:?}");
    // Accounting with a zero-group spec used to divide by zero before validating.
    assert!(accounting::Cost::of(
        &Conv2dSpec::new(2, 2, [1, 1]).groups(0),
        Shape::new(1, 2, 1, 1)
    )
    .is_err());
    // coords of an empty shape divided by zero.
    assert_eq!(Shape::new(1, 0, 3, 3).coords(5), [0; 4]);
    // A tensor far beyond memory is an error, not an abort.
    assert!(matches!(
        Tensor::full(Shape::new(1 << 20, 1 << 20, 1, 1), 0.0),
        Err(Error::HostAllocation { .. })
    ));
    // A Display that divided by the groups.
    let e = Error::GroupsDoNotDivide {
        groups: 0,
        which: "c_in",
        channels: 3,
    };
    assert!(e.to_string().contains("groups (0)"));
}
