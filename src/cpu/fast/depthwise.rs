//! Depthwise convolution as a direct loop nest, one output plane at a time.
//!
//! A depthwise layer does `kh·kw` multiply-adds per output and reads every input once per tap,
//! so it is bound by loads and stores, not by arithmetic, and a GEMM formulation would only add
//! copies. Each output plane `(n, oc)` reads input plane `(n, oc / multiplier)` and its own
//! `kh × kw` filter. Planes are spread over threads; inside a plane the inner loop runs along
//! the output row, so the compiler vectorises it across neighbouring outputs (each output keeps
//! its own sum in the same order, so vectorising changes no result).
//!
//! Three paths, picked per spec:
//! - 3×3, stride 1 (any dilation and padding): all nine taps fused into one pass per output
//!   row over the columns whose taps are all inside the image; rows above or below the image
//!   read a row of zeros; the few border columns take the general per-pixel code.
//! - 3×3, stride 2 (any dilation and padding): the same with stride-2 loads.
//! - anything else: per output row, one pass per tap that adds `w · input row` to the output
//!   row over the columns where that tap is inside the image (an axpy along the row).
//!
//! Sums are taken as `bias + tap₀ + tap₁ + …` in `f32`, tap order row-major, with separate
//! multiply and add (no fused multiply-add), so the results do not depend on the CPU's features.

use crate::spec::Activation;

/// Geometry of one depthwise plane: input `h × w`, output `ho × wo`, kernel, stride, dilation,
/// and the padding on the top and left.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plane {
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    pub pt: usize,
    pub pl: usize,
}

impl Plane {
    /// Range of output positions `o` in `0..out` whose input `o·s + off - pad` lies in
    /// `0..len`, where `off` is the tap's offset (`k·dilation`).
    #[inline(always)]
    pub(super) fn valid_range(
        out: usize,
        len: usize,
        s: usize,
        off: usize,
        pad: usize,
    ) -> (usize, usize) {
        // o·s + off ≥ pad  ⇔  o ≥ ceil((pad - off) / s) when pad > off.
        let lo = if pad > off {
            (pad - off).div_ceil(s)
        } else {
            0
        };
        // o·s + off - pad ≤ len - 1  ⇔  o ≤ (len - 1 + pad - off) / s.
        let hi = if len + pad > off {
            ((len - 1 + pad - off) / s + 1).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// Columns `[lo, hi)` of the output where every tap of a row is inside the image.
    #[inline(always)]
    fn interior_cols(&self) -> (usize, usize) {
        let (lo, _) = Self::valid_range(self.wo, self.w, self.sw, 0, self.pl);
        let (_, hi) = Self::valid_range(self.wo, self.w, self.sw, (self.kw - 1) * self.dw, self.pl);
        if lo < hi {
            (lo, hi)
        } else {
            (0, 0)
        }
    }

    /// Input row of output row `oh`, tap row `ky`, or `None` in the padding.
    #[inline(always)]
    pub(super) fn input_row(&self, oh: usize, ky: usize) -> Option<usize> {
        let r = oh * self.sh + ky * self.dh;
        (r >= self.pt && r - self.pt < self.h).then(|| r - self.pt)
    }
}

/// Computes one output plane `y` (`ho·wo`) from input plane `x` (`h·w`), filter `k`
/// (`kh·kw`), `bias` and `act`. `zeros` holds at least `w` zeros.
#[inline(always)]
pub(super) fn plane(
    p: &Plane,
    x: &[f32],
    k: &[f32],
    bias: f32,
    act: Activation,
    zeros: &[f32],
    y: &mut [f32],
) {
    match (p.kh, p.kw, p.sh, p.sw) {
        (3, 3, 1, 1) => plane_3x3::<1>(p, x, k, bias, zeros, y),
        (3, 3, 2, 2) => plane_3x3::<2>(p, x, k, bias, zeros, y),
        _ => plane_general(p, x, k, bias, y),
    }
    activate(act, y);
}

/// Applies the activation in place.
#[inline(always)]
pub(super) fn activate(act: Activation, y: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::Relu => y.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Relu6 => y.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
    }
}

/// 3×3 with stride `S` in both axes, any dilation and padding.
#[inline(always)]
fn plane_3x3<const S: usize>(
    p: &Plane,
    x: &[f32],
    k: &[f32],
    bias: f32,
    zeros: &[f32],
    y: &mut [f32],
) {
    let (c_lo, c_hi) = p.interior_cols();
    let [w00, w01, w02, w10, w11, w12, w20, w21, w22] =
        [k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]];
    let d = p.dw;
    for (oh, yrow) in y.chunks_exact_mut(p.wo).enumerate() {
        let row = |ky: usize| match p.input_row(oh, ky) {
            Some(r) => &x[r * p.w..(r + 1) * p.w],
            None => &zeros[..p.w],
        };
        let (r0, r1, r2) = (row(0), row(1), row(2));
        if c_hi > c_lo {
            let n = c_hi - c_lo;
            // Input column of output column c_lo, tap 0.
            let base = c_lo * S - p.pl;
            let span = (n - 1) * S + 1;
            let (a0, a1, a2) = (
                &r0[base..base + span],
                &r0[base + d..base + d + span],
                &r0[base + 2 * d..base + 2 * d + span],
            );
            let (b0, b1, b2) = (
                &r1[base..base + span],
                &r1[base + d..base + d + span],
                &r1[base + 2 * d..base + 2 * d + span],
            );
            let (c0, c1, c2) = (
                &r2[base..base + span],
                &r2[base + d..base + d + span],
                &r2[base + 2 * d..base + 2 * d + span],
            );
            for (i, out) in yrow[c_lo..c_hi].iter_mut().enumerate() {
                let j = i * S;
                let mut acc = bias;
                acc += w00 * a0[j];
                acc += w01 * a1[j];
                acc += w02 * a2[j];
                acc += w10 * b0[j];
                acc += w11 * b1[j];
                acc += w12 * b2[j];
                acc += w20 * c0[j];
                acc += w21 * c1[j];
                acc += w22 * c2[j];
                *out = acc;
            }
        }
        for ow in (0..c_lo).chain(c_hi.max(c_lo)..p.wo) {
            yrow[ow] = pixel(p, [r0, r1, r2], k, bias, ow);
        }
    }
}

