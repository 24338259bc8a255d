//! CPU implementations, kept apart from the GPU code.
//!
//! [`reference`](mod@reference) is the plain direct convolution in `f64` that every GPU result is checked
//! against; [`ops`](crate::ops::cpu) holds the references for pooling, add, concatenation and channel shuffle,
//! and [`network`] runs whole [`crate::networks::Network`]s with them. [`fast`](mod@fast) is the
//! multi-threaded, vectorised path for real work on the CPU, checked against the reference like
//! the GPU kernels are; [`fast::CpuNetwork`] runs whole networks on it.

#[cfg(not(target_arch = "wasm32"))]
pub mod fast;
pub mod network;
pub(crate) mod ops;
pub mod reference;
