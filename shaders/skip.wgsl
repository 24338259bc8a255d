// The skip tensor of a residual add (`finish_sum` in shared.wgsl): put last in the source of
// a pipeline whose RESIDUAL is not none (src/gpu/pipelines.rs, `skip_source!`).
//
// Bindings: 7 in the layouts of the pipelines with a skip (window, tiled and fused alike),
// past the bindings any kernel family uses otherwise.
//   7  skip_data  the output's shape [n, c_out, h_out, w_out], read at the output's index,
//                 in the output's precision (OutElem, widened to f32)

@group(0) @binding(7) var<storage, read> skip_data: array<OutElem>;

fn skip_at(index: u32) -> f32 {
    return f32(skip_data[index]);
}
