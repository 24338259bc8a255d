//! Convolutions bigger than one storage binding.
//!
//! A device binds at most `max_storage_buffer_binding_size` bytes of a buffer to one shader
//! binding (128 MiB on many adapters), while a buffer itself may be far larger
//! (`max_buffer_size`, 2 GiB on lavapipe). A convolution whose input or output passes the
//! binding limit runs here as several pieces, each binding at most the limit:
//!
//! 1. over the batch, as many whole items per piece as fit;
//! 2. then, one item at a time, over output rows, with the input rows those rows read (the
//!    halo of `dilation · (kernel - 1)` rows) and the padding adjusted, so that every piece is
//!    an ordinary convolution of a smaller tensor.
//!
//! Every piece keeps all channels, so the kernel, its weight windows and its bias are those
//! of the whole convolution (weights live in 64 KiB uniform windows, never near the limit).
//! Each piece is described by a [`Piece`]: a sub-spec (explicit padding) and the shapes of
//! its input and output, which the kernel runs as it would whole tensors. A piece's data is
//! bound in place when it is one contiguous range starting at a multiple of
//! `min_storage_buffer_offset_alignment`; otherwise it is copied into (and the output out of)
//! a scratch buffer with `copy_buffer_to_buffer`, whose offsets only need 4-byte alignment.
//!
//! A convolution that cannot be split small enough (one output row would need more than the
//! limit) is rejected by [`Pieces::new`] with [`Error::TooLarge`] before anything is allocated.

use std::ops::Range;

use super::{Bindings, Gpu};
use crate::error::{Error, Result};
use crate::precision::Precision;
use crate::spec::{Conv2dSpec, Padding, Pads, Shape};

/// The largest binding, in elements of `precision` (f16 fits twice as many), this crate uses
/// on a device: the storage-binding limit, capped by the buffer limit and at `u32::MAX` bytes
/// so that every index inside one binding fits the shaders' `u32` arithmetic.
pub(crate) fn binding_elements(limits: &wgpu::Limits, precision: Precision) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(u64::from(u32::MAX))
        / precision.bytes() as u64
}

/// How one convolution is divided into pieces. Cheap to build; the pieces are made on the
/// fly by [`Pieces::pieces`].
#[derive(Debug, Clone)]
pub(crate) struct Pieces {
    spec: Conv2dSpec,
    input: Shape,
    output: Shape,
    pads: Pads,
    /// Batch items per piece.
    batch: usize,
    /// Output rows per piece.
    rows: usize,
}

/// One piece of a split convolution: which part of the whole it covers and the ordinary
/// convolution that computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Batch items.
    pub(crate) batch: Range<usize>,
    /// Input rows bound.
    pub(crate) in_rows: Range<usize>,
    /// Output rows written.
    pub(crate) out_rows: Range<usize>,
    /// The convolution of the piece: the spec with explicit padding for its rows.
    pub(crate) spec: Conv2dSpec,
    /// Shape of the piece's input.
    pub(crate) input: Shape,
    /// Shape of the piece's output.
    pub(crate) output: Shape,
}

/// Elements one piece binds at most: input, output.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    input: u64,
    output: u64,
}

