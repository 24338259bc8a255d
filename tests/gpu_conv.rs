//! GPU kernels against the CPU reference: every case runs twice, on seeded normal data with a
//! tolerance from the reduction length, and on small integers where the result must be
//! bit-identical. Outputs are poisoned with NaN before each dispatch. Pointwise and grouped
//! cases run with each of their kernels.

mod common;

use common::{assert_matches, gpu, tolerances, ConvData};
use sepconv::{
    cpu::reference, Activation, BlockPath, Conv2d, Conv2dSpec, ConvKernel, ConvKind, Fusion,
    GpuTensor, Padding, SeparableBlock, Shape, SplitK, Tensor, Tuning,
};
use std::num::NonZeroUsize;

/// Stable seed from the case name, so a failure message's seed replays the same data.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Runs `spec` on the GPU (a pointwise or grouped one with `kernel`) into a NaN-filled output and reads
/// it back.
fn run_gpu(spec: Conv2dSpec, data: &ConvData, kernel: ConvKernel) -> Tensor {
    let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias())
        .expect("conv")
        .with_tuning(Tuning::auto().with_kernel(kernel));
    run_conv(&conv, data)
}

/// Runs `conv` on `data`'s input into a NaN-filled output and reads it back.
fn run_conv(conv: &Conv2d, data: &ConvData) -> Tensor {
    let gpu = gpu();
    let x = GpuTensor::from_tensor(gpu, &data.input).expect("upload");
    let out_shape = conv.output_shape(x.shape()).expect("output shape");
    let y = GpuTensor::full(gpu, out_shape, f32::NAN).expect("poisoned output");
    conv.run_into(&x, &y).expect("dispatch");
    y.read().expect("readback")
}

/// Checks one case on random and on exact integer data, and that the spec picks `kind`;
/// a pointwise or grouped case with each of its kernels.
fn check(name: &str, spec: Conv2dSpec, input: Shape, kind: ConvKind) {
    assert_eq!(spec.kind(), kind, "{name}: kernel choice");
    let kernels: &[ConvKernel] = match kind {
        ConvKind::Pointwise | ConvKind::General => {
            &[ConvKernel::UniformWindows, ConvKernel::TiledGemm]
        }
        _ => &[ConvKernel::Auto],
    };
    for &kernel in kernels {
        check_with(name, spec, input, kernel);
    }
}

fn check_with(name: &str, spec: Conv2dSpec, input: Shape, kernel: ConvKernel) {
    let seed = seed_of(name);
    for exact in [false, true] {
        let data = ConvData::new(&spec, input, seed, exact);
        let want =
            reference::conv2d(&spec, &data.input, &data.weights, data.bias()).expect("reference");
        let got = run_gpu(spec, &data, kernel);
        let case = format!(
            "{name} [{spec:?} on {input}, {kernel:?}, {}]",
            if exact { "integers" } else { "normal" }
        );
        if exact {
            assert_matches(&case, seed, &got, &want, None);
        } else {
            let tol = tolerances(&spec, &data, &want);
            assert_matches(&case, seed, &got, &want, Some(&tol));
        }
    }
}

const DW: fn(usize) -> ConvKind = |m| ConvKind::Depthwise { multiplier: m };
const PW: ConvKind = ConvKind::Pointwise;
const GR: ConvKind = ConvKind::General;

/// MobileNet v1 (Howard et al. 2017, Table 1) at 224×224: (c_in, c_out, input size, stride)
/// of the 13 depthwise separable blocks.
const MOBILENET_V1_BLOCKS: [(usize, usize, usize, usize); 13] = [
    (32, 64, 112, 1),
    (64, 128, 112, 2),
    (128, 128, 56, 1),
    (128, 256, 56, 2),
    (256, 256, 28, 1),
    (256, 512, 28, 2),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 1024, 14, 2),
    (1024, 1024, 7, 1),
];

#[test]
fn mobilenet_v1_first_conv_matches_reference() {
    let spec = Conv2dSpec::new(3, 32, [3, 3])
        .stride([2, 2])
        .padding(Padding::uniform(1))
        .activation(Activation::Relu6);
    check("mbv1_conv1", spec, Shape::new(1, 3, 224, 224), GR);
}

