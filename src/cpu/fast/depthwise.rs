//! Depthwise convolution as a direct loop nest, one output plane at a time.
//!
//! A depthwise layer does only `kh·kw` multiply-adds per output and reads every input once per
//! tap, so it is bound by loads, stores and loop overhead, not by arithmetic; a matrix-product
//! formulation would only add copies. Each output plane `(n, oc)` reads input plane
//! `(n, oc / multiplier)` and its own `kh × kw` filter; planes are spread over threads.
//!
//! Inside a plane, one scheme covers every kernel, stride, dilation and padding without a
//! single branch in the inner loop:
//!
//! 1. **Phase planes.** The zero-padded input `P` is split by stride phase:
//!    `Q[rp][cp][r][j] = P[r·sh + rp][j·sw + cp]` (one plane for stride 1, four for stride 2).
//!    Padding becomes stored zeros, and every tap `(ky, kx)` turns into a contiguous shifted
//!    view of one phase plane: output `(oh, ow)` reads `Q[ky·dh % sh][kx·dw % sw]` at
//!    `(oh + ky·dh / sh, ow + kx·dw / sw)`. Building the phases is one pass over the input.
//! 2. **Flattened rows.** With phase rows of width `wq ≥ wo + shift`, output `(oh, ow)` sits
//!    at `oh·wq + ow` of a flat buffer and each tap is a constant offset, so one long loop runs
//!    over whole planes at once (a 7×7 plane is one 62-element loop rather than seven loops of
//!    7), and the compiler vectorises it across outputs. The `wq - wo` extra columns per row are
//!    computed and dropped when the rows are copied out (with the activation).
//! 3. **Taps.** 3×3 kernels sum their nine taps in one pass (nine loads, one store per
//!    output); other kernels add one tap at a time over blocks of the flat buffer that stay in
//!    L1.
//!
//! Large planes are cut into bands of output rows so that the scratch memory stays within
//! [`BAND_FLOATS`] whatever the image size.
//!
//! Sums are taken as `bias + tap₀ + tap₁ + …` in `f32`, taps in row-major order, with separate
//! multiply and add (no fused multiply-add, which costs the same throughput on current x86 cores
//! that have separate add pipes): results do not depend on the CPU's features, and taps in the
//! padding add exact zeros, so on data whose sums are exact the result equals the reference.

use crate::spec::Activation;

/// Scratch budget of one band (phase planes plus flat output), in `f32`s: 128 KiB.
pub(super) const BAND_FLOATS: usize = 1 << 15;

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

    /// Input row of output row `oh`, tap row `ky`, or `None` in the padding.
    #[inline(always)]
    pub(super) fn input_row(&self, oh: usize, ky: usize) -> Option<usize> {
        let r = oh * self.sh + ky * self.dh;
        (r >= self.pt && r - self.pt < self.h).then(|| r - self.pt)
    }
}

/// The plan for one layer's planes: phase-plane sizes, per-tap offsets, and the band height.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    p: Plane,
    /// Phase-plane row length, `wo + (kw-1)·dw / sw`.
    wq: usize,
    /// Extra phase rows a band needs below its last output row, `(kh-1)·dh / sh`.
    halo: usize,
    /// Output rows per band.
    band: usize,
    /// Per tap (row-major): phase index `rp·sw + cp` and row/column shift in the phase plane.
    taps: Vec<(usize, usize, usize)>,
}

impl Plan {
    pub(super) fn new(p: Plane) -> Self {
        let wq = p.wo + (p.kw - 1) * p.dw / p.sw;
        let halo = (p.kh - 1) * p.dh / p.sh;
        let mut taps = Vec::with_capacity(p.kh * p.kw);
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let (ry, rx) = (ky * p.dh, kx * p.dw);
                taps.push(((ry % p.sh) * p.sw + rx % p.sw, ry / p.sh, rx / p.sw));
            }
        }
        // Scratch per band of b output rows: phases sh·sw·(b + halo)·wq, output b·wq.
        let phases = p.sh * p.sw;
        let per_row = (phases + 1) * wq;
        let band = (BAND_FLOATS / per_row).saturating_sub(halo).clamp(1, p.ho);
        Self {
            p,
            wq,
            halo,
            band,
            taps,
        }
    }

    /// Scratch `f32`s one plane needs: the phase planes (each with [`LANES`] floats of slack,
    /// so the last block of 8 outputs can read past the end) and the flat output.
    pub(super) fn scratch_len(&self) -> usize {
        let phases = self.p.sh * self.p.sw;
        phases * self.phase_len(self.band) + self.band * self.wq + LANES
    }

    /// Length of one phase plane for a band of `rows` output rows, slack included.
    #[inline(always)]
    fn phase_len(&self, rows: usize) -> usize {
        (rows + self.halo) * self.wq + LANES
    }

    /// Whether a whole plane is one band: then the padding sits at the same places of the
    /// scratch for every plane, and zeros written once stay.
    #[inline(always)]
    fn single_band(&self) -> bool {
        self.band >= self.p.ho
    }
}

/// Outputs computed per step of the tap loops (one AVX2 vector, two SSE vectors).
const LANES: usize = 8;

