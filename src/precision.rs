//! [`Precision`]: how a tensor's elements are stored on the GPU.

/// How the elements of a [`crate::GpuTensor`] (and a convolution's weights) are stored on the
/// GPU. The arithmetic is f32 either way: f16 values are widened when loaded, summed in f32
/// and rounded to f16 once, when stored. f16 halves the bytes a memory-bound kernel moves; it
/// needs an adapter with `wgpu::Features::SHADER_F16` ([`crate::Gpu::supports_f16`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Precision {
    /// IEEE binary32, 4 bytes: runs everywhere.
    #[default]
    F32,
    /// IEEE binary16, 2 bytes (unit roundoff 2⁻¹¹, largest finite 65504).
    F16,
}

impl Precision {
    /// Bytes per element.
    pub const fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }

    /// `value` rounded to this precision (to nearest, ties to even) and widened back: what a
    /// GPU tensor of this precision holds for it.
    pub fn round(self, value: f32) -> f32 {
        match self {
            Precision::F32 => value,
            Precision::F16 => half::f16::from_f32(value).to_f32(),
        }
    }

    /// The name in error messages and WGSL: `"f32"` or `"f16"`.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Precision;

    #[test]
    fn rounding_is_to_nearest_f16() {
        assert_eq!(Precision::F32.round(0.1), 0.1);
        // 1 + 2⁻¹¹ lies halfway between 1 and 1 + 2⁻¹⁰: ties to even, 1.
        assert_eq!(Precision::F16.round(1.0 + 2f32.powi(-11)), 1.0);
        assert_eq!(
            Precision::F16.round(1.0 + 3.0 * 2f32.powi(-11)),
            1.0 + 2f32.powi(-9)
        );
        assert_eq!(Precision::F16.round(70000.0), f32::INFINITY);
        assert_eq!(Precision::F16.bytes(), 2);
        assert_eq!(Precision::F32.to_string(), "f32");
    }
}