#[test]
fn mobilenet_v1_depthwise_layers_match_reference() {
    for (i, &(c, _, size, stride)) in MOBILENET_V1_BLOCKS.iter().enumerate() {
        let spec = Conv2dSpec::depthwise(c, [3, 3])
            .stride([stride, stride])
            .padding(Padding::uniform(1))
            .activation(Activation::Relu6);
        check(
            &format!("mbv1_dw{}", i + 1),
            spec,
            Shape::new(1, c, size, size),
            DW(1),
        );
    }
}

#[test]
fn mobilenet_v1_pointwise_layers_match_reference() {
    for (i, &(c_in, c_out, size, stride)) in MOBILENET_V1_BLOCKS.iter().enumerate() {
        let out = size / stride;
        let spec = Conv2dSpec::pointwise(c_in, c_out).activation(Activation::Relu6);
        check(
            &format!("mbv1_pw{}", i + 1),
            spec,
            Shape::new(1, c_in, out, out),
            PW,
        );
    }
}

#[test]
fn grouped_matches_reference_on_paper_layers() {
    // AlexNet conv2 (Krizhevsky et al. 2012): 96→256, 5×5, pad 2, two groups, 27×27.
    let alexnet = Conv2dSpec::new(96, 256, [5, 5])
        .padding(Padding::uniform(2))
        .groups(2)
        .activation(Activation::Relu);
    check("alexnet_conv2", alexnet, Shape::new(1, 96, 27, 27), GR);
    // ResNeXt-50 32×4d conv2 stage (Xie et al. 2017): 3×3, 128→128, 32 groups, 56×56.
    let resnext = Conv2dSpec::new(128, 128, [3, 3])
        .padding(Padding::uniform(1))
        .groups(32);
    check("resnext_3x3_g32", resnext, Shape::new(1, 128, 56, 56), GR);
    // ShuffleNet v1 g=3 (Zhang et al. 2017): grouped 1×1, 240→240, 28×28.
    let shuffle = Conv2dSpec::new(240, 240, [1, 1]).groups(3).bias(false);
    check("shufflenet_1x1_g3", shuffle, Shape::new(1, 240, 28, 28), GR);
}

#[test]
fn depthwise_matches_reference_on_xception_and_multipliers() {
    // Xception middle flow (Chollet 2017): 728-channel depthwise 3×3 at 19×19.
    let xception = Conv2dSpec::depthwise(728, [3, 3])
        .padding(Padding::uniform(1))
        .bias(false);
    check(
        "xception_dw728",
        xception,
        Shape::new(1, 728, 19, 19),
        DW(1),
    );
    for m in [2, 3] {
        let spec = Conv2dSpec::depthwise(13, [3, 3])
            .multiplier(m)
            .padding(Padding::uniform(1))
            .activation(Activation::Relu);
        check(
            &format!("dw_multiplier_{m}"),
            spec,
            Shape::new(2, 13, 17, 13),
            DW(m),
        );
    }
}

#[test]
fn odd_sizes_and_channel_counts_match_reference() {
    let input = |c| Shape::new(1, c, 17, 13);
    check(
        "odd_dw_c3",
        Conv2dSpec::depthwise(3, [3, 3]).padding(Padding::uniform(1)),
        input(3),
        DW(1),
    );
    check(
        "odd_pw_13_to_3",
        Conv2dSpec::pointwise(13, 3),
        input(13),
        PW,
    );
    check(
        "odd_pw_104_to_208",
        Conv2dSpec::pointwise(104, 208),
        input(104),
        PW,
    );
    check(
        "odd_grouped_104_to_208_g8",
        Conv2dSpec::new(104, 208, [3, 3])
            .padding(Padding::uniform(1))
            .groups(8),
        input(104),
        GR,
    );
    // Groups with c_in/g ≠ c_out/g, and a standard conv from 3 channels.
    check(
        "odd_grouped_12_to_9_g3",
        Conv2dSpec::new(12, 9, [3, 3]).groups(3),
        input(12),
        GR,
    );
    check(
        "odd_standard_3_to_13",
        Conv2dSpec::new(3, 13, [3, 3]),
        input(3),
        GR,
    );
}

