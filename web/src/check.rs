//! Seeded data and the comparison against the CPU reference, shared by the browser tests, the
//! demo and the browser benchmark (the same bound as the native tests' `tests/common`).

use sepconv::networks::weights::random_input;
use sepconv::{cpu::reference, Activation, Conv2dSpec, Result, Shape, Tensor};

/// `len` samples uniform in [-1, 1] from `seed` (the library's own seeded generator, the one
/// behind [`random_input`]).
pub fn uniform(seed: u64, len: usize) -> Vec<f32> {
    random_input(Shape::new(1, 1, 1, len), seed).map_or_else(|_| Vec::new(), Tensor::into_data)
}

/// `len` integers in [-3, 3] from `seed`: sums of fewer than 2^24 / 9 of their products are
/// exact in `f32` in any order, so GPU and reference must agree bit for bit.
pub fn small_ints(seed: u64, len: usize) -> Vec<f32> {
    uniform(seed, len)
        .into_iter()
        .map(|u| ((u + 1.0) * 3.5).floor().min(6.0) - 3.0)
        .collect()
}

/// Input, weights and bias for one convolution.
pub struct ConvData {
    /// NCHW input.
    pub input: Tensor,
    /// Weights `[c_out, c_in/groups, kh, kw]`.
    pub weights: Vec<f32>,
    /// Bias `[c_out]`, when the spec has one.
    pub bias: Option<Vec<f32>>,
}

impl ConvData {
    /// Seeded uniform data for `spec` on `input`.
    pub fn new(spec: &Conv2dSpec, input: Shape, seed: u64) -> Result<Self> {
        Ok(Self {
            input: Tensor::new(input, uniform(seed, input.len()?))?,
            weights: uniform(seed ^ 0x5eed_0001, spec.weight_count()),
            bias: spec.bias.then(|| uniform(seed ^ 0x5eed_0002, spec.c_out)),
        })
    }

    /// The CPU reference's output (f64 accumulation).
    pub fn reference(&self, spec: &Conv2dSpec) -> Result<Tensor> {
        reference::conv2d(spec, &self.input, &self.weights, self.bias.as_deref())
    }
}

/// Per-element tolerance of a GPU result against the f64 reference: `8·√(L+1)·u·S + u·|y|`,
/// `L` the reduction length, `S` the reference run on `|x|`, `|w|`, `|b|` (the probabilistic
/// bound of Higham & Mary, SIAM J. Sci. Comput. 2019, as in the native tests). One missing or
/// wrong tap exceeds it by orders of magnitude.
pub fn tolerances(spec: &Conv2dSpec, data: &ConvData, want: &Tensor) -> Result<Vec<f32>> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
    let abs_input = Tensor::new(data.input.shape(), abs(data.input.data()))?;
    let abs_bias = data.bias.as_deref().map(abs);
    let s = reference::conv2d(
        &spec.activation(Activation::None),
        &abs_input,
        &abs(&data.weights),
        abs_bias.as_deref(),
    )?;
    let l = (spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1] + 1) as f32;
    let u = f32::EPSILON / 2.0;
    Ok(s.data()
        .iter()
        .zip(want.data())
        .map(|(&s, &y)| 8.0 * l.sqrt() * u * s + u * y.abs())
        .collect())
}

/// The worst ratio `|got − want| / tolerance` over all elements (`tol = None`: bit for bit,
/// any difference is infinite). NaN (an element never written into a NaN-poisoned output)
/// and a length mismatch are infinite too. At most 1 passes.
pub fn worst_ratio(got: &[f32], want: &[f32], tol: Option<&[f32]>) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = f64::from((g - w).abs());
        let ratio = match tol {
            _ if g.is_nan() || diff.is_nan() => f64::INFINITY,
            None if g.to_bits() == w.to_bits() || (g == 0.0 && w == 0.0) => 0.0,
            None => f64::INFINITY,
            Some(_) if diff == 0.0 => 0.0,
            Some(t) => diff / f64::from(t[i]),
        };
        worst = worst.max(ratio);
    }
    worst
}

/// `1e-3·rms(want) + 1e-5·|want|` per element: the native tests' end-to-end bound for a whole
/// network, where layer errors compound (their measured worst is 7e-5 of the RMS).
pub fn chained_tolerance(want: &[f32]) -> Vec<f32> {
    let n = want.len().max(1) as f64;
    let rms = (want.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt() as f32;
    want.iter().map(|&w| 1e-3 * rms + 1e-5 * w.abs()).collect()
}
