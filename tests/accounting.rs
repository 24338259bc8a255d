//! Parameter and MAC counts pinned to the numbers the literature gives.
//!
//! For a `K×K` convolution from `C` to `N` channels (weights only): standard `K²·C·N`,
//! depthwise `K²·C`, pointwise `C·N`, grouped `K²·C·N/g`, so separable/standard
//! `= 1/N + 1/K²` exactly, for any `C`. Ratios are checked with integer cross-multiplication,
//! so "exactly" means exactly; the `f64` helpers are checked against them separately.

use sepconv::accounting::{self, Cost};
use sepconv::{Conv2dSpec, Error, Padding, Shape};

/// MobileNet v1 (Howard et al. 2017, Table 1): the five repeated 3×3 depthwise, 512 → 512
/// pointwise layers at 14×14.
fn mobilenet_512() -> (Conv2dSpec, Conv2dSpec, Shape) {
    (
        Conv2dSpec::depthwise(512, [3, 3]).padding(Padding::uniform(1)),
        Conv2dSpec::pointwise(512, 512),
        Shape::new(1, 512, 14, 14),
    )
}

/// Asserts `cheap / standard == 1/n + 1/k²` exactly: `cheap · n · k² == standard · (k² + n)`.
#[track_caller]
fn assert_ratio_exact(cheap: u64, standard: u64, n: u64, k: u64) {
    assert_eq!(
        cheap * n * k * k,
        standard * (k * k + n),
        "{cheap}/{standard} != 1/{n} + 1/{k}²"
    );
}

#[test]
fn mobilenet_512_layer_params() {
    let (dw, pw, input) = mobilenet_512();
    // Depthwise 3·3·512 = 4,608; pointwise 512·512 = 262,144; standard 3·3·512·512 = 2,359,296.
    assert_eq!(dw.weight_count(), 4_608);
    assert_eq!(pw.weight_count(), 262_144);
    assert_eq!(dw.as_standard().weight_count(), 2_359_296);
    let cmp = accounting::separable_vs_standard(&dw, &pw, input).unwrap();
    assert_eq!(cmp.cheap.params, 4_608 + 262_144);
    assert_eq!(cmp.cheap.params, 266_752);
    assert_eq!(cmp.standard.params, 2_359_296);
    assert_ratio_exact(cmp.cheap.params, cmp.standard.params, 512, 3);
    // 266,752 / 2,359,296 = 1/512 + 1/9 ≈ 0.1131: about 8.8× fewer weights.
    assert!((cmp.param_ratio() - accounting::separable_ratio(512, 3)).abs() < 1e-15);
    assert!((cmp.param_ratio() - (1.0 / 512.0 + 1.0 / 9.0)).abs() < 1e-15);
}

#[test]
fn mobilenet_512_layer_macs() {
    let (dw, pw, input) = mobilenet_512();
    // Every layer keeps 14×14 = 196 output pixels, so each MAC count is its weights × 196.
    assert_eq!(dw.macs(input).unwrap(), 4_608 * 196);
    assert_eq!(dw.macs(input).unwrap(), 903_168);
    let mid = dw.output_shape(input).unwrap();
    assert_eq!(mid, Shape::new(1, 512, 14, 14));
    assert_eq!(pw.macs(mid).unwrap(), 262_144 * 196);
    assert_eq!(pw.macs(mid).unwrap(), 51_380_224);
    let cmp = accounting::separable_vs_standard(&dw, &pw, input).unwrap();
    assert_eq!(cmp.cheap.macs, 903_168 + 51_380_224);
    assert_eq!(cmp.standard.macs, 2_359_296 * 196);
    assert_eq!(cmp.standard.macs, 462_422_016);
    assert_ratio_exact(cmp.cheap.macs, cmp.standard.macs, 512, 3);
    assert!((cmp.mac_ratio() - cmp.param_ratio()).abs() < 1e-15);
}