#[test]
fn strides_dilation_and_padding_match_reference() {
    let x = Shape::new(1, 6, 23, 19);
    for s in [2, 3] {
        let p = Padding::uniform(1);
        check(
            &format!("stride{s}_dw"),
            Conv2dSpec::depthwise(6, [3, 3]).stride([s, s]).padding(p),
            x,
            DW(1),
        );
        check(
            &format!("stride{s}_pw"),
            Conv2dSpec::pointwise(6, 10).stride([s, s]),
            x,
            PW,
        );
        check(
            &format!("stride{s}_grouped"),
            Conv2dSpec::new(6, 4, [3, 3])
                .stride([s, s])
                .padding(p)
                .groups(2),
            x,
            GR,
        );
    }
    // A row span wider than the depthwise kernel keeps in registers (7 · 3 + 6 · 2 + 1 = 34
    // columns for 8 outputs), and 16 input rows for its 2 output rows.
    check(
        "wide_span_dw",
        Conv2dSpec::depthwise(3, [7, 7])
            .stride([3, 3])
            .dilation([2, 2])
            .padding(Padding::uniform(4)),
        Shape::new(2, 3, 41, 53),
        DW(1),
    );
    // Dilation 2 with asymmetric padding, and different strides per axis.
    let asym = Padding::explicit(2, 1, 0, 3);
    check(
        "dilated_dw_asym",
        Conv2dSpec::depthwise(6, [3, 3])
            .dilation([2, 2])
            .padding(asym),
        x,
        DW(1),
    );
    check(
        "dilated_grouped_asym",
        Conv2dSpec::new(6, 9, [3, 3])
            .dilation([2, 1])
            .stride([1, 2])
            .padding(asym)
            .groups(3),
        x,
        GR,
    );
    // SAME_UPPER with stride 2 and an even kernel on a non-square input.
    check(
        "same_upper_even_kernel",
        Conv2dSpec::new(6, 5, [4, 2])
            .stride([2, 2])
            .padding(Padding::same()),
        x,
        GR,
    );
    check(
        "same_upper_dw",
        Conv2dSpec::depthwise(6, [5, 5])
            .stride([2, 2])
            .padding(Padding::same()),
        x,
        DW(1),
    );
    // A 1×1 kernel with padding is not pointwise: the border outputs are bias only.
    check(
        "padded_1x1",
        Conv2dSpec::new(6, 4, [1, 1]).padding(Padding::uniform(1)),
        x,
        GR,
    );
}

#[test]
fn non_square_kernels_batch_and_tiny_inputs_match_reference() {
    let x = Shape::new(3, 8, 11, 9);
    check(
        "kernel_3x1_dw",
        Conv2dSpec::depthwise(8, [3, 1]).padding(Padding::symmetric(1, 0)),
        x,
        DW(1),
    );
    check(
        "kernel_1x7_grouped",
        Conv2dSpec::new(8, 8, [1, 7])
            .padding(Padding::symmetric(0, 3))
            .groups(4),
        x,
        GR,
    );
    check(
        "kernel_7x1_standard",
        Conv2dSpec::new(8, 6, [7, 1]).padding(Padding::symmetric(3, 0)),
        x,
        GR,
    );
    check(
        "batch3_pw",
        Conv2dSpec::pointwise(8, 12).activation(Activation::Relu),
        x,
        PW,
    );
    // 1×1 spatial input: the classifier-as-pointwise case and a padded 3×3 on one pixel.
    let one = Shape::new(2, 32, 1, 1);
    check("one_pixel_pw", Conv2dSpec::pointwise(32, 10), one, PW);
    check(
        "one_pixel_dw",
        Conv2dSpec::depthwise(32, [3, 3]).padding(Padding::uniform(1)),
        one,
        DW(1),
    );
    check(
        "one_pixel_grouped",
        Conv2dSpec::new(32, 16, [3, 3])
            .padding(Padding::uniform(1))
            .groups(4),
        one,
        GR,
    );
}