/// One plane's work, run through [`pulp::Arch::dispatch`] so that the loops below are compiled
/// once per instruction set (AVX2+FMA, and the x86-64 baseline) and the best one the CPU has
/// is picked at run time. Everything it calls is `#[inline(always)]` so it inherits the target features.
pub(super) struct PlaneJob<'a> {
    pub plan: &'a Plan,
    pub x: &'a [f32],
    pub k: &'a [f32],
    pub bias: f32,
    pub act: Activation,
    pub scratch: &'a mut [f32],
    pub y: &'a mut [f32],
}

impl pulp::WithSimd for PlaneJob<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        plane(
            self.plan,
            self.x,
            self.k,
            self.bias,
            self.act,
            self.scratch,
            self.y,
        );
    }
}

/// Computes one output plane `y` (`ho·wo`) from input plane `x` (`h·w`), filter `k`
/// (`kh·kw`), `bias` and `act`, using `scratch` (at least [`Plan::scratch_len`], all zeros on
/// the first call, then left as this function leaves it).
#[inline(always)]
pub(super) fn plane(
    plan: &Plan,
    x: &[f32],
    k: &[f32],
    bias: f32,
    act: Activation,
    scratch: &mut [f32],
    y: &mut [f32],
) {
    let p = &plan.p;
    let wq = plan.wq;
    let phases = p.sh * p.sw;
    let fill = !plan.single_band();
    let mut oh0 = 0;
    while oh0 < p.ho {
        let rows = plan.band.min(p.ho - oh0);
        let phase_len = plan.phase_len(rows);
        let (q, rest) = scratch.split_at_mut(phases * phase_len);
        build_phases(plan, x, oh0, rows, phase_len, fill, q);
        // Flat output: row r of the band at r·wq; the last row needs only wo entries. Whole
        // blocks of LANES are computed (the slack absorbs the overrun) and the extra dropped.
        let len = (rows - 1) * wq + p.wo;
        let out = &mut rest[..len.next_multiple_of(LANES)];
        if plan.taps.len() == 9 {
            taps9(plan, q, phase_len, k, bias, out);
        } else {
            taps_any(plan, q, phase_len, k, bias, out);
        }
        let dst = &mut y[oh0 * p.wo..(oh0 + rows) * p.wo];
        for (d, s) in dst.chunks_exact_mut(p.wo).zip(out.chunks(wq)) {
            copy_activate(act, &s[..p.wo], d);
        }
        oh0 += rows;
    }
}

/// Fills the phase planes for output rows `oh0..oh0 + rows`: phase `(rp, cp)` (at
/// `(rp·sw + cp)·phase_len`) row `r`, column `j` is the padded input at row
/// `(oh0 + r)·sh + rp`, column `j·sw + cp`. Padding is written only when `fill` is set;
/// otherwise the zeros from an earlier plane of the same geometry are still in place.
#[inline(always)]
fn build_phases(
    plan: &Plan,
    x: &[f32],
    oh0: usize,
    rows: usize,
    phase_len: usize,
    fill: bool,
    q: &mut [f32],
) {
    let p = &plan.p;
    let wq = plan.wq;
    let hq = rows + plan.halo;
    for rp in 0..p.sh {
        for cp in 0..p.sw {
            let base = (rp * p.sw + cp) * phase_len;
            let plane = &mut q[base..base + hq * wq];
            // Columns j whose input column j·sw + cp - pl lies inside the image.
            let (lo, hi) = Plane::valid_range(wq, p.w, p.sw, cp, p.pl);
            for (r, row) in plane.chunks_exact_mut(wq).enumerate() {
                let pr = (oh0 + r) * p.sh + rp;
                if pr < p.pt || pr - p.pt >= p.h || lo >= hi {
                    if fill {
                        row.fill(0.0);
                    }
                    continue;
                }
                let xr = &x[(pr - p.pt) * p.w..(pr - p.pt + 1) * p.w];
                if fill {
                    row[..lo].fill(0.0);
                    row[hi..].fill(0.0);
                }
                let start = lo * p.sw + cp - p.pl;
                let dst = &mut row[lo..hi];
                let src = &xr[start..];
                match p.sw {
                    1 => dst.copy_from_slice(&src[..hi - lo]),
                    2 => strided::<2>(dst, src),
                    3 => strided::<3>(dst, src),
                    s => strided_any(dst, src, s),
                }
            }
        }
    }
}

/// `dst[j] = src[j·S]`; `src` holds at least `(dst.len() - 1)·S + 1` values. Whole chunks of
/// `S` go through `chunks_exact`, which the compiler turns into vector shuffles.
#[inline(always)]
fn strided<const S: usize>(dst: &mut [f32], src: &[f32]) {
    let whole = dst.len().min(src.len() / S);
    let (head, tail) = dst.split_at_mut(whole);
    for (d, c) in head.iter_mut().zip(src.chunks_exact(S)) {
        *d = c[0];
    }
    for (j, d) in tail.iter_mut().enumerate() {
        *d = src[(whole + j) * S];
    }
}

