#!/usr/bin/env python3
"""Golden values for `tests/reference.rs`, computed without the crate.

Regenerate (numpy and scipy are only needed here, never at build or test time):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python tests/golden/make_golden.py > tests/golden/cases.rs

Made with numpy 2.4.6 and scipy 1.17.1.

Each case is a PyTorch-style `Conv2d` (cross-correlation, NCHW, weights
`[c_out, c_in/groups, kh, kw]`, group of output channel `oc` = `oc // (c_out // groups)`,
zero padding per side, stride, dilation, optional bias, optional ReLU/ReLU6). The
convolution is computed twice, in float64, in two unrelated ways:

1. `scipy.signal.correlate2d` of each zero-padded input plane with the kernel after
   inserting `dilation - 1` zeros between taps, mode "valid", then keeping every
   `stride`-th row and column;
2. `numpy.lib.stride_tricks.sliding_window_view` over the padded input, windows taken
   with the dilation step and stride, contracted with the weights by `numpy.einsum`
   per group.

The two must agree to 1e-12 before anything is printed. Inputs, weights and bias are
drawn from `numpy.random.default_rng(seed)` uniform in [-1, 1) and rounded to float32;
those float32 values are what is printed and what the float64 sums use. The results are
rounded once to float32, as the crate's reference does.
"""

import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import correlate2d

# name, seed, n, c_in, h, w, c_out, (kh, kw), groups, (sh, sw), (dh, dw),
# (top, bottom, left, right), bias, activation, weight scale
CASES = [
    ("grouped_g2_cin4_cout6_k3_pad1_5x7", 101, 1, 4, 5, 7, 6, (3, 3), 2,
     (1, 1), (1, 1), (1, 1, 1, 1), True, "None", 1.0),
    ("depthwise_multiplier2_c3_k3_pad1_6x5", 102, 1, 3, 6, 5, 6, (3, 3), 3,
     (1, 1), (1, 1), (1, 1, 1, 1), True, "None", 1.0),
    ("stride2_asymmetric_padding_7x6", 103, 1, 2, 7, 6, 3, (3, 3), 1,
     (2, 2), (1, 1), (0, 1, 2, 1), True, "None", 1.0),
    ("dilation2_pad2_5x7", 104, 1, 2, 5, 7, 2, (3, 3), 1,
     (1, 1), (2, 2), (2, 2, 2, 2), False, "None", 1.0),
    ("kernel3x1_pad_h1_5x7", 105, 1, 2, 5, 7, 3, (3, 1), 1,
     (1, 1), (1, 1), (1, 1, 0, 0), True, "None", 1.0),
    ("kernel1x3_pad_w1_stride_w2_5x7", 106, 1, 2, 5, 7, 3, (1, 3), 1,
     (1, 2), (1, 1), (0, 0, 1, 1), True, "None", 1.0),
    ("batch2_k2x2_stride2x1_dilation1x2_5x7", 107, 2, 3, 5, 7, 4, (2, 2), 1,
     (2, 1), (1, 2), (0, 0, 0, 0), True, "None", 1.0),
    ("batch2_grouped_g2_stride2_dilation2_asymmetric_7x5", 108, 2, 4, 7, 5, 4, (3, 2), 2,
     (2, 2), (2, 2), (2, 1, 0, 3), True, "None", 1.0),
    ("grouped_g3_cin6_cout6_relu_5x5", 109, 1, 6, 5, 5, 6, (3, 3), 3,
     (1, 1), (1, 1), (1, 1, 1, 1), True, "Relu", 1.0),
    ("depthwise_multiplier2_stride2_relu6_7x7", 110, 1, 2, 7, 7, 4, (3, 3), 2,
     (2, 2), (1, 1), (1, 1, 1, 1), True, "Relu6", 4.0),
]


def activate(y, activation):
    if activation == "Relu":
        return np.maximum(y, 0.0)
    if activation == "Relu6":
        return np.clip(y, 0.0, 6.0)
    return y


def pad_planes(x, pads):
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def conv_scipy(x, wt, b, groups, stride, dilation, pads, activation):
    """Per output channel: sum over its group's input planes of correlate2d."""
    xp = pad_planes(x, pads)
    n = x.shape[0]
    c_out, cin_g, kh, kw = wt.shape
    cout_g = c_out // groups
    dh, dw = dilation
    sh, sw = stride
    outs = []
    for i in range(n):
        planes = []
        for oc in range(c_out):
            g = oc // cout_g
            acc = None
            for j in range(cin_g):
                k = np.zeros(((kh - 1) * dh + 1, (kw - 1) * dw + 1))
                k[::dh, ::dw] = wt[oc, j]
                full = correlate2d(xp[i, g * cin_g + j], k, mode="valid")
                acc = full if acc is None else acc + full
            acc = acc[::sh, ::sw]
            if b is not None:
                acc = acc + b[oc]
            planes.append(acc)
        outs.append(np.stack(planes))
    return activate(np.stack(outs), activation)


