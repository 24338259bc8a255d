//! [`Conv2dSpec`] without a GPU: output-size maths, kind classification, and every [`Error`]
//! variant that bad input can reach on the CPU side, each with its values in the message.

use sepconv::accounting;
use sepconv::cpu::reference;
use sepconv::{Activation, Conv2dSpec, ConvKind, Error, Padding, Pads, Shape, Tensor};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The error of `r`, failing the test if it is `Ok`.
#[track_caller]
fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Asserts `e`'s message contains every one of `parts`.
#[track_caller]
fn assert_mentions(e: &Error, parts: &[&str]) {
    let msg = e.to_string();
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not mention {p:?}");
    }
}

/// A tensor of `shape` with non-zero data.
fn ramp(shape: Shape) -> Tensor {
    let len = shape.len().expect("small test shape");
    Tensor::new(shape, (0..len).map(|i| 0.25 + i as f32 * 0.5).collect()).expect("length matches")
}

/// Number of output positions along one axis by counting: position `o` exists when its dilated
/// window `[o·s, o·s + d·(k-1)]` lies inside the padded input `[0, input + pad - 1]`. No
/// division, so it does not share a formula with the crate.
fn count_positions(input: usize, pad: usize, k: usize, s: usize, d: usize) -> usize {
    (0..)
        .take_while(|o| o * s + d * (k - 1) < input + pad)
        .count()
}

// ---------------------------------------------------------------------------------------------
// Output sizes.

