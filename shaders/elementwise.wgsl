// Elementwise ops for whole networks, NCHW f32 or f16: residual add, channel concatenation, or an
// activation alone, each followed by the fused activation (any `Activation`, shared.wgsl).
//
// Dispatched by src/gpu/ops/elementwise.rs (`gpu_ops::add`, `concat`, `activation`). The host
// puts shared.wgsl (`activate`, the invocation numbering) before this file.
//
// Bindings (the op layout, `OpPipelines` in src/gpu/ops/mod.rs):
//   0  input_data   a: [n, c_a, h, w]  (declared in shared.wgsl)
//   1  other        b: [n, c_b, h, w]   (add: same shape as a; activation: a again, not read)
//   3  output_data  add, activation: [n, c_a, h, w]; concat: [n, c_a + c_b, h, w]
//   4  params       ElementwiseParams (mirrors src/gpu/ops/params.rs field for field)
//
// Thread → output: one invocation per output element, flat NCHW index, grid possibly spread
// over x and y (src/gpu/dispatch.rs), bounds-checked against out_len.
// mode 0 add:        out[i] = act(a[i] + b[i])
// mode 1 concat:     channel c < c_a reads a[n, c], otherwise b[n, c - c_a]
// mode 2 activation: out[i] = act(a[i])

struct ElementwiseParams {
    mode: u32, activation: u32, out_len: u32, plane: u32,
    c_a: u32, c_b: u32, c_out: u32, pad0: u32,
    alpha: u32, beta: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(1) var<storage, read> other: array<Elem>;
@group(0) @binding(3) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(4) var<uniform> params: ElementwiseParams;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    let index = invocation_index(id);
    if index >= params.out_len {
        return;
    }
    var v: f32;
    switch params.mode {
        case 0u: {
            v = f32(input_data[index]) + f32(other[index]);
        }
        case 1u: {
            let p = index % params.plane;
            let c = (index / params.plane) % params.c_out;
            let n = index / (params.plane * params.c_out);
            if c < params.c_a {
                v = f32(input_data[(n * params.c_a + c) * params.plane + p]);
            } else {
                v = f32(other[(n * params.c_b + (c - params.c_a)) * params.plane + p]);
            }
        }
        default: {
            v = f32(input_data[index]);
        }
    }
    let a = activation(params.activation, params.alpha, params.beta);
    output_data[index] = OutElem(activate(v, a));
}
