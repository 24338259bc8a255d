//! Every figure the papers print for their networks, reproduced by `sepconv::networks`.
//!
//! Exact integers where the paper (or its reference implementation) gives one; otherwise the
//! printed, rounded figure is checked against our exact count rounded the way the paper
//! rounds. Sources are named at each test.

use sepconv::accounting::Cost;
use sepconv::networks::{
    alexnet, mobilenet_v1, mobilenet_v2, resnet50, resnext50_32x4d, shufflenet_v1, xception,
    AlexNet, Counting, LayerKind, MobileNetV1, Network, Op, ShuffleNetV1,
};
use sepconv::{Error, Shape};

fn kind_cost(net: &Network, kind: LayerKind) -> Cost {
    net.by_kind()
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map_or(Cost::default(), |(_, c)| c)
}

/// Percentage of `part` in `whole`, rounded to two decimals as Table 2 prints it.
fn share_2dp(part: u64, whole: u64) -> f64 {
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}

fn millions_rounded(v: u64) -> u64 {
    (v + 500_000) / 1_000_000
}

/// `v` in units of 0.1M, rounded (the papers' "4.2M").
fn tenths_of_millions(v: u64) -> u64 {
    (v + 50_000) / 100_000
}

// ---------------------------------------------------------------- MobileNet v1 (Howard et al. 2017)

#[test]
fn mobilenet_v1_table1_totals_exactly() {
    // Table 1 / Table 4 ("1.0 MobileNet-224": 569M mult-adds, 4.2M parameters); weights only,
    // the classifier's 1024×1000 weights included, no biases.
    let net = mobilenet_v1(1.0, 224).unwrap();
    let total = net.total();
    assert_eq!(total.macs, 568_740_352);
    assert_eq!(total.params, 4_209_088);
    assert_eq!(millions_rounded(total.macs), 569);
    assert_eq!(tenths_of_millions(total.params), 42);
    // 28 layers counting depthwise and pointwise separately, plus the classifier (§3).
    let convs = net
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::Conv { .. }))
        .count();
    assert_eq!(convs, 27);
    assert_eq!(net.output_shape(), Shape::new(1, 1000, 1, 1));
}

#[test]
fn mobilenet_v1_table1_shapes_follow_the_table() {
    let net = mobilenet_v1(1.0, 224).unwrap();
    let shape_of = |name: &str| {
        net.nodes()
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
            .output
    };
    assert_eq!(shape_of("conv1"), Shape::new(1, 32, 112, 112));
    assert_eq!(shape_of("conv_dw_2"), Shape::new(1, 64, 56, 56));
    assert_eq!(shape_of("conv_pw_6"), Shape::new(1, 512, 14, 14));
    assert_eq!(shape_of("conv_pw_11"), Shape::new(1, 512, 14, 14));
    assert_eq!(shape_of("conv_dw_12"), Shape::new(1, 512, 7, 7));
    // The last depthwise keeps 7×7 (stride 1, see the next test).
    assert_eq!(shape_of("conv_dw_13"), Shape::new(1, 1024, 7, 7));
    assert_eq!(shape_of("global_pool"), Shape::new(1, 1024, 1, 1));
}

