// Pointwise and grouped convolution (groups = 1, i.e. standard convolution, included), NCHW
// (f32 or f16 storage, f32 arithmetic), any kernel, stride, per-side padding and dilation, as
// one tiled implicit matrix product per group with all groups in one dispatch:
// Y[n][g·oc_g + o][p] = act(b + Σ_k W_g[o][k] · B_g[k][p]), k = (ic, kh, kw) over the group's
// c_in / groups input channels and the taps, B_g[k][p] the input under tap k of output pixel p.
//
// Run by `Conv2d` (src/gpu/conv.rs, host code in src/gpu/gemm.rs) when its kernel choice is
// the tiled product (`ConvKernel::TiledGemm`): one dispatch whatever the weights' size (two
// when split, below), with the weights in one storage buffer. (The other kernels,
// pointwise.wgsl and grouped.wgsl, read their weights as a broadcast from 64 KiB uniform
// windows, one dispatch per window.)
//
// The host puts shared.wgsl (geometry, padded reads, activation) and gemm_tile.wgsl before
// this file; gemm_tile.wgsl holds the tiling (TILE_OC = 64 output channels of one
// group × TILE_P = 32 pixels per workgroup, TILE_K = 8 rows k per step, a 4-pixel × 8-channel
// register tile per invocation, tiles of both operands in workgroup memory), the geometry
// overrides and the tap addressing; this file only loads the B tile: per step each invocation
// reads row k of it at 4 consecutive pixels (a workgroup reads 8 runs of 32 consecutive pixels
// of a 1×1 conv: coalesced). Padded taps read a clamped address and are zeroed by a select.
//
// Bindings (src/gpu/pipelines.rs, `Pipelines::tiled_layout`):
//   0  input_data   [n, c_in, h_in, w_in]  (declared in shared.wgsl)
//   1  pw_weights   per group, transposed and zero-padded: [group][k rounded up to TILE_K]
//                   [oc_vec4] vec4s, oc_vec4 = c_out / groups rounded up to TILE_OC, over 4
//                   (src/gpu/gemm.rs)
//   2  pw_bias      [group][oc_vec4] vec4s, zero-padded
//   3  output_data  [n, c_out, h_out, w_out]; a split product's first pass binds the scratch
//                   buffer [slice][n, c_out, h_out, w_out] here, and `reduce_splits` binds it
//                   at 0 and the output here
//   4  params       TileParams, k_channels = (c_in / groups)·K_H·K_W, oc_tiles per group,
//                   k_slices (1: not split)
//
// Workgroup t covers output-channel tile t % oc_tiles of group (t / oc_tiles) % groups,
// pixel tile (t / (oc_tiles · groups)) % pixel_tiles and slice t / (oc_tiles · groups ·
// pixel_tiles) of the rows k.
//
// Split products (split-K): an output too small to fill the device with its tiles (7×7 or
// 14×14 planes against hundreds of channels) has its rows k split into k_slices slices of
// whole steps whose workgroups run side by side. Each slice then writes its partial sums
// (slice 0's with the bias) to its own slot of a scratch buffer bound as output_data, and a
// second dispatch, `reduce_splits`, sums the slots in order and applies the activation into
// the output. The host picks the slices (src/gpu/gemm.rs, `choose_slices`). The scratch is f32
// whatever the tensors' precision (OutElem of the first pass, Elem of the second), so that an
// f16 run's partial sums are rounded once, in the sum.

@group(0) @binding(1) var<storage, read> pw_weights: array<vec4<Elem>>;
@group(0) @binding(2) var<storage, read> pw_bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(4) var<uniform> params: TileParams;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = workgroup_index(wg, num_wg);
    let pixel_tiles = (params.pixels + TILE_P - 1u) / TILE_P;
    let per_slice = params.oc_tiles * params.groups * pixel_tiles;
    let slice = t / per_slice;
    let tile = t % per_slice;
    let oc_tile = tile % params.oc_tiles;
    let group = (tile / params.oc_tiles) % params.groups;
    let q_first = (tile / (params.oc_tiles * params.groups)) * TILE_P;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if slice >= params.k_slices {
        return;
    }
    // This workgroup's rows of the product: slice `slice` of k_slices (all of them when the
    // product is not split), whole steps spread evenly: the first steps % k_slices slices
    // take one step more.
    let steps = (params.k_channels + TILE_K - 1u) / TILE_K;
    let base = steps / params.k_slices;
    let extra = steps % params.k_slices;
    let k_first = (slice * base + min(slice, extra)) * TILE_K;
    let k_end = min(k_first + (base + select(0u, 1u, slice < extra)) * TILE_K, params.k_channels);
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
    for (var k0 = k_first; k0 < k_end; k0 += TILE_K) {
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
        let b = select(vec4<f32>(0.0), x, k0 + row < params.k_channels);
        multiply_step(b, group * k_rows + k0 + row, row, col, oc_tile);
    }
    // Unsplit: the output, finished. Split: the partial sums, into slot `slice` of the scratch
    // buffer bound as output_data, the bias with slice 0's, the activation and the residual
    // add left to reduce_splits.
    var epilogue = Epilogue(0u, true, activation(ACTIVATION, params.alpha, params.beta), true);
    if params.k_slices > 1u {
        let offset = slice * params.pixels * params.c_out;
        epilogue = Epilogue(offset, slice == 0u, NO_ACTIVATION, false);
    }
    let oc_per_group = params.c_out / params.groups;
    store_tile(
        q_first,
        group * oc_per_group + oc_tile * TILE_OC,
        (group + 1u) * oc_per_group,
        (group * params.oc_tiles + oc_tile) * (TILE_OC / 4u),
        col,
        row,
        epilogue,
    );
}

// The second pass of a split product (a second pipeline of this file): each output element is
// the sum of its partial sums, slot by slot in slice order, read from the scratch buffer bound
// as input_data, finished by `finish_sum` (the activation, the residual add). One element per
// invocation, workgroups numbered linearly.
@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_splits(id: Invocation) {
    let len = params.pixels * params.c_out;
    let i = invocation_index(id);
    if i >= len {
        return;
    }
    var sum = f32(input_data[i]);
    for (var s = 1u; s < params.k_slices; s++) {
        sum += f32(input_data[s * len + i]);
    }
    let a = activation(ACTIVATION, params.alpha, params.beta);
    output_data[i] = OutElem(finish_sum(i, sum, a));
}
