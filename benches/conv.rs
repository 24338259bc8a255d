//! Run with: `cargo bench --bench conv`
//!
//! Criterion benchmarks on the 41 layers of [`sepconv::networks::layers`], each measured up to four ways:
//!
//! | id | what is timed |
//! |---|---|
//! | `<layer>/cpu_reference` | the `f64` reference (only layers under 5 M MACs; it runs at ~1 GMAC/s) |
//! | `<layer>/cpu_fast` | [`sepconv::cpu::fast::Conv2dCpu::run_into`] on all rayon threads |
//! | `<layer>/gpu_resident` | GPU kernel with input, weights and output resident: `N` dispatches submitted, then one wait |
//! | `<layer>/gpu_end_to_end` | upload the input, dispatch, read the output back |
//!
//! Throughput is in MACs (criterion reports "Kelem/s" = thousands of MACs per second; FLOP/s is
//! twice that). With no GPU adapter the GPU benchmarks print why and are skipped.
//!
//! The default run takes a few minutes on 2 cores (10 samples, 1 s each). Filters:
//! - one layer: `cargo bench --bench conv -- mbv1_dw1/`
//! - one path on every layer: `cargo bench --bench conv -- cpu_fast`
//! - a family: `cargo bench --bench conv -- 'mbv1_pw|xception'`
//! - shorter still: add `--quick` after `--` (criterion's quick mode), e.g.
//!   `cargo bench --bench conv -- --quick cpu_fast`
//!
//! Data: uniform in [-1, 1) from a fixed seed (never zeros), bias on, no activation.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sepconv::cpu::{fast::Conv2dCpu, reference};
use sepconv::networks::layers::{Layer, LAYERS};
use sepconv::{Conv2d, Gpu, GpuTensor, Tensor};

/// Layers above this many MACs skip the reference benchmark.
const REFERENCE_MAX_MACS: u64 = 5_000_000;

/// Seeded uniform values in [-1, 1) (xorshift64*).
fn uniform(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            v as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

struct LayerData {
    x: Tensor,
    w: Vec<f32>,
    b: Vec<f32>,
}

fn layer_data(i: usize, l: &Layer) -> LayerData {
    let spec = l.spec();
    let shape = l.input_shape();
    let len = shape.len().unwrap_or(0);
    LayerData {
        x: Tensor::new(shape, uniform(3 * i as u64 + 1, len)).expect("layer input"),
        w: uniform(3 * i as u64 + 2, spec.weight_count()),
        b: uniform(3 * i as u64 + 3, spec.c_out),
    }
}

fn benches(c: &mut Criterion) {
    let gpu = match Gpu::new() {
        Ok(gpu) => {
            eprintln!("GPU: {} ({:?})", gpu.adapter_name(), gpu.backend());
            Some(gpu)
        }
        Err(e) => {
            eprintln!("no GPU adapter, GPU benchmarks skipped: {e}");
            None
        }
    };
    for (i, l) in LAYERS.iter().enumerate() {
        let spec = l.spec();
        let d = layer_data(i, l);
        let mut group = c.benchmark_group(l.name);
        group
            .throughput(Throughput::Elements(l.macs))
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));

        if l.macs <= REFERENCE_MAX_MACS {
            group.bench_function(BenchmarkId::from_parameter("cpu_reference"), |bench| {
                bench.iter(|| reference::conv2d(&spec, &d.x, &d.w, Some(&d.b)).expect("reference"))
            });
        }

        let cpu = Conv2dCpu::new(spec, &d.w, Some(&d.b)).expect("cpu conv");
        let mut out = cpu.run(&d.x).expect("cpu run");
        group.bench_function(BenchmarkId::from_parameter("cpu_fast"), |bench| {
            bench.iter(|| cpu.run_into(&d.x, &mut out).expect("cpu run"))
        });

        if let Some(gpu) = &gpu {
            let conv = Conv2d::new(gpu, spec, &d.w, Some(&d.b)).expect("gpu conv");
            let x = GpuTensor::from_tensor(gpu, &d.x).expect("upload");
            let y = conv.run(&x).expect("first run");
            gpu.wait().expect("wait");
            group.bench_function(BenchmarkId::from_parameter("gpu_resident"), |bench| {
                bench.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        conv.run_into(&x, &y).expect("dispatch");
                    }
                    gpu.wait().expect("wait");
                    start.elapsed()
                })
            });
            group.bench_function(BenchmarkId::from_parameter("gpu_end_to_end"), |bench| {
                bench.iter(|| {
                    let x = GpuTensor::from_tensor(gpu, &d.x).expect("upload");
                    conv.run(&x).and_then(|y| y.read()).expect("run and read")
                })
            });
        }
        group.finish();
    }
}

criterion_group!(conv, benches);
criterion_main!(conv);
