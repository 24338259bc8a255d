//! Copy a storage buffer to a mappable staging buffer and read its bytes. The only map/poll
//! code in the crate.

use super::Gpu;
use crate::error::{Error, Result};

/// Reads the first `bytes` bytes of `buffer` (which needs `COPY_SRC`; `bytes` a multiple of
/// 4, as copies require) as elements `T` (`f32`, or `u16` for f16 bits).
pub(crate) async fn read<T: bytemuck::Pod>(
    gpu: &Gpu,
    buffer: &wgpu::Buffer,
    bytes: u64,
) -> Result<Vec<T>> {
    let device = gpu.device();
    let staging = gpu.scoped("readback", || {
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback.staging"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("readback.encoder"),
        });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        gpu.queue().submit([encoder.finish()]);
        staging
    })?;

    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    // In error scopes too: mapping a buffer of a device lost meanwhile is a wgpu error, which
    // would otherwise reach the uncaptured-error handler and panic.
    gpu.scoped("readback", || {
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                // The receiver only goes away if this future is dropped; nothing to report then.
                let _ = sender.send(result);
            })
    })?;
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| gpu.lost_or(Error::Readback(e.to_string())))?;
    match receiver.receive().await {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(gpu.lost_or(Error::Readback(e.to_string()))),
        None => {
            return Err(gpu.lost_or(Error::Readback(
                "the map callback was dropped without an answer".into(),
            )))
        }
    }
    let data = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| gpu.lost_or(Error::Readback(e.to_string())))?;
        bytemuck::pod_collect_to_vec::<u8, T>(&view)
    };
    staging.unmap();
    Ok(data)
}
