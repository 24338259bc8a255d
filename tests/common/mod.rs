//! Helpers shared by the GPU test binaries: one GPU per binary, seeded data, and the
//! comparison against the CPU reference with a tolerance derived from the reduction length.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::OnceLock;

use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use sepconv::{cpu::reference, Activation, Conv2dSpec, Gpu, Shape, Tensor};

/// The GPU shared by every test in this binary. A test never passes without a GPU: with no
/// adapter this panics with the crate's message on how to get one (Mesa's lavapipe).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::new().unwrap_or_else(|e| panic!("GPU tests need an adapter: {e}"));
        eprintln!("adapter: {} ({:?})", gpu.adapter_name(), gpu.backend());
        gpu
    })
}

/// `len` samples of N(0, 1) from `seed`.
pub fn normal(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let dist = Normal::new(0.0f32, 1.0).expect("valid normal");
    (0..len).map(|_| dist.sample(&mut rng)).collect()
}

/// `len` integers in [-3, 3] from `seed`. Products are at most 9 in magnitude, so any sum of
/// fewer than 2^24 / 9 ≈ 1.8 million of them is exact in `f32`, in any order: GPU and
/// reference must then agree bit for bit.
pub fn small_ints(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| rng.random_range(-3i32..=3) as f32)
        .collect()
}

/// Data for one convolution: input, weights and (if the spec has one) bias.
pub struct ConvData {
    pub input: Tensor,
    pub weights: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl ConvData {
    /// Seeded normal data (`exact = false`) or small integers (`exact = true`).
    pub fn new(spec: &Conv2dSpec, input: Shape, seed: u64, exact: bool) -> Self {
        let gen = if exact { small_ints } else { normal };
        let len = input.len().expect("input size");
        Self {
            input: Tensor::new(input, gen(seed, len)).expect("input tensor"),
            weights: gen(seed ^ 0x5eed_0001, spec.weight_count()),
            bias: spec.bias.then(|| gen(seed ^ 0x5eed_0002, spec.c_out)),
        }
    }

    pub fn bias(&self) -> Option<&[f32]> {
        self.bias.as_deref()
    }
}

/// Per-element tolerance for a GPU result against the f64 reference.
///
/// Each output is `y = act(b + Σ_{i<L} x_i·w_i)` with `L = c_in/groups · kh · kw` products,
/// summed in `f32` on the GPU in whatever order the kernel uses. Every product and addition
/// rounds with relative error at most `u = 2^-24`, so the worst case is
/// `|err| ≤ γ_{L+1} · S`, `S = |b| + Σ|x_i·w_i|` (Higham, Accuracy and Stability of
/// Numerical Algorithms, §3.1). That bound is so loose for large `L` that one wrong tap
/// (error ≈ `S / L`) could hide under it. Rounding errors of random data behave like a
/// random walk, so we use the probabilistic bound `λ·√(L+1)·u·S` (Higham & Mary, SIAM J. Sci.
/// Comput. 2019) with `λ = 8`, which holds with overwhelming probability, plus `u·|y|` for the
/// reference's own final rounding to `f32`. One missing or wrong tap then exceeds the tolerance
/// by orders of magnitude for any realistic `L` (√L ≪ 1/(8u)/√L needs L ≲ 10^5).
/// `S` comes from running the reference on `|x|`, `|w|`, `|b|`. The activation scales the
/// sum's error by at most its Lipschitz constant and adds its own error ([`activation_error`]).
pub fn tolerances(spec: &Conv2dSpec, data: &ConvData, want: &Tensor) -> Vec<f32> {
    let s = abs_sums(spec, data);
    let l = (spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1] + 1) as f32;
    let u = f32::EPSILON / 2.0;
    s.data()
        .iter()
        .zip(want.data())
        .map(|(&s, &y)| {
            let act = activation_error(spec.activation);
            act.lipschitz * 8.0 * l.sqrt() * u * s + act.relative * y.abs() + act.absolute
        })
        .collect()
}

