//! Convolutions bigger than one storage binding.
//!
//! A device binds at most `max_storage_buffer_binding_size` bytes of a buffer to one shader
//! binding (128 MiB on many adapters), while a buffer itself may be far larger
//! (`max_buffer_size`, 2 GiB on lavapipe). A convolution whose input, output or weights pass
//! the binding limit runs here as several dispatches, each binding at most the limit:
//!
//! 1. over the batch, several whole items per dispatch;
//! 2. then, one item at a time, over groups (the input channels a group reads and the output
//!    channels it writes), several whole groups per dispatch;
//! 3. then over output channels inside one group (all of the group's input channels bound);
//! 4. then over output rows, with the input rows those rows read (the halo of
//!    `dilation · (kernel - 1)` rows) and the padding adjusted so that every dispatch is an
//!    ordinary convolution of a smaller tensor.
//!
//! The first level that fits is used. Each dispatch is described by a [`Piece`]: a sub-spec
//! (explicit padding, its own channel and group counts) and the shapes of its input and
//! output, which any kernel runs as it would a whole tensor. A piece's data is bound in place
//! when it is one contiguous range starting at a multiple of
//! `min_storage_buffer_offset_alignment`; otherwise it is copied into (and the output out of)
//! a scratch buffer with `copy_buffer_to_buffer`, whose offsets only need 4-byte alignment.
//!
//! A convolution that cannot be split small enough (one output row of one output channel
//! would need more than the limit) is rejected by [`Plan::new`] with [`Error::TooLarge`]
//! before anything is allocated.

use std::ops::Range;

use super::Gpu;
use crate::error::{Error, Result};
use crate::spec::{Conv2dSpec, Padding, Pads, Shape};

/// The largest binding, in `f32` elements, this crate uses on a device: the storage-binding
/// limit, capped by the buffer limit and at `u32::MAX` bytes so that every index inside one
/// binding fits the shaders' `u32` arithmetic.
pub(crate) fn binding_elements(limits: &wgpu::Limits) -> u64 {
    limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(u64::from(u32::MAX))
        / 4
}

/// How a plan divides the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channels {
    /// Whole groups, this many per piece.
    Groups(usize),
    /// One group at a time, this many of its output channels per piece.
    WithinGroup(usize),
}

/// How one convolution is divided into dispatches. Cheap to build; the pieces are made on
/// the fly by [`Plan::pieces`].
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    spec: Conv2dSpec,
    input: Shape,
    output: Shape,
    pads: Pads,
    batch: usize,
    channels: Channels,
    rows: usize,
}

/// One dispatch of a split convolution: which part of the whole it covers and the ordinary
/// convolution that computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Batch items.
    pub(crate) batch: Range<usize>,
    /// Input channels read.
    pub(crate) in_channels: Range<usize>,
    /// Input rows bound.
    pub(crate) in_rows: Range<usize>,
    /// Output channels written (also the weights' and bias' rows).
    pub(crate) out_channels: Range<usize>,
    /// Output rows written.
    pub(crate) out_rows: Range<usize>,
    /// The convolution of the piece: explicit padding, the piece's channels and groups.
    pub(crate) spec: Conv2dSpec,
    /// Shape of the piece's input.
    pub(crate) input: Shape,
    /// Shape of the piece's output.
    pub(crate) output: Shape,
}

/// Elements one piece binds: input, output, weights, bias.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    input: u64,
    output: u64,
    weights: u64,
    bias: u64,
}

impl Footprint {
    fn max(&self) -> u64 {
        self.input.max(self.output).max(self.weights).max(self.bias)
    }
}

