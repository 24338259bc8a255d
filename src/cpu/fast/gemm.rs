//! The matrix-product paths of the fast CPU path (see the parent module's docs): pointwise
//! straight on the NCHW data, and grouped / standard convolution through an im2col matrix
//! built per block of output pixels (flat input rows for stride 1), with bias and activation
//! applied to each block while it is in cache.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::{depthwise, Geometry, SCRATCH_FLOATS, WHOLE_PRODUCT_MAX_PIXELS};
use crate::spec::Activation;

/// One block of output: image `n`, group `g`, output channels `[m0, m0 + rows)` of the group,
/// pixels `[p0, p0 + cols)`, as a view into the output tensor.
pub(super) struct Block<'a> {
    n: usize,
    g: usize,
    m0: usize,
    p0: usize,
    c: MatMut<'a, f32>,
}

/// Cuts the output into blocks. Per image and group the output is a row-major
/// `[c_out/g × pixels]` matrix; each is cut into `row_parts × col_parts` blocks, with column
/// blocks of at most `max_cols` pixels.
pub(super) fn blocks<'a>(
    geo: &Geometry,
    out: &'a mut [f32],
    row_parts: usize,
    col_width: usize,
) -> Vec<Block<'a>> {
    let pixels = geo.y.h * geo.y.w;
    let rows = geo.cout_g;
    let row_step = rows.div_ceil(row_parts.max(1));
    let col_step = col_width.clamp(1, pixels);
    let mut list = Vec::new();
    for (chunk, data) in out.chunks_exact_mut(rows * pixels).enumerate() {
        let (n, g) = (chunk / geo.groups, chunk % geo.groups);
        let mut rest_rows = MatMut::from_row_major_slice_mut(data, rows, pixels);
        let mut m0 = 0;
        while m0 < rows {
            let take = row_step.min(rows - m0);
            let (top, bottom) = rest_rows.split_at_row_mut(take);
            rest_rows = bottom;
            let mut rest_cols = top;
            let mut p0 = 0;
            while p0 < pixels {
                let width = col_step.min(pixels - p0);
                let (left, right) = rest_cols.split_at_col_mut(width);
                rest_cols = right;
                list.push(Block {
                    n,
                    g,
                    m0,
                    p0,
                    c: left,
                });
                p0 += width;
            }
            m0 += take;
        }
    }
    list
}

/// Bias and activation on one finished block.
pub(super) fn epilogue(geo: &Geometry, block: &mut Block<'_>, bias: Option<&[f32]>) {
    let oc0 = block.g * geo.cout_g + block.m0;
    let act = geo.act;
    if bias.is_none() && act == Activation::None {
        return;
    }
    let rows = block.c.nrows();
    for i in 0..rows {
        let b = bias.map_or(0.0, |b| b[oc0 + i]);
        let row = block.c.as_mut().row_mut(i);
        match row.try_as_row_major_mut() {
            Some(row) => {
                let row = row.as_slice_mut();
                // `Activation::apply` holds the arithmetic; the arms only give the common
                // kinds a loop of their own, with the match folded away.
                match act {
                    Activation::None => row.iter_mut().for_each(|v| *v += b),
                    Activation::Relu => row
                        .iter_mut()
                        .for_each(|v| *v = Activation::Relu.apply(*v + b)),
                    Activation::Relu6 => row
                        .iter_mut()
                        .for_each(|v| *v = Activation::Relu6.apply(*v + b)),
                    act => row.iter_mut().for_each(|v| *v = act.apply(*v + b)),
                }
            }
            None => {
                // Not reached: output rows are contiguous. Kept for safety, element by element.
                let mut row = block.c.as_mut().row_mut(i);
                for j in 0..row.ncols() {
                    let v = &mut row[j];
                    *v = act.apply(*v + b);
                }
            }
        }
    }
}

/// How many threads the pool has, and how many blocks to aim for.
pub(super) fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

