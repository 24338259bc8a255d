//! CPU implementations, kept apart from the GPU code.
//!
//! [`reference`] is the plain direct convolution in `f64` that every GPU result is checked
//! against.

pub mod reference;
