//! [`Finish`]: how a convolution's run ends past its sums and bias, the part of a run the
//! conv, the separable block, the fused kernel and the network share.

use super::tensor::check_precision;
use super::{Gpu, GpuTensor};
use crate::error::{Error, Result};
use crate::spec::{Activation, Conv2dSpec, Residual};
use crate::tensor::check_shape;

/// How a run ends past its sums and bias: the activation (the spec's, or another where a
/// network fuses the activation of the node after the conv) and, optionally, a skip tensor
/// added before or after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finish<'a> {
    pub(crate) activation: Activation,
    pub(crate) skip: Option<(&'a GpuTensor, Residual)>,
}

impl<'a> Finish<'a> {
    /// The end `spec` says: its activation, no residual add.
    pub(crate) fn of(spec: &Conv2dSpec) -> Self {
        Self {
            activation: spec.activation,
            skip: None,
        }
    }

    /// The end `spec` says, with `skip` added at `residual`.
    pub(crate) fn with_skip(spec: &Conv2dSpec, skip: &'a GpuTensor, residual: Residual) -> Self {
        Self {
            skip: Some((skip, residual)),
            ..Self::of(spec)
        }
    }

    /// Where a residual add joins, if there is one.
    pub(crate) fn residual(&self) -> Option<Residual> {
        self.skip.map(|(_, residual)| residual)
    }

    /// Checks the skip tensor, if any, against `output` (already checked): on `gpu`, of the
    /// output's shape and precision, and not the output itself (the kernels read one and write
    /// the other in one pass).
    pub(crate) fn check(&self, gpu: &Gpu, output: &GpuTensor) -> Result<()> {
        let Some((skip, _)) = self.skip else {
            return Ok(());
        };
        gpu.check_same("the skip tensor", skip.gpu())?;
        check_shape("skip tensor", output.shape(), skip.shape())?;
        check_precision("the skip tensor", skip, output.precision())?;
        if skip.buffer() == output.buffer() {
            return Err(Error::Incompatible {
                reason: format!(
                    "the skip tensor of a residual add ({}) is the output tensor; the kernels \
                     read the skip and write the output in one pass, so they must differ",
                    skip.shape()
                ),
            });
        }
        Ok(())
    }
}
