// Grouped convolution, the general case (groups = 1, i.e. standard convolution, included),
// NCHW (f32 or f16 storage, f32 arithmetic), any kernel, stride, per-side padding and
// dilation, as an implicit matrix product per group with all groups in the same dispatch:
// Y[n][oc][p] = act(b[oc] + Σ_{ic in oc's group, taps} W[oc][ic][tap] · X[n][ic][tap at p]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Grouped`, as one or
// more slices (one dispatch each, all in one compute pass): each slice covers a range of global
// output-channel blocks and of input channels per group whose weights fit one uniform-buffer
// window.
//
// The host puts shared.wgsl (geometry, padded reads), conv_common.wgsl (ConvParams, the conv
// bindings, `finish`) and channel_tile.wgsl (the register tile, the workgroup's place, the
// store) before this file.
//
// Bindings (the conv layout, shared with pointwise.wgsl; declared by the fragments):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's window of the weights packed once by the host
//                   (src/gpu/pack.rs): [block in slice][k in slice][k_h][k_w][OC_TILE] vec4s,
//                   OC_TILE = 4·OC_VEC4 output channels of one group, zero-padded past
//                   c_out_per_group. The whole workgroup reads the same weight at once.
//   2  bias         [group][oc_block][OC_TILE] as vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Kernel size, stride and dilation are pipeline-overridable constants (tap loops unroll).
//
// Thread → output (channel_tile.wgsl): global block slice_first + t / tiles_x belongs to group
// block / oc_blocks_per_group (PyTorch's rule, oc / c_out_per_group). Every input tap is
// loaded once per pixel and used for OC_TILE multiply-adds, and every weight vec4 read from
// the window serves each pixel. Padded taps go through the shared padded read.

// Where one pixel's window starts: the input offset of its group's channel k_begin, and the
// top-left input row and column (negative inside the padding).
struct Window {
    channel: u32,
    ih0: i32,
    iw0: i32,
}

// Kernel row ky of a window, padded.
fn row_of(win: Window, ky: u32) -> PaddedRow {
    return padded_row(win.channel, win.ih0 + i32(ky * DILATION_H), params.h_in, params.w_in);
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    let place = place_of(id);
    if !place.live {
        return;
    }
    let block = params.slice_first + place.block_in_slice; // global output-channel block
    let g = block / params.oc_blocks_per_group;
    let block_in_group = block % params.oc_blocks_per_group;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels (channel_tile.wgsl).
    let q0 = place.q0;
    var win0 = window_at(q0, g);
    var win1 = window_at(q0 + WORKGROUP_SIZE, g);
    var win2 = window_at(q0 + 2u * WORKGROUP_SIZE, g);
    var win3 = window_at(q0 + 3u * WORKGROUP_SIZE, g);

    var w = place.block_in_slice * params.k_count * K_H * K_W * OC_VEC4;
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
                let dx = i32(kx * DILATION_W);
                accumulate(&a, t, padded_read(row0, win0.iw0 + dx));
                if PIXELS > 1u { accumulate(&b, t, padded_read(row1, win1.iw0 + dx)); }
                if PIXELS > 2u {
                    accumulate(&c, t, padded_read(row2, win2.iw0 + dx));
                    accumulate(&d, t, padded_read(row3, win3.iw0 + dx));
                }
                w += OC_VEC4;
            }
        }
        win0.channel += plane_in;
        win1.channel += plane_in;
        win2.channel += plane_in;
        win3.channel += plane_in;
    }

    // The group's channels end at (g + 1) · c_out_per_group: the rest of its last block is
    // padding.
    let oc = g * params.c_out_per_group + block_in_group * OC_VEC4 * 4u;
    store_pixels(a, b, c, d, q0, oc, (g + 1u) * params.c_out_per_group, block * OC_VEC4);
}
