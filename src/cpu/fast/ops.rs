//! The ops whole networks need besides convolution, multi-threaded, each writing into a
//! caller's output slice: residual add, concatenation, standalone activation, pooling and
//! channel shuffle. Same semantics as [`crate::cpu::ops`] and the same results bit for bit:
//! add, concatenation, activation, max pooling and shuffle are exact in `f32`, and average
//! pooling sums in `f64` in the reference's order (a few dozen adds per output; not worth
//! the rounding difference of a faster `f32` sum).
//!
//! Inputs are validated by the caller ([`super::CpuNetwork`] checks every shape against the
//! network's when it runs a node); these functions only assume that slices have the lengths
//! of the shapes they are given.

use rayon::prelude::*;

use crate::ops::{shuffle_source_channel, Pool2d, PoolKind};
use crate::spec::{Activation, Shape};

/// Elements per parallel task of the elementwise ops: large enough that the scheduling costs
/// nothing next to the work (64 KiB of output), small enough that 56×56 tensors still split.
const CHUNK: usize = 1 << 14;

/// `out = activation(a + b)`, elementwise.
pub(super) fn add(a: &[f32], b: &[f32], activation: Activation, out: &mut [f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                *o = activation.apply(x + y);
            }
        });
}

/// `out = activation(x)`.
pub(super) fn activation(x: &[f32], activation: Activation, out: &mut [f32]) {
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            for (o, &v) in o.iter_mut().zip(x) {
                *o = activation.apply(v);
            }
        });
}

/// `out = activation([a, b])` along channels, per batch item `a`'s channels then `b`'s;
/// `a` is `[n, ca, h, w]`, `b` is `[n, cb, h, w]`.
pub(super) fn concat(a: &[f32], b: &[f32], n: usize, activation: Activation, out: &mut [f32]) {
    let (block_a, block_b) = (a.len() / n.max(1), b.len() / n.max(1));
    out.par_chunks_mut(block_a + block_b)
        .enumerate()
        .for_each(|(i, o)| {
            let (oa, ob) = o.split_at_mut(block_a);
            for (o, &v) in oa.iter_mut().zip(&a[i * block_a..(i + 1) * block_a]) {
                *o = activation.apply(v);
            }
            for (o, &v) in ob.iter_mut().zip(&b[i * block_b..(i + 1) * block_b]) {
                *o = activation.apply(v);
            }
        });
}

/// ShuffleNet's channel shuffle of `x` (shape `shape`) with `groups` groups into `out`.
pub(super) fn channel_shuffle(x: &[f32], shape: Shape, groups: usize, out: &mut [f32]) {
    let plane = shape.h * shape.w;
    out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| {
        let (n, oc) = (i / shape.c, i % shape.c);
        let ic = shuffle_source_channel(oc, shape.c, groups);
        let start = (n * shape.c + ic) * plane;
        o.copy_from_slice(&x[start..start + plane]);
    });
}

/// Pools `x` (shape `xs`) with `pool` into `out` (shape `ys`, from [`Pool2d::output_shape`]),
/// one output plane per task. Windows are clipped to the image once per row and column, so
/// the inner loops carry no bounds tests.
pub(super) fn pool2d(x: &[f32], xs: Shape, pool: &Pool2d, ys: Shape, out: &mut [f32]) {
    let pads = pool.as_window(xs.c).pads(xs.h, xs.w);
    let [kh, kw] = pool.kernel;
    let [sh, sw] = pool.stride;
    // Rows [lo, hi) of the input that window position `o` covers, clipped to the image.
    let span = |o: usize, s: usize, k: usize, pad: usize, len: usize| {
        let start = (o * s) as isize - pad as isize;
        let lo = start.max(0) as usize;
        let hi = (start + k as isize).clamp(0, len as isize) as usize;
        (lo, hi.max(lo))
    };
    let in_plane = xs.h * xs.w;
    out.par_chunks_mut(ys.h * ys.w)
        .enumerate()
        .for_each(|(plane, o)| {
            let xp = &x[plane * in_plane..(plane + 1) * in_plane];
            for oh in 0..ys.h {
                let (r0, r1) = span(oh, sh, kh, pads.top, xs.h);
                for ow in 0..ys.w {
                    let (c0, c1) = span(ow, sw, kw, pads.left, xs.w);
                    let rows = (r0..r1).map(|r| &xp[r * xs.w + c0..r * xs.w + c1]);
                    o[oh * ys.w + ow] = match pool.kind {
                        PoolKind::Max => rows
                            .flat_map(|row| row.iter())
                            .fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
                        PoolKind::Avg { count_include_pad } => {
                            let sum: f64 =
                                rows.flat_map(|row| row.iter()).map(|&v| f64::from(v)).sum();
                            let count = if count_include_pad {
                                kh * kw
                            } else {
                                (r1 - r0) * (c1 - c0)
                            };
                            (sum / count as f64) as f32
                        }
                    };
                }
            }
        });
}