/// `S = |b| + Σ|x_i·w_i|` per output: the reference run on `|x|`, `|w|`, `|b|` without the
/// activation.
pub fn abs_sums(spec: &Conv2dSpec, data: &ConvData) -> Tensor {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
    let abs_spec = spec.activation(Activation::None);
    let abs_input = Tensor::new(data.input.shape(), abs(data.input.data())).expect("abs input");
    let abs_bias = data.bias.as_deref().map(abs);
    reference::conv2d(
        &abs_spec,
        &abs_input,
        &abs(&data.weights),
        abs_bias.as_deref(),
    )
    .expect("reference on |x|, |w|")
}

/// f16's unit roundoff, `u₁₆ = 2⁻¹¹`: rounding a value in f16's normal range to nearest
/// changes it by at most `u₁₆` of itself.
pub const F16_UNIT_ROUNDOFF: f32 = 1.0 / 2048.0;

/// Half the spacing of f16's subnormals, `2⁻²⁵`: the most that rounding a value below f16's
/// normal range (|y| < 2⁻¹⁴) changes it, where the relative bound no longer holds.
pub const F16_SUBNORMAL_ERROR: f32 = 1.0 / 33_554_432.0;

/// `values` rounded to the nearest f16, kept as f32: what an f16 tensor or f16 weights hold.
pub fn to_f16(values: &[f32]) -> Vec<f32> {
    values
        .iter()
        .map(|&v| sepconv::Precision::F16.round(v))
        .collect()
}

impl ConvData {
    /// The same data rounded to f16, as an f16 conv and its f16 input hold it: the reference
    /// runs on these values, so that what is left to bound is the kernel's arithmetic.
    pub fn rounded_to_f16(&self) -> Self {
        Self {
            input: Tensor::new(self.input.shape(), to_f16(self.input.data())).expect("input"),
            weights: to_f16(&self.weights),
            bias: self.bias.as_deref().map(to_f16),
        }
    }
}

/// Per-element tolerance of an f16 run (f16 input, weights, bias and output, f32 sums)
/// against the `f64` reference computed on the f16-rounded input, weights and bias
/// (`data` is [`ConvData::rounded_to_f16`]).
///
/// Because the reference sees the very values the kernel reads, their rounding to f16 costs
/// nothing here. What remains:
/// 1. the f32 accumulation and activation, as for f32 runs: [`tolerances`], `t₃₂`;
/// 2. the output's one rounding to f16 on the store: `u₁₆·|ŷ| ≤ u₁₆·(|y| + t₃₂)`, or
///    [`F16_SUBNORMAL_ERROR`] below f16's normal range;
/// 3. `partial_roundings` more roundings of partial sums to f16, where a run's sums pass
///    through the f16 output between dispatches (the window kernels' input-channel slices,
///    pointwise or grouped weights past one 64 KiB window): each partial sum is at most
///    `S = |b| + Σ|x_i·w_i|`, so each adds at most `u₁₆·S`, scaled by the activation's
///    Lipschitz constant. (The tiled product's split-K keeps its partial sums in f32.)
///
/// With `u₁₆ = 2⁻¹¹ ≈ 4.9e-4` the output rounding dominates: about 5e-4 of |y|, while one
/// wrong or missing tap still moves an output by about |x·w| ≈ S/L, far more for the
/// reductions tested (L ≤ 600: S/L ≥ 1.6e-3·S, against u₁₆·S ≈ 4.9e-4·S for one partial
/// rounding; a wrong channel or pixel, by the whole output).
pub fn f16_tolerances(
    spec: &Conv2dSpec,
    data: &ConvData,
    want: &Tensor,
    partial_roundings: usize,
) -> Vec<f32> {
    f16_tolerances_over(
        tolerances(spec, data, want),
        spec,
        data,
        want,
        partial_roundings,
    )
}

