// Fused depthwise + pointwise block, NCHW f32 or f16: Y = act_pw(b_pw + W_pw · D), where
// D[c][p] = act_dw(b_dw[c] + Σ_taps w_dw[c][tap] · X[c / multiplier][tap at p]) is computed
// into workgroup memory and never written to a buffer.
//
// Run by `SeparableBlock` (src/gpu/separable.rs, host code in src/gpu/fused.rs) when its
// fusion choice says so: one dispatch for the whole block.
//
// The host puts shared.wgsl (geometry, padded reads, activation) and gemm_tile.wgsl before
// this file: this is gemm_tile's tiled matrix product (TILE_OC = 64 output
// channels × TILE_P = 32 pixels per workgroup, TILE_K = 8 channels per step) whose B tile is
// made on the fly: per step the workgroup's 64 invocations compute the 8 × 32 depthwise values
// of its pixels, 4 each, into workgroup memory. So the depthwise values of a pixel tile are
// computed once per 64 output channels (c_out / 64 times in all): K_H·K_W multiply-adds per
// value against 64 pointwise ones, in exchange for the intermediate tensor's write and reads.
// The depthwise values come from the same shared pieces as depthwise.wgsl's (the geometry
// overrides, `padded_row`/`padded_read` through gemm_tile's `tap`, `activate`); only the
// blocking differs: 4 flattened pixels of one channel here (a quad of the B tile), a 2 × 8
// block sharing one input span there.
//
// Bindings (src/gpu/pipelines.rs, `Pipelines::tiled_layout`):
//   0  input_data   [n, c_in, h_in, w_in]  (declared in shared.wgsl)
//   1  dw_weights   [c_mid, K_H, K_W] (PyTorch's layout for a depthwise conv)
//   2  dw_bias      [c_mid] (zeros when the spec has none)
//   3  pw_weights   transposed and zero-padded: [c_mid rounded up to TILE_K][oc_vec4] vec4s,
//                   oc_vec4 = c_out rounded up to TILE_OC, over 4 (src/gpu/gemm.rs)
//   4  pw_bias      [oc_vec4] vec4s, zero-padded
//   5  output_data  [n, c_out, h_out, w_out]
//   6  params       TileParams, k_channels = c_mid, stride = the pointwise stride, groups = 1

@group(0) @binding(1) var<storage, read> dw_weights: array<Elem>;
@group(0) @binding(2) var<storage, read> dw_bias: array<f32>;
@group(0) @binding(3) var<storage, read> pw_weights: array<vec4<Elem>>;
@group(0) @binding(4) var<storage, read> pw_bias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(6) var<uniform> params: TileParams;

// The depthwise outputs of channel c at flattened block-output pixels q .. q+3: each weight is
// loaded once for the four (0 past the channels, which the zero-padded weights make harmless).
fn depthwise_quad(c: u32, q: u32) -> vec4<f32> {
    if c >= params.k_channels {
        return vec4<f32>(0.0);
    }
    // The pointwise stride (params.stride_*) picks every stride-th depthwise output.
    let first = c / params.multiplier;
    let o0 = origin(q, params.stride_h, params.stride_w, first);
    let o1 = origin(q + 1u, params.stride_h, params.stride_w, first);
    let o2 = origin(q + 2u, params.stride_h, params.stride_w, first);
    let o3 = origin(q + 3u, params.stride_h, params.stride_w, first);
    let taps = c * K_H * K_W;
    var sum = vec4<f32>(dw_bias[c]);
    for (var i = 0u; i < K_H; i++) {
        for (var j = 0u; j < K_W; j++) {
            let w = f32(dw_weights[taps + i * K_W + j]);
            let x = vec4<f32>(
                tap(o0, 0u, i, j),
                tap(o1, 0u, i, j),
                tap(o2, 0u, i, j),
                tap(o3, 0u, i, j),
            );
            sum += w * x;
        }
    }
    return activate4(sum, activation(DW_ACTIVATION, params.dw_alpha, params.dw_beta));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let t = workgroup_index(wg, num_wg);
    let oc_tile = t % params.oc_tiles;
    let q_first = (t / params.oc_tiles) * TILE_P;
    // Uniform across the workgroup, so the barriers below stay in uniform control flow.
    if q_first >= params.pixels {
        return;
    }
    let row = local / 8u;
    let col = local % 8u;
    for (var k0 = 0u; k0 < params.k_channels; k0 += TILE_K) {
        multiply_step(depthwise_quad(k0 + row, q_first + col * 4u), k0 + row, row, col, oc_tile);
    }
    store_tile(
        q_first,
        oc_tile * TILE_OC,
        params.c_out,
        oc_tile * (TILE_OC / 4u),
        col,
        row,
        Epilogue(0u, true, activation(ACTIVATION, params.alpha, params.beta), true),
    );
}