#[test]
fn ratio_is_one_over_n_plus_one_over_k_squared_when_c_differs_from_n() {
    // MobileNet v1's second block: 3×3 depthwise on 32 channels at 112×112, then 32 → 64.
    // C = 32, N = 64, K = 3:
    //   separable = 9·32 + 32·64 = 288 + 2,048 = 2,336
    //   standard  = 9·32·64 = 18,432
    //   2,336 / 18,432 = 73/576 = 1/64 + 1/9 = (9 + 64)/576          (1/N + 1/K²)
    // whereas 1/C + 1/K² = 1/32 + 1/9 = 41/288 = 82/576, which is what a depthwise count of
    // K²·N = 576 would give: (576 + 2,048)/18,432 = 2,624/18,432.
    let dw = Conv2dSpec::depthwise(32, [3, 3]).padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(32, 64);
    let input = Shape::new(1, 32, 112, 112);
    let cmp = accounting::separable_vs_standard(&dw, &pw, input).unwrap();
    assert_eq!(dw.weight_count(), 288);
    assert_eq!(pw.weight_count(), 2_048);
    assert_eq!(cmp.cheap.params, 2_336);
    assert_eq!(cmp.standard.params, 18_432);
    assert_ratio_exact(cmp.cheap.params, cmp.standard.params, 64, 3);
    // The C-based formula is off here: cheap·C·K² != standard·(K² + C).
    assert_ne!(cmp.cheap.params * 32 * 9, cmp.standard.params * (9 + 32));
    assert_eq!(cmp.standard.params * (9 + 32) / (32 * 9), 2_624);
    assert!((cmp.param_ratio() - accounting::separable_ratio(64, 3)).abs() < 1e-15);
    assert!((cmp.param_ratio() - (1.0 / 32.0 + 1.0 / 9.0)).abs() > 0.015);

    // MACs: 112×112 = 12,544 output pixels for every layer.
    assert_eq!(cmp.cheap.macs, 2_336 * 12_544);
    assert_eq!(cmp.cheap.macs, 29_302_784);
    assert_eq!(cmp.standard.macs, 18_432 * 12_544);
    assert_eq!(cmp.standard.macs, 231_211_008);
    assert_ratio_exact(cmp.cheap.macs, cmp.standard.macs, 64, 3);
}

#[test]
fn ratio_holds_for_macs_with_stride_2() {
    // MobileNet v1: 3×3 depthwise stride 2 on 256 channels, 28×28 → 14×14, then 256 → 512.
    // The standard conv it replaces has the same stride, so the same 196 output pixels.
    //   params: 9·256 + 256·512 = 2,304 + 131,072 = 133,376 vs 9·256·512 = 1,179,648
    let dw = Conv2dSpec::depthwise(256, [3, 3])
        .stride([2, 2])
        .padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(256, 512);
    let cmp = accounting::separable_vs_standard(&dw, &pw, Shape::new(1, 256, 28, 28)).unwrap();
    assert_eq!(cmp.cheap.params, 133_376);
    assert_eq!(cmp.standard.params, 1_179_648);
    assert_eq!(cmp.cheap.macs, 133_376 * 196);
    assert_eq!(cmp.standard.macs, 1_179_648 * 196);
    assert_ratio_exact(cmp.cheap.params, cmp.standard.params, 512, 3);
    assert_ratio_exact(cmp.cheap.macs, cmp.standard.macs, 512, 3);
}

#[test]
fn separable_with_multiplier_2() {
    // Depthwise multiplier m = 2 on C = 16 (32 channels out), then pointwise 32 → N = 64,
    // against a standard 3×3 16 → 64:
    //   9·16·2 + 32·64 = 288 + 2,048 = 2,336 vs 9·16·64 = 9,216
    // The ratio is m·(1/N + 1/K²) = 2·73/576 = 146/576, so `separable_ratio` (multiplier 1)
    // does not apply.
    let dw = Conv2dSpec::depthwise(16, [3, 3])
        .multiplier(2)
        .padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(32, 64);
    let cmp = accounting::separable_vs_standard(&dw, &pw, Shape::new(1, 16, 10, 10)).unwrap();
    assert_eq!(cmp.cheap.params, 2_336);
    assert_eq!(cmp.standard.params, 9_216);
    assert_eq!(cmp.cheap.params * 576, cmp.standard.params * 146);
    assert_eq!(cmp.cheap.macs, 2_336 * 100);
    assert_eq!(cmp.standard.macs, 9_216 * 100);
}

