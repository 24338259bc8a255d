//! [`Gpu`]: the adapter, device and queue, the pipelines, and the device's health.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::pipelines::Pipelines;
use super::scoped::{catch_errors, ScopedDevice};
use super::tune::Tuner;
use crate::error::{Error, Result};
use crate::precision::Precision;

/// A GPU to run convolutions on: a wgpu device and queue, their limits, and a cache of
/// compiled pipelines. Cheap to clone (an `Arc`), `Send + Sync`.
///
/// # Example
/// ```no_run
/// let gpu = sepconv::Gpu::new()?;
/// println!("{} ({:?})", gpu.adapter_name(), gpu.backend());
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Clone)]
pub struct Gpu {
    inner: Arc<Inner>,
}

struct Inner {
    device: ScopedDevice,
    pipelines: Pipelines,
    /// Every measured choice of the device's convs, blocks and networks.
    tuner: Tuner,
    /// Compute dispatches recorded on the device so far ([`Gpu::dispatch_count`]).
    dispatches: AtomicU64,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.device.info.name)
            .field("backend", &self.inner.device.info.backend)
            .finish_non_exhaustive()
    }
}

impl Gpu {
    /// Picks the best adapter and opens a device on it, blocking until done.
    /// See [`Gpu::new_async`]. Not on wasm32, where nothing may block.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// Picks the best adapter and opens a device on it.
    ///
    /// Honours wgpu's environment variables: `WGPU_BACKEND` (e.g. `vulkan`, `gl`) limits the
    /// backends, `WGPU_ADAPTER_NAME` picks the first adapter whose name contains it
    /// (case-insensitive), `WGPU_POWER_PREF` (`high`/`low`) ranks discrete or integrated GPUs
    /// first. Otherwise discrete > integrated > virtual > software, native APIs before GL.
    /// The device is created with the adapter's own limits, not wgpu's defaults, so large
    /// tensors fit, and with `SHADER_F16` where the adapter offers it ([`Gpu::supports_f16`]).
    ///
    /// # Errors
    /// [`Error::NoAdapter`] (with a hint on how to get one), [`Error::RequestDevice`].
    pub async fn new_async() -> Result<Self> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
        let adapters = instance.enumerate_adapters(backends).await;
        let adapter = choose_adapter(adapters)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        // The one optional feature used: f16 tensors ([`crate::Precision::F16`]).
        let features = adapter.features() & wgpu::Features::SHADER_F16;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sepconv"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice {
                adapter: info.name.clone(),
                message: e.to_string(),
            })?;
        Self::build(device, queue, info, limits)
    }

    /// Wraps a device and queue the caller already has (made with [`crate::wgpu`], this
    /// crate's wgpu, so that the versions match). The device's own limits are used; it needs
    /// no optional features (f16 tensors need `SHADER_F16`, [`Gpu::supports_f16`]), and its
    /// limits decide what runs: at least 4 storage buffers per
    /// shader stage for any conv (6 for the fused kernel, and 64 invocations per workgroup for
    /// the tiled kernels, which are skipped otherwise), and `max_storage_buffer_binding_size` /
    /// `max_buffer_size` bound the tensors. `Limits::downlevel_defaults()` is enough for
    /// everything but the fused kernel.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the device cannot hold the crate's bind-group layout (its limits
    /// allow fewer than 4 storage buffers per shader stage, for example).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let info = device.adapter_info();
        let limits = device.limits();
        Self::build(device, queue, info, limits)
    }

    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
    ) -> Result<Self> {
        let pipelines = catch_errors(&device, "bind-group layout", || Pipelines::new(&device))?;
        let tuner = Tuner::new(&info, &limits);
        Ok(Self {
            inner: Arc::new(Inner {
                device: ScopedDevice::new(device, queue, info, limits),
                pipelines,
                tuner,
                dispatches: AtomicU64::new(0),
            }),
        })
    }

    /// Compute dispatches recorded on this device so far by every conv, block, network and op
    /// (kernel timings included), for counting what a run costs: the difference across one
    /// run is that run's dispatches. A dispatch is a kernel launch, the unit a GPU pays a
    /// fixed cost for and a fused epilogue saves.
    pub fn dispatch_count(&self) -> u64 {
        self.inner.dispatches.load(Ordering::Relaxed)
    }

    /// Counts one recorded dispatch (see [`Gpu::dispatch_count`]).
    pub(crate) fn count_dispatch(&self) {
        self.inner.dispatches.fetch_add(1, Ordering::Relaxed);
    }

    /// The adapter's name, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub fn adapter_name(&self) -> &str {
        &self.inner.device.info.name
    }

    /// The graphics API in use (Vulkan, Metal, Dx12, Gl).
    pub fn backend(&self) -> wgpu::Backend {
        self.inner.device.info.backend
    }

    /// Everything wgpu knows about the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.device.info
    }

    /// Whether the device can hold and compute on f16 tensors ([`crate::Precision::F16`]):
    /// it was created with `wgpu::Features::SHADER_F16` (Mesa's lavapipe has it; most GL
    /// drivers do not).
    pub fn supports_f16(&self) -> bool {
        self.device()
            .features()
            .contains(wgpu::Features::SHADER_F16)
    }

    /// [`Error::Unsupported`] naming the adapter and what it lacks unless this device can
    /// hold tensors of `precision`.
    pub(crate) fn check_precision(&self, precision: Precision) -> Result<()> {
        match precision {
            Precision::F16 if !self.supports_f16() => Err(Error::Unsupported {
                reason: format!(
                    "f16 tensors need wgpu::Features::SHADER_F16, which this device on adapter \
                     {} ({:?}) lacks (the adapter does not offer it, or the device was \
                     requested without it); use Precision::F32",
                    self.adapter_name(),
                    self.backend(),
                ),
            }),
            _ => Ok(()),
        }
    }

    /// The limits the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.device.limits
    }

    /// The wgpu device, for callers who mix their own work with this crate's.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.device.queue
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
    }

    /// The device's tuner: the choices made by measurement, their cache file, and the
    /// [`crate::Tuning`] new convs, blocks and networks take. To pin every kernel choice (the
    /// same bits in every process): `gpu.tuner().set_tuning(Tuning::pinned())`.
    pub fn tuner(&self) -> &Tuner {
        &self.inner.tuner
    }

    /// Whether two handles are one `Gpu`: clones of each other. Only those share tensors and
    /// convs. Two `Gpu`s made with [`Gpu::from_device`] from one wgpu device are not one:
    /// wgpu cannot tell devices of different instances apart (their handles compare by an id
    /// that each instance numbers from the start), each `Gpu` has its own pipelines and
    /// tuner, and a tensor made on one is refused by the other ([`Error::DeviceMismatch`]).
    /// Make one `Gpu` per device and clone it.
    pub fn same_device(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// [`Error::DeviceMismatch`] naming `what` unless `other` is this device.
    pub(crate) fn check_same(&self, what: &'static str, other: &Gpu) -> Result<()> {
        if self.same_device(other) {
            Ok(())
        } else {
            Err(Error::DeviceMismatch { what })
        }
    }

    /// Blocks until all submitted work has finished.
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is gone; on wasm32 always
    /// [`Error::Unsupported`]: a web page cannot block (await [`crate::GpuTensor::read_async`]).
    pub fn wait(&self) -> Result<()> {
        self.inner.device.wait()
    }

    /// The device with its error scopes, for the layers below (pipelines).
    pub(crate) fn dev(&self) -> &ScopedDevice {
        &self.inner.device
    }

    // The device's checked operations, for the kernels (see `ScopedDevice`).

    pub(crate) fn lost_or(&self, err: Error) -> Error {
        self.inner.device.lost_or(err)
    }

    pub(crate) fn encoder(&self, label: &'static str) -> Result<wgpu::CommandEncoder> {
        self.inner.device.encoder(label)
    }

    pub(crate) fn buffer_init(
        &self,
        label: &'static str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        self.inner.device.buffer_init(label, contents, usage)
    }

    pub(crate) fn scoped<T>(&self, during: &'static str, f: impl FnOnce() -> T) -> Result<T> {
        self.inner.device.scoped(during, f)
    }

    pub(crate) fn check_binding_size(&self, what: &'static str, bytes: u64) -> Result<()> {
        self.inner.device.check_binding_size(what, bytes)
    }

    pub(crate) fn check_buffer_size(&self, what: &'static str, bytes: u64) -> Result<()> {
        self.inner.device.check_buffer_size(what, bytes)
    }
}

