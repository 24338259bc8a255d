//! The fast CPU path: multi-threaded, vectorised convolution for every spec the reference
//! runs, with the same signature and the same validation.
//!
//! How each [`ConvKind`] runs:
//! - **Depthwise** (any multiplier): a direct loop nest per output plane, planes spread over
//!   threads. The zero-padded input is split by stride phase so that every tap is a contiguous
//!   shifted view, and output rows are laid flat so that a whole plane is one long loop that the
//!   compiler vectorises across outputs; 3×3 kernels sum their nine taps in one pass (see the
//!   `depthwise` module). Compiled for AVX2+FMA and for the baseline, picked at run time.
//! - **Pointwise**, and grouped layers with a 1×1 kernel, stride 1 and no padding: per image
//!   and group, one matrix product `W_g [c_out/g × c_in/g] · X_g [c_in/g × h·w]` straight on the
//!   NCHW data, no copies.
//! - **Grouped / standard with stride 1** (and padded pointwise): the same product over an
//!   im2col matrix built from zero-padded input rows laid flat, so that each of its rows is one
//!   contiguous copy (`FlatRows`), one band of output rows at a time; the few extra columns
//!   this computes are dropped when the result is copied out.
//! - **Strided grouped / standard** (and strided pointwise): the product over an im2col matrix
//!   `[c_in/g·kh·kw × pixels]`, built one block of output pixels at a time.
//!
//! Either way the im2col matrix of a block stays within [`SCRATCH_FLOATS`], whatever the layer,
//! and the scratch is kept per thread between calls.
//!
//! Matrix products go to [faer](https://docs.rs/faer)'s `matmul`, which picks AVX-512 or
//! AVX2+FMA kernels at run time. Bias and the activation are applied to each output block
//! right after its product, while it is still in cache. Work is cut into blocks of output
//! (image × group × pixel block, or × channel block for short pixel rows) and spread over
//! rayon's global pool; with fewer blocks than threads the product itself runs in parallel.
//!
//! Whole networks run on this path through [`CpuNetwork`], with multi-threaded versions of the
//! other ops (add, concatenation, activation, pooling, channel shuffle) that match
//! [`crate::cpu::ops`] bit for bit.
//!
//! Results agree with [`crate::cpu::reference::conv2d`] to within `f32` rounding of the sums
//! (the order of the sums differs from the reference's, and between kinds); on data whose sums
//! are exact in `f32` (small integers) they agree bit for bit.

mod depthwise;
mod network;
mod ops;

pub use network::CpuNetwork;

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::error::Result;
use crate::spec::{Activation, Conv2dSpec, ConvKind, Shape};
use crate::tensor::Tensor;

/// Upper bound on the im2col scratch of one block, in `f32`s (1 MiB, the L2 size of common
/// x86 cores). A block covers as many output pixels as fit.
pub const SCRATCH_FLOATS: usize = 1 << 18;

/// Up to this many output pixels per image, a pointwise layer runs as one matrix product per
/// image and group rather than being cut into blocks.
const WHOLE_PRODUCT_MAX_PIXELS: usize = 1024;

/// Runs `spec` on `input` with `weights` (`[c_out, c_in/groups, kh, kw]`) and `bias` (`[c_out]`)
/// on all of rayon's threads. Same contract as [`crate::cpu::reference::conv2d`].
///
/// # Errors
/// Every validation error of the spec ([`Conv2dSpec::output_shape`],
/// [`Conv2dSpec::check_parameters`]).
///
/// # Example
/// ```
/// use sepconv::{cpu::fast, Conv2dSpec, Shape, Tensor};
///
/// let spec = Conv2dSpec::new(1, 1, [2, 2]).bias(false);
/// let x = Tensor::new(Shape::new(1, 1, 3, 3), (1..=9).map(|v| v as f32).collect())?;
/// let y = fast::conv2d(&spec, &x, &[1.0; 4], None)?;
/// assert_eq!(y.data(), &[12.0, 16.0, 24.0, 28.0]);
/// # Ok::<(), sepconv::Error>(())
/// ```
pub fn conv2d(
    spec: &Conv2dSpec,
    input: &Tensor,
    weights: &[f32],
    bias: Option<&[f32]>,
) -> Result<Tensor> {
    let out_shape = spec.output_shape(input.shape())?;
    spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
    let mut out = vec![0f32; out_shape.len()?];
    run(
        spec,
        input.shape(),
        input.data(),
        weights,
        bias,
        out_shape,
        &mut out,
    );
    Tensor::new(out_shape, out)
}