#[test]
fn mobilenet_v1_table1_last_depthwise_stride_2_does_not_reproduce_the_totals() {
    // Table 1 prints "Conv dw / s2" for the last depthwise layer; with stride 2 the totals
    // are not the paper's 569M.
    let net = MobileNetV1 {
        last_depthwise_stride: 2,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_eq!(net.total().macs, 533_833_216);
    assert_ne!(millions_rounded(net.total().macs), 569);
    assert_eq!(net.total().params, 4_209_088); // parameters do not depend on strides
}

#[test]
fn mobilenet_v1_table2_shares_per_layer_type() {
    // Table 2: Conv 1×1 94.86% / 74.59%, Conv DW 3×3 3.06% / 1.06%,
    // Conv 3×3 1.19% (misprint of 1.91%) / 0.02%, Fully Connected 0.18% / 24.33%.
    let net = mobilenet_v1(1.0, 224).unwrap();
    let total = net.total();
    let check = |kind, macs_pct: f64, params_pct: f64| {
        let c = kind_cost(&net, kind);
        assert_eq!(share_2dp(c.macs, total.macs), macs_pct, "{kind} mult-adds");
        assert_eq!(
            share_2dp(c.params, total.params),
            params_pct,
            "{kind} params"
        );
    };
    check(LayerKind::Pointwise, 94.86, 74.59);
    check(LayerKind::Depthwise, 3.06, 1.06);
    check(LayerKind::FullyConnected, 0.18, 24.33);
    // The first convolution: printed 1.19%, but it is 10,838,016 of 568,740,352 = 1.91%.
    check(LayerKind::Conv, 1.91, 0.02);
    assert_eq!(kind_cost(&net, LayerKind::Conv).macs, 10_838_016);
    // With 1.91 the printed shares add up to 100.01%; with 1.19, to 99.29%.
    let printed: f64 = 94.86 + 3.06 + 0.18;
    assert!(((printed + 1.91) - 100.0).abs() < 0.015);
    assert!(((printed + 1.19) - 100.0).abs() > 0.7);
    // Nothing else costs anything.
    let by_kind_sum = net
        .by_kind()
        .into_iter()
        .fold(Cost::default(), |a, (_, c)| a + c);
    assert_eq!(by_kind_sum, total);
}

#[test]
fn mobilenet_v1_table4_full_convolution_network() {
    // Table 4, "Conv MobileNet": 4866M mult-adds, 29.3M parameters.
    let net = mobilenet_v1(1.0, 224).unwrap();
    let full = net.with_standard_convs().unwrap();
    let total = full.total();
    assert_eq!(total.params, 29_281_120);
    assert_eq!(tenths_of_millions(total.params), 293);
    assert_eq!(total.macs, 4_867_293_184);
    // The paper's 4866M is not our 4867.29M rounded: it is the count without the classifier's
    // 1,024,000 mult-adds (4,866,269,184), the only reading we found that prints 4866.
    let without_fc = total.macs - kind_cost(&full, LayerKind::FullyConnected).macs;
    assert_eq!(millions_rounded(without_fc), 4866);
    assert_eq!(millions_rounded(total.macs), 4867);
    // Same layer count: 14 standard 3×3 convolutions and the classifier, nothing separable.
    assert_eq!(kind_cost(&full, LayerKind::Depthwise), Cost::default());
    assert_eq!(kind_cost(&full, LayerKind::Pointwise), Cost::default());
    let convs = full
        .nodes()
        .iter()
        .filter(|n| n.kind() == LayerKind::Conv)
        .count();
    assert_eq!(convs, 14);
    assert_eq!(full.output_shape(), net.output_shape());
}

#[test]
fn mobilenet_v1_table6_width_multipliers() {
    // Table 6: α = 0.75 → 325M, 2.6M; 0.5 → 149M, 1.3M; 0.25 → 41M, 0.5M.
    for (alpha, macs, params) in [
        (0.75, 325_400_448, 2_568_144),
        (0.5, 149_497_088, 1_319_648),
        (0.25, 41_030_272, 463_600),
    ] {
        let total = mobilenet_v1(alpha, 224).unwrap().total();
        assert_eq!((total.macs, total.params), (macs, params), "α = {alpha}");
    }
    let printed = [(0.75, 325, 26), (0.5, 149, 13), (0.25, 41, 5)];
    for (alpha, macs_m, params_tenths) in printed {
        let total = mobilenet_v1(alpha, 224).unwrap().total();
        assert_eq!(millions_rounded(total.macs), macs_m, "α = {alpha}");
        assert_eq!(
            tenths_of_millions(total.params),
            params_tenths,
            "α = {alpha}"
        );
    }
}

#[test]
fn mobilenet_v1_table7_resolutions() {
    // Table 7: 192 → 418M, 160 → 290M, 128 → 186M mult-adds, 4.2M parameters each.
    // 160 is 290.68M, printed 290 (truncated), while 568.74M is printed 569 (rounded): the
    // paper rounds either way, so the check is "within 1M".
    for (res, printed, exact) in [
        (192, 418, 418_121_728),
        (160, 290, 290_675_200),
        (128, 186, 186_400_768),
    ] {
        let total = mobilenet_v1(1.0, res).unwrap().total();
        assert_eq!(total.macs, exact, "ρ = {res}/224");
        let diff = total.macs.abs_diff(printed * 1_000_000);
        assert!(
            diff < 1_000_000,
            "ρ = {res}/224: {} vs {printed}M",
            total.macs
        );
        assert_eq!(tenths_of_millions(total.params), 42);
    }
}

#[test]
fn mobilenet_v1_rejects_bad_width_multipliers() {
    for alpha in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(
            mobilenet_v1(alpha, 224),
            Err(Error::InvalidArgument { .. })
        ));
    }
    assert!(matches!(mobilenet_v1(1.0, 0), Err(Error::Zero { .. })));
}

