//! Device loss and wgpu's own errors come back as typed errors: a destroyed device gives
//! `Error::DeviceLost` on the next call (no hang, no panic), and a wgpu validation error
//! provoked through the public API becomes `Error::Gpu`.

mod common;
mod limited;

use std::sync::mpsc;
use std::time::Duration;

use common::gpu;
use sepconv::{Conv2d, Conv2dSpec, Error, Gpu, GpuTensor, Padding, Shape};

/// Runs `f` on another thread and fails the test if it does not finish in time, so that a
/// hang is a failure rather than a stuck CI run.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{what}: no answer within 60 s ({e}): hung or panicked"))
}

fn is_lost(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::DeviceLost(_)))
}

#[test]
fn a_destroyed_device_is_reported_as_lost() {
    // A Gpu of its own: destroying the shared one would break the other tests.
    let gpu = Gpu::new().unwrap();
    let spec = Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1));
    let weights = common::normal(1, spec.weight_count());
    let conv = Conv2d::new(&gpu, spec, &weights, Some(&[0.0; 4])).unwrap();
    let shape = Shape::new(1, 4, 8, 8);
    let x = GpuTensor::from_slice(&gpu, shape, &common::normal(2, 256)).unwrap();
    let y = conv.run(&x).unwrap();
    y.read().unwrap();

    gpu.device().destroy();

    let results = within("calls after destroy", move || {
        let run = conv.run(&x).map(|_| ());
        let read = y.read().map(|_| ());
        let upload = GpuTensor::from_slice(&gpu, shape, &[0.0; 256]).map(|_| ());
        let new_conv = Conv2d::new(&gpu, spec, &weights, Some(&[0.0; 4])).map(|_| ());
        let wait = gpu.wait();
        [
            ("run", run),
            ("read", read),
            ("upload", upload),
            ("new conv", new_conv),
            ("wait", wait),
        ]
    });
    for (what, result) in &results {
        assert!(is_lost(result), "{what} after destroy: {result:?}");
    }
}

#[test]
fn devices_without_storage_buffers_are_refused() {
    // A device that allows no storage buffers cannot hold the crate's bind-group layout:
    // wgpu's validation error comes back from from_device instead of a panic.
    let (device, queue) =
        limited::device_with_limits(gpu(), |l| l.max_storage_buffers_per_shader_stage = 0);
    let err = Gpu::from_device(device, queue).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gpu {
                kind: "validation",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wgpu_validation_errors_become_typed_errors() {
    // A device whose workgroups may hold a single invocation cannot run the kernels
    // (256 invocations per workgroup): compiling one is a wgpu validation error.
    let (device, queue) = limited::device_with_limits(gpu(), |l| {
        l.max_compute_invocations_per_workgroup = 1;
        l.max_compute_workgroup_size_x = 1;
        l.max_compute_workgroup_size_y = 1;
        l.max_compute_workgroup_size_z = 1;
    });
    let small = Gpu::from_device(device, queue).unwrap();
    let spec = Conv2dSpec::pointwise(3, 2).bias(false);
    let err = Conv2d::new(&small, spec, &[1.0; 6], None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Gpu {
                kind: "validation",
                ..
            }
        ),
        "{err:?}"
    );
    // The device is not lost by it: tensors still work.
    let t = GpuTensor::from_slice(&small, Shape::new(1, 1, 1, 2), &[1.0, 2.0]).unwrap();
    assert_eq!(t.read().unwrap().data(), &[1.0, 2.0]);
}
