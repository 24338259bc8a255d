//! [`Activation`]: what a convolution's epilogue (and the elementwise ops) apply after the
//! bias, with its `f64` reference and the `f32` form the CPU paths use.

use crate::error::{Error, Result};

/// Activation fused into the convolution's epilogue, applied after the bias.
///
/// Every variant runs in every kernel's epilogue (GPU and CPU) and in the elementwise ops.
/// A NaN input gives a NaN output for every variant. Parameters (`LeakyRelu`'s slope, `Clip`'s
/// bounds, ONNX HardSigmoid's α and β) reach the shaders as data, so they cost no extra
/// pipeline; [`Activation::validate`] checks them. Non-exhaustive: more may come.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)` (MobileNet): the same function as `Clip { min: 0.0, max: 6.0 }`.
    Relu6,
    /// `x` for `x ≥ 0`, `α·x` below (PyTorch `LeakyReLU(negative_slope = α)`, ONNX
    /// `LeakyRelu(alpha)`; both default α to 0.01).
    LeakyRelu(f32),
    /// `min(max(x, min), max)` (ONNX `Clip`, PyTorch `Hardtanh(min, max)`); needs
    /// `min ≤ max`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// SiLU, also called Swish: `x · sigmoid(x)` (EfficientNet).
    Silu,
    /// PyTorch's `Hardsigmoid`: `relu6(x + 3) / 6`, slope 1/6 (MobileNet v3).
    HardSigmoid,
    /// ONNX's `HardSigmoid(alpha, beta)`: `max(0, min(1, α·x + β))`. ONNX's defaults
    /// (α = 0.2, β = 0.5, [`Activation::HARD_SIGMOID_ONNX`]) give a steeper slope than
    /// PyTorch's [`Activation::HardSigmoid`], which is this with α = 1/6.
    HardSigmoidOnnx {
        /// Slope α.
        alpha: f32,
        /// Offset β.
        beta: f32,
    },
    /// `x · relu6(x + 3) / 6` (PyTorch `Hardswish`, ONNX `HardSwish`; MobileNet v3).
    HardSwish,
    /// GELU in its exact form, `x · Φ(x)` with `Φ(x) = erfc(-x/√2) / 2` the normal CDF
    /// (PyTorch `GELU()`, ONNX `Gelu`).
    Gelu,
    /// GELU's tanh approximation, `x/2 · (1 + tanh(√(2/π) · (x + 0.044715·x³)))` (PyTorch
    /// `GELU(approximate = "tanh")`, ONNX `Gelu(approximate = "tanh")`).
    GeluTanh,
}

impl Activation {
    /// ONNX `HardSigmoid` with its default α = 0.2, β = 0.5.
    pub const HARD_SIGMOID_ONNX: Activation = Activation::HardSigmoidOnnx {
        alpha: 0.2,
        beta: 0.5,
    };

    /// One of each kind, with typical parameters: for tests and examples that try them all.
    pub const ALL: [Activation; 13] = [
        Activation::None,
        Activation::Relu,
        Activation::Relu6,
        Activation::LeakyRelu(0.01),
        Activation::Clip {
            min: -1.5,
            max: 2.25,
        },
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Silu,
        Activation::HardSigmoid,
        Activation::HARD_SIGMOID_ONNX,
        Activation::HardSwish,
        Activation::Gelu,
        Activation::GeluTanh,
    ];

    /// Checks the parameters: finite, and `Clip`'s `min ≤ max`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the activation and the offending values.
    pub fn validate(&self) -> Result<()> {
        let [a, b] = self.parameters();
        let bad = |reason: String| {
            Err(Error::InvalidArgument {
                what: "activation",
                reason,
            })
        };
        if !a.is_finite() || !b.is_finite() {
            return bad(format!("{self:?}: parameters must be finite"));
        }
        if let Activation::Clip { min, max } = *self {
            if min > max {
                return bad(format!("Clip needs min <= max, got min {min} > max {max}"));
            }
        }
        Ok(())
    }