// ---------------------------------------------------------------- MobileNet v2 (Sandler et al. 2018)

#[test]
fn mobilenet_v2_table4_figures() {
    // Table 4: MobileNetV2 (1.0) 3.4M parameters, 300M multiply-adds. Both are our exact
    // counts truncated (3.47M, 300.77M); torchvision's parameter count 3,504,872 adds batch
    // norm's γ/β and the classifier bias.
    let net = mobilenet_v2(1.0, 224).unwrap();
    let total = net.total();
    assert_eq!(total.macs, 300_774_272);
    assert_eq!(total.params, 3_469_760);
    assert_eq!(total.macs / 1_000_000, 300);
    assert_eq!(total.params / 100_000, 34);
    assert_eq!(net.total_with(Counting::TRAINABLE).params, 3_504_872);
    // 17 bottleneck blocks, 10 of them residual.
    let adds = net
        .nodes()
        .iter()
        .filter(|n| n.kind() == LayerKind::Add)
        .count();
    assert_eq!(adds, 10);
    let projections = net
        .nodes()
        .iter()
        .filter(|n| n.name.ends_with("_project"))
        .count();
    assert_eq!(projections, 17);
}

// ---------------------------------------------------------------- Xception (Chollet 2017)

#[test]
fn xception_table3_parameter_count() {
    // Table 3: Xception 22,855,952 parameters (Keras' trainable count).
    let net = xception().unwrap();
    assert_eq!(net.total().params, 22_855_952);
    // Keras' "total params" adds batch norm's running mean and variance.
    assert_eq!(net.total_with(Counting::ALL).params, 22_910_480);
    assert_eq!(
        net.total_with(Counting::WEIGHTS).params,
        20_752_424 + 2_048_000
    );
    // Entry flow 299 → 149 → 147, then 74, 37, 19; exit flow 10.
    let pooled = net
        .nodes()
        .iter()
        .find(|n| n.name == "global_pool")
        .unwrap();
    assert_eq!(pooled.inputs.len(), 1);
    assert_eq!(
        net.nodes()[pooled.inputs[0]].output,
        Shape::new(1, 2048, 10, 10)
    );
    // 36 convolution layers in the base (Figure 5 / §3): 2 + 34 separable (each a depthwise and
    // a pointwise), the four 1×1 shortcut projections not counted among them.
    let depthwise = net
        .nodes()
        .iter()
        .filter(|n| n.kind() == LayerKind::Depthwise)
        .count();
    assert_eq!(depthwise, 34);
}

// ---------------------------------------------------------------- ShuffleNet (Zhang et al. 2017)

#[test]
fn shufflenet_g3_complexity() {
    // Table 1 / Table 2: ShuffleNet 1× (g = 3), 137 MFLOPs (multiply-adds).
    let net = shufflenet_v1(3).unwrap();
    assert_eq!(net.total().macs, 137_460_672);
    assert_eq!(millions_rounded(net.total().macs), 137);
    assert_eq!(net.output_shape(), Shape::new(1, 1000, 1, 1));
    let shuffles = net
        .nodes()
        .iter()
        .filter(|n| n.kind() == LayerKind::Shuffle)
        .count();
    assert_eq!(shuffles, 16);
}

#[test]
fn shufflenet_table1_complexity_is_about_equal_across_groups() {
    // Table 1 sets the stage widths so that every g costs about 140 MFLOPs: g = 1 143M,
    // g = 2 140M, g = 4 133M, g = 8 137M. g = 1 reproduces; g = 2 is 140.8M (truncated);
    // g = 4 (134.3M) and g = 8 (138.4M) do not (see ShuffleNetV1's docs).
    assert_eq!(shufflenet_v1(1).unwrap().total().macs, 143_078_976);
    assert_eq!(shufflenet_v1(2).unwrap().total().macs / 1_000_000, 140);
    assert_eq!(shufflenet_v1(4).unwrap().total().macs, 134_339_776);
    assert_eq!(shufflenet_v1(8).unwrap().total().macs, 138_365_952);
    for g in [1, 2, 3, 4, 8] {
        let macs = shufflenet_v1(g).unwrap().total().macs;
        assert!(
            (125_000_000..150_000_000).contains(&macs),
            "g = {g}: {macs}"
        );
    }
    assert!(matches!(
        ShuffleNetV1 {
            groups: 5,
            ..Default::default()
        }
        .build(),
        Err(Error::InvalidArgument { .. })
    ));
}

// ---------------------------------------------------------------- ResNeXt (Xie et al. 2017)

