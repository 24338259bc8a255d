//! The non-convolution GPU ops (`sepconv::ops::gpu`) against their CPU references
//! (`sepconv::ops::cpu`), on seeded normal data, with NaN-poisoned outputs so an element the
//! shader skips fails. Add, concatenation, activation, max pooling and channel shuffle do at
//! most one `f32` rounding per element, exactly as the reference, so they must match bit for
//! bit; averages get a tolerance derived below.

mod common;

use common::{assert_matches, gpu, normal};
use sepconv::ops::{Pool2d, PoolKind};
use sepconv::{ops::gpu as gpu_ops, Activation, Error, GpuTensor, Padding, Shape, Tensor};

fn tensor(seed: u64, shape: Shape, scale: f32) -> Tensor {
    let data = normal(seed, shape.len().unwrap())
        .into_iter()
        .map(|v| v * scale)
        .collect();
    Tensor::new(shape, data).unwrap()
}

fn upload(t: &Tensor) -> GpuTensor {
    GpuTensor::from_tensor(gpu(), t).unwrap()
}

fn poisoned(shape: Shape) -> GpuTensor {
    GpuTensor::full(gpu(), shape, f32::NAN).unwrap()
}

const ACTIVATIONS: [Activation; 3] = [Activation::None, Activation::Relu, Activation::Relu6];

#[test]
fn add_matches_reference_exactly() {
    // Odd sizes, batch 2; ×4 so ReLU6 clamps some sums.
    let shape = Shape::new(2, 13, 7, 5);
    for (i, act) in ACTIVATIONS.into_iter().enumerate() {
        let seed = 100 + i as u64;
        let (a, b) = (tensor(seed, shape, 4.0), tensor(seed + 50, shape, 4.0));
        let want = sepconv::ops::cpu::add(&a, &b, act).unwrap();
        let out = poisoned(shape);
        gpu_ops::add_into(&upload(&a), &upload(&b), &out, act).unwrap();
        assert_matches(
            &format!("add {act:?}"),
            seed,
            &out.read().unwrap(),
            &want,
            None,
        );
    }
}

#[test]
fn concat_matches_reference_exactly() {
    // Different channel counts on each side, batch 2, so a wrong batch stride shows.
    let (sa, sb) = (Shape::new(2, 3, 5, 7), Shape::new(2, 13, 5, 7));
    for (i, act) in ACTIVATIONS.into_iter().enumerate() {
        let seed = 200 + i as u64;
        let (a, b) = (tensor(seed, sa, 4.0), tensor(seed + 50, sb, 4.0));
        let want = sepconv::ops::cpu::concat(&a, &b, act).unwrap();
        assert_eq!(want.shape(), Shape::new(2, 16, 5, 7));
        let out = poisoned(want.shape());
        gpu_ops::concat_into(&upload(&a), &upload(&b), &out, act).unwrap();
        assert_matches(
            &format!("concat {act:?}"),
            seed,
            &out.read().unwrap(),
            &want,
            None,
        );
    }
}

#[test]
fn activation_matches_reference_exactly() {
    let shape = Shape::new(3, 5, 4, 9);
    for (i, act) in ACTIVATIONS.into_iter().enumerate() {
        let seed = 300 + i as u64;
        let x = tensor(seed, shape, 5.0);
        let want = sepconv::ops::cpu::activation(&x, act).unwrap();
        let out = poisoned(shape);
        gpu_ops::activation_into(&upload(&x), &out, act).unwrap();
        assert_matches(
            &format!("activation {act:?}"),
            seed,
            &out.read().unwrap(),
            &want,
            None,
        );
    }
    // The reference itself: ReLU6 clamps both ways.
    let x = Tensor::new(Shape::new(1, 1, 1, 3), vec![-1.0, 3.0, 7.0]).unwrap();
    let y = sepconv::ops::cpu::activation(&x, Activation::Relu6).unwrap();
    assert_eq!(y.data(), &[0.0, 3.0, 6.0]);
}