#[test]
fn grids_past_65535_workgroups_spread_and_match_reference() {
    // Each kernel gets more workgroups than 65,535 (a workgroup covers 64 depthwise blocks of
    // 2 rows × 8 columns, 128 pointwise or grouped pixels of one channel block, or, in the
    // tiled product, 32 pixels of one group's 64-channel tile), so it must spread its grid
    // over y.
    let cases = [
        // A 1-column image is one block per 2 rows: 4 channels × 1.1 M blocks = 4.4 M
        // invocations, 68,750 workgroups, with the output (35 MB) under the binding limit.
        (
            "big_grid_dw",
            Conv2dSpec::depthwise(2, [3, 3])
                .multiplier(2)
                .padding(Padding::uniform(1)),
            Shape::new(1, 2, 2_200_000, 1),
            DW(2),
        ),
        // 8.6 M pixels, 67,200 workgroups of 128.
        (
            "big_grid_pw",
            Conv2dSpec::pointwise(2, 2),
            Shape::new(1, 2, 4096, 2100),
            PW,
        ),
        // 8 → 8 channels in 4 groups of 2, padded 1×1: 2050 × 1027 pixels, 16,449 tiles of
        // 128 pixels for each of 4 blocks.
        (
            "big_grid_grouped",
            Conv2dSpec::new(8, 8, [1, 1])
                .padding(Padding::uniform(1))
                .groups(4),
            Shape::new(1, 8, 2048, 1025),
            GR,
        ),
    ];
    for (name, spec, x, kind) in cases {
        let data = ConvData::new(&spec, x, 1, true);
        let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias()).unwrap();
        let grid = conv.dispatch_grid(x).unwrap();
        let limit = gpu().limits().max_compute_workgroups_per_dimension;
        assert!(
            grid[1] > 1 && grid[0] <= limit && grid[1] <= limit,
            "{name}: grid {grid:?} not spread"
        );
        // The uniform-window kernels only: the tiled product pads these few channels to 64
        // per group, which takes many seconds on a software adapter (its grid spreading is
        // tested in tests/limits.rs on a device with a lowered per-dimension limit).
        assert_eq!(spec.kind(), kind, "{name}: kernel choice");
        check_with(name, spec, x, ConvKernel::UniformWindows);
    }
}

/// Runs the block `dw` then `pw` on `input` along `fusion` into a NaN-filled output and checks
/// it against two reference calls: on seeded normal data within the two stages' tolerances,
/// and on small integers bit for bit. Returns the path the block took.
fn check_block(name: &str, dw: Conv2dSpec, pw: Conv2dSpec, input: Shape, fusion: Fusion) {
    let gpu = gpu();
    let seed = seed_of(name);
    for exact in [false, true] {
        let d = ConvData::new(&dw, input, seed, exact);
        let p = ConvData::new(&pw, Shape::new(1, pw.c_in, 1, 1), seed + 1, exact);
        let block = SeparableBlock::new(
            Conv2d::new(gpu, dw, &d.weights, d.bias()).unwrap(),
            Conv2d::new(gpu, pw, &p.weights, p.bias()).unwrap(),
        )
        .unwrap()
        .with_tuning(Tuning::auto().with_fusion(fusion));
        let x = GpuTensor::from_tensor(gpu, &d.input).unwrap();
        let (_, out_shape) = block.shapes(input).unwrap();
        let y = GpuTensor::full(gpu, out_shape, f32::NAN).unwrap();
        block.run_into(&x, &y).unwrap();
        let path = block.chosen_path(input).expect("a run records its path");
        match fusion {
            Fusion::Never => assert_eq!(path, BlockPath::TwoKernels, "{name}"),
            Fusion::Always => assert_eq!(path, BlockPath::Fused, "{name}"),
            Fusion::Auto => {}
        }
        let got = y.read().unwrap();
        let mid = reference::conv2d(&dw, &d.input, &d.weights, d.bias()).unwrap();
        let want = reference::conv2d(&pw, &mid, &p.weights, p.bias()).unwrap();
        let case = format!(
            "{name} [{fusion:?} → {path:?}, {input}, {}]",
            if exact { "integers" } else { "normal" }
        );
        if exact {
            assert_matches(&case, seed, &got, &want, None);
        } else {
            // Two stages: bound the pointwise stage from the reference intermediate, and
            // allow for the depthwise stage's error carried through (at most its own
            // tolerance times the largest Σ|w_pw| of an output channel).
            let pw_data = ConvData {
                input: mid.clone(),
                weights: p.weights.clone(),
                bias: p.bias.clone(),
            };
            let mut tol = tolerances(&pw, &pw_data, &want);
            let dw_tol = tolerances(&dw, &d, &mid);
            let max_dw = dw_tol.iter().cloned().fold(0.0f32, f32::max);
            let w_sum: f32 = p
                .weights
                .chunks(pw.c_in)
                .map(|r| r.iter().map(|w| w.abs()).sum::<f32>())
                .fold(0.0, f32::max);
            tol.iter_mut().for_each(|t| *t += max_dw * w_sum);
            assert_matches(&case, seed, &got, &want, Some(&tol));
        }
    }
}