/// `dst[j] = src[j·s]` for any stride.
#[inline(always)]
fn strided_any(dst: &mut [f32], src: &[f32], s: usize) {
    for (j, d) in dst.iter_mut().enumerate() {
        *d = src[j * s];
    }
}

/// The view of tap `t` over the flat output: `len` values of its phase plane from its shift.
#[inline(always)]
fn tap_view<'a>(plan: &Plan, q: &'a [f32], phase_len: usize, t: usize, len: usize) -> &'a [f32] {
    let (phase, dy, dx) = plan.taps[t];
    let start = phase * phase_len + dy * plan.wq + dx;
    &q[start..start + len]
}

/// Nine taps fused: one pass, nine loads and one store per output, [`LANES`] outputs per
/// step held in a fixed-size array (one vector register).
#[inline(always)]
fn taps9(plan: &Plan, q: &[f32], phase_len: usize, k: &[f32], bias: f32, out: &mut [f32]) {
    let n = out.len();
    let v = |t| tap_view(plan, q, phase_len, t, n);
    let views = [v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7), v(8)];
    let w: [f32; 9] = [k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8]];
    for (b, o) in out.chunks_exact_mut(LANES).enumerate() {
        let i = b * LANES;
        let mut acc = [bias; LANES];
        for (view, &wt) in views.iter().zip(&w) {
            let src = &view[i..i + LANES];
            for l in 0..LANES {
                acc[l] += wt * src[l];
            }
        }
        o.copy_from_slice(&acc);
    }
}

/// Any number of taps: per block of the flat output (small enough for L1), the bias, then one
/// multiply-add pass per tap.
#[inline(always)]
fn taps_any(plan: &Plan, q: &[f32], phase_len: usize, k: &[f32], bias: f32, out: &mut [f32]) {
    const BLOCK: usize = 512;
    let mut i0 = 0;
    for block in out.chunks_mut(BLOCK) {
        let n = block.len();
        block.fill(bias);
        for (t, &kv) in k.iter().enumerate().take(plan.taps.len()) {
            let src = &tap_view(plan, q, phase_len, t, i0 + n)[i0..];
            for (o, s) in block.iter_mut().zip(src) {
                *o += kv * s;
            }
        }
        i0 += n;
    }
}

/// Copies `src` into `dst` through the activation (`Activation::apply`; the common kinds get
/// a loop of their own, with the match folded away).
#[inline(always)]
fn copy_activate(act: Activation, src: &[f32], dst: &mut [f32]) {
    #[inline(always)]
    fn map(dst: &mut [f32], src: &[f32], f: impl Fn(f32) -> f32) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d = f(*s));
    }
    match act {
        Activation::None => dst.copy_from_slice(src),
        Activation::Relu => map(dst, src, |x| Activation::Relu.apply(x)),
        Activation::Relu6 => map(dst, src, |x| Activation::Relu6.apply(x)),
        act => map(dst, src, |x| act.apply(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Geometry of a `h × w` plane, square kernel `k`, stride `s`, dilation `d`, padding `pad`.
    fn geometry(h: usize, w: usize, k: usize, s: usize, d: usize, pad: usize) -> Plane {
        let out = |n: usize| (n + 2 * pad - d * (k - 1) - 1) / s + 1;
        Plane {
            h,
            w,
            ho: out(h),
            wo: out(w),
            kh: k,
            kw: k,
            sh: s,
            sw: s,
            dh: d,
            dw: d,
            pt: pad,
            pl: pad,
        }
    }

    #[test]
    fn large_planes_are_cut_into_bands_within_the_budget() {
        // The geometries of the *_bands cases in tests/cpu_fast.rs: they must really take
        // several bands, or those cases test nothing beyond the single-band path.
        for (h, w, k, s, d, pad) in [
            (120, 300, 3, 1, 1, 1),
            (131, 301, 3, 2, 1, 1),
            (97, 260, 5, 1, 2, 3),
        ] {
            let plan = Plan::new(geometry(h, w, k, s, d, pad));
            assert!(plan.band < plan.p.ho, "{h}x{w}: one band of {}", plan.band);
            assert!(!plan.single_band());
            let phases = s * s;
            assert!(plan.scratch_len() <= BAND_FLOATS + (phases + 1) * LANES);
        }
        // Benchmark-sized planes fit in one band, which lets padding be written once.
        assert!(Plan::new(geometry(112, 112, 3, 1, 1, 1)).single_band());
        assert!(Plan::new(geometry(14, 14, 3, 2, 1, 1)).single_band());
    }

    #[test]
    fn taps_map_to_phase_and_shift() {
        // Stride 2, dilation 1, 3×3: taps (ky, kx) read phase (ky % 2, kx % 2), shifted by
        // (ky / 2, kx / 2).
        let plan = Plan::new(geometry(9, 9, 3, 2, 1, 1));
        assert_eq!(plan.taps[0], (0, 0, 0));
        assert_eq!(plan.taps[1], (1, 0, 0));
        assert_eq!(plan.taps[2], (0, 0, 1));
        assert_eq!(plan.taps[4], (3, 0, 0));
        assert_eq!(plan.taps[8], (0, 1, 1));
    }
}
