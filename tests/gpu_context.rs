//! Getting a GPU: the async constructor, handing in a device the caller made, the adapter's
//! identity, and `WGPU_ADAPTER_NAME` that matches nothing. Its own test binary because it sets
//! environment variables, which would race with other tests in one process.

use sepconv::{Conv2d, Conv2dSpec, Error, Gpu, GpuTensor, Shape};

fn runs_a_conv(gpu: &Gpu) {
    // 2 → 1 channel 1×1 with weights [1, 2] and bias 0.5 on x = [3, 4]: 3 + 8 + 0.5.
    let spec = Conv2dSpec::pointwise(2, 1);
    let conv = Conv2d::new(gpu, spec, &[1.0, 2.0], Some(&[0.5])).expect("conv");
    let x = GpuTensor::from_slice(gpu, Shape::new(1, 2, 1, 1), &[3.0, 4.0]).expect("upload");
    assert_eq!(
        conv.run(&x).expect("run").read().expect("read").data(),
        &[11.5]
    );
}

#[test]
fn gpus_come_from_the_async_constructor_or_a_callers_device() {
    let gpu = pollster::block_on(Gpu::new_async()).expect("async constructor");
    assert!(!gpu.adapter_name().is_empty());
    assert_eq!(gpu.backend(), gpu.adapter_info().backend);
    // The device is created with the adapter's own limits, not wgpu's defaults.
    assert!(gpu.limits().max_storage_buffer_binding_size >= 128 << 20);
    runs_a_conv(&gpu);

    // A caller's own device and queue.
    let (device, queue) = (gpu.device().clone(), gpu.queue().clone());
    let theirs = Gpu::from_device(device, queue).expect("a Gpu from the caller's device");
    assert_eq!(theirs.adapter_name(), gpu.adapter_name());
    assert!(
        !theirs.same_device(&gpu),
        "a new handle with its own pipelines"
    );
    runs_a_conv(&theirs);

    // WGPU_ADAPTER_NAME that matches no adapter: a typed error listing what exists.
    std::env::set_var("WGPU_ADAPTER_NAME", "no such adapter 1234");
    let err = Gpu::new().expect_err("no adapter should match");
    std::env::remove_var("WGPU_ADAPTER_NAME");
    assert!(matches!(err, Error::NoAdapter { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no such adapter 1234"), "{message}");
    assert!(message.contains("mesa-vulkan-drivers"), "{message}");
}
