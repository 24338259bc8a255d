use super::*;

#[test]
fn weights_transpose_per_group_into_padded_tiles() {
    // 2 groups × 2 output channels, k = 3 rows each: w[oc][r] = 10·oc + r.
    let weights: Vec<f32> = (0..4)
        .flat_map(|oc| (0..3).map(move |r| (10 * oc + r) as f32))
        .collect();
    let t = transpose_weights(&weights, 2, 3, 4);
    let (k_rows, oc_padded) = (TILE_K, TILE_OC);
    assert_eq!(t.len(), 2 * k_rows * oc_padded);
    for oc in 0..4 {
        let (g, o) = (oc / 2, oc % 2);
        for r in 0..3 {
            assert_eq!(t[(g * k_rows + r) * oc_padded + o], (10 * oc + r) as f32);
        }
    }
    // Everything else is padding.
    assert_eq!(t.iter().filter(|&&w| w != 0.0).count(), 4 * 3 - 1);
}

#[test]
fn bias_pads_per_group() {
    let b = pad_bias(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3);
    assert_eq!(b.len(), 3 * TILE_OC);
    for g in 0..3 {
        assert_eq!(
            &b[g * TILE_OC..g * TILE_OC + 2],
            &[1.0 + 2.0 * g as f32, 2.0 + 2.0 * g as f32]
        );
        assert!(b[g * TILE_OC + 2..(g + 1) * TILE_OC]
            .iter()
            .all(|&x| x == 0.0));
    }
}

#[test]
fn auto_slices_fill_the_device_with_enough_steps_each() {
    let auto = SplitK::Auto;
    // 32 tiles (MobileNet's 7×7 × 1024 layer), 128 steps: 16 slices reach 512.
    assert_eq!(slices(auto, 32, 128, 512, 100), 16);
    // Enough tiles already, or too few steps to keep 8 each: not split.
    assert_eq!(slices(auto, 600, 128, 512, 100), 1);
    assert_eq!(slices(auto, 1, 15, 512, 100), 1);
    // One slice per 8 steps at most, and no more than the slots that fit.
    assert_eq!(slices(auto, 1, 40, 512, 100), 5);
    assert_eq!(slices(auto, 1, 40, 512, 3), 3);
    // On a CPU adapter with 2 threads, a one-tile product gets 2.
    assert_eq!(slices(auto, 1, 128, 2, 100), 2);
}

#[test]
fn pinned_slices_are_capped_by_steps_and_slots() {
    let four = SplitK::Parts(std::num::NonZeroUsize::new(4).unwrap());
    assert_eq!(slices(four, 1000, 9, 512, 100), 4);
    assert_eq!(slices(four, 1, 2, 512, 100), 2);
    assert_eq!(slices(four, 1, 9, 512, 1), 1);
    assert_eq!(slices(four, 1, 9, 512, 0), 1);
}

#[test]
fn slices_are_at_most_one_per_step() {
    let spec = Conv2dSpec::pointwise(70, 72);
    let p = TileParams::product(&spec, 70, Shape::new(1, 70, 5, 3), Shape::new(1, 72, 5, 3));
    // Not split; 70 rows are 9 steps.
    assert_eq!((p.k_slices, p.splits(), p.steps()), (1, 1, 9));
    // 4 slices (steps 2, 2, 2, 3 in the shader), each a copy of the tiles.
    let s = p.split(4);
    assert_eq!(s.splits(), 4);
    assert_eq!(s.workgroups(), 4 * p.workgroups());
    // More slices than steps: one step each; none is 1.
    assert_eq!(p.split(20).splits(), 9);
    assert_eq!(p.split(0).splits(), 1);
}

#[test]
fn workgroups_cover_every_group_and_pixel_tile() {
    let spec = Conv2dSpec::new(64, 192, [3, 3]).groups(2);
    let p = TileParams::product(
        &spec,
        32 * 9,
        Shape::new(2, 64, 9, 9),
        Shape::new(2, 192, 7, 7),
    );
    // 96 channels per group → 2 tiles of 64; 98 pixels → 4 tiles of 32.
    assert_eq!((p.oc_tiles, p.groups, p.pixels, p.oc_vec4), (2, 2, 98, 32));
    assert_eq!(p.workgroups(), 2 * 2 * 4);
}