/// [`f16_tolerances`] over another f32 tolerance `t32` of the same run (e.g.
/// [`residual_tolerances`]: the skip tensor's add happens in f32 before the one rounding).
pub fn f16_tolerances_over(
    t32: Vec<f32>,
    spec: &Conv2dSpec,
    data: &ConvData,
    want: &Tensor,
    partial_roundings: usize,
) -> Vec<f32> {
    let s = abs_sums(spec, data);
    let lipschitz = activation_error(spec.activation).lipschitz;
    let partial = partial_roundings as f32 * F16_UNIT_ROUNDOFF * lipschitz;
    t32.iter()
        .zip(want.data())
        .zip(s.data())
        .map(|((&t, &y), &s)| {
            t + F16_UNIT_ROUNDOFF * (y.abs() + t) + F16_SUBNORMAL_ERROR + partial * s
        })
        .collect()
}

/// Per-element tolerance for a GPU conv with a residual add against the `f64` reference
/// ([`reference::conv2d_residual`]): the conv's own ([`tolerances`]: the sums' error, at most
/// `L_act·8√L·u·S` with `S ≥ |y|` the sum of |terms|, then the activation's own), plus the
/// add's. The GPU adds the skip `s` in `f32`, rounding once with relative error `u`:
/// - before the activation, of `|y + s| ≤ S + |s|`; the activation scales it by its
///   Lipschitz constant `L_act`: `L_act·u·S` is inside the sums' term already (8√L ≥ 1),
///   `L_act·u·|s|` is added here;
/// - after it, of `|want|`; and the activation's relative error is of `|act(y)|`, at most
///   `|want| + |s|`: `relative·|s|` is added here.
///
/// So `tol + (L_act + 1)·u·(|want| + 2|s|) + relative·|s|` bounds what rounding can do (with
/// room), while a skip added twice, at the wrong index or not at all (an error of `|s|`,
/// about 1 on N(0, 1) data) fails by orders of magnitude.
pub fn residual_tolerances(
    spec: &Conv2dSpec,
    data: &ConvData,
    skip: &Tensor,
    want: &Tensor,
) -> Vec<f32> {
    let act = activation_error(spec.activation);
    let u = f32::EPSILON / 2.0;
    tolerances(spec, data, want)
        .into_iter()
        .zip(skip.data().iter().zip(want.data()))
        .map(|(t, (&s, &y))| {
            t + (act.lipschitz + 1.0) * u * (y.abs() + 2.0 * s.abs()) + act.relative * s.abs()
        })
        .collect()
}

/// How far an activation computed in `f32` may be from the `f64` reference's, rounded.
pub struct ActivationError {
    /// How much the activation can grow an error in its input: `max |act'|`.
    pub lipschitz: f32,
    /// Error relative to the result.
    pub relative: f32,
    /// Absolute error, for results near 0.
    pub absolute: f32,
}

/// The error of `act` in `f32` against the reference. Piecewise-linear activations round at
/// most once, like the reference's final rounding: `u·|y|` (`u = 2^-24`). ONNX HardSigmoid
/// rounds α·x and then + β (`|α·x| ≤ 1 + |β|` where the result is not clamped), PyTorch's
/// HardSigmoid x + 3 and / 6 (WGSL's division is within 2.5 ulp). The others go through
/// `exp` and `tanh`, whose WGSL accuracy is a few ulp per unit of |x| (WGSL §17.5.1), GELU
/// also through Abramowitz & Stegun's erfc (|error| ≤ 1.5e-7, times |x| ≤ 4 where it is
/// largest): 2^-16 relative and 2^-18 absolute cover them with room, while one wrong or
/// missing tap (an error of order |x·w| ≈ 0.1–1) still fails by orders of magnitude.
pub fn activation_error(act: Activation) -> ActivationError {
    let u = f32::EPSILON / 2.0;
    let (lipschitz, relative, absolute) = match act {
        Activation::None | Activation::Relu | Activation::Relu6 | Activation::Clip { .. } => {
            (1.0, u, 0.0)
        }
        Activation::LeakyRelu(alpha) => (alpha.abs().max(1.0), u, 0.0),
        Activation::HardSigmoidOnnx { alpha, beta } => {
            (alpha.abs(), 4.0 * u, 4.0 * u * (1.0 + beta.abs()))
        }
        Activation::HardSigmoid => (1.0 / 6.0, 8.0 * u, 8.0 * u),
        Activation::HardSwish => (1.5, 8.0 * u, 32.0 * u),
        // Sigmoid, Tanh, SiLU, GELU (both forms), and any kind added later.
        _ => (1.2, 2f32.powi(-16), 2f32.powi(-18)),
    };
    ActivationError {
        lipschitz,
        relative,
        absolute,
    }
}

