use super::*;

#[test]
fn channel_tiles_are_ones_the_shaders_have() {
    // OC_VEC4 is 1, 2, 4 or 8 in grouped.wgsl and pointwise.wgsl.
    for (c_in, c_out, k, groups) in [
        (32, 64, 1, 1),
        (1024, 1024, 1, 1),
        (4096, 8, 1, 1),
        (128, 128, 3, 32),
        (96, 256, 5, 2),
        (64, 64, 3, 1),
        (3, 13, 7, 1),
    ] {
        let spec = Conv2dSpec::new(c_in, c_out, [k, k]).groups(groups);
        let plan = Plan::new(&spec, 32).unwrap();
        let allowed: &[usize] = &[4, 8, 16, 32];
        assert!(
            allowed.contains(&plan.oc_tile),
            "{spec:?}: tile {}",
            plan.oc_tile
        );
        let oc_vec4 = plan
            .constants
            .iter()
            .find(|(n, _)| *n == "OC_VEC4")
            .unwrap()
            .1;
        assert_eq!(oc_vec4 as usize * 4, plan.oc_tile);
    }
}

#[test]
fn small_outputs_take_one_pixel_per_invocation() {
    // A 7×7 output with one 32-channel block per slice: two or four pixels per invocation
    // would leave one workgroup per dispatch. (Arguments: output, blocks per slice,
    // fewest workgroups wanted.)
    let spec = Conv2dSpec::pointwise(1024, 1024);
    let plan = Plan::new(&spec, 32).unwrap();
    assert_eq!(plan.pixels(Shape::new(1, 1024, 7, 7), 1, 2), 1);
    // With 16-invocation workgroups (CPU adapters) the same output keeps 2 pixels.
    let narrow = Plan::new(&spec, 16).unwrap();
    assert_eq!(narrow.pixels(Shape::new(1, 1024, 7, 7), 1, 2), 2);
    assert!(narrow.constants(2).contains(&("WORKGROUP_SIZE", 16)));
    assert_eq!(plan.pixels(Shape::new(1, 1024, 7, 7), 4, 4), 4);
    assert_eq!(plan.pixels(Shape::new(1, 1024, 14, 14), 1, 4), 2);
    assert_eq!(plan.pixels(Shape::new(1, 1024, 14, 14), 1, 2), 4);
    assert_eq!(plan.pixels(Shape::new(1, 1024, 28, 28), 1, 4), 4);
    assert_eq!(plan.pixels(Shape::new(8, 1024, 7, 7), 1, 4), 4);
    assert_eq!(plan.pixels(Shape::new(1, 1024, 28, 28), 1, 64), 1);
    let grouped = Plan::new(&Conv2dSpec::new(64, 64, [3, 3]).groups(2), 32).unwrap();
    assert_eq!(grouped.pixels(Shape::new(1, 64, 56, 56), 1, 4), 4);
    assert_eq!(grouped.pixels(Shape::new(1, 64, 13, 13), 1, 4), 1);
    assert_eq!(grouped.pixels(Shape::new(1, 64, 13, 13), 1, 2), 4);
    let depthwise = Plan::new(&Conv2dSpec::depthwise(8, [3, 3]), 32).unwrap();
    assert_eq!(depthwise.pixels(Shape::new(1, 8, 56, 56), 1, 2), 1);
    assert!(!depthwise.constants(1).iter().any(|(n, _)| *n == "PIXELS"));
}
