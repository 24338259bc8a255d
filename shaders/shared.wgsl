// The functions every kernel shares: the one place for the activation (the epilogue every
// convolution and elementwise op ends in), the padded-tap read (clamp the address, select
// zero), the convolution geometry and the numbering of invocations.
//
// WGSL has no includes: the host prepends this file to every kernel's source
// (src/gpu/pipelines.rs, `wgsl!`), before the kernel family's fragment and the kernel's own
// file. Only the report's ceiling probes go without it.
//
// Bindings: every kernel binds its (first) input at 0, declared here:
//   0  input_data   array<f32> (storage, read): the tensor `padded_read` reads
// It uses the kernel's WORKGROUP_SIZE (a const, or an override the host sets).

@group(0) @binding(0) var<storage, read> input_data: array<f32>;

// The builtins a kernel's entry point takes: `fn main(id: Invocation)`. Kernels with barriers
// take the three one by one instead: WGSL's uniformity analysis counts a struct that holds
// local_invocation_index as non-uniform as a whole, and their barriers must stay in control
// flow that depends on the (uniform) workgroup builtins alone.
struct Invocation {
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) num_wg: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
}

// Workgroups are numbered linearly over a grid the host may spread over x and y (past the
// 65,535 per dimension limit, src/gpu/dispatch.rs).
fn workgroup_index(wg: vec3<u32>, num_wg: vec3<u32>) -> u32 {
    return wg.y * num_wg.x + wg.x;
}

// Invocations likewise, WORKGROUP_SIZE per workgroup.
fn invocation_index(id: Invocation) -> u32 {
    return workgroup_index(id.wg, id.num_wg) * WORKGROUP_SIZE + id.local;
}

// Activation codes: `Activation::code` in src/spec.rs.
const ACTIVATION_RELU: u32 = 1u;
const ACTIVATION_RELU6: u32 = 2u;

// The activation `activation` of x (0: none). Every kernel's epilogue goes through here, so a
// new activation is added here and in the host's code alone.
fn activate(x: f32, activation: u32) -> f32 {
    switch activation {
        case ACTIVATION_RELU: { return max(x, 0.0); }
        case ACTIVATION_RELU6: { return clamp(x, 0.0, 6.0); }
        default: { return x; }
    }
}

// `activate` lane by lane.
fn activate4(x: vec4<f32>, activation: u32) -> vec4<f32> {
    return vec4<f32>(
        activate(x.x, activation),
        activate(x.y, activation),
        activate(x.z, activation),
        activate(x.w, activation),
    );
}

// The convolution's geometry, specialised per pipeline so that the tap arithmetic folds and
// the tap loops unroll. The host sets them for the depthwise, grouped and tiled kernels
// (`geometry` in src/gpu/pipelines.rs; the fused block's are its depthwise half's); the
// others leave them unused.
override K_H: u32 = 1u;
override K_W: u32 = 1u;
override STRIDE_H: u32 = 1u;
override STRIDE_W: u32 = 1u;
override DILATION_H: u32 = 1u;
override DILATION_W: u32 = 1u;

// One input row of a padded plane: the offset of the row (clamped into the plane, so that a
// read is always in bounds), whether the unclamped row lies inside, and the row's width.
struct PaddedRow {
    offset: u32,
    inside: bool,
    width: u32,
}

// Row `row` (negative or past h: in the padding) of the h × w plane at offset `plane`.
fn padded_row(plane: u32, row: i32, h: u32, w: u32) -> PaddedRow {
    return PaddedRow(plane + u32(clamp(row, 0, i32(h) - 1)) * w, row >= 0 && row < i32(h), w);
}

// The input at column `col` of a padded row, 0 in the padding. One path for interior and
// border taps (divergent branches run both sides on SIMD hardware): a clamped, always-valid
// address, zeroed by a select.
fn padded_read(row: PaddedRow, col: i32) -> f32 {
    let w = i32(row.width);
    let v = input_data[row.offset + u32(clamp(col, 0, w - 1))];
    return select(0.0, v, row.inside && col >= 0 && col < w);
}
