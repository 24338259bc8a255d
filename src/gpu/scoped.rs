//! [`ScopedDevice`]: a wgpu device and queue with their limits, whose every call runs inside error
//! scopes and checks that the device is still alive. The layer below the pipelines and the
//! [`super::Gpu`]; nothing here knows about convolutions.

use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};

/// The device, its queue, what the adapter said about itself, and its health.
pub(crate) struct ScopedDevice {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    /// Set by the device-lost callback; every operation checks it first.
    lost: Arc<Mutex<Option<String>>>,
}

impl ScopedDevice {
    /// Wraps `device`, watching for its loss.
    pub(crate) fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
    ) -> Self {
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
        Self {
            device,
            queue,
            info,
            limits,
            lost,
        }
    }

    /// Blocks until all submitted work has finished.
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is gone.
    pub(crate) fn wait(&self) -> Result<()> {
        if cfg!(target_arch = "wasm32") {
            return Err(Error::Unsupported {
                reason: "Gpu::wait blocks, which a web page cannot do; await a read_async".into(),
            });
        }
        self.check_alive()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| self.lost_or(Error::Readback(e.to_string())))
    }

    /// [`Error::DeviceLost`] if the device-lost callback has fired.
    pub(crate) fn check_alive(&self) -> Result<()> {
        let lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
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
            let _ = self.device.poll(wgpu::PollType::Poll);
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
            let _ = self.device.poll(wgpu::PollType::Poll);
        }
        self.scoped(label, || {
            self.device
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
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
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
        let value = catch_errors(&self.device, during, f).map_err(|e| self.lost_or(e))?;
        self.check_alive()?;
        Ok(value)
    }

    /// Checks that a buffer of `bytes` bytes can be bound whole as storage.
    pub(crate) fn check_binding_size(&self, what: &'static str, bytes: u64) -> Result<()> {
        let limit = self.limits.max_storage_buffer_binding_size;
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
        let limit = self.limits.max_buffer_size;
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
pub(crate) fn catch_errors<T>(
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
/// uncaptured-error handler instead (set in `ScopedDevice::new`), and the next operation reports them.
#[cfg(target_arch = "wasm32")]
pub(crate) fn catch_errors<T>(
    _device: &wgpu::Device,
    _during: &'static str,
    f: impl FnOnce() -> T,
) -> Result<T> {
    Ok(f())
}
