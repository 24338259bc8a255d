//! [`GpuTensor`]: an NCHW tensor of `f32` or `f16` elements resident in a GPU storage buffer.

use half::f16;

use super::{readback, Gpu};
use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::spec::Shape;
use crate::tensor::Tensor;

/// An NCHW tensor in GPU memory, its elements stored as [`Precision::F32`] (the default) or
/// [`Precision::F16`]. Convolutions take and return these, so a chain of ops never leaves the
/// GPU until [`GpuTensor::read`] is called. Every tensor of one run shares a precision.
///
/// # Example
/// ```no_run
/// use sepconv::{Gpu, GpuTensor, Precision, Shape};
///
/// let gpu = Gpu::new()?;
/// let shape = Shape::new(1, 1, 1, 3);
/// if gpu.supports_f16() {
///     // Converted to f16 on the way up, back to f32 on the way down.
///     let t = GpuTensor::from_slice_as(&gpu, shape, &[0.1, 1.0, 70000.0], Precision::F16)?;
///     assert_eq!(t.read()?.data(), &[0.099975586, 1.0, f32::INFINITY]);
///     // Or the raw halves, both ways.
///     assert_eq!(t.read_f16()?[1], sepconv::half::f16::ONE);
/// }
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug)]
pub struct GpuTensor {
    gpu: Gpu,
    buffer: wgpu::Buffer,
    shape: Shape,
    precision: Precision,
}

impl GpuTensor {
    /// Uploads `data` (NCHW order) as an f32 tensor of `shape`.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`], [`Error::Zero`], [`Error::TooLarge`] beyond the device's
    /// buffer limits, [`Error::Gpu`] if allocation fails.
    pub fn from_slice(gpu: &Gpu, shape: Shape, data: &[f32]) -> Result<Self> {
        Self::from_slice_as(gpu, shape, data, Precision::F32)
    }

    /// Uploads `data` (NCHW order) as a tensor of `shape` stored in `precision`: for f16 each
    /// value is rounded to the nearest f16 on the host (past ±65504: ±∞).
    ///
    /// # Errors
    /// Those of [`GpuTensor::from_slice`]; [`Error::Unsupported`] for f16 on a device without
    /// `SHADER_F16` ([`Gpu::supports_f16`]).
    pub fn from_slice_as(
        gpu: &Gpu,
        shape: Shape,
        data: &[f32],
        precision: Precision,
    ) -> Result<Self> {
        crate::tensor::check_data_len(shape, data.len())?;
        match precision {
            Precision::F32 => {
                let tensor = Self::uninit(gpu, shape, precision, "tensor")?;
                tensor.write(bytemuck::cast_slice(data))?;
                Ok(tensor)
            }
            Precision::F16 => {
                let halves: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
                Self::from_f16(gpu, shape, &halves)
            }
        }
    }

    /// Uploads raw f16 values (NCHW order) as an f16 tensor of `shape`, unchanged.
    ///
    /// # Errors
    /// Those of [`GpuTensor::from_slice_as`] for f16.
    pub fn from_f16(gpu: &Gpu, shape: Shape, data: &[f16]) -> Result<Self> {
        crate::tensor::check_data_len(shape, data.len())?;
        let tensor = Self::uninit(gpu, shape, Precision::F16, "tensor")?;
        let mut bits: Vec<u16> = data.iter().map(|h| h.to_bits()).collect();
        // Writes come in whole 4-byte words: an odd count gets one more (unread) half.
        if bits.len() % 2 == 1 {
            bits.push(0);
        }
        tensor.write(bytemuck::cast_slice(&bits))?;
        Ok(tensor)
    }

    /// Uploads a host tensor as f32.
    pub fn from_tensor(gpu: &Gpu, tensor: &Tensor) -> Result<Self> {
        Self::from_slice(gpu, tensor.shape(), tensor.data())
    }

    /// Uploads a host tensor stored in `precision` (see [`GpuTensor::from_slice_as`]).
    pub fn from_tensor_as(gpu: &Gpu, tensor: &Tensor, precision: Precision) -> Result<Self> {
        Self::from_slice_as(gpu, tensor.shape(), tensor.data(), precision)
    }

    /// An f32 tensor of `shape` with every element `value` (e.g. NaN, to catch unwritten
    /// outputs).
    pub fn full(gpu: &Gpu, shape: Shape, value: f32) -> Result<Self> {
        Self::full_as(gpu, shape, value, Precision::F32)
    }