/// One output pixel of a 3-row kernel from its three input rows (zero rows in the padding),
/// checking columns; same sum order as the fused loop.
#[inline(always)]
fn pixel(p: &Plane, rows: [&[f32]; 3], k: &[f32], bias: f32, ow: usize) -> f32 {
    let mut acc = bias;
    for (ky, r) in rows.iter().enumerate() {
        for kx in 0..3 {
            let c = ow * p.sw + kx * p.dw;
            if c >= p.pl && c - p.pl < p.w {
                acc += k[ky * 3 + kx] * r[c - p.pl];
            }
        }
    }
    acc
}

/// Any kernel, stride, dilation and padding: per output row, one pass per tap over the
/// columns where the tap is inside the image. Taps outside add nothing, so the sum order is
/// the same row-major tap order as the specialised paths.
#[inline(always)]
fn plane_general(p: &Plane, x: &[f32], k: &[f32], bias: f32, y: &mut [f32]) {
    for (oh, yrow) in y.chunks_exact_mut(p.wo).enumerate() {
        yrow.fill(bias);
        for ky in 0..p.kh {
            let Some(r) = p.input_row(oh, ky) else {
                continue;
            };
            let xrow = &x[r * p.w..(r + 1) * p.w];
            for kx in 0..p.kw {
                let wv = k[ky * p.kw + kx];
                let off = kx * p.dw;
                let (lo, hi) = Plane::valid_range(p.wo, p.w, p.sw, off, p.pl);
                if lo >= hi {
                    continue;
                }
                let start = lo * p.sw + off - p.pl;
                if p.sw == 1 {
                    let src = &xrow[start..start + (hi - lo)];
                    for (o, v) in yrow[lo..hi].iter_mut().zip(src) {
                        *o += wv * v;
                    }
                } else {
                    let src = &xrow[start..];
                    for (o, v) in yrow[lo..hi].iter_mut().zip(src.iter().step_by(p.sw)) {
                        *o += wv * v;
                    }
                }
            }
        }
    }
}
