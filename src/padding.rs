//! [`Padding`]: zero padding around the input, explicit per side or TensorFlow's `SAME_UPPER`,
//! resolved to [`Pads`] for an input size.

/// Total `SAME_UPPER` padding along one axis: `max(0, (ceil(in/s) - 1)·s + d·(k-1) + 1 - in)`.
/// `None` when that overflows `usize` or the sizes are invalid (zero stride or kernel).
pub(crate) fn same_upper_total(input: usize, k: usize, s: usize, d: usize) -> Option<usize> {
    if s == 0 {
        return None;
    }
    let needed = input
        .div_ceil(s)
        .saturating_sub(1)
        .checked_mul(s)?
        .checked_add(k.checked_sub(1)?.checked_mul(d)?)?
        .checked_add(1)?;
    Some(needed.saturating_sub(input))
}

/// Zero padding around the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Explicit padding per side, in input pixels.
    Explicit {
        /// Rows added above.
        top: usize,
        /// Rows added below.
        bottom: usize,
        /// Columns added on the left.
        left: usize,
        /// Columns added on the right.
        right: usize,
    },
    /// TensorFlow's `"SAME"` / ONNX's `SAME_UPPER`: output size `ceil(input / stride)`, the total
    /// padding split with the odd pixel at the end (bottom/right). Resolved per input size.
    SameUpper,
}

impl Padding {
    /// No padding (`"VALID"`).
    pub const fn valid() -> Self {
        Self::Explicit {
            top: 0,
            bottom: 0,
            left: 0,
            right: 0,
        }
    }

    /// `ph` rows above and below, `pw` columns left and right (PyTorch's `padding=(ph, pw)`).
    pub const fn symmetric(ph: usize, pw: usize) -> Self {
        Self::Explicit {
            top: ph,
            bottom: ph,
            left: pw,
            right: pw,
        }
    }

    /// The same padding `p` on all four sides (PyTorch's `padding=p`).
    pub const fn uniform(p: usize) -> Self {
        Self::symmetric(p, p)
    }

    /// Explicit per-side padding.
    pub const fn explicit(top: usize, bottom: usize, left: usize, right: usize) -> Self {
        Self::Explicit {
            top,
            bottom,
            left,
            right,
        }
    }

    /// `SAME_UPPER` padding, resolved when the input size is known.
    pub const fn same() -> Self {
        Self::SameUpper
    }
}

/// Padding resolved for one input size: rows/columns added on each side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pads {
    /// Rows above.
    pub top: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the left.
    pub left: usize,
    /// Columns on the right.
    pub right: usize,
}
