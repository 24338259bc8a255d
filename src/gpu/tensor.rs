//! [`GpuTensor`]: an NCHW `f32` tensor resident in a GPU storage buffer.

use super::{readback, Gpu};
use crate::error::{Error, Result};
use crate::spec::Shape;
use crate::tensor::Tensor;

/// An NCHW `f32` tensor in GPU memory. Convolutions take and return these, so a chain of ops
/// never leaves the GPU until [`GpuTensor::read`] is called.
#[derive(Debug)]
pub struct GpuTensor {
    gpu: Gpu,
    buffer: wgpu::Buffer,
    shape: Shape,
}

impl GpuTensor {
    /// Uploads `data` (NCHW order) as a tensor of `shape`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::Zero`], [`Error::TooLarge`] beyond the device's
    /// buffer limits, [`Error::Gpu`] if allocation fails.
    pub fn from_slice(gpu: &Gpu, shape: Shape, data: &[f32]) -> Result<Self> {
        crate::tensor::check_data_len(shape, data.len())?;
        let tensor = Self::uninit(gpu, shape, "tensor")?;
        gpu.scoped("upload", || {
            gpu.queue()
                .write_buffer(&tensor.buffer, 0, bytemuck::cast_slice(data))
        })?;
        Ok(tensor)
    }

    /// Uploads a host tensor.
    pub fn from_tensor(gpu: &Gpu, tensor: &Tensor) -> Result<Self> {
        Self::from_slice(gpu, tensor.shape(), tensor.data())
    }

    /// A tensor of `shape` with every element `value` (e.g. NaN, to catch unwritten outputs).
    pub fn full(gpu: &Gpu, shape: Shape, value: f32) -> Result<Self> {
        shape.validate()?;
        // Size check before the host vector is made, so a huge shape fails cheaply.
        gpu.check_buffer_size("tensor", Self::bytes_of(shape)?)?;
        let mut data = crate::tensor::host_vec("tensor", shape.len()?)?;
        data.resize(shape.len()?, value);
        Self::from_slice(gpu, shape, &data)
    }

    /// Allocates a tensor whose contents are unspecified (zeros on wgpu) and will be
    /// overwritten, after checking the device's limits.
    pub(crate) fn uninit(gpu: &Gpu, shape: Shape, what: &'static str) -> Result<Self> {
        shape.validate()?;
        let bytes = Self::bytes_of(shape)?;
        gpu.check_buffer_size(what, bytes)?;
        let buffer = gpu.scoped("allocation", || {
            gpu.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(what),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(Self {
            gpu: gpu.clone(),
            buffer,
            shape,
        })
    }

    pub(crate) fn bytes_of(shape: Shape) -> Result<u64> {
        (shape.len()? as u64)
            .checked_mul(4)
            .ok_or_else(|| Error::Overflow {
                what: "tensor bytes",
                detail: format!("shape {shape}"),
            })
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The storage buffer, for callers who bind it in their own passes.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The GPU this tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Reads the tensor back to the host, blocking until done. Not on wasm32 (use
    /// [`GpuTensor::read_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self) -> Result<Tensor> {
        pollster::block_on(self.read_async())
    }

    /// Reads the tensor back to the host.
    ///
    /// # Errors
    /// [`Error::Readback`] or [`Error::DeviceLost`].
    pub async fn read_async(&self) -> Result<Tensor> {
        let data = readback::read_f32(&self.gpu, &self.buffer, self.shape.len()?).await?;
        Tensor::new(self.shape, data)
    }
}

/// `Error::LengthMismatch` unless `output` has the `expected` shape.
pub(crate) fn check_output(output: &GpuTensor, expected: Shape) -> Result<()> {
    if output.shape() == expected {
        return Ok(());
    }
    Err(Error::LengthMismatch {
        what: "output tensor",
        expected: expected.len()?,
        got: output.shape().len()?,
        hint: Some(format!("expected shape {expected}, got {}", output.shape())),
    })
}
