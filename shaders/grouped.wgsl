// Grouped convolution, the general case (groups = 1, i.e. standard convolution, included),
// NCHW f32, any kernel, stride, per-side padding and dilation, as an implicit matrix product
// per group with all groups in the same dispatch.
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Grouped`, as one or
// more slices (one dispatch each, all in one compute pass): each slice covers a range of global
// output-channel blocks and of input channels per group whose weights fit one uniform-buffer
// window.
//
// The host prepends conv_common.wgsl (ConvParams, the `finish` epilogue) and
// channel_tile.wgsl (Sums, Tile, load_weights, load_bias, accumulate) to this file.
//
// Bindings (shared by the pointwise and grouped shaders, see src/gpu/pipelines.rs):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's window of the weights packed once by the host
//                   (src/gpu/pack.rs): [block in slice][k in slice][k_h][k_w][OC_TILE] vec4s,
//                   OC_TILE = 4·OC_VEC4 output channels of one group, zero-padded past
//                   c_out_per_group. A uniform buffer: the whole workgroup reads the same
//                   weight at once (a broadcast from uniform/constant memory).
//   2  bias         [group][oc_block][OC_TILE] as vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Kernel size, stride and dilation are pipeline-overridable constants (tap loops unroll).
//
// Thread → output: workgroups are numbered linearly (grid possibly spread over x and y,
// src/gpu/dispatch.rs); workgroup t covers global block slice_first + t / tiles_x
// (group = block / oc_blocks_per_group; PyTorch's rule, oc / c_out_per_group) and pixels
// (t % tiles_x)·WORKGROUP_SIZE·PIXELS onwards of the flattened (n, oh, ow) range. Each
// invocation computes PIXELS pixels, local + i·WORKGROUP_SIZE for i < PIXELS, for
// OC_TILE = 4·OC_VEC4 output channels (a PIXELS × OC_TILE register tile): every input tap is
// loaded once per pixel and used for OC_TILE multiply-adds, and every weight vec4 read from
// the window serves each pixel. Padded taps read a clamped address and are zeroed by a select.

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<uniform> weights: array<vec4<f32>, 4096>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: ConvParams;

// Invocations per workgroup (chosen by the host per adapter: 32, one GPU SIMD group; 16 on CPU
// adapters, where twice the workgroups balance better over the threads).
override WORKGROUP_SIZE: u32 = 32u;
// Output channels per invocation, in vec4s: 1, 2, 4 or 8 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;
// Pixels per invocation: 1, 2 or 4 (chosen by the host per layer).
override PIXELS: u32 = 1u;
override K_H: u32 = 3u;
override K_W: u32 = 3u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;

fn store(base: u32, oc: u32, first_in_group: u32, plane: u32, acc: vec4<f32>, b: vec4<f32>) {
    // Channels past c_out_per_group are padding of the group's last block: skipped.
    for (var j = 0u; j < 4u; j++) {
        if first_in_group + j < params.c_out_per_group {
            finish(base + (oc + j) * plane, acc[j], b[j]);
        }
    }
}

fn store_sums(sums: Sums, base: u32, oc: u32, first: u32, plane: u32, b: Tile) {
    store(base, oc, first, plane, sums.s0, b.w0);
    if OC_VEC4 > 1u { store(base, oc + 4u, first + 4u, plane, sums.s1, b.w1); }
    if OC_VEC4 > 2u {
        store(base, oc + 8u, first + 8u, plane, sums.s2, b.w2);
        store(base, oc + 12u, first + 12u, plane, sums.s3, b.w3);
    }
    if OC_VEC4 > 4u {
        store(base, oc + 16u, first + 16u, plane, sums.s4, b.w4);
        store(base, oc + 20u, first + 20u, plane, sums.s5, b.w5);
        store(base, oc + 24u, first + 24u, plane, sums.s6, b.w6);
        store(base, oc + 28u, first + 28u, plane, sums.s7, b.w7);
    }
}

// Where one pixel's window starts: the input offset of its group's channel k_begin, and the
// top-left input row and column (negative inside the padding).
struct Window {
    channel: u32,
    ih0: i32,
    iw0: i32,
}

// The window of flattened output pixel q, clamped to the last pixel so that pixels past the
// end read in bounds (they are not stored).
fn window_at(q: u32, g: u32) -> Window {
    let qc = min(q, params.work_items - 1u);
    let plane_out = params.h_out * params.w_out;
    let n = qc / plane_out;
    let p = qc % plane_out;
    var win: Window;
    win.channel = (n * params.c_in + g * params.c_in_per_group + params.k_begin)
        * params.h_in * params.w_in;
    win.ih0 = i32((p / params.w_out) * STRIDE_H) - i32(params.pad_top);
    win.iw0 = i32((p % params.w_out) * STRIDE_W) - i32(params.pad_left);
    return win;
}

// Kernel row ky of a window: the offset of its (clamped) input row, and whether that row is
// inside the input.
struct Row {
    offset: u32,
    inside: bool,
    iw0: i32,
}

fn row_of(win: Window, ky: u32) -> Row {
    let ih = win.ih0 + i32(ky * DILATION_H);
    let h = i32(params.h_in);
    var row: Row;
    row.offset = win.channel + u32(clamp(ih, 0, h - 1)) * params.w_in;
    row.inside = ih >= 0 && ih < h;
    row.iw0 = win.iw0;
    return row;
}

// Input tap kx of a kernel row, 0 in the padding. One path for interior and border taps
// (divergent branches run both sides on SIMD hardware): a clamped, always-valid address,
// zeroed by a select.
fn tap(row: Row, kx: u32) -> f32 {
    let iw = row.iw0 + i32(kx * DILATION_W);
    let w = i32(params.w_in);
    let v = input_data[row.offset + u32(clamp(iw, 0, w - 1))];
    return select(0.0, v, row.inside && iw >= 0 && iw < w);
}

fn output_at(q: u32) -> u32 {
    let plane_out = params.h_out * params.w_out;
    return (q / plane_out) * params.c_out * plane_out + q % plane_out;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let tile = wg.y * num_wg.x + wg.x;
    let block_in_slice = tile / params.tiles_x;
    let q0 = (tile % params.tiles_x) * WORKGROUP_SIZE * PIXELS + local;
    if block_in_slice >= params.tiles_y || q0 >= params.work_items {
        return;
    }
    let block = params.slice_first + block_in_slice; // global output-channel block
    let g = block / params.oc_blocks_per_group;
    let block_in_group = block % params.oc_blocks_per_group;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels: q0 + i · WORKGROUP_SIZE for i < PIXELS (consecutive pixels
    // across the workgroup at every step).
    let q1 = q0 + WORKGROUP_SIZE;
    let q2 = q0 + 2u * WORKGROUP_SIZE;
    let q3 = q0 + 3u * WORKGROUP_SIZE;
    var win0 = window_at(q0, g);
    var win1 = window_at(q1, g);
    var win2 = window_at(q2, g);
    var win3 = window_at(q3, g);

    var w = block_in_slice * params.k_count * K_H * K_W * OC_VEC4;
    var a: Sums;
    var b: Sums;
    var c: Sums;
    var d: Sums;
    for (var k = 0u; k < params.k_count; k++) {
        for (var ky = 0u; ky < K_H; ky++) {
            let row0 = row_of(win0, ky);
            let row1 = row_of(win1, ky);
            let row2 = row_of(win2, ky);
            let row3 = row_of(win3, ky);
            for (var kx = 0u; kx < K_W; kx++) {
                let t = load_weights(w);
                accumulate(&a, t, tap(row0, kx));
                if PIXELS > 1u { accumulate(&b, t, tap(row1, kx)); }
                if PIXELS > 2u {
                    accumulate(&c, t, tap(row2, kx));
                    accumulate(&d, t, tap(row3, kx));
                }
                w += OC_VEC4;
            }
        }
        win0.channel += plane_in;
        win1.channel += plane_in;
        win2.channel += plane_in;
        win3.channel += plane_in;
    }

    let first = block_in_group * OC_VEC4 * 4u;
    let oc = g * params.c_out_per_group + first;
    let bias_tile = load_bias(block * OC_VEC4);
    let plane_out = params.h_out * params.w_out;
    store_sums(a, output_at(q0), oc, first, plane_out, bias_tile);
    if PIXELS > 1u && q1 < params.work_items {
        store_sums(b, output_at(q1), oc, first, plane_out, bias_tile);
    }
    if PIXELS > 2u && q2 < params.work_items {
        store_sums(c, output_at(q2), oc, first, plane_out, bias_tile);
    }
    if PIXELS > 2u && q3 < params.work_items {
        store_sums(d, output_at(q3), oc, first, plane_out, bias_tile);
    }
}
