// FMA-bound probe: measures an adapter's arithmetic ceiling (used by `examples/report.rs`).
//
// Bindings: 0 uniform `CeilingParams { iters, seed, m, c }`, 1 storage (read_write)
// `out: array<vec4<f32>>`, one vec4 per invocation.
// Each invocation runs 16 independent vec4 fma chains for `iters` iterations, so the chains
// never wait on one another: FLOPs = invocations · iters · 4 (unrolled) · 16 chains · 4 lanes · 2.
// The sum of the chains is stored so that no chain can be optimised away, and the iteration
// count comes from a uniform so that the loop cannot be unrolled away at compile time.

struct CeilingParams {
    iters: u32,
    seed: f32,
    m: f32,
    c: f32,
}

@group(0) @binding(0) var<uniform> params: CeilingParams;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let index = gid.x + gid.y * groups.x * WORKGROUP_SIZE;
    let s = params.seed + f32(index) * 1e-9;
    var a0 = vec4<f32>(s, s + 0.01, s + 0.02, s + 0.03);
    var a1 = a0 + vec4<f32>(0.1);
    var a2 = a0 + vec4<f32>(0.2);
    var a3 = a0 + vec4<f32>(0.3);
    var a4 = a0 + vec4<f32>(0.4);
    var a5 = a0 + vec4<f32>(0.5);
    var a6 = a0 + vec4<f32>(0.6);
    var a7 = a0 + vec4<f32>(0.7);
    var a8 = a0 + vec4<f32>(0.8);
    var a9 = a0 + vec4<f32>(0.9);
    var a10 = a0 + vec4<f32>(1.0);
    var a11 = a0 + vec4<f32>(1.1);
    var a12 = a0 + vec4<f32>(1.2);
    var a13 = a0 + vec4<f32>(1.3);
    var a14 = a0 + vec4<f32>(1.4);
    var a15 = a0 + vec4<f32>(1.5);
    // |m| < 1 keeps every chain bounded; m and c come from the uniform so the compiler cannot
    // fold them.
    let m = vec4<f32>(params.m);
    let c = vec4<f32>(params.c);
    // Unrolled 4×: 64 fmas per loop trip, so the loop's own counter costs nothing.
    for (var i = 0u; i < params.iters; i = i + 1u) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a8 = fma(a8, m, c);
        a9 = fma(a9, m, c);
        a10 = fma(a10, m, c);
        a11 = fma(a11, m, c);
        a12 = fma(a12, m, c);
        a13 = fma(a13, m, c);
        a14 = fma(a14, m, c);
        a15 = fma(a15, m, c);

        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a8 = fma(a8, m, c);
        a9 = fma(a9, m, c);
        a10 = fma(a10, m, c);
        a11 = fma(a11, m, c);
        a12 = fma(a12, m, c);
        a13 = fma(a13, m, c);
        a14 = fma(a14, m, c);
        a15 = fma(a15, m, c);

        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a8 = fma(a8, m, c);
        a9 = fma(a9, m, c);
        a10 = fma(a10, m, c);
        a11 = fma(a11, m, c);
        a12 = fma(a12, m, c);
        a13 = fma(a13, m, c);
        a14 = fma(a14, m, c);
        a15 = fma(a15, m, c);

        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
        a8 = fma(a8, m, c);
        a9 = fma(a9, m, c);
        a10 = fma(a10, m, c);
        a11 = fma(a11, m, c);
        a12 = fma(a12, m, c);
        a13 = fma(a13, m, c);
        a14 = fma(a14, m, c);
        a15 = fma(a15, m, c);
    }
    out[index] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
        + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
}
