// The tiled-product fragment, shared by the tiled matrix-product kernels, conv_gemm.wgsl and
// fused_separable.wgsl: the host puts it after shared.wgsl and before the kernel's file
// (src/gpu/pipelines.rs, `TiledShader::source`).
//
// Bindings: declared by each kernel (the numbers differ), by these names:
//   input_data   [n, c_in, h_in, w_in]
//   pw_weights   the product's weights, transposed and zero-padded (src/gpu/gemm.rs), Elem
//   pw_bias      their bias, zero-padded vec4s
//   output_data  [n, c_out, h_out, w_out] (or a split product's scratch slots)
//   params       TileParams
//
// A workgroup computes Y[TILE_OC × TILE_P] = act(b + W · B) for one tile of output channels
// and of flattened (n, oh, ow) output pixels, summing over K = k_channels channels TILE_K at a
// time (conv_gemm.wgsl may split K over several workgroups: each then stores a partial sum,
// see `Epilogue`). Per step the kernel fills `b_tile` with the step's B values in its own way (input
// values, or depthwise outputs computed on the spot) and hands them to `multiply_step`, which
// fills `weight_tile` and after a barrier adds the step into each invocation's 4-pixel ×
// 8-channel register tile. Invocation `local` loads row local / 8 of both tiles (pixel quad
// or weight pair local % 8) and multiplies pixels 4·(local % 8) .. +4 by output channels
// 8·(local / 8) .. +8 of the tile.
//
// Workgroups are numbered linearly (the grid may be spread over x and y, src/gpu/dispatch.rs);
// consecutive workgroups take consecutive output-channel tiles of the same pixels, so that
// they read the same inputs.

// Mirrors `TileParams` in src/gpu/gemm.rs field for field (checked by a naga test).
struct TileParams {
    n: u32, c_in: u32, h_in: u32, w_in: u32,
    k_channels: u32, multiplier: u32, c_out: u32, oc_vec4: u32,
    h_out: u32, w_out: u32, pad_top: u32, pad_left: u32,
    stride_h: u32, stride_w: u32, dw_activation: u32, activation: u32,
    oc_tiles: u32, pixels: u32, groups: u32, k_slices: u32,
    dw_alpha: u32, dw_beta: u32, alpha: u32, beta: u32,
}

const WORKGROUP_SIZE: u32 = 64u;
const TILE_OC: u32 = 64u;
const TILE_P: u32 = 32u;
const TILE_K: u32 = 8u;

// The step's B values, [TILE_K][TILE_P] as vec4s of 4 consecutive pixels, and its weights,
// [TILE_K][TILE_OC] as vec4s of 4 consecutive output channels.
var<workgroup> b_tile: array<vec4<f32>, 64>;
var<workgroup> weight_tile: array<vec4<f32>, 128>;

// The register tile: pixel i's output channels 0–3 (lo_i) and 4–7 (hi_i) of the invocation's 8.
var<private> lo0: vec4<f32>;
var<private> lo1: vec4<f32>;
var<private> lo2: vec4<f32>;
var<private> lo3: vec4<f32>;
var<private> hi0: vec4<f32>;
var<private> hi1: vec4<f32>;
var<private> hi2: vec4<f32>;
var<private> hi3: vec4<f32>;

// Where the taps of one output pixel start: its top-left input row and column (before
// dilation) and the offset of its first input plane.
struct Origin {
    row: i32,
    col: i32,
    plane: u32,
}

// The origin of flattened output pixel q, whose taps read input channels from `channel_first`
// on; (sample_h, sample_w) picks every sample-th output of the convolution (the fused block's
// pointwise stride; 1 otherwise). Pixels past the end take the last pixel's (their values are
// computed but never stored).
fn origin(q: u32, sample_h: u32, sample_w: u32, channel_first: u32) -> Origin {
    let plane = params.h_out * params.w_out;
    let qc = min(q, params.pixels - 1u);
    let n = qc / plane;
    let p = qc % plane;
    return Origin(
        i32((p / params.w_out) * sample_h * STRIDE_H) - i32(params.pad_top),
        i32((p % params.w_out) * sample_w * STRIDE_W) - i32(params.pad_left),
        (n * params.c_in + channel_first) * params.h_in * params.w_in,
    );
}

// The input under tap (i, j) of origin o (the geometry overrides of shared.wgsl), `channel`
// elements (whole planes) past its first plane; 0 in the padding (`padded_read`).
fn tap(o: Origin, channel: u32, i: u32, j: u32) -> f32 {
    let row = padded_row(o.plane + channel, o.row + i32(i * DILATION_H), params.h_in, params.w_in);
    return padded_read(row, o.col + i32(j * DILATION_W));
}