/// A convolution with its weights and bias held, validated once, for repeated calls on the
/// CPU. Equivalent to calling [`conv2d`] each time.
///
/// # Example
/// ```
/// use sepconv::{cpu::fast::Conv2dCpu, Conv2dSpec, Padding, Shape, Tensor};
///
/// let spec = Conv2dSpec::depthwise(4, [3, 3]).padding(Padding::uniform(1));
/// let conv = Conv2dCpu::new(spec, &vec![1.0; spec.weight_count()], Some(&[0.5; 4]))?;
/// let y = conv.run(&Tensor::full(Shape::new(2, 4, 6, 6), 1.0)?)?;
/// assert_eq!(y.at(1, 3, 2, 2), 9.5);
/// assert_eq!(y.at(0, 0, 0, 0), 4.5);
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conv2dCpu {
    spec: Conv2dSpec,
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Conv2dCpu {
    /// Checks `spec`, `weights` and `bias` as [`conv2d`] does and keeps copies.
    ///
    /// # Errors
    /// The spec's validation errors, [`crate::Error::LengthMismatch`],
    /// [`crate::Error::BiasMismatch`].
    pub fn new(spec: Conv2dSpec, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        spec.check_parameters(weights.len(), bias.map(<[f32]>::len))?;
        Ok(Self {
            spec,
            weights: weights.to_vec(),
            bias: bias.map(<[f32]>::to_vec),
        })
    }

    /// The spec.
    pub fn spec(&self) -> &Conv2dSpec {
        &self.spec
    }

    /// The output shape for `input`.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`].
    pub fn output_shape(&self, input: Shape) -> Result<Shape> {
        self.spec.output_shape(input)
    }

    /// Runs the convolution on `input` into a new tensor.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`].
    pub fn run(&self, input: &Tensor) -> Result<Tensor> {
        let out_shape = self.output_shape(input.shape())?;
        let mut out = vec![0f32; out_shape.len()?];
        self.run_slice(input, out_shape, &mut out);
        Tensor::new(out_shape, out)
    }

    /// Runs the convolution on `input`, overwriting `output`, whose shape must be
    /// [`Conv2dCpu::output_shape`] of the input. Lets callers reuse the output buffer.
    ///
    /// # Errors
    /// Those of [`Conv2dSpec::output_shape`], and [`crate::Error::LengthMismatch`] when
    /// `output` has another shape.
    pub fn run_into(&self, input: &Tensor, output: &mut Tensor) -> Result<()> {
        let out_shape = self.output_shape(input.shape())?;
        if output.shape() != out_shape {
            return Err(crate::Error::LengthMismatch {
                what: "output tensor",
                expected: out_shape.len()?,
                got: output.shape().len()?,
                hint: Some(format!(
                    "expected shape {out_shape}, got {}",
                    output.shape()
                )),
            });
        }
        self.run_slice(input, out_shape, output.data_mut());
        Ok(())
    }

    fn run_slice(&self, input: &Tensor, out_shape: Shape, out: &mut [f32]) {
        run(
            &self.spec,
            input.shape(),
            input.data(),
            &self.weights,
            self.bias.as_deref(),
            out_shape,
            out,
        );
    }
}

/// Everything the kernels need, resolved from a validated spec and input shape.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    x: Shape,
    y: Shape,
    plane: depthwise::Plane,
    groups: usize,
    cin_g: usize,
    cout_g: usize,
    /// Reduction length of the matrix product, `c_in/g · kh · kw`.
    k: usize,
    act: Activation,
}

impl Geometry {
    fn new(spec: &Conv2dSpec, x: Shape, y: Shape) -> Self {
        let pads = spec.pads(x.h, x.w);
        Self {
            x,
            y,
            plane: depthwise::Plane {
                h: x.h,
                w: x.w,
                ho: y.h,
                wo: y.w,
                kh: spec.kernel[0],
                kw: spec.kernel[1],
                sh: spec.stride[0],
                sw: spec.stride[1],
                dh: spec.dilation[0],
                dw: spec.dilation[1],
                pt: pads.top,
                pl: pads.left,
            },
            groups: spec.groups,
            cin_g: spec.c_in_per_group(),
            cout_g: spec.c_out_per_group(),
            k: spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1],
            act: spec.activation,
        }
    }

    /// 1×1 kernel, stride 1, no padding: the input is already the product's right-hand side.
    fn is_direct_gemm(&self, spec: &Conv2dSpec) -> bool {
        let p = &self.plane;
        spec.kernel == [1, 1]
            && spec.stride == [1, 1]
            && self.x.h == self.y.h
            && self.x.w == self.y.w
            && p.pt == 0
            && p.pl == 0
    }
}

