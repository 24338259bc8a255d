// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32, as one tiled matrix product:
// Y[n][oc][p] = act(b[oc] + Σ_ic W[oc][ic] · X[n][ic][p·stride]).
//
// Run by `Conv2d` (src/gpu/conv.rs, host code in src/gpu/gemm.rs) when its pointwise kernel
// choice is the tiled product: one dispatch, whatever the weights' size, with the weights in
// one storage buffer. (The other pointwise kernel, pointwise.wgsl, reads its weights as a
// broadcast from 64 KiB uniform windows, one dispatch per window.)
//
// The host prepends gemm_tile.wgsl, which holds the tiling (TILE_OC = 64 output channels ×
// TILE_P = 32 pixels per workgroup, TILE_K = 8 input channels per step, a 4-pixel × 8-channel
// register tile per invocation, tiles of both operands in workgroup memory); this file only
// loads the input tile: per step each invocation reads 4 consecutive pixels of one input
// channel (a workgroup reads 8 runs of 32 consecutive pixels: coalesced).
//
// Bindings (src/gpu/pipelines.rs, `gemm_layout`):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  pw_weights   transposed and zero-padded: [c_in rounded up to TILE_K][oc_vec4] vec4s,
//                   oc_vec4 = c_out rounded up to TILE_OC, over 4 (src/gpu/gemm.rs)
//   2  pw_bias      [oc_vec4] vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       TileParams, k_channels = c_in

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<storage, read> pw_weights: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pw_bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: TileParams;

// Offset of channel 0 at flattened output pixel q (clamped to the last pixel: pixels past the
// end read in bounds and are never stored).
fn pixel_offset(q: u32) -> u32 {
    let qc = min(q, params.pixels - 1u);
    let plane = params.h_out * params.w_out;
    let p = qc % plane;
    return (qc / plane) * params.c_in * params.h_in * params.w_in
        + (p / params.w_out) * params.stride_h * params.w_in + (p % params.w_out) * params.stride_w;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = wg.y * num_wg.x + wg.x;
    let oc_tile = t % params.oc_tiles;
    let q_first = (t / params.oc_tiles) * TILE_P;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if q_first >= params.pixels {
        return;
    }
    let row = local / 8u;
    let col = local % 8u;
    let q = q_first + col * 4u;
    let x0 = pixel_offset(q);
    let x1 = pixel_offset(q + 1u);
    let x2 = pixel_offset(q + 2u);
    let x3 = pixel_offset(q + 3u);
    let plane_in = params.h_in * params.w_in;
    for (var k0 = 0u; k0 < params.k_channels; k0 += TILE_K) {
        // Channels past c_in (the last step's padding rows, whose weights are zero) read
        // channel c_in - 1 in bounds and use 0 instead, so that an infinite input there
        // cannot turn into 0 · ∞ = NaN.
        let inside = k0 + row < params.k_channels;
        let c = min(k0 + row, params.k_channels - 1u) * plane_in;
        let x = vec4<f32>(
            input_data[x0 + c],
            input_data[x1 + c],
            input_data[x2 + c],
            input_data[x3 + c],
        );
        b_tile[row * 8u + col] = select(vec4<f32>(0.0), x, inside);
        load_weights(k0 + row, row, col, oc_tile);
        workgroupBarrier();
        multiply_tiles(col, row);
        workgroupBarrier();
    }
    store_tile(q_first, oc_tile, col, row);
}
