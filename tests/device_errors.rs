//! Device loss and wgpu's own errors come back as typed errors: a destroyed device gives
//! `Error::DeviceLost` on the next call (no hang, no panic), and a wgpu validation error
//! provoked through the public API becomes `Error::Gpu`.

mod common;
mod limited;

use std::sync::mpsc;
use std::time::Duration;

use common::gpu;
use sepconv::{
    BlockPath, Conv2d, Conv2dSpec, ConvKernel, Error, Fusion, Gpu, GpuTensor, Padding,
    SeparableBlock, Shape, Tuning,
};

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
    let spec = Conv2dSpec::depthwise(2, [3, 3]).bias(false);
    let err = Conv2d::new(&small, spec, &[1.0; 18], None).unwrap_err();
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
    // The device is not lost by it: tensors still work, and so do the pointwise and grouped
    // kernels, whose workgroup size (an override, which wgpu does not check against the
    // limits) the host fits to the device: one invocation here.
    let t = GpuTensor::from_slice(&small, Shape::new(1, 1, 1, 2), &[1.0, 2.0]).unwrap();
    assert_eq!(t.read().unwrap().data(), &[1.0, 2.0]);
    let pw = Conv2dSpec::pointwise(3, 2).bias(false);
    let w = [1.0, 2.0, 3.0, -1.0, 0.5, 0.25];
    // By default (ConvKernel::Auto): the tiled product (64 invocations) cannot run here, so
    // the windows run without a measurement.
    let conv = Conv2d::new(&small, pw, &w, None).unwrap();
    let x = GpuTensor::from_slice(
        &small,
        Shape::new(1, 3, 1, 2),
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    )
    .unwrap();
    // y[oc][p] = Σ_ic w[oc][ic] · x[ic][p]: oc 0 = (1·1 + 2·3 + 3·5, 1·2 + 2·4 + 3·6),
    // oc 1 = (−1·1 + 0.5·3 + 0.25·5, −1·2 + 0.5·4 + 0.25·6).
    assert_eq!(
        conv.run(&x).unwrap().read().unwrap().data(),
        &[22.0, 28.0, 1.75, 1.5]
    );
    assert_eq!(
        conv.chosen_kernel(Shape::new(1, 3, 1, 2)),
        Some(ConvKernel::UniformWindows)
    );
    let err = conv
        .with_tuning(Tuning::auto().with_kernel(ConvKernel::TiledGemm))
        .run(&x)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { reason } if reason.contains("invocations")),
        "{err}"
    );
}

#[test]
fn devices_with_few_storage_buffers_run_without_the_tiled_kernels() {
    // OpenGL ES 3.1 guarantees 4 storage buffers per stage: the windows kernels (3) run, the
    // tiled product (4) runs, the fused block (6) is refused when pinned and skipped by
    // Fusion::Auto. With 3, the tiled product is refused too.
    let dw = Conv2dSpec::depthwise(16, [3, 3]).padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(16, 32);
    let input = Shape::new(1, 16, 6, 5);
    let x_data: Vec<f32> = (0..input.len().unwrap())
        .map(|i| (i % 7) as f32 - 3.0)
        .collect();
    let dw_w: Vec<f32> = (0..dw.weight_count())
        .map(|i| (i % 3) as f32 - 1.0)
        .collect();
    let pw_w: Vec<f32> = (0..pw.weight_count())
        .map(|i| (i % 5) as f32 - 2.0)
        .collect();
    let want = sepconv::cpu::reference::separable_block(
        (&dw, &dw_w, Some(&[0.5; 16])),
        (&pw, &pw_w, Some(&[0.25; 32])),
        &sepconv::Tensor::new(input, x_data.clone()).unwrap(),
    )
    .unwrap();
    for buffers in [3, 4] {
        let (device, queue) = limited::device_with_limits(gpu(), |l| {
            l.max_storage_buffers_per_shader_stage = buffers
        });
        let small = Gpu::from_device(device, queue).unwrap();
        let x = GpuTensor::from_slice(&small, input, &x_data).unwrap();
        let block = || {
            SeparableBlock::new(
                Conv2d::new(&small, dw, &dw_w, Some(&[0.5; 16])).unwrap(),
                Conv2d::new(&small, pw, &pw_w, Some(&[0.25; 32])).unwrap(),
            )
            .unwrap()
        };
        let auto = block();
        assert_eq!(
            auto.run(&x).unwrap().read().unwrap(),
            want,
            "{buffers} buffers"
        );
        assert_eq!(auto.chosen_path(input), Some(BlockPath::TwoKernels));
        let err = block()
            .with_tuning(Tuning::auto().with_fusion(Fusion::Always))
            .run(&x)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { reason } if reason.contains("storage buffers")),
            "{err}"
        );
        let (mid, _) = auto.shapes(input).unwrap();
        let mid_x = auto.depthwise().run(&x).unwrap();
        let gemm = Conv2d::new(&small, pw, &pw_w, Some(&[0.25; 32]))
            .unwrap()
            .with_tuning(Tuning::auto().with_kernel(ConvKernel::TiledGemm));
        match buffers {
            3 => {
                let err = gemm.run(&mid_x).unwrap_err();
                assert!(matches!(err, Error::Unsupported { .. }), "{err}");
                assert_eq!(
                    auto.pointwise().chosen_kernel(mid),
                    Some(ConvKernel::UniformWindows)
                );
            }
            _ => assert_eq!(gemm.run(&mid_x).unwrap().read().unwrap(), want),
        }
    }
}