impl Plan {
    /// Plans `spec` from `input` to `output` (its checked output shape) for a device with
    /// `limits`.
    ///
    /// # Errors
    /// [`Error::TooLarge`] when even one output row of one output channel needs a binding
    /// larger than the limit.
    pub(crate) fn new(
        spec: &Conv2dSpec,
        input: Shape,
        output: Shape,
        limits: &wgpu::Limits,
    ) -> Result<Self> {
        let limit = binding_elements(limits);
        let plan = |batch, channels, rows| Self {
            spec: *spec,
            input,
            output,
            pads: spec.pads(input.h, input.w),
            batch,
            channels,
            rows,
        };
        let groups = spec.groups;
        let fits = |p: &Self| p.footprint().max() <= limit;
        let largest = |hi: usize, ok: &dyn Fn(usize) -> bool| -> usize {
            // Largest k in 1..=hi with ok(k) (ok is monotone: smaller pieces fit better).
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

        // 0 and 1: whole items, as many as fit.
        let nb = largest(input.n, &|nb| {
            fits(&plan(nb, Channels::Groups(groups), output.h))
        });
        if nb > 0 {
            return Ok(plan(nb, Channels::Groups(groups), output.h));
        }
        // 2: whole groups of one item.
        let k = largest(groups, &|k| fits(&plan(1, Channels::Groups(k), output.h)));
        if k > 0 {
            return Ok(plan(1, Channels::Groups(k), output.h));
        }
        // 3: output channels of one group, all rows.
        let cout_g = spec.c_out_per_group();
        let k = largest(cout_g, &|k| {
            fits(&plan(1, Channels::WithinGroup(k), output.h))
        });
        if k > 0 {
            return Ok(plan(1, Channels::WithinGroup(k), output.h));
        }
        // 4: rows. As many output channels as leave room for one output row, then as many
        // rows as fit.
        let k = largest(cout_g, &|k| fits(&plan(1, Channels::WithinGroup(k), 1)));
        if k > 0 {
            let rows = largest(output.h, &|r| fits(&plan(1, Channels::WithinGroup(k), r)));
            return Ok(plan(1, Channels::WithinGroup(k), rows.max(1)));
        }
        // Nothing fits: name the binding that one row of one channel overflows.
        let smallest = plan(1, Channels::WithinGroup(1), 1).footprint();
        let (what, elements) = [
            ("input rows of one output row", smallest.input),
            ("one output row", smallest.output),
            ("weights of one output channel", smallest.weights),
        ]
        .into_iter()
        .find(|&(_, e)| e > limit)
        .unwrap_or(("one output row", smallest.output));
        Err(Error::TooLarge {
            what,
            bytes: elements.saturating_mul(4),
            limit: limit * 4,
            limit_name: "max_storage_buffer_binding_size",
        })
    }

    /// Whether the plan is one dispatch over the whole tensors.
    pub(crate) fn is_whole(&self) -> bool {
        self.batch >= self.input.n
            && self.channels == Channels::Groups(self.spec.groups)
            && self.rows >= self.output.h
    }

    /// Number of dispatches.
    pub(crate) fn len(&self) -> usize {
        let g = self.spec.groups;
        let channel_pieces = match self.channels {
            Channels::Groups(k) => g.div_ceil(k),
            Channels::WithinGroup(k) => g * self.spec.c_out_per_group().div_ceil(k),
        };
        self.input.n.div_ceil(self.batch) * channel_pieces * self.output.h.div_ceil(self.rows)
    }

    /// The largest binding of any piece, per buffer (input, output, weights, bias), in
    /// elements: the sizes scratch buffers need at most.
    fn footprint(&self) -> Footprint {
        let (in_c, out_c) = match self.channels {
            Channels::Groups(k) => (
                k * self.spec.c_in_per_group(),
                k * self.spec.c_out_per_group(),
            ),
            Channels::WithinGroup(k) => (self.spec.c_in_per_group(), k),
        };
        let in_rows = self.in_rows_for(self.rows);
        let [kh, kw] = self.spec.kernel;
        let e = |v: &[usize]| v.iter().fold(1u64, |a, &b| a.saturating_mul(b as u64));
        Footprint {
            input: e(&[self.batch, in_c, in_rows, self.input.w]),
            output: e(&[self.batch, out_c, self.rows, self.output.w]),
            weights: e(&[out_c, self.spec.c_in_per_group(), kh, kw]),
            bias: out_c as u64,
        }
    }

    /// Input rows a run of `rows` output rows reads at most: `(rows - 1)·stride + extent`,
    /// never more than the input has.
    fn in_rows_for(&self, rows: usize) -> usize {
        if rows >= self.output.h {
            return self.input.h;
        }
        let extent = self.spec.dilation[0] * (self.spec.kernel[0] - 1) + 1;
        ((rows - 1) * self.spec.stride[0] + extent).min(self.input.h)
    }

    /// The dispatches, in order.
    pub(crate) fn pieces(&self) -> impl Iterator<Item = Piece> + '_ {
        let n = self.input.n;
        let g = self.spec.groups;
        let cin_g = self.spec.c_in_per_group();
        let cout_g = self.spec.c_out_per_group();
        let channel_ranges: Box<dyn Iterator<Item = (Range<usize>, Range<usize>, usize)>> =
            match self.channels {
                Channels::Groups(k) => Box::new((0..g).step_by(k).map(move |g0| {
                    let g1 = (g0 + k).min(g);
                    (g0 * cin_g..g1 * cin_g, g0 * cout_g..g1 * cout_g, g1 - g0)
                })),
                Channels::WithinGroup(k) => Box::new((0..g).flat_map(move |gi| {
                    (0..cout_g).step_by(k).map(move |o0| {
                        let o1 = (o0 + k).min(cout_g);
                        (
                            gi * cin_g..(gi + 1) * cin_g,
                            gi * cout_g + o0..gi * cout_g + o1,
                            1,
                        )
                    })
                })),
            };
        let channel_ranges: Vec<_> = channel_ranges.collect();
        (0..n).step_by(self.batch).flat_map(move |n0| {
            let batch = n0..(n0 + self.batch).min(n);
            let channel_ranges = channel_ranges.clone();
            channel_ranges
                .into_iter()
                .flat_map(move |(ic, oc, groups)| {
                    let batch = batch.clone();
                    (0..self.output.h).step_by(self.rows).map(move |oh0| {
                        let oh1 = (oh0 + self.rows).min(self.output.h);
                        self.piece(batch.clone(), ic.clone(), oc.clone(), groups, oh0..oh1)
                    })
                })
        })
    }