/// Tolerance for an average of `k` values computed in `f32` on the GPU against the `f64`
/// reference: the sum of `k` terms has error below `8·√k·u·Σ|x|` with overwhelming
/// probability (the random-walk bound used for convolutions in tests/common), the division
/// adds `u·|y|`, and the reference rounds once more (`u·|y|`). `Σ|x|/k` comes from the same
/// pool over `|x|`.
fn avg_tolerance(x: &Tensor, pool: &Pool2d, want: &Tensor) -> Vec<f32> {
    let abs = Tensor::new(x.shape(), x.data().iter().map(|v| v.abs()).collect()).unwrap();
    let mean_abs = sepconv::ops::cpu::pool2d(&abs, pool).unwrap();
    let k = (pool.kernel[0] * pool.kernel[1]) as f32;
    let u = f32::EPSILON / 2.0;
    mean_abs
        .data()
        .iter()
        .zip(want.data())
        .map(|(&m, &y)| 8.0 * k.sqrt() * u * m + 2.0 * u * y.abs())
        .collect()
}

fn check_pool(name: &str, seed: u64, input: Shape, pool: Pool2d) {
    let x = tensor(seed, input, 1.0);
    let want = sepconv::ops::cpu::pool2d(&x, &pool).unwrap();
    let out = poisoned(want.shape());
    gpu_ops::pool2d_into(&upload(&x), &pool, &out).unwrap();
    let got = out.read().unwrap();
    let case = format!("{name} [{pool:?} on {input}]");
    match pool.kind {
        PoolKind::Max => assert_matches(&case, seed, &got, &want, None),
        PoolKind::Avg { .. } => {
            let tol = avg_tolerance(&x, &pool, &want);
            assert_matches(&case, seed, &got, &want, Some(&tol));
        }
    }
}

#[test]
fn max_pooling_matches_reference_exactly() {
    // ResNet / ShuffleNet stem pool on odd, non-square sizes; Xception's SAME pool; AlexNet's
    // unpadded one.
    let same = Padding::same();
    check_pool(
        "resnet",
        1,
        Shape::new(2, 5, 9, 7),
        Pool2d::max([3, 3], [2, 2], Padding::uniform(1)),
    );
    check_pool(
        "xception",
        2,
        Shape::new(1, 6, 8, 11),
        Pool2d::max([3, 3], [2, 2], same),
    );
    check_pool(
        "alexnet",
        3,
        Shape::new(1, 4, 13, 13),
        Pool2d::max([3, 3], [2, 2], Padding::valid()),
    );
    check_pool(
        "2x1",
        4,
        Shape::new(3, 2, 6, 5),
        Pool2d::max([2, 1], [1, 2], Padding::valid()),
    );
}

#[test]
fn average_pooling_matches_reference() {
    let pad1 = Padding::uniform(1);
    // ShuffleNet's stride-2 shortcut (count_include_pad, PyTorch's default).
    check_pool(
        "shufflenet",
        5,
        Shape::new(2, 7, 9, 8),
        Pool2d::avg([3, 3], [2, 2], pad1),
    );
    // TensorFlow-style: padding not in the divisor.
    let exclude = Pool2d {
        kind: PoolKind::Avg {
            count_include_pad: false,
        },
        ..Pool2d::avg([3, 3], [2, 2], Padding::same())
    };
    check_pool("exclude pad", 6, Shape::new(1, 3, 8, 9), exclude);
    // Global average pooling: MobileNet's 7×7 and a large 56×56 plane (3136 terms).
    check_pool(
        "gap 7",
        7,
        Shape::new(2, 1024, 7, 7),
        Pool2d::global_avg(7, 7),
    );
    check_pool(
        "gap 56",
        8,
        Shape::new(1, 6, 56, 56),
        Pool2d::global_avg(56, 56),
    );
}

#[test]
fn padding_counts_differently_in_the_two_averages() {
    // A corner window of a 3×3 pool with padding 1 holds 4 image pixels: the reference divides
    // by 9 with count_include_pad, by 4 without. The GPU follows (checked above); this pins the
    // reference to the definition.
    let x = Tensor::full(Shape::new(1, 1, 2, 2), 1.0).unwrap();
    let incl = Pool2d::avg([3, 3], [1, 1], Padding::uniform(1));
    let excl = Pool2d {
        kind: PoolKind::Avg {
            count_include_pad: false,
        },
        ..incl
    };
    assert_eq!(
        sepconv::ops::cpu::pool2d(&x, &incl).unwrap().at(0, 0, 0, 0),
        4.0 / 9.0
    );
    assert_eq!(
        sepconv::ops::cpu::pool2d(&x, &excl).unwrap().at(0, 0, 0, 0),
        1.0
    );
}