    /// Applies the activation to one value, in `f64` from the textbook definitions (the
    /// reference).
    pub fn apply_f64(self, x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        let [a, b] = self.parameters().map(f64::from);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let hard = |x: f64| (x + 3.0).clamp(0.0, 6.0) / 6.0;
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(_) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Activation::Clip { .. } => x.clamp(a, b),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Silu => x * sigmoid(x),
            Activation::HardSigmoid => hard(x),
            Activation::HardSigmoidOnnx { .. } => (a * x + b).clamp(0.0, 1.0),
            Activation::HardSwish => x * hard(x),
            Activation::Gelu => x * (0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)),
            Activation::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }

    /// Applies the activation to one value, in `f32` (the fast CPU path and CPU ops).
    pub fn apply(self, x: f32) -> f32 {
        if x.is_nan() {
            return x;
        }
        let [a, b] = self.parameters();
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let hard = |x: f32| (x + 3.0).clamp(0.0, 6.0) / 6.0;
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu(_) => {
                if x < 0.0 {
                    a * x
                } else {
                    x
                }
            }
            Activation::Clip { .. } => x.max(a).min(b),
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Silu => x * sigmoid(x),
            Activation::HardSigmoid => hard(x),
            Activation::HardSigmoidOnnx { .. } => (a * x + b).clamp(0.0, 1.0),
            Activation::HardSwish => x * hard(x),
            Activation::Gelu => x * (0.5 * libm::erfcf(-x * std::f32::consts::FRAC_1_SQRT_2)),
            Activation::GeluTanh => {
                let k = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }

    /// The code the shaders use (`ACTIVATION_*` in shaders/shared.wgsl).
    pub(crate) const fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::Relu6 => 2,
            Activation::LeakyRelu(_) => 3,
            Activation::Clip { .. } => 4,
            Activation::Sigmoid => 5,
            Activation::Tanh => 6,
            Activation::Silu => 7,
            Activation::HardSigmoid => 8,
            Activation::HardSigmoidOnnx { .. } => 9,
            Activation::HardSwish => 10,
            Activation::Gelu => 11,
            Activation::GeluTanh => 12,
        }
    }

    /// The parameters as the shaders read them (α, β; 0 where unused).
    pub(crate) const fn parameters(self) -> [f32; 2] {
        match self {
            Activation::LeakyRelu(alpha) => [alpha, 0.0],
            Activation::Clip { min, max } => [min, max],
            Activation::HardSigmoidOnnx { alpha, beta } => [alpha, beta],
            _ => [0.0, 0.0],
        }
    }

    /// The parameters' bits, for the shaders' `u32` uniform fields (`bitcast<f32>` there).
    pub(crate) fn parameter_bits(self) -> [u32; 2] {
        self.parameters().map(f32::to_bits)
    }
}

/// Equal when the kind and the parameters' bits are (so `Eq` and `Hash` hold for the cache
/// keys specs serve as).
impl PartialEq for Activation {
    fn eq(&self, other: &Self) -> bool {
        (self.code(), self.parameter_bits()) == (other.code(), other.parameter_bits())
    }
}

impl Eq for Activation {}

impl std::hash::Hash for Activation {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.code(), self.parameter_bits()).hash(state);
    }
}

/// Where a residual (skip) tensor joins a convolution's epilogue: added to the sums before
/// the activation or to its result after it. The skip tensor has the output's shape and is
/// read in the same kernel that writes the output, so a block's last convolution and its
/// residual add are one dispatch.
///
/// ```
/// use sepconv::{Activation, Residual};
///
/// // ResNet: add the shortcut, then ReLU.
/// assert_eq!(Residual::BeforeActivation.apply(Activation::Relu, -2.0, 1.0), 0.0);
/// // MobileNet v2 / EfficientNet: a linear projection, then the add.
/// assert_eq!(Residual::AfterActivation.apply(Activation::Relu, -2.0, 1.0), 1.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Residual {
    /// `activation(sums + bias + skip)`: ResNet and ResNeXt add the shortcut, then apply ReLU.
    BeforeActivation,
    /// `activation(sums + bias) + skip`: MobileNet v2 and EfficientNet add the shortcut to a
    /// linear projection (whose activation is usually none).
    AfterActivation,
}

impl Residual {
    /// `y` (sums plus bias) finished with `activation` and `skip` added here, in `f64` (the
    /// reference's).
    pub fn apply_f64(self, activation: Activation, y: f64, skip: f64) -> f64 {
        match self {
            Residual::BeforeActivation => activation.apply_f64(y + skip),
            Residual::AfterActivation => activation.apply_f64(y) + skip,
        }
    }

    /// `y` finished with `activation` and `skip` added here, in `f32` (the fast CPU path).
    pub fn apply(self, activation: Activation, y: f32, skip: f32) -> f32 {
        match self {
            Residual::BeforeActivation => activation.apply(y + skip),
            Residual::AfterActivation => activation.apply(y) + skip,
        }
    }

    /// The code the shaders use (`RESIDUAL_*` in shaders/shared.wgsl; 0 is none).
    pub(crate) const fn code(residual: Option<Residual>) -> u32 {
        match residual {
            None => 0,
            Some(Residual::BeforeActivation) => 1,
            Some(Residual::AfterActivation) => 2,
        }
    }
}
