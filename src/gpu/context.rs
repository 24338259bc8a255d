//! [`Gpu`]: the adapter, device and queue, the pipelines, and the device's health.

use std::sync::{Arc, Mutex};

use super::conv::{ConvKernel, LaunchKey, SplitK};
use super::pipelines::Pipelines;
use super::recent::Recent;
use super::separable::{BlockKey, BlockPath};
use crate::error::{Error, Result};

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
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    pipelines: Pipelines,
    /// The kernels [`crate::ConvKernel::Auto`] measured fastest, per run (spec and shapes)
    /// and split-K setting, shared by every conv on the device: convs with the same spec
    /// and shapes (MobileNet's five 14×14 blocks) measure once.
    conv_choices: Recent<(LaunchKey, SplitK), ConvKernel>,
    /// The same for [`crate::Fusion::Auto`]'s paths of separable blocks.
    block_choices: Recent<BlockKey, BlockPath>,
    /// Set by the device-lost callback; every operation checks it first.
    lost: Arc<Mutex<Option<String>>>,
}

/// Distinct runs whose measured kernel choice (or block path) a [`Gpu`] keeps for all its
/// convs (blocks): every pointwise and grouped layer of a large network.
const CONV_CHOICES: usize = 64;

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
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
    /// tensors fit.
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
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("sepconv"),
                required_features: wgpu::Features::empty(),
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

    /// Wraps a device and queue the caller already has. The device's own limits are used.
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
        let lost = Arc::new(Mutex::new(None));
        let lost_flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            let mut slot = lost_flag.lock().unwrap_or_else(|e| e.into_inner());
            *slot = Some(format!("{reason:?}: {message}"));
        });
        // In a browser, errors reach error scopes only asynchronously (see `catch_errors`): the
        // first one marks the device unusable, and the next operation reports it.
        #[cfg(target_arch = "wasm32")]
        {
            let flag = Arc::clone(&lost);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut slot = flag.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert_with(|| format!("GPU error reported by the browser: {e}"));
            }));
        }
        let pipelines = catch_errors(&device, "bind-group layout", || Pipelines::new(&device))?;
        Ok(Self {
            inner: Arc::new(Inner {
                device,
                queue,
                info,
                limits,
                pipelines,
                conv_choices: Recent::new(CONV_CHOICES),
                block_choices: Recent::new(CONV_CHOICES),
                lost,
            }),
        })
    }

    /// The adapter's name, e.g. `"llvmpipe (LLVM 15.0.6, 256 bits)"`.
    pub fn adapter_name(&self) -> &str {
        &self.inner.info.name
    }

    /// The graphics API in use (Vulkan, Metal, Dx12, Gl).
    pub fn backend(&self) -> wgpu::Backend {
        self.inner.info.backend
    }

    /// Everything wgpu knows about the adapter.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The limits the device was created with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The wgpu device, for callers who mix their own work with this crate's.
    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
    }

    /// Measured kernel choices shared by the device's convs (see `Inner::conv_choices`).
    pub(crate) fn conv_choices(&self) -> &Recent<(LaunchKey, SplitK), ConvKernel> {
        &self.inner.conv_choices
    }

    /// Measured paths shared by the device's separable blocks.
    pub(crate) fn block_choices(&self) -> &Recent<BlockKey, BlockPath> {
        &self.inner.block_choices
    }

    /// Whether two handles refer to the same device.
    pub fn same_device(&self, other: &Gpu) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Blocks until all submitted work has finished.
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is gone; on wasm32 always
    /// [`Error::Unsupported`]: a web page cannot block (await [`crate::GpuTensor::read_async`]).
    pub fn wait(&self) -> Result<()> {
        if cfg!(target_arch = "wasm32") {
            return Err(Error::Unsupported {
                reason: "Gpu::wait blocks, which a web page cannot do; await a read_async".into(),
            });
        }
        self.check_alive()?;
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| self.lost_or(Error::Readback(e.to_string())))
    }

    /// [`Error::DeviceLost`] if the device-lost callback has fired.
    pub(crate) fn check_alive(&self) -> Result<()> {
        let lost = self.inner.lost.lock().unwrap_or_else(|e| e.into_inner());
        match lost.as_ref() {
            Some(msg) => Err(Error::DeviceLost(msg.clone())),
            None => Ok(()),
        }
    }

    /// `err`, unless the device was lost meanwhile, which explains it better.
    ///
    /// wgpu reports a loss (a destroyed device included) through the device-lost callback,
    /// which it calls from `poll`; a non-blocking poll first gives it the chance.
    pub(crate) fn lost_or(&self, err: Error) -> Error {
        if self.check_alive().is_ok() {
            let _ = self.inner.device.poll(wgpu::PollType::Poll);
        }
        self.check_alive().err().unwrap_or(err)
    }

    /// A command encoder, created inside error scopes (creating one on a lost device is a
    /// wgpu error, which would otherwise reach the uncaptured-error handler and panic).
    /// Every operation starts here, so it first gives a pending device-lost callback its
    /// chance (a non-blocking poll): a run on a device destroyed since the last call reports
    /// the loss even when it creates nothing else.
    pub(crate) fn encoder(&self, label: &'static str) -> Result<wgpu::CommandEncoder> {
        if self.check_alive().is_ok() {
            let _ = self.inner.device.poll(wgpu::PollType::Poll);
        }
        self.scoped(label, || {
            self.inner
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
        })
    }

    /// A buffer of `usage` holding `contents`, written through a mapping at creation (as
    /// wgpu's `create_buffer_init` does, without its panic when the device is gone).
    pub(crate) fn buffer_init(
        &self,
        label: &'static str,
        contents: &[u8],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let align = wgpu::COPY_BUFFER_ALIGNMENT;
        let size = (contents.len() as u64).div_ceil(align).max(1) * align;
        let buffer = self.scoped(label, || {
            let buffer = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: true,
            });
            let written = buffer
                .get_mapped_range_mut(..)
                .map(|mut view| view.slice(..contents.len()).copy_from_slice(contents));
            buffer.unmap();
            written.map(|()| buffer)
        })?;
        buffer.map_err(|e| {
            self.lost_or(Error::Gpu {
                kind: "validation",
                during: label,
                message: e.to_string(),
            })
        })
    }

    /// Runs `f` inside validation, out-of-memory and internal error scopes and turns whatever
    /// they caught into [`Error::Gpu`]. Scopes are thread-local in wgpu, so concurrent callers
    /// on other threads do not see each other's errors.
    pub(crate) fn scoped<T>(&self, during: &'static str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let value = catch_errors(&self.inner.device, during, f).map_err(|e| self.lost_or(e))?;
        self.check_alive()?;
        Ok(value)
    }

    /// Checks that a buffer of `bytes` bytes can be bound whole as storage.
    pub(crate) fn check_binding_size(&self, what: &'static str, bytes: u64) -> Result<()> {
        let limit = self.inner.limits.max_storage_buffer_binding_size;
        if bytes > limit {
            return Err(Error::TooLarge {
                what,
                bytes,
                limit,
                limit_name: "max_storage_buffer_binding_size",
            });
        }
        Ok(())
    }

    /// Checks that a buffer of `bytes` bytes can be created. Binding it is another matter:
    /// a convolution over tensors larger than `max_storage_buffer_binding_size` is split into
    /// dispatches that bind less (src/gpu/split.rs).
    pub(crate) fn check_buffer_size(&self, what: &'static str, bytes: u64) -> Result<()> {
        let limit = self.inner.limits.max_buffer_size;
        if bytes > limit {
            return Err(Error::TooLarge {
                what,
                bytes,
                limit,
                limit_name: "max_buffer_size",
            });
        }
        Ok(())
    }
}

