// ShuffleNet's channel shuffle (Zhang et al. 2017, §3.1), NCHW f32 or f16: view the c channels as a
// groups × (c / groups) matrix, transpose, flatten. Output channel oc reads input channel
// (oc % groups) · (c / groups) + oc / groups.
//
// Dispatched by src/gpu/ops/shuffle.rs (`gpu_ops::channel_shuffle`). The host puts shared.wgsl
// (the invocation numbering) before this file.
//
// Bindings (the op layout, `OpPipelines` in src/gpu/ops/mod.rs):
//   0  input_data   [n, c, h, w]  (declared in shared.wgsl)
//   1               (the input again; not declared here)
//   3  output_data  [n, c, h, w]
//   4  params       ShuffleParams (mirrors src/gpu/ops/params.rs field for field)
//
// Thread → output: one invocation per output element, flat NCHW index, grid possibly spread
// over x and y (src/gpu/dispatch.rs), bounds-checked against out_len.

struct ShuffleParams {
    c: u32, groups: u32, plane: u32, out_len: u32,
}

@group(0) @binding(3) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(4) var<uniform> params: ShuffleParams;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    let index = invocation_index(id);
    if index >= params.out_len {
        return;
    }
    let p = index % params.plane;
    let oc = (index / params.plane) % params.c;
    let n = index / (params.plane * params.c);
    let per_group = params.c / params.groups;
    let ic = (oc % params.groups) * per_group + oc / params.groups;
    output_data[index] = OutElem(input_data[(n * params.c + ic) * params.plane + p]);
}