#[test]
fn separable_block_matches_two_reference_calls() {
    let dw = Conv2dSpec::depthwise(24, [3, 3])
        .stride([2, 2])
        .padding(Padding::uniform(1))
        .activation(Activation::Relu6);
    let pw = Conv2dSpec::pointwise(24, 40).activation(Activation::Relu6);
    let input = Shape::new(2, 24, 29, 31);
    for fusion in [Fusion::Never, Fusion::Always, Fusion::Auto] {
        check_block("separable", dw, pw, input, fusion);
    }
}

/// The fused kernel on MobileNet v1's 14×14 and 7×7 blocks (Howard et al. 2017, Table 1) and
/// on shapes that leave every tile of it partly filled.
#[test]
fn fused_block_matches_reference() {
    let mobilenet = |c_in: usize, c_out: usize, stride: usize| {
        (
            Conv2dSpec::depthwise(c_in, [3, 3])
                .stride([stride, stride])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu6),
            Conv2dSpec::pointwise(c_in, c_out).activation(Activation::Relu6),
        )
    };
    let cases = [
        (
            "mbv1 block 14x14",
            mobilenet(512, 512, 1),
            Shape::new(1, 512, 14, 14),
        ),
        (
            "mbv1 block 14->7",
            mobilenet(512, 1024, 2),
            Shape::new(1, 512, 14, 14),
        ),
        (
            "mbv1 block 7x7",
            mobilenet(1024, 1024, 1),
            Shape::new(1, 1024, 7, 7),
        ),
        (
            // 26 depthwise channels (not a multiple of 8), 70 outputs (not of 64), a
            // dilated 5×5 kernel with asymmetric padding, a strided pointwise half, no
            // depthwise bias, 3 images of 11×9 (297 pixels, not a multiple of 32).
            "odd tiles",
            (
                Conv2dSpec::depthwise(13, [5, 5])
                    .multiplier(2)
                    .dilation([2, 2])
                    .padding(Padding::explicit(3, 1, 0, 4))
                    .bias(false),
                Conv2dSpec::pointwise(26, 70)
                    .stride([2, 2])
                    .activation(Activation::Relu),
            ),
            Shape::new(3, 13, 11, 9),
        ),
        (
            "1x7 same, stride 1x2",
            (
                Conv2dSpec::depthwise(40, [1, 7])
                    .stride([1, 2])
                    .padding(Padding::same())
                    .activation(Activation::Relu),
                Conv2dSpec::pointwise(40, 8).bias(false),
            ),
            Shape::new(2, 40, 5, 23),
        ),
        (
            "1x1 input, 3x3 kernel",
            mobilenet(16, 64, 1),
            Shape::new(1, 16, 1, 1),
        ),
    ];
    for (name, (dw, pw), input) in cases {
        check_block(name, dw, pw, input, Fusion::Always);
        check_block(name, dw, pw, input, Fusion::Never);
    }
}

