//! Lists the adapters wgpu can see and the one `sepconv` picks.
//!
//! Run with: `cargo run --release --example adapters` (honours `WGPU_BACKEND`,
//! `WGPU_ADAPTER_NAME`, `WGPU_POWER_PREF`).

fn main() {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    for adapter in pollster::block_on(instance.enumerate_adapters(backends)) {
        let info = adapter.get_info();
        println!(
            "available: {} ({:?}, {:?})",
            info.name, info.backend, info.device_type
        );
    }
    match sepconv::Gpu::new() {
        Ok(gpu) => {
            let limits = gpu.limits();
            println!(
                "chosen:    {} ({:?}); max storage binding {} MiB, max workgroups/dim {}",
                gpu.adapter_name(),
                gpu.backend(),
                limits.max_storage_buffer_binding_size >> 20,
                limits.max_compute_workgroups_per_dimension
            );
            println!(
                "           max uniform binding {} KiB, uniform offset alignment {}, storage offset alignment {}",
                limits.max_uniform_buffer_binding_size >> 10,
                limits.min_uniform_buffer_offset_alignment,
                limits.min_storage_buffer_offset_alignment
            );
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
