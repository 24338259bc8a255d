// 2-D pooling, NCHW f32 or f16: max, or average with or without the padded positions in the
// divisor; global average pooling is the window over the whole plane. PyTorch's
// MaxPool2d / AvgPool2d with ceil_mode = false.
//
// Dispatched by src/gpu/ops/pool.rs (`gpu_ops::pool2d`). The host puts shared.wgsl (the
// invocation numbering) before this file.
//
// Bindings (the op layout, `OpPipelines` in src/gpu/ops/mod.rs):
//   0  input_data   [n, c, h_in, w_in]  (declared in shared.wgsl)
//   1               (the input again; not declared here)
//   3  output_data  [n, c, h_out, w_out]
//   4  params       PoolParams (mirrors src/gpu/ops/params.rs field for field)
//
// Thread → output: one invocation per output element, flat NCHW index, grid possibly spread
// over x and y (src/gpu/dispatch.rs). Window of output (oh, ow): input rows
// oh·stride_h - pad_top + [0, k_h), columns likewise; positions outside the image are padding.
// The host guarantees every window holds at least one image pixel.
// mode 0 max (padding never wins), 1 average over k_h·k_w (count_include_pad; with
// ceil_mode = false a window never reaches past the padded input), 2 average over the image
// pixels in the window.

struct PoolParams {
    n: u32, c: u32, h_in: u32, w_in: u32,
    h_out: u32, w_out: u32, k_h: u32, k_w: u32,
    stride_h: u32, stride_w: u32, pad_top: u32, pad_left: u32,
    mode: u32, out_len: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(3) var<storage, read_write> output_data: array<OutElem>;
@group(0) @binding(4) var<uniform> params: PoolParams;

const WORKGROUP_SIZE: u32 = 64u;
// The lowest finite f32: the starting point of a max that only sees finite inputs. Written
// exactly: Chromium's WGSL compiler (Tint) rejects the usual 9-digit -3.40282347e38, which
// lies just past it.
const LOWEST: f32 = -3.40282346638528859811704183484516925440e38;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(id: Invocation) {
    let index = invocation_index(id);
    if index >= params.out_len {
        return;
    }
    let ow = index % params.w_out;
    let oh = (index / params.w_out) % params.h_out;
    let nc = index / (params.w_out * params.h_out);
    let base = nc * params.h_in * params.w_in;
    let ih0 = i32(oh * params.stride_h) - i32(params.pad_top);
    let iw0 = i32(ow * params.stride_w) - i32(params.pad_left);

    var maximum = LOWEST;
    var sum = 0.0;
    var count = 0u;
    for (var ky = 0u; ky < params.k_h; ky++) {
        let ih = ih0 + i32(ky);
        if ih < 0 || ih >= i32(params.h_in) {
            continue;
        }
        let row = base + u32(ih) * params.w_in;
        for (var kx = 0u; kx < params.k_w; kx++) {
            let iw = iw0 + i32(kx);
            if iw < 0 || iw >= i32(params.w_in) {
                continue;
            }
            let v = f32(input_data[row + u32(iw)]);
            maximum = max(maximum, v);
            sum += v;
            count += 1u;
        }
    }
    var result: f32;
    switch params.mode {
        case 0u: { result = maximum; }
        case 1u: { result = sum / f32(params.k_h * params.k_w); }
        default: { result = sum / f32(count); }
    }
    output_data[index] = OutElem(result);
}
