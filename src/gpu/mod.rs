//! Everything that talks to wgpu. Kept in this module so that wgpu's API churn touches one place.

mod context;
mod conv;
pub(crate) mod dispatch;
mod network;
pub mod ops;
mod pack;
mod params;
pub(crate) mod pipelines;
mod readback;
mod separable;
mod tensor;

pub use context::Gpu;
pub use conv::Conv2d;
pub use network::GpuNetwork;
pub use separable::SeparableBlock;
pub use tensor::GpuTensor;
