//! Bad input on the GPU path: every case returns the typed error that names the values
//! involved, and nothing panics.

mod common;

use common::gpu;
use sepconv::{Conv2d, Conv2dSpec, Error, Gpu, GpuTensor, Padding, SeparableBlock, Shape};

fn weights(spec: &Conv2dSpec) -> Vec<f32> {
    common::normal(3, spec.weight_count())
}

#[test]
fn conv_construction_rejects_bad_parameters() {
    let gpu = gpu();
    let spec = Conv2dSpec::new(8, 16, [3, 3]).groups(2);
    let err = Conv2d::new(gpu, spec, &[0.5; 10], Some(&[0.0; 16])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                what: "weights",
                expected: 576,
                got: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("[16, 4, 3, 3]"), "{err}");

    let err = Conv2d::new(gpu, spec, &weights(&spec), None).unwrap_err();
    assert_eq!(
        err,
        Error::BiasMismatch {
            spec_has_bias: true,
            given: false
        }
    );
    let err = Conv2d::new(gpu, spec.bias(false), &weights(&spec), Some(&[0.0; 16])).unwrap_err();
    assert_eq!(
        err,
        Error::BiasMismatch {
            spec_has_bias: false,
            given: true
        }
    );
    let err = Conv2d::new(gpu, spec, &weights(&spec), Some(&[0.0; 15])).unwrap_err();
    assert!(matches!(
        err,
        Error::LengthMismatch {
            what: "bias",
            expected: 16,
            got: 15,
            ..
        }
    ));

    let bad_groups = Conv2dSpec::new(6, 9, [3, 3]).groups(4);
    let err = Conv2d::new(gpu, bad_groups, &[], Some(&[0.0; 9])).unwrap_err();
    assert_eq!(
        err,
        Error::GroupsDoNotDivide {
            groups: 4,
            which: "c_in",
            channels: 6
        }
    );
    assert!(
        err.to_string().contains("groups (4) must divide c_in (6)"),
        "{err}"
    );

    let zero_stride = Conv2dSpec::depthwise(4, [3, 3]).stride([0, 1]);
    let err = Conv2d::new(gpu, zero_stride, &[0.0; 36], Some(&[0.0; 4])).unwrap_err();
    assert_eq!(
        err,
        Error::Zero {
            what: "stride height"
        }
    );
    let zero_dilation = Conv2dSpec::depthwise(4, [3, 3]).dilation([1, 0]);
    let err = Conv2d::new(gpu, zero_dilation, &[0.0; 36], Some(&[0.0; 4])).unwrap_err();
    assert_eq!(
        err,
        Error::Zero {
            what: "dilation width"
        }
    );
}

#[test]
fn running_rejects_mismatched_inputs_and_outputs() {
    let gpu = gpu();
    let spec = Conv2dSpec::depthwise(4, [5, 5]).bias(false);
    let conv = Conv2d::new(gpu, spec, &weights(&spec), None).unwrap();

    let wrong_channels = GpuTensor::full(gpu, Shape::new(1, 3, 8, 8), 1.0).unwrap();
    let err = conv.run(&wrong_channels).unwrap_err();
    assert_eq!(
        err,
        Error::ChannelMismatch {
            expected: 4,
            got: 3
        }
    );

    // A 5×5 kernel on a 4×9 input without padding leaves no output rows.
    let too_small = GpuTensor::full(gpu, Shape::new(1, 4, 4, 9), 1.0).unwrap();
    let err = conv.run(&too_small).unwrap_err();
    assert!(
        matches!(
            err,
            Error::EmptyOutput {
                axis: "height",
                input: 4,
                padding: 0,
                kernel_extent: 5,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("kernel extent 5"), "{err}");

    let x = GpuTensor::full(gpu, Shape::new(1, 4, 9, 9), 1.0).unwrap();
    let wrong_out = GpuTensor::full(gpu, Shape::new(1, 4, 6, 5), 0.0).unwrap();
    let err = conv.run_into(&x, &wrong_out).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                what: "output tensor",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("1x4x5x5"), "{err}");
}

#[test]
fn tensors_reject_bad_shapes_and_data() {
    let gpu = gpu();
    let err = GpuTensor::from_slice(gpu, Shape::new(1, 2, 3, 4), &[1.0; 23]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 24,
                got: 23,
                ..
            }
        ),
        "{err:?}"
    );
    let err = GpuTensor::from_slice(gpu, Shape::new(1, 0, 3, 4), &[]).unwrap_err();
    assert_eq!(err, Error::Zero { what: "channels c" });
}