impl Pieces {
    /// Plans `spec` from `input` to `output` (its checked output shape, tensors of
    /// `precision`) for a device with `limits`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when even one output row of one item needs a binding larger than
    /// the limit.
    pub(crate) fn new(
        spec: &Conv2dSpec,
        input: Shape,
        output: Shape,
        limits: &wgpu::Limits,
        precision: Precision,
    ) -> Result<Self> {
        let limit = binding_elements(limits, precision);
        let element_bytes = precision.bytes() as u64;
        let plan = |batch, rows| Self {
            spec: *spec,
            input,
            output,
            pads: spec.pads(input.h, input.w),
            batch,
            rows,
        };
        let fits = |p: &Self| {
            let f = p.footprint();
            f.input <= limit && f.output <= limit
        };
        // Largest k in 1..=hi with ok(k), 0 if none (ok is monotone: smaller pieces fit
        // better).
        let largest = |hi: usize, ok: &dyn Fn(usize) -> bool| -> usize {
            let (mut lo, mut hi) = (0usize, hi);
            while lo < hi {
                let mid = lo + (hi - lo).div_ceil(2);
                if ok(mid) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            lo
        };
        // Whole items, as many as fit (all of them: one piece).
        let nb = largest(input.n, &|nb| fits(&plan(nb, output.h)));
        if nb > 0 {
            return Ok(plan(nb, output.h));
        }
        // Rows of one item.
        let rows = largest(output.h, &|r| fits(&plan(1, r)));
        if rows > 0 {
            return Ok(plan(1, rows));
        }
        // Nothing fits: name the binding that one output row overflows.
        let smallest = plan(1, 1).footprint();
        let (what, elements) = if smallest.input > limit {
            ("input rows of one output row", smallest.input)
        } else {
            ("one output row", smallest.output)
        };
        Err(Error::TooLarge {
            what,
            bytes: elements.saturating_mul(element_bytes),
            limit: limit * element_bytes,
            limit_name: "max_storage_buffer_binding_size",
        })
    }

    /// Whether the plan is one dispatch over the whole tensors.
    pub(crate) fn is_whole(&self) -> bool {
        self.batch >= self.input.n && self.rows >= self.output.h
    }

    /// Number of pieces.
    pub(crate) fn len(&self) -> usize {
        self.input.n.div_ceil(self.batch) * self.output.h.div_ceil(self.rows)
    }

    /// The largest binding of any piece, in elements: the sizes scratch buffers need at most.
    fn footprint(&self) -> Footprint {
        let e = |v: &[usize]| v.iter().fold(1u64, |a, &b| a.saturating_mul(b as u64));
        Footprint {
            input: e(&[
                self.batch,
                self.input.c,
                self.in_rows_for(self.rows),
                self.input.w,
            ]),
            output: e(&[self.batch, self.output.c, self.rows, self.output.w]),
        }
    }

    /// Input rows a run of `rows` output rows binds at most: all of them for all rows,
    /// else `(rows - 1)·stride + extent`, never more than the input has.
    fn in_rows_for(&self, rows: usize) -> usize {
        if rows >= self.output.h {
            return self.input.h;
        }
        let extent = self.spec.dilation[0] * (self.spec.kernel[0] - 1) + 1;
        ((rows - 1) * self.spec.stride[0] + extent).min(self.input.h)
    }

    /// The pieces, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Piece> + '_ {
        let n = self.input.n;
        (0..n).step_by(self.batch).flat_map(move |n0| {
            let batch = n0..(n0 + self.batch).min(n);
            (0..self.output.h).step_by(self.rows).map(move |oh0| {
                let oh1 = (oh0 + self.rows).min(self.output.h);
                self.piece(batch.clone(), oh0..oh1)
            })
        })
    }

    fn piece(&self, batch: Range<usize>, out_rows: Range<usize>) -> Piece {
        let spec = &self.spec;
        let (s, d, k) = (spec.stride[0], spec.dilation[0], spec.kernel[0]);
        let h = self.input.h;
        let rows = out_rows.len();
        let extent = d * (k - 1) + 1;
        let (in_rows, top) = if rows == self.output.h {
            // All rows: whole channel planes, the original padding.
            (0..h, self.pads.top)
        } else {
            // Input rows the piece's taps reach, relative to the input: [start, end) with
            // start = oh0·s - top, negative inside the top padding.
            let start = (out_rows.start * s) as i64 - self.pads.top as i64;
            let end = start + ((rows - 1) * s + extent) as i64;
            if start >= h as i64 {
                // Every tap is in the bottom padding: bind one row and put all taps above
                // it, so the kernel sees only padding (the result is the bias, activated).
                (0..1, (rows - 1) * s + extent)
            } else {
                let first = start.max(0) as usize;
                let last = end.min(h as i64).max(first as i64 + 1) as usize;
                (first..last, (first as i64 - start) as usize)
            }
        };
        let in_h = in_rows.len();
        // With all rows, the original bottom padding; otherwise enough that the sub-spec's own
        // output size covers the rows (the kernel is told the output shape; this only keeps
        // the sub-spec self-consistent).
        let bottom = if rows == self.output.h {
            self.pads.bottom
        } else {
            ((rows - 1) * s + extent).saturating_sub(in_h + top)
        };
        let sub = Conv2dSpec {
            padding: Padding::Explicit {
                top,
                bottom,
                left: self.pads.left,
                right: self.pads.right,
            },
            ..*spec
        };
        Piece {
            input: Shape::new(batch.len(), self.input.c, in_h, self.input.w),
            output: Shape::new(batch.len(), self.output.c, rows, self.output.w),
            batch,
            in_rows,
            out_rows,
            spec: sub,
        }
    }
}

/// Records one piece's dispatches on its bindings.
pub(crate) type DispatchFn<'a> =
    dyn FnMut(&mut wgpu::CommandEncoder, &Piece, &Bindings<'_>) -> Result<()> + 'a;

/// The whole tensors of a split run: its input, its output, and the skip tensor of a residual
/// add (the output's shape), cut into pieces the way the output is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tensors<'a> {
    pub(crate) input: &'a wgpu::Buffer,
    pub(crate) output: &'a wgpu::Buffer,
    pub(crate) skip: Option<&'a wgpu::Buffer>,
}

