// Shared by the pointwise and grouped kernels, which compute a register tile of PIXELS pixels
// × OC_TILE = 4·OC_VEC4 output channels per invocation: the host prepends this file (after
// conv_common.wgsl) to each (src/gpu/pipelines.rs, `Shader::source`). It uses the kernel's
// `weights` and `bias` bindings and its OC_VEC4 override.

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