/// Under `Fusion::Auto` the first run of a shape measures both paths and records one (and the
/// pointwise half, under `ConvKernel::Auto`, its two kernels); the output is right
/// either way.
#[test]
fn auto_fusion_records_a_path_per_shape() {
    let gpu = gpu();
    let dw = Conv2dSpec::depthwise(32, [3, 3]).padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(32, 48);
    let d = ConvData::new(&dw, Shape::new(1, 32, 9, 9), 7, true);
    let p = ConvData::new(&pw, Shape::new(1, 32, 1, 1), 8, true);
    let block = SeparableBlock::new(
        Conv2d::new(gpu, dw, &d.weights, d.bias()).unwrap(),
        Conv2d::new(gpu, pw, &p.weights, p.bias()).unwrap(),
    )
    .unwrap();
    assert_eq!(block.tuning().fusion, Fusion::Auto);
    let small = Shape::new(1, 32, 9, 9);
    let large = Shape::new(2, 32, 16, 12);
    assert_eq!(block.chosen_path(small), None);
    for shape in [small, large, small] {
        let data = ConvData::new(&dw, shape, 9, true);
        let x = GpuTensor::from_tensor(gpu, &data.input).unwrap();
        let got = block.run(&x).unwrap().read().unwrap();
        let mid = reference::conv2d(&dw, &data.input, &d.weights, d.bias()).unwrap();
        let want = reference::conv2d(&pw, &mid, &p.weights, p.bias()).unwrap();
        assert_matches("auto fusion", 9, &got, &want, None);
        assert!(block.chosen_path(shape).is_some());
    }
    let pinned = block.with_tuning(Tuning::auto().with_fusion(Fusion::Never));
    assert_eq!(pinned.chosen_path(small), Some(BlockPath::TwoKernels));
    // The pointwise half measured its kernels on each shape it ran.
    for shape in [small, large] {
        let (mid, _) = pinned.shapes(shape).unwrap();
        assert!(pinned.pointwise().chosen_kernel(mid).is_some());
    }
    assert_eq!(
        pinned.depthwise().chosen_kernel(small),
        Some(ConvKernel::UniformWindows)
    );
}

#[test]
fn results_stay_on_the_gpu_and_chain() {
    // Two convs chained through a GpuTensor without a readback in between.
    let gpu = gpu();
    let a = Conv2dSpec::new(4, 8, [3, 3])
        .padding(Padding::uniform(1))
        .groups(2);
    let b = Conv2dSpec::pointwise(8, 3).activation(Activation::Relu);
    let input = Shape::new(1, 4, 9, 10);
    let da = ConvData::new(&a, input, 7, true);
    let db = ConvData::new(&b, Shape::new(1, 8, 1, 1), 8, true);
    let x = GpuTensor::from_tensor(gpu, &da.input).unwrap();
    let mid = Conv2d::new(gpu, a, &da.weights, da.bias())
        .unwrap()
        .run(&x)
        .unwrap();
    let got = Conv2d::new(gpu, b, &db.weights, db.bias())
        .unwrap()
        .run(&mid)
        .unwrap()
        .read()
        .unwrap();
    let want_mid = reference::conv2d(&a, &da.input, &da.weights, da.bias()).unwrap();
    let want = reference::conv2d(&b, &want_mid, &db.weights, db.bias()).unwrap();
    assert_matches("chain", 7, &got, &want, None);
    // Async readback gives the same values.
    let again = pollster::block_on(mid.read_async()).unwrap();
    assert_matches("chain (async read)", 7, &again, &want_mid, None);
}