/// Records every piece of `plan` on `tensors`: binds a piece's data in place where it can,
/// else gathers the input (and skip) into a scratch buffer, calls `dispatch` with the
/// bindings, and scatters the output back from scratch.
pub(crate) fn encode(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Pieces,
    tensors: Tensors<'_>,
    dispatch: &mut DispatchFn<'_>,
) -> Result<()> {
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    let footprint = plan.footprint();
    // 0 input, 1 output, 2 skip (which is read as the input is and laid out as the output).
    let sizes = [footprint.input, footprint.output, footprint.output];
    let whole = [
        tensors.input,
        tensors.output,
        tensors.skip.unwrap_or(tensors.output),
    ];
    let count = if tensors.skip.is_some() { 3 } else { 2 };
    let mut scratch: [Option<wgpu::Buffer>; 3] = [None, None, None];
    for piece in plan.iter() {
        let all_channels_in = 0..plan.input.c;
        let all_channels_out = 0..plan.output.c;
        let out_regions = runs(
            plan.output,
            &piece.batch,
            &all_channels_out,
            &piece.out_rows,
        );
        let regions: [Vec<(u64, u64)>; 3] = [
            runs(plan.input, &piece.batch, &all_channels_in, &piece.in_rows),
            out_regions.clone(),
            out_regions,
        ];
        // In place: one run at an aligned offset (bytes). Otherwise: scratch.
        let in_place: [Option<(u64, u64)>; 3] = std::array::from_fn(|i| match regions[i][..] {
            [(offset, len)] if (offset * 4) % align == 0 => Some((offset * 4, len * 4)),
            _ => None,
        });
        for i in 0..count {
            if in_place[i].is_none() && scratch[i].is_none() {
                scratch[i] = Some(gpu.scoped("split scratch allocation", || {
                    gpu.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("conv.split.scratch"),
                        size: sizes[i] * 4,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_DST
                            | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    })
                })?);
            }
        }
        let bindings: [wgpu::BufferBinding<'_>; 3] = std::array::from_fn(|i| {
            let (buffer, offset, bytes) = match (in_place[i], &scratch[i]) {
                (Some((offset, bytes)), _) => (whole[i], offset, bytes),
                (None, Some(s)) => (s, 0, regions[i].iter().map(|r| r.1).sum::<u64>() * 4),
                // The skip's slot of a run without one (never bound): a scratch buffer was made
                // above for every tensor the run binds that is not in place.
                (None, None) => (whole[i], 0, 4),
            };
            wgpu::BufferBinding {
                buffer,
                offset,
                size: wgpu::BufferSize::new(bytes),
            }
        });
        // The tensors the kernel reads: gathered into scratch where not bound in place.
        for i in (0..count).filter(|&i| i != 1) {
            if let (None, Some(dst)) = (in_place[i], &scratch[i]) {
                gpu.scoped("split gather", || {
                    let mut at = 0;
                    for &(offset, len) in &regions[i] {
                        encoder.copy_buffer_to_buffer(whole[i], offset * 4, dst, at, len * 4);
                        at += len * 4;
                    }
                })?;
            }
        }
        let [input, output, skip] = bindings;
        let piece_tensors = Bindings {
            input,
            output,
            skip: tensors.skip.map(|_| skip),
        };
        dispatch(encoder, &piece, &piece_tensors)?;
        if let (None, Some(src)) = (in_place[1], &scratch[1]) {
            gpu.scoped("split scatter", || {
                let mut at = 0;
                for &(offset, len) in &regions[1] {
                    encoder.copy_buffer_to_buffer(src, at, tensors.output, offset * 4, len * 4);
                    at += len * 4;
                }
            })?;
        }
    }
    Ok(())
}