#[test]
fn sizes_beyond_the_device_limits_are_errors_before_allocation() {
    let gpu = gpu();
    // Past `max_storage_buffer_binding_size` a tensor still exists and convolutions are
    // split (tests/limits.rs); past `max_buffer_size` it cannot exist at all.
    let limit = gpu.limits().max_buffer_size;
    // A tensor one row past the limit: rejected before any host or GPU memory is taken.
    let w = 1024usize;
    let h = (limit / 4 / w as u64) as usize + 1;
    let err = GpuTensor::full(gpu, Shape::new(1, 1, h, w), 0.0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "tensor",
                limit_name: "max_buffer_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&limit.to_string()), "{err}");

    // A small input whose output would pass the limit (depthwise with a channel multiplier).
    let input = Shape::new(1, 1, 512, 512);
    let multiplier = (limit / 4 / (512 * 512)) as usize + 1;
    let spec = Conv2dSpec::depthwise(1, [1, 1])
        .multiplier(multiplier)
        .bias(false);
    let conv = Conv2d::new(gpu, spec, &vec![1.0; multiplier], None).unwrap();
    let x = GpuTensor::full(gpu, input, 1.0).unwrap();
    let err = conv.run(&x).unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { what: "output", .. }),
        "{err:?}"
    );

    // Work that cannot be split under the binding limit: one output row of a standard conv
    // reads every input channel's row, here 33 × 2^20 floats = 132 MiB. Refused from the
    // shape alone, before any tensor exists.
    let binding = gpu.limits().max_storage_buffer_binding_size;
    let wide = (binding / 4 / (1 << 20)) as usize + 1;
    let spec = Conv2dSpec::new(wide, 1, [1, 1])
        .padding(Padding::explicit(1, 0, 0, 0))
        .bias(false);
    let conv = Conv2d::new(gpu, spec, &vec![1.0; wide], None).unwrap();
    let err = conv
        .output_shape(Shape::new(1, wide, 2, 1 << 20))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "input rows of one output row",
                limit_name: "max_storage_buffer_binding_size",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&binding.to_string()), "{err}");
}

#[test]
fn objects_from_different_gpus_do_not_mix() {
    let other = Gpu::new().expect("second device");
    let spec = Conv2dSpec::pointwise(2, 2).bias(false);
    let conv = Conv2d::new(gpu(), spec, &[1.0; 4], None).unwrap();
    let x = GpuTensor::full(&other, Shape::new(1, 2, 3, 3), 1.0).unwrap();
    assert!(matches!(
        conv.run(&x).unwrap_err(),
        Error::DeviceMismatch { .. }
    ));
}

#[test]
fn separable_blocks_check_their_halves() {
    let gpu = gpu();
    let dw = Conv2dSpec::depthwise(8, [3, 3])
        .padding(Padding::uniform(1))
        .bias(false);
    let pw = Conv2dSpec::pointwise(8, 4).bias(false);
    let make = |s: Conv2dSpec| Conv2d::new(gpu, s, &weights(&s), None).unwrap();
    let err = SeparableBlock::new(make(pw), make(pw)).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err:?}");
    let err =
        SeparableBlock::new(make(dw), make(Conv2dSpec::pointwise(6, 4).bias(false))).unwrap_err();
    assert!(
        err.to_string()
            .contains("depthwise gives 8 channels but pointwise expects c_in = 6"),
        "{err}"
    );
    assert!(SeparableBlock::new(make(dw), make(pw)).is_ok());
}