    fn piece(
        &self,
        batch: Range<usize>,
        in_channels: Range<usize>,
        out_channels: Range<usize>,
        groups: usize,
        out_rows: Range<usize>,
    ) -> Piece {
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
            c_in: in_channels.len(),
            c_out: out_channels.len(),
            groups,
            padding: Padding::Explicit {
                top,
                bottom,
                left: self.pads.left,
                right: self.pads.right,
            },
            ..*spec
        };
        Piece {
            input: Shape::new(batch.len(), in_channels.len(), in_h, self.input.w),
            output: Shape::new(batch.len(), out_channels.len(), rows, self.output.w),
            batch,
            in_channels,
            in_rows,
            out_channels,
            out_rows,
            spec: sub,
        }
    }
}

/// Checks that the weights of one output channel fit one binding, the least any plan needs.
pub(crate) fn check_weights(spec: &Conv2dSpec, limits: &wgpu::Limits) -> Result<()> {
    let per_channel = (spec.c_in_per_group() as u64)
        .saturating_mul(spec.kernel[0] as u64)
        .saturating_mul(spec.kernel[1] as u64);
    let limit = binding_elements(limits);
    if per_channel > limit {
        return Err(Error::TooLarge {
            what: "weights of one output channel",
            bytes: per_channel.saturating_mul(4),
            limit: limit * 4,
            limit_name: "max_storage_buffer_binding_size",
        });
    }
    Ok(())
}

/// The whole buffers of a convolution: input, weights, bias, output.
pub(crate) struct Buffers<'a> {
    pub(crate) input: &'a wgpu::Buffer,
    pub(crate) weights: &'a wgpu::Buffer,
    pub(crate) bias: &'a wgpu::Buffer,
    pub(crate) output: &'a wgpu::Buffer,
}

