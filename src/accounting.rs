//! Parameter and multiply-accumulate accounting, the way the literature compares layers.
//!
//! For a `K×K` convolution from `C` to `N` channels (weights only, as the papers count):
//!
//! | layer | parameters | MACs at `H×W` output |
//! |---|---|---|
//! | standard | `K²·C·N` | `K²·C·N·H·W` |
//! | depthwise | `K²·C` (one `K×K` filter per input channel) | `K²·C·H·W` |
//! | pointwise | `C·N` | `C·N·H·W` |
//! | grouped, `g` groups | `K²·C·N / g` | `K²·C·N·H·W / g` |
//!
//! so separable / standard `= 1/N + 1/K²`. (A widely read description writes the depthwise
//! term as `K²·N` and the ratio as `1/C + 1/K²`; that only holds when `C = N`.)

use crate::error::Result;
use crate::spec::check_separable;
use crate::spec::{Conv2dSpec, Shape};

/// Weights and multiply-accumulates of a layer (or a sum of layers) for one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Learned weights (bias excluded, as the papers count).
    pub params: u64,
    /// Multiply-accumulates of one forward pass.
    pub macs: u64,
}

impl Cost {
    /// The cost of `spec` on `input`.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::macs`]: an invalid spec, a mismatched or empty input, overflow.
    pub fn of(spec: &Conv2dSpec, input: Shape) -> Result<Self> {
        // macs validates the spec first, so the weight count below is exact.
        let macs = spec.macs(input)?;
        Ok(Self {
            params: spec.weight_count() as u64,
            macs,
        })
    }
}

/// Adds field by field, saturating at `u64::MAX` (only reachable with absurd layers).
impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, rhs: Cost) -> Cost {
        Cost {
            params: self.params.saturating_add(rhs.params),
            macs: self.macs.saturating_add(rhs.macs),
        }
    }
}

/// A cheaper layer (or block) set against the standard convolution it replaces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The cheaper form.
    pub cheap: Cost,
    /// The standard convolution it stands for.
    pub standard: Cost,
}

impl Comparison {
    /// `cheap.params / standard.params`.
    pub fn param_ratio(&self) -> f64 {
        self.cheap.params as f64 / self.standard.params as f64
    }

    /// `cheap.macs / standard.macs`.
    pub fn mac_ratio(&self) -> f64 {
        self.cheap.macs as f64 / self.standard.macs as f64
    }
}

/// A depthwise separable block (`depthwise`, then `pointwise`) against the standard convolution
/// with the depthwise's kernel, stride, padding and dilation from `C` to `N` channels.
///
/// # Example
/// MobileNet v1's 3×3, 512→512 layer at 14×14 (Howard et al. 2017):
/// ```
/// use sepconv::{accounting, Conv2dSpec, Padding, Shape};
///
/// let dw = Conv2dSpec::depthwise(512, [3, 3]).padding(Padding::uniform(1));
/// let pw = Conv2dSpec::pointwise(512, 512);
/// let cmp = accounting::separable_vs_standard(&dw, &pw, Shape::new(1, 512, 14, 14)).unwrap();
/// assert_eq!(cmp.cheap.params, 4_608 + 262_144);
/// assert_eq!(cmp.standard.params, 2_359_296);
/// assert!((cmp.param_ratio() - accounting::separable_ratio(512, 3)).abs() < 1e-12);
/// ```
pub fn separable_vs_standard(
    depthwise: &Conv2dSpec,
    pointwise: &Conv2dSpec,
    input: Shape,
) -> Result<Comparison> {
    check_separable(depthwise, pointwise)?;
    let mid = depthwise.output_shape(input)?;
    let cheap = Cost::of(depthwise, input)? + Cost::of(pointwise, mid)?;
    let standard_spec = Conv2dSpec {
        c_out: pointwise.c_out,
        groups: 1,
        ..*depthwise
    };
    Ok(Comparison {
        cheap,
        standard: Cost::of(&standard_spec, input)?,
    })
}

/// A grouped (or depthwise) convolution against the same layer with `groups = 1`.
pub fn grouped_vs_standard(spec: &Conv2dSpec, input: Shape) -> Result<Comparison> {
    Ok(Comparison {
        cheap: Cost::of(spec, input)?,
        standard: Cost::of(&spec.as_standard(), input)?,
    })
}

/// The separable/standard ratio `1/N + 1/K²` for `N` output channels and a `K×K` kernel
/// (multiplier 1). Holds for parameters and, with the same output size, for MACs.
pub fn separable_ratio(n: usize, k: usize) -> f64 {
    // In f64 throughout: k·k would overflow usize for huge k (0 gives infinity, no panic).
    let k = k as f64;
    1.0 / n as f64 + 1.0 / (k * k)
}
