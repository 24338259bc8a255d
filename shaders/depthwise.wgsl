// Depthwise convolution (groups = c_in, c_out = multiplier · c_in), NCHW f32.
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Depthwise`, as one
// or more slices (one dispatch each, all in one compute pass), each covering the output
// channels slice_first .. slice_first + tiles_y whose filters fit one uniform-buffer window.
//
// The host prepends conv_common.wgsl (ConvParams, the `finish` epilogue) to this file.
//
// Bindings (see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's filters [oc in slice][k_h][k_w], 4 per vec4 (PyTorch OIHW with
//                   I = 1). A uniform buffer: filters are small and read by many invocations.
//   2  bias         [c_out]                    (zeros when the spec has no bias)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Kernel size, stride and dilation are pipeline-overridable constants, so the tap loops have
// constant trip counts and unroll; one pipeline per (kernel, stride, dilation).
//
// Thread → output: invocations are numbered linearly over the slice's (n, oc) planes (the
// grid may be spread over x and y, src/gpu/dispatch.rs); each computes a block of OUT_H rows
// × OUT_W consecutive outputs. Per input row it loads the span those outputs share once into
// registers (SPAN values: with stride 1 each input value serves up to K_W outputs of a row,
// and up to OUT_H rows), then does the multiply-adds from registers. Border taps read a
// clamped address and are zeroed by a select, so interior and border windows share one
// branch-free path. Output channel oc reads input channel oc / multiplier
// (= oc / c_out_per_group).

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<uniform> weights: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

const WORKGROUP_SIZE: u32 = 64u;
// Consecutive outputs along a row, and rows, per invocation: an input row loaded once serves
// every output row whose window covers it.
const OUT_W: u32 = 8u;
const OUT_H: u32 = 2u;
// Largest input span kept in registers; wider spans (big strides or dilations) load per tap.
const MAX_SPAN: u32 = 32u;

override K_H: u32 = 3u;
override K_W: u32 = 3u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;
// Input columns read by OUT_W outputs of one kernel row, and input rows read by OUT_H rows.
override SPAN: u32 = (OUT_W - 1u) * STRIDE_W + (K_W - 1u) * DILATION_W + 1u;
override ROWS_IN: u32 = (OUT_H - 1u) * STRIDE_H + (K_H - 1u) * DILATION_H + 1u;

fn weight(i: u32) -> f32 {
    return weights[i >> 2u][i & 3u];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    // Invocation q covers rows oh0 .. oh0 + OUT_H and columns ow0 .. ow0 + OUT_W of plane
    // q / tiles_x, where tiles_x = ⌈h_out / OUT_H⌉ · ⌈w_out / OUT_W⌉ (blocks per plane):
    // consecutive invocations take consecutive column groups, then row pairs, then planes, so
    // small planes still fill every lane of a workgroup.
    let q = (wg.y * num_wg.x + wg.x) * WORKGROUP_SIZE + local;
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

    // One code path for interior and border windows alike: divergent branches cost both sides
    // on SIMD hardware (and on CPU drivers that run invocations as SIMD lanes), so border taps
    // read a clamped, always-valid address and are zeroed by a select instead.
    // acc0[j] and acc1[j] are outputs (oh0, ow0 + j) and (oh0 + 1, ow0 + j).
    var acc0 = array<f32, OUT_W>();
    var acc1 = array<f32, OUT_W>();
    for (var r = 0u; r < ROWS_IN; r++) {
        let ih = ih0 + i32(r);
        let row_ok = ih >= 0 && ih < i32(params.h_in);
        let row = in_base + u32(clamp(ih, 0, i32(params.h_in) - 1)) * params.w_in;
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
                let iw = iw0 + i32(s);
                let v = input_data[row + u32(clamp(iw, 0, i32(params.w_in) - 1))];
                span[s] = select(0.0, v, row_ok && iw >= 0 && iw < i32(params.w_in));
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
                    let iw = iw0 + i32(j * STRIDE_W + kx * DILATION_W);
                    let v = input_data[row + u32(clamp(iw, 0, i32(params.w_in) - 1))];
                    let x = select(0.0, v, row_ok && iw >= 0 && iw < i32(params.w_in));
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