/// Whether `act` on exact sums (small integers) must match the reference bit for bit: true
/// for activations that round at most once (a product α·x of an `f32` and a small integer is
/// exact in `f64`, so both sides round the same value once).
pub fn exact_activation(act: Activation) -> bool {
    matches!(
        act,
        Activation::None
            | Activation::Relu
            | Activation::Relu6
            | Activation::Clip { .. }
            | Activation::LeakyRelu(_)
    )
}

/// Compares `got` with `want` element by element. With `tol = None` the comparison is exact
/// (bit for bit). On failure, panics with the case, seed, count and the first mismatches as
/// (n, c, h, w). NaN never matches, so an element the shader did not write (the output is
/// poisoned with NaN first) fails.
#[track_caller]
pub fn assert_matches(case: &str, seed: u64, got: &Tensor, want: &Tensor, tol: Option<&[f32]>) {
    assert_eq!(got.shape(), want.shape(), "{case} (seed {seed}): shape");
    let shape = got.shape();
    let mut bad = Vec::new();
    let mut count = 0usize;
    for (i, (&g, &w)) in got.data().iter().zip(want.data()).enumerate() {
        let ok = match tol {
            None => g.to_bits() == w.to_bits() || (g == 0.0 && w == 0.0),
            Some(t) => (g - w).abs() <= t[i],
        };
        if !ok {
            count += 1;
            if bad.len() < 5 {
                let limit = tol.map_or(0.0, |t| t[i]);
                bad.push(format!(
                    "  at {:?}: got {g:e}, want {w:e}, |diff| {:e}, tolerance {limit:e}",
                    shape.coords(i),
                    (g - w).abs()
                ));
            }
        }
    }
    assert!(
        count == 0,
        "{case} (seed {seed}): {count} of {} elements differ ({}); first (n, c, h, w):\n{}",
        got.data().len(),
        if tol.is_some() { "tolerance" } else { "exact" },
        bad.join("\n")
    );
}

/// End-to-end tolerance of a whole network's chain (tests/gpu_networks.rs, cpu_networks.rs):
/// `1e-3 · rms(want)` per element, plus `1e-5·|want|`.
///
/// Each layer's own GPU-vs-reference error is below `8·√L·u ≈ 2e-5` of its scale for the
/// largest reductions here (L ≤ 1024, each layer checked in isolation by the network tests);
/// passing through up to 60
/// layers (with residual adds and linear projections, where sums partly cancel) lets the
/// difference grow. Measured worst case over every tensor of these networks: 7e-5 of the
/// tensor's RMS (deep in MobileNet v2); 1e-3 leaves more than 10× margin and is still two
/// orders of magnitude below a real fault: one wrong or missing tap of a 3×3 depthwise
/// kernel changes outputs by about a ninth of their size, a wrong channel or pixel by their
/// whole size.
pub fn chained_tolerance(want: &Tensor) -> Vec<f32> {
    let n = want.data().len() as f64;
    let rms = (want
        .data()
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        / n)
        .sqrt() as f32;
    want.data()
        .iter()
        .map(|&w| 1e-3 * rms + 1e-5 * w.abs())
        .collect()
}
