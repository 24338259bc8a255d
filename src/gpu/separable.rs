//! [`SeparableBlock`]: depthwise then pointwise, in one submission.

use super::{Conv2d, GpuTensor};
use crate::cpu::reference::check_separable;
use crate::error::{Error, Result};
use crate::spec::Shape;
use std::sync::{Arc, Mutex};

/// A depthwise separable block: a depthwise [`Conv2d`] (with its bias and activation), then
/// a pointwise one. Both dispatches go into one command submission and the intermediate
/// tensor never leaves the GPU; the block keeps the intermediate of its last input shape, so
/// repeated runs allocate nothing but their output.
#[derive(Debug)]
pub struct SeparableBlock {
    depthwise: Conv2d,
    pointwise: Conv2d,
    intermediate: Mutex<Option<Arc<GpuTensor>>>,
}

impl SeparableBlock {
    /// Pairs a depthwise and a pointwise convolution made on the same GPU.
    ///
    /// # Errors
    /// [`Error::Incompatible`] unless the first is depthwise, the second pointwise and the
    /// channels chain; [`Error::DeviceMismatch`] if they live on different GPUs.
    pub fn new(depthwise: Conv2d, pointwise: Conv2d) -> Result<Self> {
        check_separable(depthwise.spec(), pointwise.spec())?;
        if !depthwise.gpu().same_device(pointwise.gpu()) {
            return Err(Error::DeviceMismatch);
        }
        Ok(Self {
            depthwise,
            pointwise,
            intermediate: Mutex::new(None),
        })
    }

    /// The depthwise half.
    pub fn depthwise(&self) -> &Conv2d {
        &self.depthwise
    }

    /// The pointwise half.
    pub fn pointwise(&self) -> &Conv2d {
        &self.pointwise
    }

    /// Shape of the intermediate (depthwise output) and final output for `input`.
    pub fn shapes(&self, input: Shape) -> Result<(Shape, Shape)> {
        let mid = self.depthwise.output_shape(input)?;
        Ok((mid, self.pointwise.output_shape(mid)?))
    }

    /// Runs both convolutions in one submission; the result stays on the GPU.
    pub fn run(&self, input: &GpuTensor) -> Result<GpuTensor> {
        let gpu = self.depthwise.gpu();
        let (_, out_shape) = self.shapes(input.shape())?;
        let output = GpuTensor::uninit(gpu, out_shape, "separable.output")?;
        self.run_into(input, &output)?;
        Ok(output)
    }

    /// Runs both convolutions in one submission into `output`.
    pub fn run_into(&self, input: &GpuTensor, output: &GpuTensor) -> Result<()> {
        let gpu = self.depthwise.gpu();
        let (mid_shape, _) = self.shapes(input.shape())?;
        // Submissions run in order on the queue, so concurrent runs may share it.
        let mid = {
            let mut kept = self.intermediate.lock().unwrap_or_else(|e| e.into_inner());
            match kept.as_ref().filter(|t| t.shape() == mid_shape) {
                Some(t) => Arc::clone(t),
                None => {
                    let t = Arc::new(GpuTensor::uninit(gpu, mid_shape, "separable.intermediate")?);
                    *kept = Some(Arc::clone(&t));
                    t
                }
            }
        };
        let mut encoder = gpu.encoder("separable.encoder")?;
        self.depthwise.encode(&mut encoder, input, &mid)?;
        self.pointwise.encode(&mut encoder, &mid, output)?;
        gpu.scoped("separable dispatch", || {
            gpu.queue().submit([encoder.finish()]);
        })
    }
}
