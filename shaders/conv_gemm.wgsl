// Pointwise and grouped convolution (groups = 1, i.e. standard convolution, included), NCHW
// f32, any kernel, stride, per-side padding and dilation, as one tiled implicit matrix product
// per group with all groups in one dispatch:
// Y[n][g·oc_g + o][p] = act(b + Σ_k W_g[o][k] · B_g[k][p]), k = (ic, kh, kw) over the group's
// c_in / groups input channels and the taps, B_g[k][p] the input under tap k of output pixel p.
//
// Run by `Conv2d` (src/gpu/conv.rs, host code in src/gpu/gemm.rs) when its kernel choice is
// the tiled product (`ConvKernel::TiledGemm`): one dispatch, whatever the weights' size, with
// the weights in one storage buffer. (The other kernels, pointwise.wgsl and grouped.wgsl, read
// their weights as a broadcast from 64 KiB uniform windows, one dispatch per window.)
//
// The host prepends gemm_tile.wgsl, which holds the tiling (TILE_OC = 64 output channels of one
// group × TILE_P = 32 pixels per workgroup, TILE_K = 8 rows k per step, a 4-pixel × 8-channel
// register tile per invocation, tiles of both operands in workgroup memory), the geometry
// overrides and the tap addressing; this file only loads the B tile: per step each invocation
// reads row k of it at 4 consecutive pixels (a workgroup reads 8 runs of 32 consecutive pixels
// of a 1×1 conv: coalesced). Padded taps read a clamped address and are zeroed by a select.
//
// Bindings (src/gpu/pipelines.rs, `Pipelines::tiled_layout`):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  pw_weights   per group, transposed and zero-padded: [group][k rounded up to TILE_K]
//                   [oc_vec4] vec4s, oc_vec4 = c_out / groups rounded up to TILE_OC, over 4
//                   (src/gpu/gemm.rs)
//   2  pw_bias      [group][oc_vec4] vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       TileParams, k_channels = (c_in / groups)·K_H·K_W, oc_tiles per group
//
// Workgroup t covers output-channel tile t % oc_tiles of group (t / oc_tiles) % groups and
// pixel tile t / (oc_tiles · groups).

@group(0) @binding(0) var<storage, read> input_data: array<f32>;
@group(0) @binding(1) var<storage, read> pw_weights: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> pw_bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<f32>;
@group(0) @binding(4) var<uniform> params: TileParams;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = wg.y * num_wg.x + wg.x;
    let oc_tile = t % params.oc_tiles;
    let group = (t / params.oc_tiles) % params.groups;
    let q_first = (t / (params.oc_tiles * params.groups)) * TILE_P;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if q_first >= params.pixels {
        return;
    }
    let row = local / 8u;
    let col = local % 8u;
    let q = q_first + col * 4u;
    let first = group * (params.c_in / params.groups);
    let o0 = origin(q, 1u, 1u, first);
    let o1 = origin(q + 1u, 1u, 1u, first);
    let o2 = origin(q + 2u, 1u, 1u, first);
    let o3 = origin(q + 3u, 1u, 1u, first);
    let plane_in = params.h_in * params.w_in;
    // Rows of one group's weights: k_channels rounded up to whole steps.
    let k_rows = (params.k_channels + TILE_K - 1u) / TILE_K * TILE_K;
    for (var k0 = 0u; k0 < params.k_channels; k0 += TILE_K) {
        // Rows past k_channels (the last step's padding, whose weights are zero) read row
        // k_channels - 1 in bounds and use 0 instead, so that an infinite input there cannot
        // turn into 0 · ∞ = NaN.
        let k = min(k0 + row, params.k_channels - 1u);
        let channel = (k / (K_H * K_W)) * plane_in;
        let i = (k % (K_H * K_W)) / K_W;
        let j = k % K_W;
        let x = vec4<f32>(
            tap(o0, channel, i, j),
            tap(o1, channel, i, j),
            tap(o2, channel, i, j),
            tap(o3, channel, i, j),
        );
        b_tile[row * 8u + col] = select(vec4<f32>(0.0), x, k0 + row < params.k_channels);
        load_weights(group * k_rows + k0 + row, row, col, oc_tile);
        workgroupBarrier();
        multiply_tiles(col, row);
        workgroupBarrier();
    }
    let oc_per_group = params.c_out / params.groups;
    store_tile(
        q_first,
        group * oc_per_group + oc_tile * TILE_OC,
        (group + 1u) * oc_per_group,
        (group * params.oc_tiles + oc_tile) * (TILE_OC / 4u),
        col,
        row,
    );
}
