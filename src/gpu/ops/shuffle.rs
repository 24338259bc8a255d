//! ShuffleNet's channel shuffle (shaders/shuffle.wgsl).

use super::params::ShuffleParams;
use super::{check_output, encode_op, submit, u32_of, OpShader};
use crate::error::Result;
use crate::gpu::GpuTensor;
use crate::ops_spec::shuffle_shape;

/// Shuffles the channels of `x` in `groups` groups on the GPU
/// (see [`crate::ops_spec::shuffle_source_channel`]).
///
/// # Errors
/// [`crate::Error::GroupsDoNotDivide`], [`crate::Error::Zero`], [`crate::Error::TooLarge`],
/// [`crate::Error::Gpu`].
pub fn channel_shuffle(x: &GpuTensor, groups: usize) -> Result<GpuTensor> {
    let shape = shuffle_shape(x.shape(), groups)?;
    let out = GpuTensor::uninit(x.gpu(), shape, x.precision(), "shuffle.output")?;
    channel_shuffle_into(x, groups, &out)?;
    Ok(out)
}

/// [`channel_shuffle`] into `output`.
pub fn channel_shuffle_into(x: &GpuTensor, groups: usize, output: &GpuTensor) -> Result<()> {
    submit(x.gpu(), "shuffle.encoder", |e| {
        encode_shuffle(e, x, groups, output)
    })
}

pub(crate) fn encode_shuffle(
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    groups: usize,
    output: &GpuTensor,
) -> Result<()> {
    let shape = shuffle_shape(x.shape(), groups)?;
    check_output(output, shape)?;
    let p = ShuffleParams {
        c: u32_of("channels", shape.c)?,
        groups: u32_of("groups", groups)?,
        plane: u32_of("plane", shape.h * shape.w)?,
        out_len: u32_of("output elements", shape.len()?)?,
    };
    encode_op(
        encoder,
        OpShader::Shuffle,
        bytemuck::bytes_of(&p),
        x,
        x,
        output,
    )
}