#[test]
fn grouped_is_standard_over_g_alexnet_conv2() {
    // AlexNet conv2 (Krizhevsky et al. 2012): 256 kernels of 5×5×48, i.e. 96 → 256 in two
    // groups, on 27×27 with padding 2 (27×27 out, 729 pixels).
    //   grouped 256·48·25 = 307,200 vs standard 256·96·25 = 614,400
    let spec = Conv2dSpec::new(96, 256, [5, 5])
        .groups(2)
        .padding(Padding::uniform(2));
    let input = Shape::new(1, 96, 27, 27);
    assert_eq!(spec.weight_dims(), [256, 48, 5, 5]);
    assert_eq!(spec.weight_count(), 307_200);
    assert_eq!(spec.as_standard().weight_count(), 614_400);
    let cmp = accounting::grouped_vs_standard(&spec, input).unwrap();
    assert_eq!(
        cmp.cheap,
        Cost {
            params: 307_200,
            macs: 307_200 * 729
        }
    );
    assert_eq!(
        cmp.standard,
        Cost {
            params: 614_400,
            macs: 614_400 * 729
        }
    );
    assert_eq!(cmp.cheap.macs, 223_948_800);
    assert_eq!(cmp.standard.macs, 447_897_600);
    assert_eq!(cmp.param_ratio(), 0.5);
    assert_eq!(cmp.mac_ratio(), 0.5);
}

#[test]
fn grouped_is_standard_over_g_for_several_g() {
    // c_in = c_out = 48, 3×3 on 9×9 (valid, 7×7 out): standard/g for every divisor g,
    // depthwise (g = 48) included.
    let input = Shape::new(2, 48, 9, 9);
    let standard = 9 * 48 * 48;
    for g in [1u64, 2, 3, 4, 6, 8, 12, 16, 24, 48] {
        let spec = Conv2dSpec::new(48, 48, [3, 3]).groups(g as usize);
        let cmp = accounting::grouped_vs_standard(&spec, input).unwrap();
        assert_eq!(cmp.standard.params, standard, "g {g}");
        assert_eq!(cmp.cheap.params * g, standard, "g {g}");
        assert_eq!(cmp.standard.macs, standard * 2 * 49, "g {g}");
        assert_eq!(cmp.cheap.macs * g, cmp.standard.macs, "g {g}");
    }
}

#[test]
fn cost_addition() {
    let a = Cost {
        params: 4_608,
        macs: 903_168,
    };
    let b = Cost {
        params: 262_144,
        macs: 51_380_224,
    };
    assert_eq!(
        a + b,
        Cost {
            params: 266_752,
            macs: 52_283_392
        }
    );
    assert_eq!(a + b, b + a);
    assert_eq!(a + Cost::default(), a);
    assert_eq!(Cost::default(), Cost { params: 0, macs: 0 });
    // The separable comparison's cheap side is exactly this sum.
    let (dw, pw, input) = mobilenet_512();
    let mid = dw.output_shape(input).unwrap();
    assert_eq!(Cost::of(&dw, input).unwrap(), a);
    assert_eq!(Cost::of(&pw, mid).unwrap(), b);
    assert_eq!(
        accounting::separable_vs_standard(&dw, &pw, input)
            .unwrap()
            .cheap,
        a + b
    );
}

#[test]
fn cost_counts_weights_only() {
    // The papers count weights without bias; `param_count` is the one that adds it.
    let spec = Conv2dSpec::new(96, 256, [5, 5])
        .groups(2)
        .padding(Padding::uniform(2));
    let input = Shape::new(1, 96, 27, 27);
    assert!(spec.bias);
    assert_eq!(Cost::of(&spec, input).unwrap().params, 307_200);
    assert_eq!(Cost::of(&spec.bias(false), input).unwrap().params, 307_200);
}