/// Dispatches a validated call. `out` has `out_shape.len()` elements.
fn run(
    spec: &Conv2dSpec,
    x_shape: Shape,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out_shape: Shape,
    out: &mut [f32],
) {
    let geo = Geometry::new(spec, x_shape, out_shape);
    match spec.kind() {
        ConvKind::Depthwise { multiplier } => {
            run_depthwise(&geo, multiplier, x, weights, bias, out)
        }
        _ if geo.is_direct_gemm(spec) => run_direct_gemm(&geo, x, weights, bias, out),
        _ if FlatRows::fits(&geo) => run_flat_gemm(&geo, x, weights, bias, out),
        _ => run_im2col_gemm(&geo, x, weights, bias, out),
    }
}

fn run_depthwise(
    geo: &Geometry,
    multiplier: usize,
    x: &[f32],
    weights: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let p = geo.plane;
    let plan = depthwise::Plan::new(p);
    let scratch_len = plan.scratch_len();
    let in_plane = p.h * p.w;
    let taps = p.kh * p.kw;
    let arch = pulp::Arch::new();
    let (c_in, c_out, act) = (geo.x.c, geo.y.c, geo.act);
    out.par_chunks_mut(p.ho * p.wo).enumerate().for_each_init(
        || vec![0f32; scratch_len],
        |scratch, (plane, y)| {
            let (n, oc) = (plane / c_out, plane % c_out);
            let ic = oc / multiplier;
            let xs = &x[(n * c_in + ic) * in_plane..][..in_plane];
            let k = &weights[oc * taps..][..taps];
            let b = bias.map_or(0.0, |b| b[oc]);
            arch.dispatch(depthwise::PlaneJob {
                plan: &plan,
                x: xs,
                k,
                bias: b,
                act,
                scratch,
                y,
            });
        },
    );
}

/// One block of output: image `n`, group `g`, output channels `[m0, m0 + rows)` of the group,
/// pixels `[p0, p0 + cols)`, as a view into the output tensor.
struct Block<'a> {
    n: usize,
    g: usize,
    m0: usize,
    p0: usize,
    c: MatMut<'a, f32>,
}

/// Cuts the output into blocks. Per image and group the output is a row-major
/// `[c_out/g × pixels]` matrix; each is cut into `row_parts × col_parts` blocks, with column
/// blocks of at most `max_cols` pixels.
fn blocks<'a>(
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
fn epilogue(geo: &Geometry, block: &mut Block<'_>, bias: Option<&[f32]>) {
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
fn threads() -> usize {
    rayon::current_num_threads().max(1)
}

fn run_direct_gemm(
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

fn run_im2col_gemm(
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
struct FlatRows {
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
    fn fits(geo: &Geometry) -> bool {
        let p = &geo.plane;
        p.sh == 1 && p.sw == 1 && geo.k * Self::new(geo).wp <= SCRATCH_FLOATS
    }
}

/// Stride-1 grouped and standard layers: per image, group and band of output rows, the
/// band's padded planes, the im2col matrix as one contiguous copy per row ([`FlatRows`]), one
/// product into a `[c_out/g × band·wp]` scratch, then the valid columns copied out through
/// bias and activation. Computes `(wp - wo) / wp` more columns than needed (2/9 on 7×7, 3×3;
/// 2/58 on 56×56) to save the copies.
fn run_flat_gemm(
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
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
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
fn im2col(geo: &Geometry, x: &[f32], n: usize, g: usize, p0: usize, cols: usize, col: &mut [f32]) {
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
fn copy_short(dst: &mut [f32], src: &[f32]) {
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
fn copy_blocks<const N: usize>(dst: &mut [f32], src: &[f32]) {
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
fn copy_block<const N: usize>(dst: &mut [f32], src: &[f32]) {
    if let (Ok(d), Ok(s)) = (<&mut [f32; N]>::try_from(dst), <&[f32; N]>::try_from(src)) {
        *d = *s;
    }
}