/// Runs `f` inside validation, out-of-memory and internal error scopes on `device` and turns
/// the first error they caught into [`Error::Gpu`].
#[cfg(not(target_arch = "wasm32"))]
fn catch_errors<T>(
    device: &wgpu::Device,
    during: &'static str,
    f: impl FnOnce() -> T,
) -> Result<T> {
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let value = f();
    let errors = [
        pollster::block_on(internal.pop()),
        pollster::block_on(oom.pop()),
        pollster::block_on(validation.pop()),
    ];
    match errors.into_iter().flatten().next() {
        None => Ok(value),
        Some(e) => {
            let (kind, message) = match &e {
                wgpu::Error::OutOfMemory { .. } => ("out-of-memory", e.to_string()),
                wgpu::Error::Validation { description, .. } => ("validation", description.clone()),
                wgpu::Error::Internal { description, .. } => ("internal", description.clone()),
            };
            Err(Error::Gpu {
                kind,
                during,
                message,
            })
        }
    }
}

/// Runs `f`. In a browser a popped error scope answers only once the page yields to its event
/// loop, which a synchronous call cannot wait for; errors go to the device's
/// uncaptured-error handler instead (set in `Gpu::build`), and the next operation reports them.
#[cfg(target_arch = "wasm32")]
fn catch_errors<T>(
    _device: &wgpu::Device,
    _during: &'static str,
    f: impl FnOnce() -> T,
) -> Result<T> {
    Ok(f())
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