#[test]
fn weights_beyond_one_uniform_window_are_sliced_and_match_reference() {
    // Each dispatch reads its weights from one 64 KiB uniform window. Depthwise filters past
    // 16,384 floats split over output channels; pointwise/grouped blocks split over blocks,
    // and blocks whose input channels alone overflow a window split over input channels,
    // with later slices adding to the partial sums (bias first, activation last).
    let cases = [
        (
            "sliced_dw_2000ch",
            Conv2dSpec::depthwise(2000, [3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu),
            Shape::new(1, 2000, 5, 6),
            DW(1),
        ),
        (
            "sliced_dw_7x7_multiplier",
            Conv2dSpec::depthwise(200, [7, 7])
                .multiplier(2)
                .padding(Padding::uniform(3)),
            Shape::new(1, 200, 9, 8),
            DW(2),
        ),
        (
            "sliced_pw_blocks",
            Conv2dSpec::pointwise(520, 72).activation(Activation::Relu6),
            Shape::new(2, 520, 5, 3),
            PW,
        ),
        (
            "sliced_pw_k_split",
            Conv2dSpec::pointwise(2100, 20).activation(Activation::Relu6),
            Shape::new(1, 2100, 3, 4),
            PW,
        ),
        (
            "sliced_grouped_k_split",
            Conv2dSpec::new(240, 36, [5, 5])
                .padding(Padding::uniform(2))
                .groups(2)
                .activation(Activation::Relu),
            Shape::new(1, 240, 6, 7),
            GR,
        ),
    ];
    for (name, spec, x, kind) in cases {
        let data = ConvData::new(&spec, x, 2, false);
        let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias()).unwrap();
        assert!(conv.dispatch_count() > 1, "{name}: expected several slices");
        check(name, spec, x, kind);
    }
}

/// The tiled product with its sums split as `split_k` asks (`expect`: the slices its run
/// must have made), on random data within tolerance and on integers bit for bit.
fn check_split_k(name: &str, spec: Conv2dSpec, input: Shape, split_k: SplitK, expect: usize) {
    let seed = seed_of(name);
    for exact in [false, true] {
        let data = ConvData::new(&spec, input, seed, exact);
        let want =
            reference::conv2d(&spec, &data.input, &data.weights, data.bias()).expect("reference");
        let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias())
            .expect("conv")
            .with_tuning(
                Tuning::auto()
                    .with_kernel(ConvKernel::TiledGemm)
                    .with_split_k(split_k),
            );
        let got = run_conv(&conv, &data);
        assert_eq!(conv.split_k_parts(input).unwrap(), expect, "{name}: slices");
        let case = format!("{name} [{spec:?} on {input}, {split_k:?}, exact {exact}]");
        let tol = (!exact).then(|| tolerances(&spec, &data, &want));
        assert_matches(&case, seed, &got, &want, tol.as_deref());
    }
}

fn slices(n: usize) -> SplitK {
    SplitK::Parts(NonZeroUsize::new(n).unwrap())
}

#[test]
fn split_k_products_match_reference() {
    // The rows k (input channels × taps of a group) are shared out in whole steps of 8: the
    // slices each write partial sums (the first with the bias) to a scratch slot, and a
    // second dispatch sums the slots and applies the activation.
    // MobileNet v1's last pointwise layer: 128 steps, 16 slices of 8 steps.
    check_split_k(
        "split_pw13",
        Conv2dSpec::pointwise(1024, 1024).activation(Activation::Relu6),
        Shape::new(1, 1024, 7, 7),
        slices(16),
        16,
    );
    // Ragged rows: 70 channels are 9 steps, in 4 slices of 2, 2, 2 and 3 steps (the last
    // step padded), and a ReLU that must wait for the whole sum.
    check_split_k(
        "split_ragged_k",
        Conv2dSpec::pointwise(70, 72).activation(Activation::Relu),
        Shape::new(2, 70, 5, 3),
        slices(4),
        4,
    );
    // Grouped 3×3 with padding: 32 · 9 = 288 rows per group = 36 steps, 3 slices of 12; two
    // groups of 64 channels, every group in every slice.
    check_split_k(
        "split_grouped",
        Conv2dSpec::new(64, 128, [3, 3])
            .groups(2)
            .padding(Padding::uniform(1))
            .activation(Activation::Relu),
        Shape::new(1, 64, 5, 6),
        slices(3),
        3,
    );
    // Batch 3, stride 2, dilation 2, asymmetric padding, no bias: slices of a standard conv.
    check_split_k(
        "split_strided_dilated",
        Conv2dSpec::new(24, 40, [3, 3])
            .stride([2, 2])
            .dilation([2, 2])
            .padding(Padding::explicit(2, 1, 1, 2))
            .bias(false),
        Shape::new(3, 24, 9, 8),
        slices(2),
        2,
    );
    // More slices asked for than there are steps: 16 channels are 2 steps, so 2 slices;
    // and 1 slice never splits.
    let pw16 = Conv2dSpec::pointwise(16, 20);
    check_split_k("split_capped", pw16, Shape::new(1, 16, 4, 4), slices(10), 2);
    check_split_k("split_one", pw16, Shape::new(1, 16, 4, 4), slices(1), 1);
}