/// A region of an NCHW tensor as contiguous runs of elements `(offset, len)`, adjacent runs
/// merged.
pub(crate) fn runs(
    shape: Shape,
    batch: &Range<usize>,
    channels: &Range<usize>,
    rows: &Range<usize>,
) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let len = (rows.len() * shape.w) as u64;
    for n in batch.clone() {
        for c in channels.clone() {
            let offset = (((n * shape.c + c) * shape.h + rows.start) * shape.w) as u64;
            match out.last_mut() {
                Some((o, l)) if *o + *l == offset => *l += len,
                _ => out.push((offset, len)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Activation;
    use Precision::F32;

    fn limits(binding_bytes: u64) -> wgpu::Limits {
        wgpu::Limits {
            max_storage_buffer_binding_size: binding_bytes,
            max_buffer_size: 1 << 40,
            ..wgpu::Limits::default()
        }
    }

    /// Every output element is written by exactly one piece, every piece binds at most the
    /// limit, and each piece's sub-problem reads exactly the input rows the whole
    /// convolution reads for those outputs.
    fn check_cover(spec: Conv2dSpec, input: Shape, binding_bytes: u64) -> Pieces {
        let output = spec.output_shape(input).unwrap();
        let plan = Pieces::new(&spec, input, output, &limits(binding_bytes), F32).unwrap();
        let limit = binding_elements(&limits(binding_bytes), F32);
        let mut written = vec![0u8; output.len().unwrap()];
        let pads = spec.pads(input.h, input.w);
        let mut count = 0;
        for p in plan.iter() {
            count += 1;
            assert!(p.input.len().unwrap() as u64 <= limit, "{p:?}");
            assert!(p.output.len().unwrap() as u64 <= limit, "{p:?}");
            assert_eq!(p.spec.validate(), Ok(()));
            for n in p.batch.clone() {
                for oc in 0..output.c {
                    for oh in p.out_rows.clone() {
                        for ow in 0..output.w {
                            written[output.index(n, oc, oh, ow)] += 1;
                        }
                    }
                }
            }
            // Row mapping: local output row j, tap ky reads local input row
            // j·s - top' + ky·d; in global rows that must be what the whole conv reads.
            let sub_pads = p.spec.pads(p.input.h, p.input.w);
            assert_eq!((sub_pads.left, sub_pads.right), (pads.left, pads.right));
            for (j, oh) in p.out_rows.clone().enumerate() {
                for ky in 0..spec.kernel[0] {
                    let global =
                        (oh * spec.stride[0] + ky * spec.dilation[0]) as i64 - pads.top as i64;
                    let local =
                        (j * spec.stride[0] + ky * spec.dilation[0]) as i64 - sub_pads.top as i64;
                    let global_in = global >= 0 && global < input.h as i64;
                    let local_in = local >= 0 && local < p.input.h as i64;
                    assert_eq!(global_in, local_in, "{p:?} row {oh} tap {ky}");
                    if global_in {
                        assert_eq!(global, local + p.in_rows.start as i64, "{p:?}");
                    }
                }
            }
        }
        assert!(
            written.iter().all(|&w| w == 1),
            "some outputs not written once"
        );
        assert_eq!(count, plan.len());
        plan
    }

    #[test]
    fn small_convolutions_are_one_piece() {
        let spec = Conv2dSpec::new(8, 8, [3, 3]).padding(Padding::uniform(1));
        let plan = check_cover(spec, Shape::new(2, 8, 10, 10), 1 << 20);
        assert!(plan.is_whole());
        assert_eq!(plan.len(), 1);
    }

    #[test]
    fn batch_first_then_rows() {
        let spec = Conv2dSpec::new(8, 8, [3, 3])
            .padding(Padding::uniform(1))
            .groups(2);
        let x = Shape::new(4, 8, 10, 10);
        // 800 elements per item: two items per piece.
        let p = check_cover(spec, x, 1600 * 4);
        assert_eq!((p.batch, p.rows, p.len()), (2, 10, 2));
        // One item's 800 input elements don't fit: rows (8 channels × up to 5 rows × 10).
        let p = check_cover(spec, x, 400 * 4);
        assert_eq!(p.batch, 1);
        assert_eq!(p.rows, 3, "{p:?}");
    }

    #[test]
    fn rows_cover_padding_only_pieces() {
        // Large bottom padding: the last pieces read nothing but padding.
        let spec = Conv2dSpec::new(2, 3, [3, 2])
            .stride([2, 1])
            .dilation([2, 1])
            .padding(Padding::explicit(3, 9, 1, 0))
            .activation(Activation::Relu);
        for bytes in [200, 256, 400, 800] {
            check_cover(spec, Shape::new(2, 2, 7, 5), bytes);
        }
        let same = Conv2dSpec::depthwise(3, [5, 3])
            .multiplier(2)
            .stride([3, 2])
            .padding(Padding::same());
        for bytes in [360, 480, 1200] {
            check_cover(same, Shape::new(1, 3, 11, 6), bytes);
        }
    }

    #[test]
    fn impossible_plans_are_too_large() {
        let spec = Conv2dSpec::new(4, 4, [3, 3]);
        let x = Shape::new(1, 4, 10, 100);
        let out = spec.output_shape(x).unwrap();
        // One output row needs 4 channels × 3 rows × 100 columns = 1200 input elements.
        let err = Pieces::new(&spec, x, out, &limits(1000 * 4), F32).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "input rows of one output row",
                    bytes: 4800,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(Pieces::new(&spec, x, out, &limits(1200 * 4), F32).is_ok());
    }

    #[test]
    fn runs_merge_contiguous_ranges() {
        let s = Shape::new(2, 3, 4, 5);
        assert_eq!(runs(s, &(0..2), &(0..3), &(0..4)), vec![(0, 120)]);
        assert_eq!(runs(s, &(1..2), &(1..3), &(0..4)), vec![(80, 40)]);
        assert_eq!(runs(s, &(0..1), &(0..2), &(1..3)), vec![(5, 10), (25, 10)]);
    }
}