#[test]
fn channel_shuffle_matches_reference_exactly() {
    for (i, (shape, groups)) in [
        (Shape::new(2, 12, 5, 3), 3),
        (Shape::new(1, 12, 4, 4), 4),
        (Shape::new(2, 60, 7, 7), 3), // ShuffleNet stage 2's bottleneck
        (Shape::new(1, 5, 3, 3), 1),  // one group: identity
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 400 + i as u64;
        let x = tensor(seed, shape, 1.0);
        let want = sepconv::ops::cpu::channel_shuffle(&x, groups).unwrap();
        let out = poisoned(shape);
        gpu_ops::channel_shuffle_into(&upload(&x), groups, &out).unwrap();
        assert_matches(
            &format!("shuffle g={groups}"),
            seed,
            &out.read().unwrap(),
            &want,
            None,
        );
    }
}

#[test]
fn channel_shuffle_reference_moves_whole_planes_in_the_papers_order() {
    // Channel c holds the constant c; after a shuffle with 2 groups of 3 the order is
    // [0 3 1 4 2 5] (groups interleaved), and shuffling with 3 groups undoes it.
    let shape = Shape::new(1, 6, 2, 2);
    let data = (0..6).flat_map(|c| [c as f32; 4]).collect();
    let x = Tensor::new(shape, data).unwrap();
    let y = sepconv::ops::cpu::channel_shuffle(&x, 2).unwrap();
    let order: Vec<f32> = (0..6).map(|c| y.at(0, c, 1, 1)).collect();
    assert_eq!(order, [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    assert_eq!(sepconv::ops::cpu::channel_shuffle(&y, 3).unwrap(), x);
}

#[test]
fn ops_chain_on_the_gpu() {
    // shuffle(g) then shuffle(c/g) is the identity, without leaving the GPU.
    let x = tensor(500, Shape::new(2, 24, 3, 5), 1.0);
    let gx = upload(&x);
    let y = gpu_ops::channel_shuffle(&gpu_ops::channel_shuffle(&gx, 3).unwrap(), 8).unwrap();
    assert_eq!(y.read().unwrap(), x);
}

#[test]
fn add_spreads_past_the_per_dimension_workgroup_limit() {
    // 17·1000·1000 elements = 66,407 workgroups of 256 > 65,535: the grid spreads over y and
    // the shader must rebuild the flat index from both dimensions.
    let shape = Shape::new(1, 17, 1000, 1000);
    let a = tensor(600, shape, 1.0);
    let b = tensor(601, shape, 1.0);
    let want = sepconv::ops::cpu::add(&a, &b, Activation::Relu).unwrap();
    let out = poisoned(shape);
    gpu_ops::add_into(&upload(&a), &upload(&b), &out, Activation::Relu).unwrap();
    assert_matches("add, 2-D grid", 600, &out.read().unwrap(), &want, None);
}

#[test]
fn ops_reject_bad_shapes() {
    let a = upload(&tensor(700, Shape::new(1, 4, 3, 3), 1.0));
    let b = upload(&tensor(701, Shape::new(1, 4, 3, 2), 1.0));
    assert!(matches!(
        gpu_ops::add(&a, &b, Activation::None),
        Err(Error::Incompatible { .. })
    ));
    assert!(matches!(
        gpu_ops::concat(&a, &b, Activation::None),
        Err(Error::Incompatible { .. })
    ));
    assert!(matches!(
        gpu_ops::channel_shuffle(&a, 3),
        Err(Error::GroupsDoNotDivide { .. })
    ));
    let wrong = poisoned(Shape::new(1, 4, 3, 2));
    assert!(matches!(
        gpu_ops::add_into(&a, &a, &wrong, Activation::None),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        gpu_ops::pool2d(&a, &Pool2d::max([3, 3], [1, 1], Padding::uniform(2))),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        gpu_ops::pool2d(&a, &Pool2d::max([5, 5], [1, 1], Padding::valid())),
        Err(Error::EmptyOutput { .. })
    ));
}
