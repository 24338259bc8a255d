//! Devices with lowered limits, on the same adapter as `common::gpu()`: a binding limit of a
//! few KiB makes small tensors exercise the code that splits convolutions past
//! `max_storage_buffer_binding_size`, and other lowered limits provoke wgpu's own validation.
#![allow(dead_code)] // each test binary uses a different subset

use sepconv::Gpu;

/// The adapter `reference` runs on, found again by backend and name.
pub fn adapter_like(reference: &Gpu) -> wgpu::Adapter {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let info = reference.adapter_info();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::from(info.backend)))
        .into_iter()
        .find(|a| a.get_info().name == info.name)
        .expect("the shared GPU's adapter is enumerable again")
}

/// A device on the same adapter as `reference` with the adapter's limits, changed by `edit`.
pub fn device_with_limits(
    reference: &Gpu,
    edit: impl FnOnce(&mut wgpu::Limits),
) -> (wgpu::Device, wgpu::Queue) {
    let adapter = adapter_like(reference);
    let mut limits = adapter.limits();
    edit(&mut limits);
    pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("sepconv test, lowered limits"),
        required_limits: limits,
        ..Default::default()
    }))
    .expect("a device with lower limits than the adapter's")
}

/// A `Gpu` whose storage bindings hold at most `bytes` bytes.
pub fn gpu_with_binding_limit(reference: &Gpu, bytes: u64) -> Gpu {
    let (device, queue) =
        device_with_limits(reference, |l| l.max_storage_buffer_binding_size = bytes);
    let gpu = Gpu::from_device(device, queue).expect("a Gpu on the lowered-limit device");
    assert_eq!(gpu.limits().max_storage_buffer_binding_size, bytes);
    gpu
}