pub(super) fn run_direct_gemm(
    geo: &Geometry,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let pixels = geo.y.h * geo.y.w;
    let units = geo.x.n * geo.groups;
    let t = threads();
    // Aim for two blocks per thread; cut pixels first (blocks of at least 64), then channels.
    let want = 2 * t;
    let col_parts = want.div_ceil(units).min(pixels.div_ceil(64)).max(1);
    let row_parts = (want.div_ceil(units * col_parts))
        .min(geo.cout_g.div_ceil(16))
        .max(1);
    let col_width = pixels.div_ceil(col_parts);
    // Short pixel rows (14×14 and smaller): one product per image and group, and let faer
    // split it over the threads when there are fewer products than threads; it shares the
    // packed operands, which our own cutting would pack twice (measured: mbv1_pw7 0.96 →
    // 0.75 ms, mbv1_pw6 0.54 → 0.43 ms; larger images are better cut by us).
    let (row_parts, col_width) = if pixels <= WHOLE_PRODUCT_MAX_PIXELS {
        (1, pixels)
    } else {
        (row_parts, col_width)
    };
    let list = blocks(geo, out, row_parts, col_width);
    let par = if list.len() < t {
        Par::rayon(t)
    } else {
        Par::Seq
    };
    let k = geo.k;
    list.into_par_iter().for_each(|mut block| {
        let cols = block.c.ncols();
        let rows = block.c.nrows();
        let a_off = (block.g * geo.cout_g + block.m0) * k;
        let a = MatRef::from_row_major_slice(&weights[a_off..a_off + rows * k], rows, k);
        let x_off = (block.n * geo.x.c + block.g * geo.cin_g) * pixels + block.p0;
        let b = MatRef::from_row_major_slice_with_stride(
            &x[x_off..x_off + (k - 1) * pixels + cols],
            k,
            cols,
            pixels,
        );
        matmul(block.c.as_mut(), Accum::Replace, a, b, 1.0, par);
        epilogue(geo, &mut block, bias);
    });
}

pub(super) fn run_im2col_gemm(
    geo: &Geometry,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let pixels = geo.y.h * geo.y.w;
    let units = geo.x.n * geo.groups;
    let t = threads();
    let k = geo.k;
    let max_cols = (SCRATCH_FLOATS / k).max(16);
    let want = 2 * t;
    let col_parts = want
        .div_ceil(units)
        .min(pixels.div_ceil(64))
        .max(pixels.div_ceil(max_cols))
        .max(1);
    let col_width = pixels.div_ceil(col_parts);
    let list = blocks(geo, out, 1, col_width);
    let par = if list.len() < t {
        Par::rayon(t)
    } else {
        Par::Seq
    };
    let rows = geo.cout_g;
    list.into_par_iter().for_each(|mut block| {
        let cols = block.c.ncols();
        with_scratch(k * cols, |scratch| {
            im2col(geo, x, block.n, block.g, block.p0, cols, scratch);
            let a_off = block.g * rows * k;
            let a = MatRef::from_row_major_slice(&weights[a_off..a_off + rows * k], rows, k);
            let b = MatRef::from_row_major_slice(scratch, k, cols);
            matmul(block.c.as_mut(), Accum::Replace, a, b, 1.0, par);
        });
        epilogue(geo, &mut block, bias);
    });
}

/// Sizes of the flat-rows product ([`run_flat_gemm`]) for a stride-1 layer. Input planes are
/// zero-padded to rows of `wp = wo + (kw-1)·dw` and laid out flat, so that output `(oh, ow)`
/// sits at column `oh·wp + ow` and every im2col row `(ic, ky, kx)` is one contiguous run of the
/// padded plane, from `ky·dh·wp + kx·dw`. Output rows are taken `band` at a time, so that the
/// im2col matrix of a band (`k × band·wp`) stays within [`SCRATCH_FLOATS`] where it can.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlatRows {
    wp: usize,
    /// Output rows per band.
    band: usize,
}

impl FlatRows {
    fn new(geo: &Geometry) -> Self {
        let p = &geo.plane;
        let wp = p.wo + (p.kw - 1) * p.dw;
        let max_band = (SCRATCH_FLOATS / (geo.k * wp).max(1)).clamp(1, p.ho);
        // At least two blocks per thread where the rows allow, and bands of equal height.
        let units = geo.x.n * geo.groups;
        let bands =
            p.ho.div_ceil(max_band)
                .max((2 * threads()).div_ceil(units))
                .min(p.ho);
        Self {
            wp,
            band: p.ho.div_ceil(bands),
        }
    }

    /// Rows of one band's padded plane for `rows` output rows: the rows they read, plus one
    /// zero row that the last runs read into (at most `(kw-1)·dw` values past the last full
    /// row).
    fn padded_rows(&self, geo: &Geometry, rows: usize) -> usize {
        rows + (geo.plane.kh - 1) * geo.plane.dh + 1
    }

