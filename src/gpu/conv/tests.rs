//! The device-wide cache of measured kernel choices, which only the crate can see; on the
//! adapter the integration tests use (`WGPU_BACKEND`, lavapipe in CI).
use super::*;
use crate::cpu::reference;
use crate::gpu::choice::SplitK;
use crate::gpu::small_ints;
use crate::Tensor;
use std::num::NonZeroUsize;

#[test]
fn convs_with_the_same_spec_and_shapes_share_a_measured_choice() {
    let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
    let spec = Conv2dSpec::pointwise(64, 64);
    let input = Shape::new(1, 64, 6, 6);
    let output = spec.output_shape(input).unwrap();
    let x = Tensor::new(input, small_ints(1, input.len().unwrap())).unwrap();
    let gx = GpuTensor::from_tensor(&gpu, &x).unwrap();
    // A conv with its own seeded weights, run into a NaN-poisoned output and checked
    // against the reference bit for bit (small integers).
    let check = |conv: &Conv2d, seed: u64| {
        let want = reference::conv2d(&spec, &x, conv.weights(), conv.bias()).unwrap();
        let y = GpuTensor::full(&gpu, output, f32::NAN).unwrap();
        conv.run_into(&gx, &y).unwrap();
        let got = y.read().unwrap();
        assert!(
            got.data().iter().zip(want.data()).all(|(g, w)| g == w),
            "seed {seed}: {:?} against {:?}",
            &got.data()[..4],
            &want.data()[..4]
        );
    };
    let conv = |seed: u64| {
        let w = small_ints(seed, spec.weight_count());
        let b = small_ints(seed + 1, spec.c_out);
        Conv2d::new(&gpu, spec, &w, Some(&b)).unwrap()
    };
    let key = TuneKey::Kernel {
        run: RunKey {
            spec,
            input,
            output,
            residual: None,
        },
        split_k: SplitK::Auto,
        precision: crate::Precision::F32,
    };
    // The first conv measures (or reads the cache file) and shares its choice.
    let first = conv(2);
    check(&first, 2);
    let measured = first.chosen_kernel(input).unwrap();
    assert_eq!(gpu.tuner().measured(&key), Some(Choice::Kernel(measured)));
    // A second conv with other weights takes whatever the device has recorded, without
    // measuring: plant the other kernel and it must run that one.
    let other = match measured {
        ConvKernel::TiledGemm => ConvKernel::UniformWindows,
        _ => ConvKernel::TiledGemm,
    };
    gpu.tuner().plant(key, Choice::Kernel(other));
    let second = conv(4);
    check(&second, 4);
    assert_eq!(second.chosen_kernel(input), Some(other));
    // What ran, not only what is reported: the tiled kernel is built on its first use, and
    // both kernels give the same bits on these integers.
    let built = second.gemm.lock().unwrap().is_some();
    assert_eq!(built, other == ConvKernel::TiledGemm);
    // A different split-K setting is a different key: chosen again, and shared.
    let one = SplitK::Parts(NonZeroUsize::MIN);
    let third = conv(6).with_tuning(Tuning::auto().with_split_k(one));
    check(&third, 6);
    let third_choice = third.chosen_kernel(input).unwrap();
    let third_key = TuneKey::Kernel {
        run: RunKey {
            spec,
            input,
            output,
            residual: None,
        },
        split_k: one,
        precision: crate::Precision::F32,
    };
    assert_eq!(
        gpu.tuner().measured(&third_key),
        Some(Choice::Kernel(third_choice))
    );
    assert_eq!(gpu.tuner().measured(&key), Some(Choice::Kernel(other)));
}

/// An f16 conv's kernel is chosen apart from the f32 conv of the same spec and shapes: the
/// two store and convert differently, so one's timing says nothing of the other's.
#[test]
fn f16_and_f32_convs_are_measured_apart() {
    let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
    if !gpu.supports_f16() {
        return; // tests/gpu_f16.rs checks the refusal on such adapters
    }
    let spec = Conv2dSpec::pointwise(64, 48);
    let input = Shape::new(1, 64, 5, 5);
    let output = spec.output_shape(input).unwrap();
    let key = |precision| TuneKey::Kernel {
        run: RunKey {
            spec,
            input,
            output,
            residual: None,
        },
        split_k: SplitK::Auto,
        precision,
    };
    let w = small_ints(3, spec.weight_count());
    let b = small_ints(4, spec.c_out);
    // Plant the tiled product for f32; the f16 conv must not take it on trust.
    gpu.tuner()
        .plant(key(Precision::F32), Choice::Kernel(ConvKernel::TiledGemm));
    let conv = Conv2d::new(&gpu, spec, &w, Some(&b))
        .unwrap()
        .with_precision(Precision::F16)
        .unwrap();
    assert_eq!(conv.chosen_kernel(input), None, "not measured in f16 yet");
    let x = Tensor::new(input, small_ints(5, input.len().unwrap())).unwrap();
    let gx = GpuTensor::from_tensor_as(&gpu, &x, Precision::F16).unwrap();
    let y = GpuTensor::full_as(&gpu, output, f32::NAN, Precision::F16).unwrap();
    conv.run_into(&gx, &y).unwrap();
    let chosen = conv.chosen_kernel(input).expect("measured by the run");
    assert_eq!(
        gpu.tuner().measured(&key(Precision::F16)),
        Some(Choice::Kernel(chosen))
    );
    assert_eq!(
        gpu.tuner().measured(&key(Precision::F32)),
        Some(Choice::Kernel(ConvKernel::TiledGemm))
    );
    // Small integers: exact in f16 too (|y| ≤ 64·9 + 3 < 2,048).
    let want = reference::conv2d(&spec, &x, &w, Some(&b)).unwrap();
    assert_eq!(y.read().unwrap().data(), want.data());
}