def conv_einsum(x, wt, b, groups, stride, dilation, pads, activation):
    """Windows of the padded input contracted with the weights, one einsum per group."""
    xp = pad_planes(x, pads)
    c_out, cin_g, kh, kw = wt.shape
    cout_g = c_out // groups
    dh, dw = dilation
    sh, sw = stride
    ext_h, ext_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    # [n, c, oh, ow, ext_h, ext_w] → keep every dilation-th tap and stride-th window.
    win = sliding_window_view(xp, (ext_h, ext_w), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]
    parts = []
    for g in range(groups):
        xg = win[:, g * cin_g:(g + 1) * cin_g]
        wg = wt[g * cout_g:(g + 1) * cout_g]
        parts.append(np.einsum("nchwij,ocij->nohw", xg, wg))
    y = np.concatenate(parts, axis=1)
    if b is not None:
        y = y + b[None, :, None, None]
    return activate(y, activation)


def f32_literal(v):
    # Shortest decimal that reads back as the same float32.
    s = np.format_float_positional(np.float32(v), unique=True, trim="0")
    if "e" not in s and "." not in s:
        s += ".0"
    return s


def rust_slice(values, indent):
    vals = [f32_literal(v) for v in np.asarray(values, dtype=np.float32).ravel()]
    lines = []
    for i in range(0, len(vals), 8):
        lines.append(indent + "    " + ", ".join(vals[i:i + 8]) + ",")
    return "&[\n" + "\n".join(lines) + "\n" + indent + "]"


def main():
    out = sys.stdout
    out.write("// @generated by tests/golden/make_golden.py; do not edit by hand.\n")
    out.write("// Regenerate: /tmp/venv/bin/python tests/golden/make_golden.py > tests/golden/cases.rs\n")
    out.write("// (numpy + scipy in a throwaway venv: python3 -m venv /tmp/venv && "
              "/tmp/venv/bin/pip install numpy scipy)\n\n")
    out.write("const GOLDEN: &[GoldenCase] = &[\n")
    for (name, seed, n, c_in, h, w, c_out, (kh, kw), groups, stride, dilation, pads,
         has_bias, activation, scale) in CASES:
        rng = np.random.default_rng(seed)
        x = rng.uniform(-1.0, 1.0, (n, c_in, h, w)).astype(np.float32)
        wt = (rng.uniform(-1.0, 1.0, (c_out, c_in // groups, kh, kw)) * scale).astype(np.float32)
        b = rng.uniform(-1.0, 1.0, (c_out,)).astype(np.float32) if has_bias else None
        args = (x.astype(np.float64), wt.astype(np.float64),
                None if b is None else b.astype(np.float64),
                groups, stride, dilation, pads, activation)
        y1 = conv_scipy(*args)
        y2 = conv_einsum(*args)
        assert y1.shape == y2.shape, (name, y1.shape, y2.shape)
        assert np.max(np.abs(y1 - y2)) < 1e-12, (name, np.max(np.abs(y1 - y2)))
        if activation != "None":
            # The activation must actually clamp something in these cases.
            pre = conv_einsum(*args[:-1], "None")
            assert np.any(pre < 0), name
            if activation == "Relu6":
                assert np.any(pre > 6), name
        y = y1.astype(np.float32)
        top, bottom, left, right = pads
        ind = "        "
        out.write("    GoldenCase {\n")
        out.write(f"        name: \"{name}\",\n")
        out.write(f"        spec: Conv2dSpec::new({c_in}, {c_out}, [{kh}, {kw}])\n")
        out.write(f"            .groups({groups})\n")
        out.write(f"            .stride([{stride[0]}, {stride[1]}])\n")
        out.write(f"            .dilation([{dilation[0]}, {dilation[1]}])\n")
        out.write(f"            .padding(Padding::explicit({top}, {bottom}, {left}, {right}))\n")
        out.write(f"            .bias({'true' if has_bias else 'false'})\n")
        out.write(f"            .activation(Activation::{activation}),\n")
        out.write(f"        input_shape: Shape::new({n}, {c_in}, {h}, {w}),\n")
        out.write(f"        input: {rust_slice(x, ind)},\n")
        out.write(f"        weights: {rust_slice(wt, ind)},\n")
        if b is None:
            out.write("        bias: None,\n")
        else:
            out.write(f"        bias: Some({rust_slice(b, ind)}),\n")
        on, oc, oh, ow = y.shape
        out.write(f"        output_shape: Shape::new({on}, {oc}, {oh}, {ow}),\n")
        out.write(f"        output: {rust_slice(y, ind)},\n")
        out.write("    },\n")
    out.write("];\n")


if __name__ == "__main__":
    main()
