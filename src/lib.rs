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

pub mod accounting;
pub mod checkpoint;
pub mod cpu;
mod error;
mod gpu;
pub mod imagenet;
pub mod layers;
pub mod networks;
pub mod ops;
pub mod preprocess;
mod spec;
mod tensor;

pub use error::{Error, Result};
pub use gpu::ops as gpu_ops;
pub use gpu::{
    BlockPath, Conv2d, ConvKernel, Fusion, Gpu, GpuNetwork, GpuTensor, SeparableBlock, SplitK,
};
pub use spec::{Activation, Conv2dSpec, ConvKind, Padding, Pads, Shape};
pub use tensor::Tensor;

/// The README's usage example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