#[test]
fn resnext50_vs_resnet50_table1() {
    // Table 1: ResNet-50 4.1 × 10⁹ FLOPs, 25.5 × 10⁶ parameters; ResNeXt-50 (32×4d) 4.2 × 10⁹,
    // 25.0 × 10⁶.
    let resnet = resnet50().unwrap().total();
    let resnext = resnext50_32x4d().unwrap().total();
    assert_eq!((resnet.macs + 50_000_000) / 100_000_000, 41);
    assert_eq!((resnext.macs + 50_000_000) / 100_000_000, 42);
    assert_eq!(tenths_of_millions(resnet.params), 255);
    assert_eq!(tenths_of_millions(resnext.params), 250);
    // Exactly: the table counts weights only (rounded, as its 4.089 → 4.1 GFLOPs shows).
    assert_eq!(resnet.params, 25_502_912);
    assert_eq!(resnext.params, 24_959_680);
    assert_eq!(resnet.macs, 4_089_184_256);
    assert_eq!(resnext.macs, 4_230_479_872);
    // torchvision's counts add the classifier's bias and batch norm's γ/β; ResNet-50's would
    // round to 25.6M, not the printed 25.5M.
    let trainable = |n: Network| n.total_with(Counting::TRAINABLE).params;
    assert_eq!(trainable(resnet50().unwrap()), 25_557_032);
    assert_eq!(trainable(resnext50_32x4d().unwrap()), 25_028_904);
    assert_eq!(tenths_of_millions(25_557_032), 256);
}

// ---------------------------------------------------------------- AlexNet (Krizhevsky et al. 2012)

#[test]
fn alexnet_sixty_million_parameters() {
    // §1: "60 million parameters"; the reference two-group model has 60,965,224.
    let net = alexnet().unwrap();
    let total = net.total();
    assert_eq!(total.params, 60_965_224);
    assert_eq!(total.params / 10_000_000, 6);
    assert_eq!(total.macs, 724_406_816);
    // The two groups halve conv2, conv4 and conv5; without them the network is larger.
    let one_group = AlexNet {
        groups: 1,
        ..Default::default()
    }
    .build()
    .unwrap();
    let saved = (256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9) as u64;
    assert_eq!(one_group.total().params, total.params + saved);
    // Grouped → standard gives the same network as groups = 1.
    assert_eq!(
        net.with_standard_convs().unwrap().total(),
        one_group.total()
    );
}

// ---------------------------------------------------------------- the standard-conv versions

#[test]
fn standard_versions_cost_more_everywhere_and_keep_shapes() {
    for net in [
        mobilenet_v1(1.0, 224).unwrap(),
        mobilenet_v2(1.0, 224).unwrap(),
        xception().unwrap(),
        resnext50_32x4d().unwrap(),
        shufflenet_v1(3).unwrap(),
        alexnet().unwrap(),
    ] {
        let std = net.with_standard_convs().unwrap();
        assert_eq!(std.output_shape(), net.output_shape(), "{}", net.name());
        assert!(std.total().params > net.total().params, "{}", net.name());
        assert!(std.total().macs > net.total().macs, "{}", net.name());
        for node in std.nodes() {
            if let Some(spec) = node.op.conv_spec() {
                assert_eq!(spec.groups, 1, "{}: {}", net.name(), node.name);
            }
        }
    }
}

#[test]
fn standard_version_of_a_separable_pair_is_k2_c_n() {
    // MobileNet v1's conv_dw_7 + conv_pw_7 (512 → 512 at 14×14) become one 3×3 convolution:
    // 3·3·512·512 weights, ×14·14 mult-adds (the paper's D_K·D_K·M·N·D_F·D_F).
    let std = mobilenet_v1(1.0, 224)
        .unwrap()
        .with_standard_convs()
        .unwrap();
    let node = std
        .nodes()
        .iter()
        .find(|n| n.name == "conv_dw_7 + conv_pw_7")
        .unwrap();
    assert_eq!(node.cost(Counting::WEIGHTS).params, 9 * 512 * 512);
    assert_eq!(node.macs, 9 * 512 * 512 * 14 * 14);
}

#[test]
fn batch_scales_macs_not_params() {
    let net = mobilenet_v1(1.0, 224).unwrap();
    let b4 = net.with_batch(4).unwrap();
    assert_eq!(b4.total().macs, 4 * net.total().macs);
    assert_eq!(b4.total().params, net.total().params);
    assert_eq!(b4.input_shape(), Shape::new(4, 3, 224, 224));
    assert!(matches!(net.with_batch(0), Err(Error::Zero { .. })));
}
