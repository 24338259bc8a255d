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
        shape.validate()?;
        let expected = shape.len()?;
        if data.len() != expected {
            return Err(Error::LengthMismatch {
                what: "tensor data",
                expected,
                got: data.len(),
                hint: Some(format!("shape {shape}")),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: Shape, value: f32) -> Result<Self> {
        shape.validate()?;
        Ok(Self {
            shape,
            data: vec![value; shape.len()?],
        })
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
    /// When the coordinates are outside the shape, like slice indexing.
    pub fn at(&self, n: usize, c: usize, h: usize, w: usize) -> f32 {
        self.data[self.shape.index(n, c, h, w)]
    }
}
