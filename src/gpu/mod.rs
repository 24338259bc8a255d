//! Everything that talks to wgpu. Kept in this module so that wgpu's API churn touches one place.

mod cache;
mod choice;
mod context;
mod conv;
pub(crate) mod dispatch;
mod finish;
mod fused;
mod gemm;
mod network;
pub mod ops;
mod pack;
mod params;
pub(crate) mod pipelines;
mod readback;
mod recent;
mod scoped;
mod separable;
mod split;
mod tensor;
mod tune;
mod window;

pub use choice::{BlockPath, ConvKernel, Fusion, SplitK, Tuning};
pub use context::Gpu;
pub use conv::Conv2d;
pub use network::GpuNetwork;
pub use separable::SeparableBlock;
pub use tensor::GpuTensor;
pub use tune::Tuner;

/// Binds the whole of `buffer` at `binding`.
fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

/// The tensors one run (or one piece of a run split past the binding limit) binds: its input,
/// its output, and the skip tensor of a residual add, which has the output's shape.
#[derive(Debug, Clone)]
pub(crate) struct Bindings<'a> {
    pub(crate) input: wgpu::BufferBinding<'a>,
    pub(crate) output: wgpu::BufferBinding<'a>,
    pub(crate) skip: Option<wgpu::BufferBinding<'a>>,
}

impl Bindings<'_> {
    /// The skip tensor's entry at [`pipelines::SKIP_BINDING`], if the run has one.
    pub(crate) fn skip_entry(&self) -> Option<wgpu::BindGroupEntry<'_>> {
        self.skip
            .clone()
            .map(|skip| binding(pipelines::SKIP_BINDING, skip))
    }
}

/// Binds `buffer` (a range of a buffer) at `binding`.
fn binding(binding: u32, buffer: wgpu::BufferBinding<'_>) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: wgpu::BindingResource::Buffer(buffer),
    }
}

// The handles are shared between threads (`tests/concurrency.rs` runs them from 8 at once);
// this fails to compile if a field ever makes one of them `!Send` or `!Sync`. Not on wasm32,
// where wgpu's handles hold JavaScript objects (one thread only).
#[cfg(not(target_arch = "wasm32"))]
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Gpu>();
    send_sync::<GpuTensor>();
    send_sync::<Conv2d>();
    send_sync::<SeparableBlock>();
};

/// `len` integers in [-3, 3] from `seed`, for the crate's own GPU tests: any sum of their
/// products a test makes is exact in `f32`, so GPU and reference agree bit for bit.
#[cfg(test)]
fn small_ints(seed: u64, len: usize) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| rng.random_range(-3i32..=3) as f32)
        .collect()
}
