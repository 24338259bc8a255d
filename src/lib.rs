//! # sepconv
//!
//! Depthwise, pointwise (1×1) and grouped 2-D convolution as WGSL compute shaders on
//! [`wgpu`], with a CPU reference that checks every GPU result.
//!
//! Tensors are NCHW `f32`; weights follow PyTorch, `[c_out, c_in/groups, kh, kw]`, bias
//! `[c_out]`, and output sizes follow PyTorch's rule. One [`Conv2dSpec`] describes a layer;
//! it validates itself, computes output shapes and counts parameters and MACs
//! ([`accounting`]). [`cpu::reference::conv2d`] runs it on the CPU; [`Conv2d`] runs it on a
//! [`Gpu`], choosing the [`ConvKind`] (depthwise, pointwise or grouped kernel) from the spec.
//!
//! ```
//! use sepconv::{cpu::reference, Activation, Conv2dSpec, Padding, Shape, Tensor};
//!
//! let spec = Conv2dSpec::depthwise(8, [3, 3])
//!     .padding(Padding::uniform(1))
//!     .activation(Activation::Relu6);
//! let x = Tensor::full(Shape::new(1, 8, 5, 5), 1.0)?;
//! let y = reference::conv2d(&spec, &x, &vec![0.5; spec.weight_count()], Some(&[0.0; 8]))?;
//! assert_eq!(y.shape(), Shape::new(1, 8, 5, 5));
//! assert_eq!(y.at(0, 0, 2, 2), 4.5); // 9 taps × 0.5, inside the image
//! assert_eq!(y.at(0, 0, 0, 0), 2.0); // 4 taps at the corner, the rest is padding
//! # Ok::<(), sepconv::Error>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// On wasm32 wgpu's handles hold JavaScript objects and are neither Send nor Sync; the crate's
// Arcs are for native threads and cost nothing on the web's one thread.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

pub mod accounting;
mod activation;
pub mod checkpoint;
pub mod cpu;
#[cfg(not(target_arch = "wasm32"))]
mod device;
mod error;
mod gpu;
pub mod imagenet;
pub mod networks;
mod ops_spec;
mod padding;
mod precision;
pub mod preprocess;
mod rng;
mod shape;
mod spec;
mod tensor;

#[cfg(not(target_arch = "wasm32"))]
pub use cpu::fast::CpuNetwork;
#[cfg(not(target_arch = "wasm32"))]
pub use device::{Device, Engine, Runner, Selection};
pub use error::{Error, Result};
pub use gpu::{
    BlockPath, Conv2d, ConvKernel, Fusion, Gpu, GpuNetwork, GpuTensor, SeparableBlock, SplitK,
    Tuner, Tuning,
};
/// The `half` crate this one uses for raw f16 values ([`GpuTensor::from_f16`],
/// [`GpuTensor::read_f16`]).
pub use half;
pub use precision::Precision;
pub use spec::{Activation, Conv2dSpec, ConvKind, Padding, Pads, Residual, Shape};
pub use tensor::Tensor;
/// The wgpu this crate is built on, for callers who bring their own device
/// ([`Gpu::from_device`]): the same version, so its types match.
pub use wgpu;

/// The small steps whole networks need besides convolution: pooling, residual add, channel
/// concatenation, a standalone activation and channel shuffle. The parameters and shape rules
/// are here; [`ops::cpu`] runs each op on the CPU (the reference), [`ops::gpu`] on the GPU.
pub mod ops {
    pub use crate::ops_spec::*;

    /// The ops on the CPU: plain loops, PyTorch's semantics written out, the oracle of the
    /// GPU kernels.
    pub mod cpu {
        pub use crate::cpu::ops::*;
    }

    /// The ops on the GPU, one WGSL file per family: they take and return
    /// [`crate::GpuTensor`]s, so a chain never leaves the GPU; the `_into` forms write into a
    /// tensor the caller made.
    pub mod gpu {
        pub use crate::gpu::ops::*;
    }
}

/// The README's usage example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