#[test]
fn split_k_auto_splits_small_outputs_only() {
    // Auto splits while the tiles alone would leave the device idle: a 3×3 output of 32
    // channels is one tile, which on a CPU adapter with several threads (one workgroup each)
    // gets a slice per thread, up to one per 8 steps (256 rows: 4); a 56×56 output has 98
    // tiles and is not split. A GPU asks for 512 workgroups: 4 slices as well.
    let spec = Conv2dSpec::pointwise(256, 32).activation(Activation::Relu);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let expect = match gpu().adapter_info().device_type {
        wgpu::DeviceType::Cpu => threads.min(4),
        _ => 4,
    };
    check_split_k(
        "auto_small",
        spec,
        Shape::new(1, 256, 3, 3),
        SplitK::Auto,
        expect,
    );
    let (weights, bias) = (vec![0.5; spec.weight_count()], vec![0.0; spec.c_out]);
    let conv = Conv2d::new(gpu(), spec, &weights, Some(&bias)).unwrap();
    assert_eq!(conv.tuning().split_k, SplitK::Auto);
    assert_eq!(conv.split_k_parts(Shape::new(1, 256, 56, 56)).unwrap(), 1);
    // Under ConvKernel::Auto the measured choice may take either kernel; both are right.
    let data = ConvData::new(&spec, Shape::new(1, 256, 3, 3), 9, true);
    let want = reference::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
    let conv = Conv2d::new(gpu(), spec, &data.weights, data.bias()).unwrap();
    assert_matches("auto kernel", 9, &run_conv(&conv, &data), &want, None);
}

#[test]
fn one_conv_runs_many_shapes_in_any_order() {
    // A Conv2d keeps the launch parameters of its last few input shapes; a stale entry would
    // give a wrong size or a wrong answer. Six shapes (more than it keeps), each run twice in
    // an interleaved order, every result checked, for each kernel family.
    let gpu = gpu();
    let cases = [
        (
            "pointwise",
            Conv2dSpec::pointwise(24, 40).activation(Activation::Relu),
        ),
        (
            "depthwise",
            Conv2dSpec::depthwise(24, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1)),
        ),
        (
            "grouped",
            Conv2dSpec::new(24, 48, [3, 3])
                .groups(3)
                .padding(Padding::uniform(1)),
        ),
    ];
    let sizes = [
        (1, 9, 9),
        (2, 5, 7),
        (1, 16, 3),
        (3, 4, 4),
        (1, 1, 1),
        (1, 30, 11),
    ];
    for (name, spec) in cases {
        let seed = seed_of(name);
        let weights = common::normal(seed, spec.weight_count());
        let bias = spec.bias.then(|| common::normal(seed + 1, spec.c_out));
        let conv = Conv2d::new(gpu, spec, &weights, bias.as_deref()).expect("conv");
        let order = sizes.iter().chain(sizes.iter().rev()).enumerate();
        for (i, &(n, h, w)) in order {
            let shape = Shape::new(n, spec.c_in, h, w);
            let input = Tensor::new(
                shape,
                common::normal(seed + 2 + i as u64, shape.len().unwrap()),
            )
            .expect("input");
            let want =
                reference::conv2d(&spec, &input, &weights, bias.as_deref()).expect("reference");
            let x = GpuTensor::from_tensor(gpu, &input).expect("upload");
            let y = GpuTensor::full(gpu, want.shape(), f32::NAN).expect("poisoned output");
            conv.run_into(&x, &y).expect("dispatch");
            let got = y.read().expect("readback");
            let data = ConvData {
                input,
                weights: weights.clone(),
                bias: bias.clone(),
            };
            let tol = tolerances(&spec, &data, &want);
            let case = format!("{name} run {i} on {shape}");
            assert_matches(&case, seed, &got, &want, Some(&tol));
        }
    }
}