#[test]
fn output_size_hand_computed() {
    // PyTorch: out = floor((in + pad_begin + pad_end - d·(k-1) - 1) / s) + 1, per axis.
    let cases: [(&str, [usize; 2], Conv2dSpec, [usize; 2]); 10] = [
        // h: (7-3)/3 + 1 = 1 + 1 = 2;  w: (9-3)/3 + 1 = 2 + 1 = 3
        (
            "stride 3",
            [7, 9],
            Conv2dSpec::new(1, 1, [3, 3]).stride([3, 3]),
            [2, 3],
        ),
        // h: (8+2-3)/3 + 1 = floor(7/3) + 1 = 3;  w: (10+2-3)/3 + 1 = 3 + 1 = 4
        (
            "stride 3 pad 1",
            [8, 10],
            Conv2dSpec::new(1, 1, [3, 3])
                .stride([3, 3])
                .padding(Padding::uniform(1)),
            [3, 4],
        ),
        // extent 2·2+1 = 5: (10-5)/1 + 1 = 6
        (
            "dilation 2",
            [10, 10],
            Conv2dSpec::new(1, 1, [3, 3]).dilation([2, 2]),
            [6, 6],
        ),
        // extent 3·2+1 = 7; h: (10+4-7)/2 + 1 = 3 + 1 = 4;  w: (9+4-7)/2 + 1 = 3 + 1 = 4
        (
            "dilation 3 stride 2 pad 2",
            [10, 9],
            Conv2dSpec::new(1, 1, [3, 3])
                .dilation([3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(2)),
            [4, 4],
        ),
        // h: (5+0+2-3)/2 + 1 = 2 + 1 = 3;  w: (6+1+0-2)/2 + 1 = floor(5/2) + 1 = 3
        (
            "asymmetric padding",
            [5, 6],
            Conv2dSpec::new(1, 1, [3, 2])
                .stride([2, 2])
                .padding(Padding::explicit(0, 2, 1, 0)),
            [3, 3],
        ),
        // Kernel larger than the input, padding makes it fit: (2+4-5)/1 + 1 = 2
        (
            "kernel 5 on 2x2 pad 2",
            [2, 2],
            Conv2dSpec::new(1, 1, [5, 5]).padding(Padding::uniform(2)),
            [2, 2],
        ),
        // MobileNet v1's first layer: (224+2-3)/2 + 1 = 111 + 1 = 112
        (
            "224 k3 s2 p1",
            [224, 224],
            Conv2dSpec::new(3, 32, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            [112, 112],
        ),
        // AlexNet conv1 (Krizhevsky et al. 2012, 227 input): (227-11)/4 + 1 = 54 + 1 = 55
        (
            "227 k11 s4",
            [227, 227],
            Conv2dSpec::new(3, 96, [11, 11]).stride([4, 4]),
            [55, 55],
        ),
        // 1×1 input, 1×1 kernel: 1
        ("1x1", [1, 1], Conv2dSpec::new(1, 1, [1, 1]), [1, 1]),
        // h: (5-1)/1 + 1 = 5;  w: extent 2·2+1 = 5, (7+2+1-5)/3 + 1 = floor(5/3) + 1 = 2
        (
            "kernel 1x3 stride 1x3 dilation 1x2",
            [5, 7],
            Conv2dSpec::new(1, 1, [1, 3])
                .stride([1, 3])
                .dilation([1, 2])
                .padding(Padding::explicit(0, 0, 2, 1)),
            [5, 2],
        ),
    ];
    for (name, [h, w], spec, want) in cases {
        assert_eq!(spec.output_hw(h, w).unwrap(), want, "{name}");
        let out = spec.output_shape(Shape::new(3, spec.c_in, h, w)).unwrap();
        assert_eq!(out, Shape::new(3, spec.c_out, want[0], want[1]), "{name}");
    }
}

#[test]
fn output_size_matches_counting_windows() {
    // Every small combination, on each axis in turn (the other axis is 1 with a 1×1 kernel).
    // Where no window fits, the crate must say EmptyOutput with the same numbers.
    let combos = (1..=9usize).flat_map(|input| {
        (0..=3usize).flat_map(move |pad_begin| {
            (0..=3usize).flat_map(move |pad_end| {
                (1..=4usize).flat_map(move |k| {
                    (1..=3usize).flat_map(move |s| {
                        (1..=3usize).map(move |d| (input, pad_begin, pad_end, k, s, d))
                    })
                })
            })
        })
    });
    let mut checked = 0;
    for (input, pad_begin, pad_end, k, s, d) in combos {
        let want = count_positions(input, pad_begin + pad_end, k, s, d);
        let along_h = Conv2dSpec::new(1, 1, [k, 1])
            .stride([s, 1])
            .dilation([d, 1])
            .padding(Padding::explicit(pad_begin, pad_end, 0, 0));
        let along_w = Conv2dSpec::new(1, 1, [1, k])
            .stride([1, s])
            .dilation([1, d])
            .padding(Padding::explicit(0, 0, pad_begin, pad_end));
        let ctx = format!("in {input} pad {pad_begin}+{pad_end} k{k} s{s} d{d}");
        let got_h = along_h.output_hw(input, 1);
        let got_w = along_w.output_hw(1, input);
        if want == 0 {
            for (axis, got) in [("height", got_h), ("width", got_w)] {
                let want = Error::EmptyOutput {
                    axis,
                    input,
                    padding: pad_begin + pad_end,
                    padded: input + pad_begin + pad_end,
                    kernel: k,
                    dilation: d,
                    kernel_extent: d * (k - 1) + 1,
                };
                assert_eq!(err(got), want, "{ctx}");
            }
        } else {
            assert_eq!(got_h.unwrap(), [want, 1], "{ctx}");
            assert_eq!(got_w.unwrap(), [1, want], "{ctx}");
        }
        checked += 1;
    }
    assert_eq!(checked, 9 * 4 * 4 * 4 * 3 * 3);
}

/// One `SAME_UPPER` case worked by hand.
struct SameCase {
    name: &'static str,
    hw: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    out: [usize; 2],
    /// `[top, bottom, left, right]`.
    pads: [usize; 4],
}

#[test]
fn same_upper_hand_computed() {
    // ONNX SAME_UPPER: out = ceil(in / s); total = max(0, (out-1)·s + d·(k-1) + 1 - in);
    // begin = floor(total / 2), end = the rest (the odd pixel goes bottom/right).
    let cases = [
        // h: out ceil(7/2) = 4, total 3·2 + 2 - 7 = 1 → 0/1
        // w: out ceil(10/3) = 4, total 3·3 + 4 - 10 = 3 → 1/2
        SameCase {
            name: "even kernels, stride 2x3, 7x10",
            hw: [7, 10],
            kernel: [2, 4],
            stride: [2, 3],
            dilation: [1, 1],
            out: [4, 4],
            pads: [0, 1, 1, 2],
        },
        // h: out ceil(6/2) = 3, total 2·2 + 4 - 6 = 2 → 1/1
        // w: out ceil(8/2) = 4, extent 2·1 + 1 = 3, total 3·2 + 3 - 8 = 1 → 0/1
        SameCase {
            name: "k 4x2, dilation 1x2, 6x8",
            hw: [6, 8],
            kernel: [4, 2],
            stride: [2, 2],
            dilation: [1, 2],
            out: [3, 4],
            pads: [1, 1, 0, 1],
        },
        // h: out ceil(9/3) = 3, extent 2·4 + 1 = 9, total 2·3 + 9 - 9 = 6 → 3/3
        // w: out ceil(6/2) = 3, total 2·2 + 3 - 6 = 1 → 0/1
        SameCase {
            name: "k 5x3, stride 3x2, dilation 2x1, 9x6",
            hw: [9, 6],
            kernel: [5, 3],
            stride: [3, 2],
            dilation: [2, 1],
            out: [3, 3],
            pads: [3, 3, 0, 1],
        },
        // out 5, total 4·1 + 4 - 5 = 3 → 1/2 on both axes
        SameCase {
            name: "k 4 stride 1, 5x5",
            hw: [5, 5],
            kernel: [4, 4],
            stride: [1, 1],
            dilation: [1, 1],
            out: [5, 5],
            pads: [1, 2, 1, 2],
        },
        // h: out ceil(8/3) = 3, 2·3 + 1 - 8 = -1 → 0;  w: out ceil(7/3) = 3, 2·3 + 1 - 7 = 0
        SameCase {
            name: "1x1 kernel stride 3, 8x7",
            hw: [8, 7],
            kernel: [1, 1],
            stride: [3, 3],
            dilation: [1, 1],
            out: [3, 3],
            pads: [0, 0, 0, 0],
        },
        // h: out 1, total 0 + 3 - 1 = 2 → 1/1;  w: out ceil(4/2) = 2, total 1·2 + 3 - 4 = 1 → 0/1
        SameCase {
            name: "input smaller than kernel, 1x4",
            hw: [1, 4],
            kernel: [3, 3],
            stride: [1, 2],
            dilation: [1, 1],
            out: [1, 2],
            pads: [1, 1, 0, 1],
        },
        // TensorFlow's stride-2 3×3 on 112×112: out 56, total 55·2 + 3 - 112 = 1 → 0/1
        SameCase {
            name: "112x112 k3 s2",
            hw: [112, 112],
            kernel: [3, 3],
            stride: [2, 2],
            dilation: [1, 1],
            out: [56, 56],
            pads: [0, 1, 0, 1],
        },
    ];
    for c in cases {
        let [h, w] = c.hw;
        let [top, bottom, left, right] = c.pads;
        let spec = Conv2dSpec::new(2, 2, c.kernel)
            .stride(c.stride)
            .dilation(c.dilation)
            .padding(Padding::same());
        let want_pads = Pads {
            top,
            bottom,
            left,
            right,
        };
        assert_eq!(spec.pads(h, w), want_pads, "{}", c.name);
        assert_eq!(spec.output_hw(h, w).unwrap(), c.out, "{}", c.name);
        // The explicit pads give the same size under PyTorch's rule.
        let explicit = spec.padding(Padding::explicit(top, bottom, left, right));
        assert_eq!(explicit.output_hw(h, w).unwrap(), c.out, "{}", c.name);
    }
}

#[test]
fn same_upper_output_is_ceil_input_over_stride() {
    for input in 1..=12 {
        for k in 1..=5 {
            for s in 1..=4 {
                for d in 1..=3 {
                    let spec = Conv2dSpec::new(1, 1, [k, k])
                        .stride([s, s])
                        .dilation([d, d])
                        .padding(Padding::same());
                    let ctx = format!("in {input} k{k} s{s} d{d}");
                    let [oh, ow] = spec.output_hw(input, input + 1).unwrap();
                    assert_eq!(oh, input.div_ceil(s), "{ctx}");
                    assert_eq!(ow, (input + 1).div_ceil(s), "{ctx}");
                    let p = spec.pads(input, input);
                    // The odd pixel at the end; never more than one pixel of imbalance.
                    assert!(p.bottom == p.top || p.bottom == p.top + 1, "{ctx}: {p:?}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kind classification.

#[test]
fn kind_classification() {
    use ConvKind::{Depthwise, General, Pointwise};
    let cases = [
        (
            "depthwise",
            Conv2dSpec::depthwise(32, [3, 3]),
            Depthwise { multiplier: 1 },
        ),
        (
            "depthwise, stride 2 and padding",
            Conv2dSpec::depthwise(32, [3, 3])
                .stride([2, 2])
                .padding(Padding::uniform(1)),
            Depthwise { multiplier: 1 },
        ),
        (
            "depthwise with multiplier 3",
            Conv2dSpec::depthwise(8, [3, 3]).multiplier(3),
            Depthwise { multiplier: 3 },
        ),
        (
            "groups = c_in, c_out = 2·c_in",
            Conv2dSpec::new(8, 16, [5, 5]).groups(8),
            Depthwise { multiplier: 2 },
        ),
        (
            "1x1 depthwise is depthwise, not pointwise",
            Conv2dSpec::new(16, 16, [1, 1]).groups(16),
            Depthwise { multiplier: 1 },
        ),
        // One input channel, one group: each output channel filters the one input channel,
        // which is depthwise with multiplier c_out.
        (
            "c_in 1, groups 1",
            Conv2dSpec::new(1, 8, [3, 3]),
            Depthwise { multiplier: 8 },
        ),
        (
            "c_in 1, c_out 1, 1x1",
            Conv2dSpec::new(1, 1, [1, 1]),
            Depthwise { multiplier: 1 },
        ),
        ("pointwise", Conv2dSpec::pointwise(16, 32), Pointwise),
        (
            "pointwise, stride 2",
            Conv2dSpec::pointwise(16, 32).stride([2, 2]),
            Pointwise,
        ),
        (
            "pointwise, dilation does not matter for 1x1",
            Conv2dSpec::pointwise(16, 32).dilation([2, 3]),
            Pointwise,
        ),
        (
            "pointwise with an activation",
            Conv2dSpec::pointwise(13, 7)
                .activation(Activation::Relu6)
                .bias(false),
            Pointwise,
        ),
        (
            "1x1 with padding 1",
            Conv2dSpec::pointwise(16, 32).padding(Padding::uniform(1)),
            General,
        ),
        (
            "1x1 with one column of padding",
            Conv2dSpec::pointwise(16, 32).padding(Padding::explicit(0, 0, 0, 1)),
            General,
        ),
        (
            "1x1 with 2 groups",
            Conv2dSpec::new(16, 32, [1, 1]).groups(2),
            General,
        ),
        (
            "standard 3x3, groups 1",
            Conv2dSpec::new(16, 32, [3, 3]),
            General,
        ),
        ("1x3, groups 1", Conv2dSpec::new(16, 32, [1, 3]), General),
        (
            "groups 4 < c_in 8",
            Conv2dSpec::new(8, 8, [3, 3]).groups(4),
            General,
        ),
        (
            "AlexNet conv2, g = 2",
            Conv2dSpec::new(96, 256, [5, 5]).groups(2),
            General,
        ),
    ];
    for (name, spec, want) in cases {
        spec.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(spec.kind(), want, "{name}");
    }
}

#[test]
fn kind_display() {
    assert_eq!(
        ConvKind::Depthwise { multiplier: 1 }.to_string(),
        "depthwise"
    );
    assert_eq!(
        ConvKind::Depthwise { multiplier: 2 }.to_string(),
        "depthwise x2"
    );
    assert_eq!(ConvKind::Pointwise.to_string(), "pointwise");
    assert_eq!(ConvKind::General.to_string(), "general");
}

// ---------------------------------------------------------------------------------------------
// Errors: each variant, through each public entry point that can return it, with the numbers
// in the message.

#[test]
fn zero_in_each_spec_field() {
    let base = Conv2dSpec::new(4, 8, [3, 3]).groups(2);
    base.validate().unwrap();
    let x = ramp(Shape::new(1, 4, 5, 5));
    let w = vec![0.5; base.weight_count()];
    let b = vec![0.5; 8];
    let cases = [
        ("c_in", Conv2dSpec { c_in: 0, ..base }),
        ("c_out", Conv2dSpec { c_out: 0, ..base }),
        (
            "kernel height",
            Conv2dSpec {
                kernel: [0, 3],
                ..base
            },
        ),
        (
            "kernel width",
            Conv2dSpec {
                kernel: [3, 0],
                ..base
            },
        ),
        ("stride height", base.stride([0, 1])),
        ("stride width", base.stride([1, 0])),
        ("dilation height", base.dilation([0, 1])),
        ("dilation width", base.dilation([1, 0])),
        ("groups", base.groups(0)),
    ];
    for (what, spec) in cases {
        let want = Error::Zero { what };
        assert_eq!(err(spec.validate()), want);
        assert_eq!(err(spec.output_hw(5, 5)), want);
        assert_eq!(err(spec.output_shape(x.shape())), want);
        assert_eq!(err(spec.macs(x.shape())), want);
        assert_eq!(err(spec.check_parameters(w.len(), Some(8))), want);
        assert_eq!(err(reference::conv2d(&spec, &x, &w, Some(&b))), want);
        assert_mentions(&want, &[what, "at least 1", "got 0"]);
    }
}

#[test]
fn pads_never_panic_on_an_invalid_spec() {
    // `pads` is infallible; on a spec that `validate` rejects its value is meaningless, but
    // it must not divide by a zero stride or underflow a zero kernel.
    for spec in [
        Conv2dSpec::new(1, 1, [3, 3]).stride([0, 0]),
        Conv2dSpec::new(1, 1, [0, 0]),
        Conv2dSpec::new(1, 1, [3, 3]).dilation([0, 0]),
    ] {
        let same = spec.padding(Padding::same());
        assert!(same.validate().is_err());
        let _ = same.pads(5, 5);
        assert!(same.output_hw(5, 5).is_err());
    }
}

#[test]
fn zero_in_each_shape_field() {
    let spec = Conv2dSpec::new(2, 2, [1, 1]);
    for (what, shape) in [
        ("batch n", Shape::new(0, 2, 3, 3)),
        ("channels c", Shape::new(1, 0, 3, 3)),
        ("height h", Shape::new(1, 2, 0, 3)),
        ("width w", Shape::new(1, 2, 3, 0)),
    ] {
        let want = Error::Zero { what };
        assert!(shape.is_empty());
        assert_eq!(err(shape.validate()), want);
        assert_eq!(err(Tensor::new(shape, vec![])), want);
        assert_eq!(err(Tensor::full(shape, 1.0)), want);
        assert_eq!(err(spec.output_shape(shape)), want);
        assert_eq!(err(spec.macs(shape)), want);
        assert_mentions(&want, &[what, "at least 1"]);
    }
    assert_eq!(
        err(spec.output_hw(0, 3)),
        Error::Zero {
            what: "input height"
        }
    );
    assert_eq!(
        err(spec.output_hw(3, 0)),
        Error::Zero {
            what: "input width"
        }
    );
}

#[test]
fn groups_must_divide_both_channel_counts() {
    let e = err(Conv2dSpec::new(6, 8, [3, 3]).groups(4).validate());
    assert_eq!(
        e,
        Error::GroupsDoNotDivide {
            groups: 4,
            which: "c_in",
            channels: 6
        }
    );
    assert_mentions(&e, &["groups (4)", "c_in (6)", "6 % 4 = 2"]);

    let e = err(Conv2dSpec::new(8, 6, [3, 3]).groups(4).validate());
    assert_eq!(
        e,
        Error::GroupsDoNotDivide {
            groups: 4,
            which: "c_out",
            channels: 6
        }
    );
    assert_mentions(&e, &["groups (4)", "c_out (6)", "6 % 4 = 2"]);

    // More groups than channels, and a depthwise multiplier that is not whole.
    let e = err(Conv2dSpec::new(8, 16, [3, 3]).groups(16).validate());
    assert_mentions(&e, &["groups (16)", "c_in (8)", "8 % 16 = 8"]);
    let e = err(Conv2dSpec::new(4, 6, [3, 3]).groups(4).validate());
    assert_mentions(&e, &["groups (4)", "c_out (6)", "6 % 4 = 2"]);

    // Through the entry points that take data.
    let spec = Conv2dSpec::new(6, 8, [3, 3]).groups(4);
    let x = ramp(Shape::new(1, 6, 4, 4));
    assert!(matches!(
        err(reference::conv2d(&spec, &x, &[0.5; 8], Some(&[0.5; 8]))),
        Error::GroupsDoNotDivide {
            groups: 4,
            which: "c_in",
            channels: 6
        }
    ));
    assert!(matches!(
        err(accounting::grouped_vs_standard(&spec, x.shape())),
        Error::GroupsDoNotDivide { .. }
    ));
}

#[test]
fn empty_output_names_axis_and_sizes() {
    // 5×5 kernel on a 3×3 input, no padding: 3 < 5 along height (checked first).
    let e = err(Conv2dSpec::new(1, 1, [5, 5]).output_hw(3, 3));
    assert_eq!(
        e,
        Error::EmptyOutput {
            axis: "height",
            input: 3,
            padding: 0,
            padded: 3,
            kernel: 5,
            dilation: 1,
            kernel_extent: 5
        }
    );
    assert_mentions(
        &e,
        &[
            "height",
            "input 3",
            "padding 0",
            "= 3",
            "extent 5",
            "kernel 5",
        ],
    );

    // Height fits, width does not: 4 < 5.
    let e = err(Conv2dSpec::new(1, 1, [3, 5]).output_hw(8, 4));
    assert!(matches!(
        e,
        Error::EmptyOutput {
            axis: "width",
            input: 4,
            kernel_extent: 5,
            ..
        }
    ));
    assert_mentions(&e, &["width"]);

    // Dilation and padding: extent 3·(3-1)+1 = 7 against 4 + 1 + 1 = 6.
    let spec = Conv2dSpec::new(2, 2, [3, 3])
        .dilation([3, 3])
        .padding(Padding::uniform(1));
    let e = err(spec.output_hw(4, 9));
    assert_eq!(
        e,
        Error::EmptyOutput {
            axis: "height",
            input: 4,
            padding: 2,
            padded: 6,
            kernel: 3,
            dilation: 3,
            kernel_extent: 7
        }
    );
    assert_mentions(
        &e,
        &["input 4", "padding 2", "= 6", "extent 7", "dilation 3"],
    );
    let x = ramp(Shape::new(1, 2, 4, 9));
    assert_eq!(err(spec.output_shape(x.shape())), e);
    assert_eq!(err(spec.macs(x.shape())), e);
    assert_eq!(
        err(reference::conv2d(&spec, &x, &[0.5; 36], Some(&[0.5; 2]))),
        e
    );

    // The boundary: a kernel exactly as large as the padded input gives one output.
    assert_eq!(spec.output_hw(5, 5).unwrap(), [1, 1]);
}

#[test]
fn weight_and_bias_length_mismatch() {
    let spec = Conv2dSpec::new(4, 6, [3, 3]).groups(2);
    assert_eq!(spec.weight_count(), 6 * 2 * 3 * 3);
    spec.check_parameters(108, Some(6)).unwrap();

    let e = err(spec.check_parameters(107, Some(6)));
    assert_eq!(
        e,
        Error::LengthMismatch {
            what: "weights",
            expected: 108,
            got: 107,
            hint: Some("[c_out, c_in/groups, kh, kw] = [6, 2, 3, 3]".into()),
        }
    );
    assert_eq!(
        e.to_string(),
        "weights has 107 elements, expected 108 ([c_out, c_in/groups, kh, kw] = [6, 2, 3, 3])"
    );

    let e = err(spec.check_parameters(108, Some(5)));
    assert_eq!(
        e,
        Error::LengthMismatch {
            what: "bias",
            expected: 6,
            got: 5,
            hint: Some("[c_out]".into()),
        }
    );
    assert_mentions(&e, &["bias", "5 elements", "expected 6", "[c_out]"]);

    // Through the reference: a weight tensor for groups = 1 given to a grouped spec.
    let x = ramp(Shape::new(1, 4, 5, 5));
    let e = err(reference::conv2d(&spec, &x, &[0.5; 216], Some(&[0.5; 6])));
    assert!(matches!(
        e,
        Error::LengthMismatch {
            what: "weights",
            expected: 108,
            got: 216,
            ..
        }
    ));
    let e = err(reference::conv2d(&spec, &x, &[0.5; 108], Some(&[0.5; 7])));
    assert!(matches!(
        e,
        Error::LengthMismatch {
            what: "bias",
            expected: 6,
            got: 7,
            ..
        }
    ));
}

#[test]
fn bias_given_without_bias_or_missing_with_it() {
    let with = Conv2dSpec::depthwise(3, [3, 3]);
    let without = with.bias(false);
    let x = ramp(Shape::new(1, 3, 4, 4));
    let w = [0.5; 27];

    let e = err(with.check_parameters(27, None));
    assert_eq!(
        e,
        Error::BiasMismatch {
            spec_has_bias: true,
            given: false
        }
    );
    assert_eq!(
        e.to_string(),
        "the spec has bias = true but no bias was given: pass a bias, or use .bias(false) on \
         the spec (Conv2dSpec::new, depthwise and pointwise default to bias on)"
    );
    assert_eq!(err(reference::conv2d(&with, &x, &w, None)), e);

    let e = err(without.check_parameters(27, Some(3)));
    assert_eq!(
        e,
        Error::BiasMismatch {
            spec_has_bias: false,
            given: true
        }
    );
    assert_eq!(
        e.to_string(),
        "the spec has bias = false but a bias was given: pass None, or use .bias(true) on the spec"
    );
    assert_eq!(err(reference::conv2d(&without, &x, &w, Some(&[0.5; 3]))), e);

    // The two good combinations.
    with.check_parameters(27, Some(3)).unwrap();
    without.check_parameters(27, None).unwrap();
}

#[test]
fn channel_mismatch() {
    let spec = Conv2dSpec::new(4, 8, [3, 3]);
    let x = ramp(Shape::new(1, 3, 5, 5));
    let want = Error::ChannelMismatch {
        expected: 4,
        got: 3,
    };
    assert_eq!(err(spec.output_shape(x.shape())), want);
    assert_eq!(err(spec.macs(x.shape())), want);
    assert_eq!(
        err(reference::conv2d(&spec, &x, &[0.5; 288], Some(&[0.5; 8]))),
        want
    );
    assert_eq!(
        want.to_string(),
        "input has 3 channels but the spec expects c_in = 4"
    );
}

#[test]
fn tensor_data_length_mismatch() {
    let e = err(Tensor::new(Shape::new(1, 2, 2, 3), vec![0.5; 11]));
    assert_eq!(
        e,
        Error::LengthMismatch {
            what: "tensor data",
            expected: 12,
            got: 11,
            hint: Some("shape 1x2x2x3".into()),
        }
    );
    assert_eq!(
        e.to_string(),
        "tensor data has 11 elements, expected 12 (shape 1x2x2x3)"
    );
    assert!(matches!(
        err(Tensor::new(Shape::new(2, 1, 1, 1), vec![0.5; 3])),
        Error::LengthMismatch {
            expected: 2,
            got: 3,
            ..
        }
    ));
}

#[test]
fn overflow_of_absurd_sizes() {
    let max = usize::MAX;
    let max_s = max.to_string();

    // A tensor shape whose element count does not fit in usize.
    let huge = Shape::new(max, 2, 1, 1);
    let e = err(huge.len());
    assert!(matches!(e, Error::Overflow { what: "tensor", .. }), "{e:?}");
    assert_mentions(&e, &["tensor", "overflows", &max_s]);
    assert_eq!(err(Tensor::new(huge, vec![])), e);
    assert_eq!(err(Tensor::full(huge, 1.0)), e);

    // Weights [c_out, c_in/groups, kh, kw] too many to count.
    let spec = Conv2dSpec::new(2, max / 2 + 1, [1, 1]);
    let e = err(spec.validate());
    assert!(
        matches!(
            e,
            Error::Overflow {
                what: "weights",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["weights", &(max / 2 + 1).to_string()]);

    // Dilated kernel extent d·(k-1) + 1 past usize: the product itself, and the + 1.
    let e = err(Conv2dSpec::new(1, 1, [3, 1]).dilation([max, 1]).validate());
    assert!(
        matches!(
            e,
            Error::Overflow {
                what: "kernel extent",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["height", &max_s, "kernel 3"]);
    let spec = Conv2dSpec::new(1, 1, [1, 2]).dilation([1, max]);
    let e = err(spec.validate());
    assert!(
        matches!(
            e,
            Error::Overflow {
                what: "kernel extent",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["width", &max_s, "kernel 2"]);
    assert_eq!(err(spec.output_hw(5, 5)), e);

    // Input plus padding past usize.
    let spec = Conv2dSpec::new(1, 1, [1, 1]).padding(Padding::explicit(max, 0, 0, 0));
    let e = err(spec.output_hw(1, 1));
    assert!(
        matches!(
            e,
            Error::Overflow {
                what: "padded input",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["height", &max_s]);
    let spec =
        Conv2dSpec::new(1, 1, [1, 1]).padding(Padding::explicit(0, 0, max / 2 + 1, max / 2 + 1));
    assert!(matches!(
        err(spec.output_hw(1, 1)),
        Error::Overflow {
            what: "padded input",
            ..
        }
    ));

    // SAME padding needed on an absurdly large input: (ceil(in/s) - 1)·s + d·(k-1) + 1 past
    // usize. The output size cannot be stated, so it is an error rather than a wrong number.
    let spec = Conv2dSpec::new(1, 1, [3, 1])
        .dilation([max / 2, 1])
        .padding(Padding::same());
    spec.validate().unwrap();
    let e = err(spec.output_shape(Shape::new(1, 1, max, 1)));
    assert!(
        matches!(
            e,
            Error::Overflow {
                what: "SAME padding",
                ..
            }
        ),
        "{e:?}"
    );
    assert_mentions(&e, &["SAME padding", "height", &max_s]);
    assert_eq!(err(spec.macs(Shape::new(1, 1, max, 1))), e);

    // An output tensor too large to count, from a small input.
    let spec = Conv2dSpec::new(1, max / 2 + 1, [1, 1]);
    let e = err(spec.output_shape(Shape::new(2, 1, 1, 1)));
    assert!(matches!(e, Error::Overflow { what: "tensor", .. }), "{e:?}");
}

#[test]
#[cfg(target_pointer_width = "64")]
fn overflow_of_mac_count() {
    // 1×1 conv 2³² → 2¹⁶ channels on 256×256: 2¹⁶·2¹⁶ outputs × 2³² MACs each = 2⁶⁴.
    let spec = Conv2dSpec::pointwise(1 << 32, 1 << 16);
    let input = Shape::new(1, 1 << 32, 256, 256);
    assert_eq!(
        spec.output_shape(input).unwrap(),
        Shape::new(1, 1 << 16, 256, 256)
    );
    let e = err(spec.macs(input));
    assert!(matches!(e, Error::Overflow { what: "MACs", .. }), "{e:?}");
    assert_mentions(&e, &["MACs", "4294967296"]);
    // One fewer input channel's worth of work fits.
    let spec = Conv2dSpec::pointwise(1 << 31, 1 << 16);
    assert_eq!(
        spec.macs(Shape::new(1, 1 << 31, 256, 256)).unwrap(),
        1u64 << 63
    );
}

#[test]
fn separable_blocks_must_be_depthwise_then_matching_pointwise() {
    let dw = Conv2dSpec::depthwise(8, [3, 3]).padding(Padding::uniform(1));
    let pw = Conv2dSpec::pointwise(8, 16);
    let x = ramp(Shape::new(1, 8, 5, 5));
    let (wd, bd) = (vec![0.5; 72], vec![0.5; 8]);
    let (wp, bp) = (vec![0.5; 128], vec![0.5; 16]);
    // The good block works, so the failures below are about the specs alone.
    reference::separable_block((&dw, &wd, Some(&bd)), (&pw, &wp, Some(&bp)), &x).unwrap();

    // Pointwise first.
    let pw8 = Conv2dSpec::pointwise(8, 8);
    let e = err(reference::separable_block(
        (&pw8, &[0.5; 64], Some(&bd)),
        (&pw, &wp, Some(&bp)),
        &x,
    ));
    assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
    assert_mentions(
        &e,
        &["first", "depthwise", "got pointwise", "c_in 8", "groups 1"],
    );

    // A 3×3 standard conv where the pointwise should be.
    let std = Conv2dSpec::new(8, 16, [3, 3]);
    let e = err(reference::separable_block(
        (&dw, &wd, Some(&bd)),
        (&std, &[0.5; 1152], Some(&bp)),
        &x,
    ));
    assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
    assert_mentions(&e, &["second", "pointwise", "got general"]);

    // Channels that do not chain.
    let pw16 = Conv2dSpec::pointwise(16, 16);
    let e = err(reference::separable_block(
        (&dw, &wd, Some(&bd)),
        (&pw16, &[0.5; 256], Some(&bp)),
        &x,
    ));
    assert_eq!(
        e.to_string(),
        "cannot chain the separable block: depthwise gives 8 channels but pointwise expects c_in = 16"
    );
    assert_eq!(
        err(accounting::separable_vs_standard(&dw, &pw16, x.shape())),
        e
    );
    // The accounting sees the wrong order too.
    assert!(matches!(
        err(accounting::separable_vs_standard(&pw8, &pw, x.shape())),
        Error::Incompatible { .. }
    ));
}