    /// Stride 1, and one output row's im2col matrix within [`SCRATCH_FLOATS`]. The general
    /// im2col ([`im2col`]) copies one short segment per output row, tap and channel; on small
    /// planes those copies cost more than the product (56 % of resnext50_c5's time).
    pub(super) fn fits(geo: &Geometry) -> bool {
        let p = &geo.plane;
        p.sh == 1 && p.sw == 1 && geo.k * Self::new(geo).wp <= SCRATCH_FLOATS
    }
}

/// Stride-1 grouped and standard layers: per image, group and band of output rows, the
/// band's padded planes, the im2col matrix as one contiguous copy per row ([`FlatRows`]), one
/// product into a `[c_out/g × band·wp]` scratch, then the valid columns copied out through
/// bias and activation. Computes `(wp - wo) / wp` more columns than needed (2/9 on 7×7, 3×3;
/// 2/58 on 56×56) to save the copies.
pub(super) fn run_flat_gemm(
    geo: &Geometry,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let p = geo.plane;
    let f = FlatRows::new(geo);
    let (k, rows, cin_g) = (geo.k, geo.cout_g, geo.cin_g);
    let in_plane = p.h * p.w;
    let list = blocks(geo, out, 1, f.band * p.wo);
    let t = threads();
    let par = if list.len() < t {
        Par::rayon(t)
    } else {
        Par::Seq
    };
    let act = geo.act;
    list.into_par_iter().for_each(|mut block| {
        let oh0 = block.p0 / p.wo;
        let bh = block.c.ncols() / p.wo;
        let hb = f.padded_rows(geo, bh);
        let len = bh * f.wp;
        let padded = hb * f.wp;
        with_scratch(cin_g * padded + k * len + rows * len, |scratch| {
            let (planes, rest) = scratch.split_at_mut(cin_g * padded);
            let (col, c) = rest.split_at_mut(k * len);
            // The band's padded planes: row r is input row oh0 + r - pt.
            for (icg, plane) in planes.chunks_exact_mut(padded).enumerate() {
                let ic = block.g * cin_g + icg;
                let xs = &x[(block.n * geo.x.c + ic) * in_plane..][..in_plane];
                for (r, row) in plane.chunks_exact_mut(f.wp).enumerate() {
                    match (oh0 + r).checked_sub(p.pt).filter(|&ir| ir < p.h) {
                        None => row.fill(0.0),
                        Some(ir) => {
                            // Input columns land at [pl, pl + w), clipped to the row.
                            let lo = p.pl.min(f.wp);
                            let hi = (p.pl + p.w).min(f.wp);
                            row[..lo].fill(0.0);
                            row[hi..].fill(0.0);
                            copy_short(&mut row[lo..hi], &xs[ir * p.w..ir * p.w + hi - lo]);
                        }
                    }
                }
            }
            // The im2col matrix: row (ic, ky, kx) is one run of the padded plane.
            let mut dst_rows = col.chunks_exact_mut(len);
            for plane in planes.chunks_exact(padded) {
                for ky in 0..p.kh {
                    for kx in 0..p.kw {
                        let start = ky * p.dh * f.wp + kx * p.dw;
                        if let Some(dst) = dst_rows.next() {
                            copy_short(dst, &plane[start..start + len]);
                        }
                    }
                }
            }
            let a_off = block.g * rows * k;
            let a = MatRef::from_row_major_slice(&weights[a_off..a_off + rows * k], rows, k);
            let b = MatRef::from_row_major_slice(col, k, len);
            let cm = MatMut::from_row_major_slice_mut(c, rows, len);
            matmul(cm, Accum::Replace, a, b, 1.0, par);
            // The valid columns, through bias and activation.
            for (i, src) in c.chunks_exact(len).enumerate() {
                let bv = bias.map_or(0.0, |b| b[block.g * rows + i]);
                let row = block.c.as_mut().row_mut(i);
                // Output rows are contiguous (`blocks` cuts a row-major matrix by columns).
                if let Some(row) = row.try_as_row_major_mut() {
                    let row = row.as_slice_mut();
                    for (d, s) in row.chunks_exact_mut(p.wo).zip(src.chunks_exact(f.wp)) {
                        for (d, &v) in d.iter_mut().zip(&s[..p.wo]) {
                            *d = act.apply(v + bv);
                        }
                    }
                }
            }
        });
    });
}

