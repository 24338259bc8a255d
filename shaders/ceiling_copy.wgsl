// Bandwidth-bound probe: measures how fast an adapter's compute shaders move memory (used by
// `examples/report.rs`).
//
// Bindings: 0 storage (read) `src: array<vec4<f32>>`, 1 storage (read_write)
// `dst: array<vec4<f32>>`, both `4 · WORKGROUP_SIZE · workgroups` vec4s long.
// Each invocation copies 4 consecutive vec4s (64 bytes, one mat4x4's worth: on lavapipe wide
// per-invocation copies with large workgroups come closest to the driver's own memcpy).
// Bytes moved = 2 · buffer size (read + write).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

const WORKGROUP_SIZE: u32 = 1024u;

@compute @workgroup_size(1024)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
    let base = 4u * index;
    dst[base] = src[base];
    dst[base + 1u] = src[base + 1u];
    dst[base + 2u] = src[base + 2u];
    dst[base + 3u] = src[base + 3u];
}