/// Ranks adapters: `WGPU_ADAPTER_NAME` first if set, then by device type (respecting
/// `WGPU_POWER_PREF`), then native APIs before GL.
fn choose_adapter(adapters: Vec<wgpu::Adapter>) -> Result<wgpu::Adapter> {
    if adapters.is_empty() {
        let backend = std::env::var("WGPU_BACKEND").unwrap_or_else(|_| "all".into());
        return Err(Error::NoAdapter {
            details: format!("no adapter on backends {backend}"),
        });
    }
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted_lower = wanted.to_lowercase();
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lower))
            .ok_or_else(|| Error::NoAdapter {
                details: format!("WGPU_ADAPTER_NAME={wanted:?} matches none of {names:?}"),
            });
    }
    let low_power = wgpu::PowerPreference::from_env() == Some(wgpu::PowerPreference::LowPower);
    let rank = |a: &wgpu::Adapter| {
        let info = a.get_info();
        let device = match info.device_type {
            wgpu::DeviceType::DiscreteGpu if low_power => 1,
            wgpu::DeviceType::IntegratedGpu if low_power => 0,
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 3,
            wgpu::DeviceType::Other => 4,
        };
        let api = match info.backend {
            wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
            _ => 1,
        };
        (device, api)
    };
    // min_by_key keeps the first of equals, i.e. wgpu's enumeration order.
    adapters
        .into_iter()
        .min_by_key(rank)
        .ok_or_else(|| Error::NoAdapter {
            details: "no adapter".into(),
        })
}
