//! Max, average and global average pooling (shaders/pool.wgsl).

use super::params::{PoolParams, POOL_AVG_EXCLUDE_PAD, POOL_AVG_INCLUDE_PAD, POOL_MAX};
use super::{check_output, encode_op, submit, u32_of, OpShader};
use crate::error::Result;
use crate::gpu::GpuTensor;
use crate::ops_spec::{Pool2d, PoolKind};

/// Pools `x` with `pool` on the GPU. Global average pooling is
/// [`Pool2d::global_avg`]`(h, w)`.
///
/// # Errors
/// The shape errors of [`Pool2d::output_shape`], [`crate::Error::TooLarge`],
/// [`crate::Error::Gpu`].
pub fn pool2d(x: &GpuTensor, pool: &Pool2d) -> Result<GpuTensor> {
    let shape = pool.output_shape(x.shape())?;
    let out = GpuTensor::uninit(x.gpu(), shape, x.precision(), "pool.output")?;
    pool2d_into(x, pool, &out)?;
    Ok(out)
}

/// [`pool2d`] into `output`.
pub fn pool2d_into(x: &GpuTensor, pool: &Pool2d, output: &GpuTensor) -> Result<()> {
    submit(x.gpu(), "pool.encoder", |e| encode_pool(e, x, pool, output))
}

pub(crate) fn encode_pool(
    encoder: &mut wgpu::CommandEncoder,
    x: &GpuTensor,
    pool: &Pool2d,
    output: &GpuTensor,
) -> Result<()> {
    let input = x.shape();
    let out = pool.output_shape(input)?;
    check_output(output, out)?;
    let pads = pool.as_window(input.c).pads(input.h, input.w);
    let u = |what, v| u32_of(what, v);
    let p = PoolParams {
        n: u("batch", input.n)?,
        c: u("channels", input.c)?,
        h_in: u("height", input.h)?,
        w_in: u("width", input.w)?,
        h_out: u("height", out.h)?,
        w_out: u("width", out.w)?,
        k_h: u("kernel", pool.kernel[0])?,
        k_w: u("kernel", pool.kernel[1])?,
        stride_h: u("stride", pool.stride[0])?,
        stride_w: u("stride", pool.stride[1])?,
        pad_top: u("padding", pads.top)?,
        pad_left: u("padding", pads.left)?,
        mode: match pool.kind {
            PoolKind::Max => POOL_MAX,
            PoolKind::Avg {
                count_include_pad: true,
            } => POOL_AVG_INCLUDE_PAD,
            PoolKind::Avg {
                count_include_pad: false,
            } => POOL_AVG_EXCLUDE_PAD,
        },
        out_len: u("output elements", out.len()?)?,
        pad0: 0,
        pad1: 0,
    };
    encode_op(
        encoder,
        OpShader::Pool,
        bytemuck::bytes_of(&p),
        x,
        x,
        output,
    )
}