    /// A tensor of `shape` stored in `precision` with every element `value` (rounded to it;
    /// NaN stays NaN).
    pub fn full_as(gpu: &Gpu, shape: Shape, value: f32, precision: Precision) -> Result<Self> {
        shape.validate()?;
        gpu.check_precision(precision)?;
        // Size check before the host vector is made, so a huge shape fails cheaply.
        gpu.check_buffer_size("tensor", Self::bytes_of(shape, precision)?)?;
        let mut data = crate::tensor::host_vec("tensor", shape.len()?)?;
        data.resize(shape.len()?, value);
        Self::from_slice_as(gpu, shape, &data, precision)
    }

    /// Allocates a tensor of `precision` whose contents are unspecified (zeros on wgpu) and
    /// will be overwritten, after checking the device's limits and features.
    pub(crate) fn uninit(
        gpu: &Gpu,
        shape: Shape,
        precision: Precision,
        what: &'static str,
    ) -> Result<Self> {
        shape.validate()?;
        gpu.check_precision(precision)?;
        let bytes = Self::bytes_of(shape, precision)?;
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
            precision,
        })
    }

    /// Writes `bytes` at the start of the buffer.
    fn write(&self, bytes: &[u8]) -> Result<()> {
        self.gpu.scoped("upload", || {
            self.gpu.queue().write_buffer(&self.buffer, 0, bytes)
        })
    }

    /// The bytes of a `shape` tensor in `precision`, rounded up to whole 4-byte words (copies
    /// and writes move whole words; an odd count of halves gets one more).
    pub(crate) fn bytes_of(shape: Shape, precision: Precision) -> Result<u64> {
        (shape.len()? as u64)
            .checked_mul(precision.bytes() as u64)
            .and_then(|b| b.checked_next_multiple_of(4))
            .ok_or_else(|| Error::Overflow {
                what: "tensor bytes",
                detail: format!("shape {shape}"),
            })
    }

    /// The shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// How the elements are stored.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The storage buffer, for callers who bind it in their own passes.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The GPU this tensor lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Reads the tensor back to the host as f32 (f16 widened exactly), blocking until done.
    /// Not on wasm32 (use [`GpuTensor::read_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self) -> Result<Tensor> {
        pollster::block_on(self.read_async())
    }

    /// Reads the tensor back to the host as f32 (f16 widened exactly).
    ///
    /// # Errors
    /// [`Error::Readback`] or [`Error::DeviceLost`].
    pub async fn read_async(&self) -> Result<Tensor> {
        let data = match self.precision {
            Precision::F32 => self.read_elements::<f32>().await?,
            Precision::F16 => self
                .read_halves()
                .await?
                .iter()
                .map(|h| h.to_f32())
                .collect(),
        };
        Tensor::new(self.shape, data)
    }

    /// Reads the tensor back as raw f16 values, blocking until done: an f16 tensor's bits
    /// unchanged, an f32 tensor's values rounded to the nearest f16. Not on wasm32 (use
    /// [`GpuTensor::read_f16_async`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f16(&self) -> Result<Vec<f16>> {
        pollster::block_on(self.read_f16_async())
    }

    /// Reads the tensor back as raw f16 values (see [`GpuTensor::read_f16`]).
    ///
    /// # Errors
    /// [`Error::Readback`] or [`Error::DeviceLost`].
    pub async fn read_f16_async(&self) -> Result<Vec<f16>> {
        match self.precision {
            Precision::F16 => self.read_halves().await,
            Precision::F32 => Ok(self
                .read_elements::<f32>()
                .await?
                .into_iter()
                .map(f16::from_f32)
                .collect()),
        }
    }

    /// The f16 elements, without the padding half of an odd count.
    async fn read_halves(&self) -> Result<Vec<f16>> {
        let mut bits = self.read_elements::<u16>().await?;
        bits.truncate(self.shape.len()?);
        Ok(bits.into_iter().map(f16::from_bits).collect())
    }

    /// The buffer's words as `T`s.
    async fn read_elements<T: bytemuck::Pod>(&self) -> Result<Vec<T>> {
        let bytes = Self::bytes_of(self.shape, self.precision)?;
        readback::read(&self.gpu, &self.buffer, bytes).await
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

/// [`Error::PrecisionMismatch`] naming `what` unless `tensor` is stored in `expected`.
pub(crate) fn check_precision(
    what: &'static str,
    tensor: &GpuTensor,
    expected: Precision,
) -> Result<()> {
    if tensor.precision() == expected {
        return Ok(());
    }
    Err(Error::PrecisionMismatch {
        what,
        expected,
        got: tensor.precision(),
    })
}
