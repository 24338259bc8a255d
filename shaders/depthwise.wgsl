// Depthwise convolution (groups = c_in, c_out = multiplier · c_in), NCHW f32 or f16:
// Y[n][oc][p] = act(b[oc] + Σ_taps W[oc][tap] · X[n][oc / multiplier][tap at p]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Depthwise`, as one
// or more slices (one dispatch each, all in one compute pass), each covering the output
// channels slice_first .. slice_first + tiles_y whose filters fit one uniform-buffer window.
//
// The host puts shared.wgsl (geometry, padded reads, activation) and conv_common.wgsl
// (ConvParams, the conv bindings, the `finish` epilogue) before this file.
//
// Bindings (the conv layout, src/gpu/pipelines.rs; declared by the fragments but bias):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's filters [oc in slice][k_h][k_w], 4 per vec4 (PyTorch OIHW with
//                   I = 1)
//   2  bias         [c_out]                    (zeros when the spec has no bias)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Kernel size, stride and dilation are pipeline-overridable constants (shared.wgsl), so the
// tap loops have constant trip counts and unroll; one pipeline per (kernel, stride, dilation).
//
// Thread → output: invocations are numbered linearly over the slice's (n, oc) planes (the
// grid may be spread over x and y, src/gpu/dispatch.rs); each computes a block of OUT_H rows
// × OUT_W consecutive outputs. Per input row it loads the span those outputs share once into
// registers (SPAN values: with stride 1 each input value serves up to K_W outputs of a row,
// and up to OUT_H rows), then does the multiply-adds from registers. Border taps go through
// the shared padded read (a clamped address zeroed by a select), so interior and border
// windows share one branch-free path. Output channel oc reads input channel oc / multiplier
// (= oc / c_out_per_group).

@group(0) @binding(2) var<storage, read> bias: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
// Consecutive outputs along a row, and rows, per invocation: an input row loaded once serves
// every output row whose window covers it.
const OUT_W: u32 = 8u;
const OUT_H: u32 = 2u;
// Largest input span kept in registers; wider spans (big strides or dilations) load per tap.
const MAX_SPAN: u32 = 32u;

// Input columns read by OUT_W outputs of one kernel row, and input rows read by OUT_H rows.
override SPAN: u32 = (OUT_W - 1u) * STRIDE_W + (K_W - 1u) * DILATION_W + 1u;
override ROWS_IN: u32 = (OUT_H - 1u) * STRIDE_H + (K_H - 1u) * DILATION_H + 1u;

fn weight(i: u32) -> f32 {
    return weights[i >> 2u][i & 3u];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    // Invocation q covers rows oh0 .. oh0 + OUT_H and columns ow0 .. ow0 + OUT_W of plane
    // q / tiles_x, where tiles_x = ⌈h_out / OUT_H⌉ · ⌈w_out / OUT_W⌉ (blocks per plane):
    // consecutive invocations take consecutive column groups, then row pairs, then planes, so
    // small planes still fill every lane of a workgroup.
    let q = invocation_index(id);
    if q >= params.work_items {
        return;
    }
    let col_groups = (params.w_out + OUT_W - 1u) / OUT_W;
    let plane_in_slice = q / params.tiles_x;
    let within = q % params.tiles_x;
    let oh0 = (within / col_groups) * OUT_H;
    let ow0 = (within % col_groups) * OUT_W;
    let oc_in_slice = plane_in_slice % params.tiles_y;
    let n = plane_in_slice / params.tiles_y;
    let oc = params.slice_first + oc_in_slice;
    let ic = oc / params.c_out_per_group;

    let in_base = (n * params.c_in + ic) * params.h_in * params.w_in;
    let w_base = oc_in_slice * K_H * K_W;
    let ih0 = i32(oh0 * STRIDE_H) - i32(params.pad_top);
    let iw0 = i32(ow0 * STRIDE_W) - i32(params.pad_left);

    // One code path for interior and border windows alike (`padded_read`).
    // acc0[j] and acc1[j] are outputs (oh0, ow0 + j) and (oh0 + 1, ow0 + j).
    var acc0 = array<f32, OUT_W>();
    var acc1 = array<f32, OUT_W>();
    for (var r = 0u; r < ROWS_IN; r++) {
        let row = padded_row(in_base, ih0 + i32(r), params.h_in, params.w_in);
        // Input row r is kernel row ky of output row i when r = i · STRIDE_H + ky · DILATION_H.
        let in_first = r % DILATION_H == 0u && r / DILATION_H < K_H;
        let d = r - min(r, STRIDE_H);
        let in_second = r >= STRIDE_H && d % DILATION_H == 0u && d / DILATION_H < K_H;
        let ky0 = r / DILATION_H;
        let ky1 = d / DILATION_H;
        if SPAN <= MAX_SPAN {
            // The input span shared by the OUT_W outputs, loaded once.
            var span = array<f32, MAX_SPAN>();
            for (var s = 0u; s < SPAN; s++) {
                span[s] = padded_read(row, iw0 + i32(s));
            }
            for (var kx = 0u; kx < K_W; kx++) {
                if in_first {
                    let wv = weight(w_base + ky0 * K_W + kx);
                    for (var j = 0u; j < OUT_W; j++) {
                        acc0[j] += span[j * STRIDE_W + kx * DILATION_W] * wv;
                    }
                }
                if in_second {
                    let wv = weight(w_base + ky1 * K_W + kx);
                    for (var j = 0u; j < OUT_W; j++) {
                        acc1[j] += span[j * STRIDE_W + kx * DILATION_W] * wv;
                    }
                }
            }
        } else {
            for (var kx = 0u; kx < K_W; kx++) {
                for (var j = 0u; j < OUT_W; j++) {
                    let x = padded_read(row, iw0 + i32(j * STRIDE_W + kx * DILATION_W));
                    if in_first {
                        acc0[j] += x * weight(w_base + ky0 * K_W + kx);
                    }
                    if in_second {
                        acc1[j] += x * weight(w_base + ky1 * K_W + kx);
                    }
                }
            }
        }
    }

    let b = bias[oc];
    let out_row = ((n * params.c_out + oc) * params.h_out + oh0) * params.w_out;
    for (var j = 0u; j < OUT_W; j++) {
        if ow0 + j < params.w_out {
            finish(out_row + ow0 + j, acc0[j], b);
            if oh0 + 1u < params.h_out {
                finish(out_row + params.w_out + ow0 + j, acc1[j], b);
            }
        }
    }
}
