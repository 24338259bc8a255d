// The channel-tile fragment, shared by the pointwise and grouped kernels, which compute a
// register tile of PIXELS pixels × OC_TILE = 4·OC_VEC4 output channels per invocation: the
// tile's types, the workgroup's place, weight and bias loads, the multiply-add, and the store
// of the finished tile. The host puts it after shared.wgsl and conv_common.wgsl and before the
// kernel's file (src/gpu/pipelines.rs, `Shader::source`).
//
// Bindings: those of conv_common.wgsl, and
//   2  bias         [block][OC_TILE] as vec4s, zero-padded (zeros when the spec has none)
//
// Workgroups are numbered linearly (shared.wgsl); workgroup t covers block slice_first +
// t / tiles_x and pixels (t % tiles_x)·WORKGROUP_SIZE·PIXELS onwards of the flattened
// (n, oh, ow) range. Invocation `local` computes pixels q0 + i·WORKGROUP_SIZE for i < PIXELS,
// q0 = that start + local, so that at every step the workgroup reads consecutive pixels.

@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;

// Invocations per workgroup (chosen by the host per adapter: 32, one GPU SIMD group; 16 on CPU
// adapters, where twice the workgroups balance better over the threads).
override WORKGROUP_SIZE: u32 = 32u;
// Output channels per invocation, in vec4s: 1, 2, 4 or 8 (chosen by the host per layer).
override OC_VEC4: u32 = 4u;
// Pixels per invocation: 1, 2 or 4 (chosen by the host per layer).
override PIXELS: u32 = 1u;

// The OC_TILE sums of one pixel, four channels per field (fields past OC_VEC4 stay unused).
struct Sums {
    s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32>,
    s4: vec4<f32>, s5: vec4<f32>, s6: vec4<f32>, s7: vec4<f32>,
}

// OC_TILE values, four per field: the tile's weights for one input channel (pointwise) or
// one tap (grouped), loaded once and used for every pixel; or the tile's bias.
struct Tile {
    w0: vec4<f32>, w1: vec4<f32>, w2: vec4<f32>, w3: vec4<f32>,
    w4: vec4<f32>, w5: vec4<f32>, w6: vec4<f32>, w7: vec4<f32>,
}

fn load_weights(w: u32) -> Tile {
    var t: Tile;
    t.w0 = weights[w];
    if OC_VEC4 > 1u { t.w1 = weights[w + 1u]; }
    if OC_VEC4 > 2u { t.w2 = weights[w + 2u]; t.w3 = weights[w + 3u]; }
    if OC_VEC4 > 4u {
        t.w4 = weights[w + 4u]; t.w5 = weights[w + 5u];
        t.w6 = weights[w + 6u]; t.w7 = weights[w + 7u];
    }
    return t;
}

// The tile's bias, read once per invocation (a storage read is a per-lane loop on some
// drivers): only the slice that starts the sums adds it.
fn load_bias(b: u32) -> Tile {
    var t: Tile;
    if (params.slice_flags & ACCUMULATE) == 0u {
        t.w0 = bias[b];
        if OC_VEC4 > 1u { t.w1 = bias[b + 1u]; }
        if OC_VEC4 > 2u { t.w2 = bias[b + 2u]; t.w3 = bias[b + 3u]; }
        if OC_VEC4 > 4u {
            t.w4 = bias[b + 4u]; t.w5 = bias[b + 5u];
            t.w6 = bias[b + 6u]; t.w7 = bias[b + 7u];
        }
    }
    return t;
}

fn accumulate(sums: ptr<function, Sums>, t: Tile, x: f32) {
    (*sums).s0 += t.w0 * x;
    if OC_VEC4 > 1u { (*sums).s1 += t.w1 * x; }
    if OC_VEC4 > 2u { (*sums).s2 += t.w2 * x; (*sums).s3 += t.w3 * x; }
    if OC_VEC4 > 4u {
        (*sums).s4 += t.w4 * x; (*sums).s5 += t.w5 * x;
        (*sums).s6 += t.w6 * x; (*sums).s7 += t.w7 * x;
    }
}

// Where a workgroup's invocation works: its output-channel block within the slice, and its
// first pixel q0; `live` is false for invocations past the work (they return at once).
struct Place {
    block_in_slice: u32,
    q0: u32,
    live: bool,
}

fn place_of(id: Invocation) -> Place {
    let tile = workgroup_index(id.wg, id.num_wg);
    let block_in_slice = tile / params.tiles_x;
    let q0 = (tile % params.tiles_x) * WORKGROUP_SIZE * PIXELS + id.local;
    return Place(block_in_slice, q0, block_in_slice < params.tiles_y && q0 < params.work_items);
}

// The output offset of flattened output pixel q, channel 0.
fn output_at(q: u32) -> u32 {
    let plane_out = params.h_out * params.w_out;
    return (q / plane_out) * params.c_out * plane_out + q % plane_out;
}

// Finishes 4 output channels from oc on of one pixel (output offset base); channels from
// oc_end on are padding of the last block (of c_out, or of the group) and skipped.
fn store(base: u32, oc: u32, oc_end: u32, plane: u32, acc: vec4<f32>, b: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if oc + j < oc_end {
            finish(base + (oc + j) * plane, acc[j], b[j]);
        }
    }
}

fn store_sums(sums: Sums, base: u32, oc: u32, oc_end: u32, b: Tile) {
    let plane = params.h_out * params.w_out;
    store(base, oc, oc_end, plane, sums.s0, b.w0);
    if OC_VEC4 > 1u { store(base, oc + 4u, oc_end, plane, sums.s1, b.w1); }
    if OC_VEC4 > 2u {
        store(base, oc + 8u, oc_end, plane, sums.s2, b.w2);
        store(base, oc + 12u, oc_end, plane, sums.s3, b.w3);
    }
    if OC_VEC4 > 4u {
        store(base, oc + 16u, oc_end, plane, sums.s4, b.w4);
        store(base, oc + 20u, oc_end, plane, sums.s5, b.w5);
        store(base, oc + 24u, oc_end, plane, sums.s6, b.w6);
        store(base, oc + 28u, oc_end, plane, sums.s7, b.w7);
    }
}

// Stores the invocation's PIXELS pixels (sums a, b, c, d of pixels q0, q0 + WORKGROUP_SIZE,
// …; those past the end are not stored) for the OC_TILE channels from oc on, with the bias of
// vec4 `bias_first` of `bias` on.
fn store_pixels(a: Sums, b: Sums, c: Sums, d: Sums, q0: u32, oc: u32, oc_end: u32, bias_first: u32) {
    let bias_tile = load_bias(bias_first);
    let q1 = q0 + WORKGROUP_SIZE;
    let q2 = q0 + 2u * WORKGROUP_SIZE;
    let q3 = q0 + 3u * WORKGROUP_SIZE;
    store_sums(a, output_at(q0), oc, oc_end, bias_tile);
    if PIXELS > 1u && q1 < params.work_items { store_sums(b, output_at(q1), oc, oc_end, bias_tile); }
    if PIXELS > 2u && q2 < params.work_items { store_sums(c, output_at(q2), oc, oc_end, bias_tile); }
    if PIXELS > 2u && q3 < params.work_items { store_sums(d, output_at(q3), oc, oc_end, bias_tile); }
}
