//! [`Shape`]: the four sizes of an NCHW tensor, with checked element counts.

use crate::error::{Error, Result};

/// Shape of an NCHW tensor: batch, channels, height, width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
}

impl Shape {
    /// A shape from its four sizes.
    pub const fn new(n: usize, c: usize, h: usize, w: usize) -> Self {
        Self { n, c, h, w }
    }

    /// The sizes as `[n, c, h, w]`.
    pub const fn dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    /// Number of elements, `n·c·h·w`, or [`Error::Overflow`].
    pub fn len(&self) -> Result<usize> {
        checked_product("tensor", &self.dims())
    }

    /// Whether any size is zero.
    pub fn is_empty(&self) -> bool {
        self.dims().contains(&0)
    }

    /// Rejects zero sizes.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("batch n", self.n),
            ("channels c", self.c),
            ("height h", self.h),
            ("width w", self.w),
        ] {
            if v == 0 {
                return Err(Error::Zero { what });
            }
        }
        self.len().map(|_| ())
    }

    /// Flat NCHW index of `(n, c, h, w)`. Meaningful for coordinates inside the shape; never
    /// panics (the arithmetic wraps), so check the coordinates first when they come from
    /// outside.
    pub const fn index(&self, n: usize, c: usize, h: usize, w: usize) -> usize {
        n.wrapping_mul(self.c)
            .wrapping_add(c)
            .wrapping_mul(self.h)
            .wrapping_add(h)
            .wrapping_mul(self.w)
            .wrapping_add(w)
    }

    /// `(n, c, h, w)` of a flat NCHW index. An empty shape has no coordinates: `[0; 4]`.
    pub const fn coords(&self, index: usize) -> [usize; 4] {
        if self.c == 0 || self.h == 0 || self.w == 0 {
            return [0; 4];
        }
        // Successive divisions, no products that could overflow.
        let w = index % self.w;
        let rest = index / self.w;
        let h = rest % self.h;
        let rest = rest / self.h;
        [rest / self.c, rest % self.c, h, w]
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}x{}", self.n, self.c, self.h, self.w)
    }
}

/// The product of `factors`, or [`Error::Overflow`] naming `what`.
pub(crate) fn checked_product(what: &'static str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| Error::Overflow {
            what,
            detail: format!("product of {factors:?}"),
        })
}