/// Records one piece's dispatch with bindings (input, weights, bias, output).
pub(crate) type DispatchFn<'a> =
    dyn FnMut(&mut wgpu::CommandEncoder, &Piece, [wgpu::BufferBinding<'_>; 4]) -> Result<()> + 'a;

/// Records every piece of `plan`: gathers a piece's input, weights and bias into scratch
/// buffers where they cannot be bound in place, calls `dispatch` with the bindings
/// (input, weights, bias, output), and scatters the output back from scratch.
pub(crate) fn encode(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    plan: &Plan,
    buffers: &Buffers<'_>,
    dispatch: &mut DispatchFn<'_>,
) -> Result<()> {
    let align = gpu.limits().min_storage_buffer_offset_alignment.max(4) as u64;
    let footprint = plan.footprint();
    let per_channel =
        (plan.spec.c_in_per_group() * plan.spec.kernel[0] * plan.spec.kernel[1]) as u64;
    let mut scratch: [Option<wgpu::Buffer>; 4] = [None, None, None, None];
    let sizes = [
        footprint.input,
        footprint.weights,
        footprint.bias,
        footprint.output,
    ];
    for piece in plan.pieces() {
        let oc = &piece.out_channels;
        let regions: [Vec<(u64, u64)>; 4] = [
            runs(plan.input, &piece.batch, &piece.in_channels, &piece.in_rows),
            vec![(oc.start as u64 * per_channel, oc.len() as u64 * per_channel)],
            vec![(oc.start as u64, oc.len() as u64)],
            runs(plan.output, &piece.batch, oc, &piece.out_rows),
        ];
        let whole = [buffers.input, buffers.weights, buffers.bias, buffers.output];
        // In place: one run at an aligned offset. Otherwise: scratch.
        let in_place: [Option<(u64, u64)>; 4] = std::array::from_fn(|i| match regions[i][..] {
            [(offset, len)] if (offset * 4) % align == 0 => Some((offset * 4, len * 4)),
            _ => None,
        });
        for i in 0..4 {
            if in_place[i].is_none() && scratch[i].is_none() {
                let usage = wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC;
                scratch[i] = Some(gpu.scoped("split scratch allocation", || {
                    gpu.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some("conv.split.scratch"),
                        size: sizes[i] * 4,
                        usage,
                        mapped_at_creation: false,
                    })
                })?);
            }
        }
        gpu.scoped("split gather", || {
            for i in 0..3 {
                if let (None, Some(dst)) = (in_place[i], &scratch[i]) {
                    let mut at = 0;
                    for &(offset, len) in &regions[i] {
                        encoder.copy_buffer_to_buffer(whole[i], offset * 4, dst, at, len * 4);
                        at += len * 4;
                    }
                }
            }
        })?;
        let bindings: [wgpu::BufferBinding<'_>; 4] = std::array::from_fn(|i| {
            let (buffer, offset, bytes) = match (in_place[i], &scratch[i]) {
                (Some((offset, bytes)), _) => (whole[i], offset, bytes),
                (None, Some(s)) => (s, 0, regions[i].iter().map(|r| r.1).sum::<u64>() * 4),
                // Unreachable: a scratch buffer was made above for every binding not in place.
                (None, None) => (whole[i], 0, 4),
            };
            wgpu::BufferBinding {
                buffer,
                offset,
                size: wgpu::BufferSize::new(bytes),
            }
        });
        dispatch(encoder, &piece, bindings)?;
        if let (None, Some(src)) = (in_place[3], &scratch[3]) {
            gpu.scoped("split scatter", || {
                let mut at = 0;
                for &(offset, len) in &regions[3] {
                    encoder.copy_buffer_to_buffer(src, at, buffers.output, offset * 4, len * 4);
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

    fn limits(binding_bytes: u64) -> wgpu::Limits {
        wgpu::Limits {
            max_storage_buffer_binding_size: binding_bytes,
            max_buffer_size: 1 << 40,
            ..wgpu::Limits::default()
        }
    }

    /// Every output element is written by exactly one piece, and each piece's sub-problem
    /// reads exactly the input rows the whole convolution reads for those outputs.
    fn check_cover(spec: Conv2dSpec, input: Shape, binding_bytes: u64) -> Plan {
        let output = spec.output_shape(input).unwrap();
        let plan = Plan::new(&spec, input, output, &limits(binding_bytes)).unwrap();
        let limit = binding_elements(&limits(binding_bytes));
        let mut written = vec![0u8; output.len().unwrap()];
        let pads = spec.pads(input.h, input.w);
        let mut count = 0;
        for p in plan.pieces() {
            count += 1;
            assert!(p.input.len().unwrap() as u64 <= limit, "{p:?}");
            assert!(p.output.len().unwrap() as u64 <= limit, "{p:?}");
            assert_eq!(p.spec.validate(), Ok(()));
            for n in p.batch.clone() {
                for oc in p.out_channels.clone() {
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
    fn levels_are_chosen_in_order() {
        let spec = Conv2dSpec::new(8, 8, [3, 3])
            .padding(Padding::uniform(1))
            .groups(2);
        let x = Shape::new(4, 8, 10, 10);
        // 800 elements per item: two items per piece.
        let p = check_cover(spec, x, 1600 * 4);
        assert_eq!((p.batch, p.channels), (2, Channels::Groups(2)));
        // 400 elements per group of one item.
        let p = check_cover(spec, x, 400 * 4);
        assert_eq!((p.batch, p.channels), (1, Channels::Groups(1)));
        // One group's 400 input elements don't fit: rows.
        let p = check_cover(spec, x, 200 * 4);
        assert!(p.rows < 10, "{p:?}");
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
        for bytes in [120, 160, 400] {
            check_cover(same, Shape::new(1, 3, 11, 6), bytes);
        }
    }

    #[test]
    fn impossible_plans_are_too_large() {
        let spec = Conv2dSpec::new(4, 4, [3, 3]);
        let x = Shape::new(1, 4, 10, 100);
        let out = spec.output_shape(x).unwrap();
        // One output row needs 4 channels × 3 rows × 100 columns = 1200 input elements.
        let err = Plan::new(&spec, x, out, &limits(1000 * 4)).unwrap_err();
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
        assert!(Plan::new(&spec, x, out, &limits(1200 * 4)).is_ok());
    }

    #[test]
    fn runs_merge_contiguous_ranges() {
        let s = Shape::new(2, 3, 4, 5);
        assert_eq!(runs(s, &(0..2), &(0..3), &(0..4)), vec![(0, 120)]);
        assert_eq!(runs(s, &(1..2), &(1..3), &(0..4)), vec![(80, 40)]);
        assert_eq!(runs(s, &(0..1), &(0..2), &(1..3)), vec![(5, 10), (25, 10)]);
    }
}
