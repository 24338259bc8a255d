//! [`Tensor`]: an NCHW `f32` tensor in host memory.

use crate::error::{Error, Result};
use crate::spec::Shape;

/// An NCHW `f32` tensor in host memory: the CPU paths' input and output, and what
/// [`crate::GpuTensor::read`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Shape,
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` (NCHW order) as a tensor of `shape`.
    ///
    /// # Errors
    /// [`Error::Zero`] for a zero size, [`Error::LengthMismatch`] when `data.len()` is not
    /// `n·c·h·w`.
    pub fn new(shape: Shape, data: Vec<f32>) -> Result<Self> {
        check_data_len(shape, data.len())?;
        Ok(Self { shape, data })
    }

    /// A seeded tensor of `shape` with values uniform in [−1, 1] (SplitMix64; the same
    /// seed gives the same values everywhere): test inputs without an RNG crate.
    ///
    /// # Errors
    /// Those of [`Tensor::new`] for an invalid shape.
    pub fn random(shape: Shape, seed: u64) -> Result<Self> {
        let mut rng = crate::rng::SplitMix64::new(seed ^ 0x1234_5678_9abc_def0);
        Self::new(shape, rng.uniform_vec(shape.len()?, -1.0, 1.0))
    }

    /// A tensor of `shape` filled with `value`.
    ///
    /// # Errors
    /// [`Error::Zero`], [`Error::Overflow`], [`Error::HostAllocation`] when the memory cannot
    /// be had.
    pub fn full(shape: Shape, value: f32) -> Result<Self> {
        shape.validate()?;
        let mut data = host_vec("tensor", shape.len()?)?;
        data.resize(shape.len()?, value);
        Ok(Self { shape, data })
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The elements in NCHW order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable access to the elements.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Gives up the elements.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Element at `(n, c, h, w)`.
    ///
    /// # Panics
    /// When a coordinate is outside the shape, as slice indexing does; [`Tensor::get`] is
    /// the checked form.
    pub fn at(&self, n: usize, c: usize, h: usize, w: usize) -> f32 {
        match self.get(n, c, h, w) {
            Some(v) => v,
            None => panic!(
                "coordinates ({n}, {c}, {h}, {w}) outside a tensor of shape {}",
                self.shape
            ),
        }
    }

    /// Element at `(n, c, h, w)`, or `None` when a coordinate is outside the shape.
    pub fn get(&self, n: usize, c: usize, h: usize, w: usize) -> Option<f32> {
        let s = self.shape;
        if n < s.n && c < s.c && h < s.h && w < s.w {
            self.data.get(s.index(n, c, h, w)).copied()
        } else {
            None
        }
    }
}

/// Checks that `len` elements fill `shape` exactly (and that the shape has no zero size).
pub(crate) fn check_data_len(shape: Shape, len: usize) -> Result<()> {
    shape.validate()?;
    let expected = shape.len()?;
    if len != expected {
        return Err(Error::LengthMismatch {
            what: "tensor data",
            expected,
            got: len,
            hint: Some(format!("shape {shape}")),
        });
    }
    Ok(())
}

/// `Error::LengthMismatch` naming `what` unless a tensor of shape `got` has the `expected`
/// shape (an output, or a residual's skip tensor, which has the output's shape).
pub(crate) fn check_shape(what: &'static str, expected: Shape, got: Shape) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::LengthMismatch {
        what,
        expected: expected.len()?,
        got: got.len()?,
        hint: Some(format!("expected shape {expected}, got {got}")),
    })
}

/// An empty vector with room for `len` `f32`s, or [`Error::HostAllocation`] instead of the
/// abort a failed allocation would be.
pub(crate) fn host_vec(what: &'static str, len: usize) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Error::HostAllocation {
            what,
            bytes: (len as u64).saturating_mul(4),
        })?;
    Ok(v)
}
