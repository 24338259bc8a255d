//! The GPU handle, tensors and conv objects are shared between threads: 8 threads at once run
//! the same convolutions (shared objects, shared input) and their own, and every result is
//! checked against the reference. Small-integer data makes every result exact, so a result
//! mixed up between threads or corrupted by a race cannot pass.

mod common;

use std::sync::Barrier;

use common::{assert_matches, gpu, ConvData};
use sepconv::{
    cpu::reference, Activation, Conv2d, Conv2dSpec, Gpu, GpuTensor, Padding, SeparableBlock, Shape,
    Tensor,
};

/// Compile-time check, repeated here so that the test suite fails to build if a public type
/// stops being shareable.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Gpu>();
    send_sync::<GpuTensor>();
    send_sync::<Conv2d>();
    send_sync::<SeparableBlock>();
};

const THREADS: usize = 8;
const ROUNDS: usize = 6;

struct Job {
    spec: Conv2dSpec,
    data: ConvData,
    want: Tensor,
}

impl Job {
    fn new(spec: Conv2dSpec, input: Shape, seed: u64) -> Self {
        let data = ConvData::new(&spec, input, seed, true);
        let want = reference::conv2d(&spec, &data.input, &data.weights, data.bias()).unwrap();
        Self { spec, data, want }
    }

    fn conv(&self) -> Conv2d {
        Conv2d::new(gpu(), self.spec, &self.data.weights, self.data.bias()).unwrap()
    }
}

#[test]
fn eight_threads_run_shared_and_own_convolutions() {
    let gpu = gpu();
    // Shared between all threads: one conv of each kind and one input tensor per conv.
    let shared = [
        Job::new(
            Conv2dSpec::depthwise(12, [3, 3])
                .padding(Padding::uniform(1))
                .activation(Activation::Relu6),
            Shape::new(2, 12, 19, 17),
            1,
        ),
        Job::new(Conv2dSpec::pointwise(12, 20), Shape::new(2, 12, 19, 17), 2),
        Job::new(
            Conv2dSpec::new(12, 9, [5, 3])
                .stride([2, 1])
                .padding(Padding::explicit(2, 1, 1, 0))
                .groups(3),
            Shape::new(1, 12, 21, 14),
            3,
        ),
    ];
    let shared_convs: Vec<Conv2d> = shared.iter().map(Job::conv).collect();
    let shared_inputs: Vec<GpuTensor> = shared
        .iter()
        .map(|j| GpuTensor::from_tensor(gpu, &j.data.input).unwrap())
        .collect();
    let barrier = Barrier::new(THREADS);

    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (shared, shared_convs, shared_inputs, barrier) =
                (&shared, &shared_convs, &shared_inputs, &barrier);
            scope.spawn(move || {
                // Each thread also has a conv of its own, different in every thread.
                let own = Job::new(
                    Conv2dSpec::new(3 + t, 2 + t, [1 + t % 3, 3])
                        .padding(Padding::uniform(t % 2))
                        .groups(1),
                    Shape::new(1, 3 + t, 9 + t, 11),
                    100 + t as u64,
                );
                let own_conv = own.conv();
                barrier.wait();
                for round in 0..ROUNDS {
                    let case = |what: &str| format!("thread {t}, round {round}, {what}");
                    for (i, job) in shared.iter().enumerate() {
                        // The shared conv on the shared input…
                        let got = shared_convs[i].run(&shared_inputs[i]).unwrap();
                        assert_matches(
                            &case("shared"),
                            i as u64,
                            &got.read().unwrap(),
                            &job.want,
                            None,
                        );
                        // …and on an input this thread uploads itself, into a poisoned output.
                        let x = GpuTensor::from_tensor(gpu, &job.data.input).unwrap();
                        let y = GpuTensor::full(gpu, job.want.shape(), f32::NAN).unwrap();
                        shared_convs[i].run_into(&x, &y).unwrap();
                        assert_matches(
                            &case("own input"),
                            i as u64,
                            &y.read().unwrap(),
                            &job.want,
                            None,
                        );
                    }
                    let x = GpuTensor::from_tensor(gpu, &own.data.input).unwrap();
                    let got = own_conv.run(&x).unwrap().read().unwrap();
                    assert_matches(&case("own conv"), 100 + t as u64, &got, &own.want, None);
                }
            });
        }
    });
}

#[test]
fn conv_objects_move_to_other_threads() {
    // Built on one thread, used and dropped on another.
    let job = Job::new(
        Conv2dSpec::depthwise(5, [3, 3]).multiplier(2),
        Shape::new(1, 5, 8, 8),
        7,
    );
    let conv = job.conv();
    let x = GpuTensor::from_tensor(gpu(), &job.data.input).unwrap();
    let got = std::thread::spawn(move || conv.run(&x).unwrap().read().unwrap())
        .join()
        .unwrap();
    assert_matches("moved", 7, &got, &job.want, None);
}