#[test]
fn param_count_with_and_without_bias() {
    // AlexNet conv2: 307,200 weights + 256 biases.
    let spec = Conv2dSpec::new(96, 256, [5, 5]).groups(2);
    assert_eq!(spec.param_count(), 307_456);
    assert_eq!(spec.bias(false).param_count(), 307_200);
    // Depthwise multiplier 2 on 3 channels, 3×3: 6·1·9 = 54 weights + 6 biases.
    let dw = Conv2dSpec::depthwise(3, [3, 3]).multiplier(2);
    assert_eq!(dw.weight_count(), 54);
    assert_eq!(dw.param_count(), 60);
    assert_eq!(dw.bias(false).param_count(), 54);
    // Pointwise 13 → 7: 91 + 7.
    assert_eq!(Conv2dSpec::pointwise(13, 7).param_count(), 98);
}

#[test]
fn macs_formula() {
    // n · c_out · h_out · w_out · (c_in/g) · kh · kw, padded taps counted.
    // Depthwise 3×3 pad 1 on 2 channels of 4×4: 2·16 outputs × 9 = 288, although the 12
    // border outputs of each channel see fewer than 9 real pixels.
    let dw = Conv2dSpec::depthwise(2, [3, 3]).padding(Padding::uniform(1));
    assert_eq!(dw.macs(Shape::new(1, 2, 4, 4)).unwrap(), 288);
    // Batch 2 doubles it.
    assert_eq!(dw.macs(Shape::new(2, 2, 4, 4)).unwrap(), 576);
    // Grouped 6 → 9, g = 3, kernel 3×2, stride 2, on 7×5: out h (7-3)/2+1 = 3, w (5-2)/2+1 = 2;
    // 9·3·2 outputs × (6/3)·3·2 = 54 × 12 = 648.
    let g = Conv2dSpec::new(6, 9, [3, 2]).groups(3).stride([2, 2]);
    assert_eq!(g.macs(Shape::new(1, 6, 7, 5)).unwrap(), 648);
    // Bias and activation add no MACs.
    assert_eq!(
        g.bias(false).macs(Shape::new(1, 6, 7, 5)).unwrap(),
        g.macs(Shape::new(1, 6, 7, 5)).unwrap()
    );
    // Pointwise stride 2 on 5×8: out 3×4 = 12 pixels × 13·7 = 1,092.
    let pw = Conv2dSpec::pointwise(13, 7).stride([2, 2]);
    assert_eq!(pw.macs(Shape::new(1, 13, 5, 8)).unwrap(), 1_092);
}

#[test]
fn separable_ratio_helper() {
    assert_eq!(accounting::separable_ratio(9, 3), 2.0 / 9.0);
    assert!((accounting::separable_ratio(512, 3) - 521.0 / 4608.0).abs() < 1e-15);
    assert!((accounting::separable_ratio(64, 3) - 73.0 / 576.0).abs() < 1e-15);
    assert!((accounting::separable_ratio(256, 5) - (1.0 / 256.0 + 1.0 / 25.0)).abs() < 1e-15);
}

#[test]
fn accounting_rejects_invalid_specs_with_errors() {
    let input = Shape::new(1, 4, 5, 5);
    // Zero groups: the weight count would divide by zero; the spec must be rejected first.
    let spec = Conv2dSpec::new(4, 4, [3, 3]).groups(0);
    assert_eq!(
        accounting::grouped_vs_standard(&spec, input).unwrap_err(),
        Error::Zero { what: "groups" }
    );
    assert_eq!(
        Cost::of(&spec, input).unwrap_err(),
        Error::Zero { what: "groups" }
    );
    // A weight count that does not fit in usize.
    let spec = Conv2dSpec::new(4, usize::MAX / 2 + 1, [3, 3]);
    assert!(matches!(
        Cost::of(&spec, input).unwrap_err(),
        Error::Overflow {
            what: "weights",
            ..
        }
    ));
    // Channel mismatch and empty outputs come through unchanged.
    assert_eq!(
        Cost::of(&Conv2dSpec::new(3, 4, [3, 3]), input).unwrap_err(),
        Error::ChannelMismatch {
            expected: 3,
            got: 4
        }
    );
    assert!(matches!(
        accounting::grouped_vs_standard(&Conv2dSpec::new(4, 4, [7, 7]), input).unwrap_err(),
        Error::EmptyOutput { .. }
    ));
}
