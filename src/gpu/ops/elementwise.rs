//! Residual add, channel concatenation and standalone activation (shaders/elementwise.wgsl).

use super::params::{ElementwiseParams, MODE_ACTIVATION, MODE_ADD, MODE_CONCAT};
use super::{check_output, encode_op, submit, u32_of, OpShader};
use crate::error::Result;
use crate::gpu::GpuTensor;
use crate::ops_spec::{add_shape, concat_shape};
use crate::spec::{Activation, Shape};

fn params(
    mode: u32,
    activation: Activation,
    a: Shape,
    b: Shape,
    out: Shape,
) -> Result<ElementwiseParams> {
    activation.validate()?;
    let [alpha, beta] = activation.parameter_bits();
    Ok(ElementwiseParams {
        mode,
        activation: activation.code(),
        out_len: u32_of("output elements", out.len()?)?,
        plane: u32_of("plane", out.h * out.w)?,
        c_a: u32_of("channels", a.c)?,
        c_b: u32_of("channels", b.c)?,
        c_out: u32_of("channels", out.c)?,
        pad0: 0,
        alpha,
        beta,
        pad1: 0,
        pad2: 0,
    })
}

/// `activation(a + b)`, elementwise, on the GPU (a residual add with its fused activation).
///
/// # Errors
/// [`crate::Error::Incompatible`] for different shapes, [`crate::Error::DeviceMismatch`],
/// [`crate::Error::TooLarge`], [`crate::Error::Gpu`].
pub fn add(a: &GpuTensor, b: &GpuTensor, activation: Activation) -> Result<GpuTensor> {
    let out = GpuTensor::uninit(
        a.gpu(),
        add_shape(a.shape(), b.shape())?,
        a.precision(),
        "add.output",
    )?;
    add_into(a, b, &out, activation)?;
    Ok(out)
}

/// [`add`] into `output`, which must have the operands' shape.
pub fn add_into(
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    submit(a.gpu(), "add.encoder", |e| {
        encode_add(e, a, b, output, activation)
    })
}

pub(crate) fn encode_add(
    encoder: &mut wgpu::CommandEncoder,
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    let shape = add_shape(a.shape(), b.shape())?;
    encode_pair(encoder, MODE_ADD, shape, a, b, output, activation)
}

/// Records the elementwise shader in `mode` on two operands into `output` of `shape`.
fn encode_pair(
    encoder: &mut wgpu::CommandEncoder,
    mode: u32,
    shape: Shape,
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    check_output(output, shape)?;
    let p = params(mode, activation, a.shape(), b.shape(), shape)?;
    encode_op(
        encoder,
        OpShader::Elementwise,
        bytemuck::bytes_of(&p),
        a,
        b,
        output,
    )
}

/// `activation([a, b])`: `a`'s channels, then `b`'s, on the GPU.
///
/// # Errors
/// [`crate::Error::Incompatible`] when batch or spatial sizes differ, and those of [`add`].
pub fn concat(a: &GpuTensor, b: &GpuTensor, activation: Activation) -> Result<GpuTensor> {
    let out = GpuTensor::uninit(
        a.gpu(),
        concat_shape(a.shape(), b.shape())?,
        a.precision(),
        "concat.output",
    )?;
    concat_into(a, b, &out, activation)?;
    Ok(out)
}

/// [`concat()`] into `output`.
pub fn concat_into(
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    submit(a.gpu(), "concat.encoder", |e| {
        encode_concat(e, a, b, output, activation)
    })
}

pub(crate) fn encode_concat(
    encoder: &mut wgpu::CommandEncoder,
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    let shape = concat_shape(a.shape(), b.shape())?;
    encode_pair(encoder, MODE_CONCAT, shape, a, b, output, activation)
}

/// `activation(x)` on its own, on the GPU.
///
/// # Errors
/// [`crate::Error::TooLarge`], [`crate::Error::Gpu`].
pub fn activation(x: &GpuTensor, activation: Activation) -> Result<GpuTensor> {
    let out = GpuTensor::uninit(x.gpu(), x.shape(), x.precision(), "activation.output")?;
    activation_into(x, &out, activation)?;
    Ok(out)
}

/// [`activation()`] into `output`.
pub fn activation_into(x: &GpuTensor, output: &GpuTensor, activation: Activation) -> Result<()> {
    submit(x.gpu(), "activation.encoder", |e| {
        encode_activation(e, x, output, activation)
    })
}

pub(crate) fn encode_activation(
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    output: &GpuTensor,
    activation: Activation,
) -> Result<()> {
    check_output(output, x.shape())?;
    let p = params(MODE_ACTIVATION, activation, x.shape(), x.shape(), x.shape())?;
    encode_op(
        encoder,
        OpShader::Elementwise,
        bytemuck::bytes_of(&p),
        x,
        x,
        output,
    )
}