// Row `row` of the step's weight tile: channel k of K, the vec4 pair `col` of the tile's
// output channels. The host pads the transposed weights with zero rows and columns to whole
// tiles, so the reads stay in bounds and the padding adds nothing.
fn load_weights(k: u32, row: u32, col: u32, oc_tile: u32) {
    let w = k * params.oc_vec4 + oc_tile * (TILE_OC / 4u) + col * 2u;
    weight_tile[row * 16u + col * 2u] = vec4<f32>(pw_weights[w]);
    weight_tile[row * 16u + col * 2u + 1u] = vec4<f32>(pw_weights[w + 1u]);
}

// One step of the product: invocation (row, col) puts the B values `b` (row `row`, pixel quad
// `col` of the step) into b_tile and row k of the weights into weight_tile; after a barrier
// every invocation adds the step into its register tile, and a second barrier frees the tiles
// for the next step. Called in uniform control flow.
fn multiply_step(b: vec4<f32>, k: u32, row: u32, col: u32, oc_tile: u32) {
    b_tile[row * 8u + col] = b;
    load_weights(k, row, col, oc_tile);
    workgroupBarrier();
    multiply_tiles(col, row);
    workgroupBarrier();
}

// Adds the step's product into the register tile of pixel quad px and channel octet oc8.
fn multiply_tiles(px: u32, oc8: u32) {
    for (var k = 0u; k < TILE_K; k++) {
        let x = b_tile[k * 8u + px];
        let w_lo = weight_tile[k * 16u + oc8 * 2u];
        let w_hi = weight_tile[k * 16u + oc8 * 2u + 1u];
        lo0 += w_lo * x.x;
        hi0 += w_hi * x.x;
        lo1 += w_lo * x.y;
        hi1 += w_hi * x.y;
        lo2 += w_lo * x.z;
        hi2 += w_hi * x.z;
        lo3 += w_lo * x.w;
        hi3 += w_hi * x.w;
    }
}

// How a tile's sums are finished and where they go: `offset` elements past the output index
// (a split product's partial sums go to slot `split` of a scratch buffer), with or without the
// bias, then `activation`, and with or without the residual add (`finish_sum`; a split
// product's partial sums leave it to reduce_splits).
struct Epilogue {
    offset: u32,
    with_bias: bool,
    activation: Activation,
    finished: bool,
}

// One output value of a tile through the epilogue `e`, stored at `index`.
fn store_value(index: u32, y: f32, e: Epilogue) {
    if e.finished {
        output_data[index] = OutElem(finish_sum(index, y, e.activation));
    } else {
        output_data[index] = OutElem(activate(y, e.activation));
    }
}

// Stores one pixel's 8 output channels from oc on (global indices; those from oc_end on are
// padding and skipped), finished by `e` with the bias of vec4s b and b + 1 of pw_bias.
fn store_pixel(q: u32, oc: u32, oc_end: u32, b: u32, lo: vec4<f32>, hi: vec4<f32>, e: Epilogue) {
    if q >= params.pixels {
        return;
    }
    let plane = params.h_out * params.w_out;
    let base = e.offset + (q / plane) * params.c_out * plane + q % plane;
    let bias_lo = select(vec4<f32>(0.0), pw_bias[b], e.with_bias);
    let bias_hi = select(vec4<f32>(0.0), pw_bias[b + 1u], e.with_bias);
    for (var j = 0u; j < 4u; j++) {
        if oc + j < oc_end {
            store_value(base + (oc + j) * plane, lo[j] + bias_lo[j], e);
        }
        if oc + 4u + j < oc_end {
            store_value(base + (oc + 4u + j) * plane, hi[j] + bias_hi[j], e);
        }
    }
}

// Stores the register tile of pixel quad px and channel octet oc8 of a workgroup tile whose
// output channels start at oc_first and end before oc_end (c_out, or the group's end), with
// their bias from vec4 bias_first of pw_bias on, finished by `e`.
fn store_tile(
    q_first: u32,
    oc_first: u32,
    oc_end: u32,
    bias_first: u32,
    px: u32,
    oc8: u32,
    e: Epilogue,
) {
    let oc = oc_first + oc8 * 8u;
    let b = bias_first + oc8 * 2u;
    let q = q_first + px * 4u;
    store_pixel(q, oc, oc_end, b, lo0, hi0, e);
    store_pixel(q + 1u, oc, oc_end, b, lo1, hi1, e);
    store_pixel(q + 2u, oc, oc_end, b, lo2, hi2, e);
    store_pixel(q + 3u, oc, oc_end, b, lo3, hi3, e);
}