/// Runs `f` on `len` floats of this thread's scratch buffer (contents unspecified), kept from
/// call to call. A fresh buffer per call was measured to cost more than the layer on some
/// runs: blocks of a few hundred KiB come from `mmap`, so every call paid page faults and an
/// `munmap`, depending on the allocator's history (alexnet_conv4 2.2 ms or 20–37 ms from the
/// same code). A nested call on the same thread (rayon runs other blocks inside a parallel
/// product) finds the buffer taken and allocates its own.
pub(super) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut buf = SCRATCH.take();
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let r = f(&mut buf[..len]);
    SCRATCH.set(buf);
    r
}

/// Fills `col` (`[c_in/g·kh·kw × cols]`, row-major) with the inputs of output pixels
/// `[p0, p0 + cols)` of image `n`, group `g`: row `(ic, ky, kx)`, column `p` holds
/// `x[n, g·c_in/g + ic, oh·sh + ky·dh - pt, ow·sw + kx·dw - pl]` (zero in the padding).
pub(super) fn im2col(
    geo: &Geometry,
    x: &[f32],
    n: usize,
    g: usize,
    p0: usize,
    cols: usize,
    col: &mut [f32],
) {
    let p = &geo.plane;
    let in_plane = p.h * p.w;
    let mut row = 0;
    for icg in 0..geo.cin_g {
        let ic = g * geo.cin_g + icg;
        let xs = &x[(n * geo.x.c + ic) * in_plane..][..in_plane];
        for ky in 0..p.kh {
            for kx in 0..p.kw {
                let dst = &mut col[row * cols..(row + 1) * cols];
                row += 1;
                let off = kx * p.dw;
                let (lo, hi) = depthwise::Plane::valid_range(p.wo, p.w, p.sw, off, p.pl);
                // Walk the output rows this block touches.
                let mut pix = p0;
                let end = p0 + cols;
                while pix < end {
                    let oh = pix / p.wo;
                    let ow0 = pix % p.wo;
                    let ow1 = p.wo.min(ow0 + (end - pix));
                    let seg = &mut dst[pix - p0..pix - p0 + (ow1 - ow0)];
                    match p.input_row(oh, ky) {
                        None => seg.fill(0.0),
                        Some(r) => {
                            let xrow = &xs[r * p.w..(r + 1) * p.w];
                            let (a, b) = (lo.clamp(ow0, ow1), hi.clamp(ow0, ow1));
                            seg[..a - ow0].fill(0.0);
                            seg[b - ow0..].fill(0.0);
                            if a < b {
                                let start = a * p.sw + off - p.pl;
                                let inner = &mut seg[a - ow0..b - ow0];
                                if p.sw == 1 {
                                    copy_short(inner, &xrow[start..start + (b - a)]);
                                } else {
                                    for (d, v) in
                                        inner.iter_mut().zip(xrow[start..].iter().step_by(p.sw))
                                    {
                                        *d = *v;
                                    }
                                }
                            }
                        }
                    }
                    pix += ow1 - ow0;
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short runs of small images, as fixed-size copies (a few
/// vector moves) instead of a `memcpy` call: blocks of 8, then the last 8 again (overlapping)
/// for the rest, or blocks of 4 the same way below 8. A plain loop for the remainder is turned
/// into a `memcpy` call by the compiler, in some builds and not others; calls of 16–32 bytes
/// then took most of a layer's time (BENCHMARKS.md).
#[inline(always)]
pub(super) fn copy_short(dst: &mut [f32], src: &[f32]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    if n >= 256 {
        dst.copy_from_slice(src);
    } else if n >= 8 {
        copy_blocks::<8>(dst, src);
    } else if n >= 4 {
        copy_blocks::<4>(dst, src);
    } else {
        dst.copy_from_slice(src);
    }
}

/// Copies `src` into `dst` (same length, at least `N`) in blocks of `N`, the last block
/// overlapping the one before.
#[inline(always)]
pub(super) fn copy_blocks<const N: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let mut i = 0;
    while i + N <= n {
        copy_block::<N>(&mut dst[i..i + N], &src[i..i + N]);
        i += N;
    }
    if i < n {
        copy_block::<N>(&mut dst[n - N..], &src[n - N..]);
    }
}

#[inline(always)]
pub(super) fn copy_block<const N: usize>(dst: &mut [f32], src: &[f32]) {
    if let (Ok(d), Ok(s)) = (<&mut [f32; N]>::try_from(dst), <&[f32; N]>::try_from(src)) {
        *d = *s;
    }
}
