//! Weight and bias layouts the register-blocked kernels read, made once per `Conv2d`.
//!
//! The pointwise and grouped kernels give each invocation `tile` output channels of one group
//! and read, per input tap, the `tile` weights of those channels as consecutive vec4s. So the
//! PyTorch layout `[c_out, c_in/groups, kh, kw]` is rearranged to
//! `[group][oc_block][c_in/groups][kh][kw][tile]`, zero-padded where a group's channel count
//! is not a multiple of `tile`; the bias to `[group][oc_block][tile]`. Padded channels compute
//! zeros that the kernels never store.

use crate::spec::Conv2dSpec;

/// Output-channel blocks per group for a tile of `tile` channels.
pub(crate) fn oc_blocks_per_group(spec: &Conv2dSpec, tile: usize) -> usize {
    spec.c_out_per_group().div_ceil(tile)
}

/// Weights rearranged to `[group][oc_block][c_in/groups][kh][kw][tile]`.
pub(crate) fn tile_weights(spec: &Conv2dSpec, weights: &[f32], tile: usize) -> Vec<f32> {
    let cin_g = spec.c_in_per_group();
    let cout_g = spec.c_out_per_group();
    let taps = spec.kernel[0] * spec.kernel[1];
    let blocks = oc_blocks_per_group(spec, tile);
    let mut packed = vec![0f32; spec.groups * blocks * cin_g * taps * tile];
    for g in 0..spec.groups {
        for ocg in 0..cout_g {
            let (block, lane) = (ocg / tile, ocg % tile);
            let oc = g * cout_g + ocg;
            for icg in 0..cin_g {
                for tap in 0..taps {
                    let src = (oc * cin_g + icg) * taps + tap;
                    let dst = ((((g * blocks + block) * cin_g + icg) * taps + tap) * tile) + lane;
                    packed[dst] = weights[src];
                }
            }
        }
    }
    packed
}

/// Bias rearranged to `[group][oc_block][tile]`.
pub(crate) fn tile_bias(spec: &Conv2dSpec, bias: &[f32], tile: usize) -> Vec<f32> {
    let cout_g = spec.c_out_per_group();
    let blocks = oc_blocks_per_group(spec, tile);
    let mut packed = vec![0f32; spec.groups * blocks * tile];
    for g in 0..spec.groups {
        for ocg in 0..cout_g {
            packed[(g * blocks + ocg / tile) * tile + ocg % tile] = bias[g * cout_g + ocg];
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_follow_groups_blocks_and_lanes() {
        // 2 groups, 3 input channels per group, 6 output channels per group, 1×2 kernel,
        // tile 4: blocks of 4 + 2 (padded) channels per group.
        let spec = Conv2dSpec::new(6, 12, [1, 2]).groups(2);
        let weights: Vec<f32> = (0..spec.weight_count()).map(|i| i as f32 + 1.0).collect();
        let packed = tile_weights(&spec, &weights, 4);
        assert_eq!(packed.len(), 2 * 2 * 3 * 2 * 4);
        // Weight of oc = 7 (group 1, channel 1 of the group: block 0, lane 1), icg 2, tap 1.
        let src = (7 * 3 + 2) * 2 + 1;
        let dst = (((2/* g·blocks + block */) * 3 + 2) * 2 + 1) * 4 + 1;
        assert_eq!(packed[dst], weights[src]);
        // oc = 11 is group 1, channel 5: block 1, lane 1; lanes 2 and 3 of that block are padding.
        let dst = (((3 * 3) * 2) * 4) + 1;
        assert_eq!(packed[dst], weights[(11 * 3) * 2]);
        assert_eq!(packed[dst + 1], 0.0);
        assert_eq!(packed[dst + 2], 0.0);
        // Every weight appears exactly once.
        let mut nonzero: Vec<f32> = packed.iter().copied().filter(|&v| v != 0.0).collect();
        nonzero.sort_by(f32::total_cmp);
        assert_eq!(nonzero, weights);

        let bias: Vec<f32> = (0..12).map(|i| i as f32 + 1.0).collect();
        let packed = tile_bias(&spec, &bias, 4);
        assert_eq!(
            packed,
            [1., 2., 3., 4., 5., 6., 0., 0., 7., 8., 9., 10., 11., 12., 0., 0.]
        );
    }
}
