// Pointwise (1×1, groups = 1, no padding) convolution, NCHW f32 or f16, as a register-blocked
// matrix product: Y[n][oc][p] = act(b[oc] + Σ_ic W[oc][ic] · X[n][ic][p·stride]).
//
// Dispatched by `Conv2d` in src/gpu/conv.rs when `Conv2dSpec::kind()` is `Pointwise`, as one
// or more slices (one dispatch each, all in one compute pass): each slice covers a range of
// output-channel blocks and of input channels whose weights fit one uniform-buffer window.
//
// The host puts shared.wgsl, conv_common.wgsl (ConvParams, the conv bindings, `finish`) and
// channel_tile.wgsl (the register tile, the workgroup's place, the store) before this file.
//
// Bindings (the conv layout, shared with grouped.wgsl; declared by the fragments):
//   0  input_data   [n, c_in, h_in, w_in]
//   1  weights      this slice's window of the weights packed once by the host
//                   (src/gpu/pack.rs): [block in slice][k in slice][OC_TILE] as vec4s,
//                   OC_TILE = 4·OC_VEC4 output channels per block, zero-padded past c_out.
//                   Every invocation of a workgroup reads the same weight at the same time.
//   2  bias         [block][OC_TILE] as vec4s, zero-padded (zeros when the spec has none)
//   3  output_data  [n, c_out, h_out, w_out]
//   4  params       ConvParams (mirrors `ConvParams` in src/gpu/params.rs field for field)
//
// Thread → output (channel_tile.wgsl): per input channel each invocation loads one input
// value per pixel (consecutive pixels across the workgroup: coalesced) and OC_VEC4 weight
// vec4s, each used for every pixel, then does PIXELS · OC_TILE multiply-adds from registers
// (a PIXELS × OC_TILE register tile).
// Slices that split the input channels add their partial sums (slice_flags, see `finish`).

// Input offset of channel k_begin at flattened output pixel q (clamped to the last pixel, so
// that pixels past the end read in bounds).
fn input_at(q: u32) -> u32 {
    let qc = min(q, params.work_items - 1u);
    let plane_out = params.h_out * params.w_out;
    let n = qc / plane_out;
    let p = qc % plane_out;
    return (n * params.c_in + params.k_begin) * params.h_in * params.w_in
        + (p / params.w_out) * params.stride_h * params.w_in + (p % params.w_out) * params.stride_w;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    let place = place_of(id);
    if !place.live {
        return;
    }
    let block = params.slice_first + place.block_in_slice;
    let plane_in = params.h_in * params.w_in;

    // This invocation's pixels (channel_tile.wgsl). Pixels past the end read the last pixel
    // (in bounds) and are not stored.
    let q0 = place.q0;
    var x0 = input_at(q0);
    var x1 = input_at(q0 + WORKGROUP_SIZE);
    var x2 = input_at(q0 + 2u * WORKGROUP_SIZE);
    var x3 = input_at(q0 + 3u * WORKGROUP_SIZE);

    var w = place.block_in_slice * params.k_count * OC_VEC4;
    var a: Sums;
    var b: Sums;
    var c: Sums;
    var d: Sums;
    for (var k = 0u; k < params.k_count; k++) {
        let t = load_weights(w);
        accumulate(&a, t, f32(input_data[x0]));
        if PIXELS > 1u { accumulate(&b, t, f32(input_data[x1])); }
        if PIXELS > 2u {
            accumulate(&c, t, f32(input_data[x2]));
            accumulate(&d, t, f32(input_data[x3]));
        }
        x0 += plane_in;
        x1 += plane_in;
        x2 += plane_in;
        x3 += plane_in;
        w += OC_VEC4;
    }

    store_pixels(a, b, c, d, q0, block * OC_VEC4 * 4u, params.c_out, block * OC_VEC4);
}
