//! Temporary: times the fast CPU path on the benchmark layers (median per call).
use std::time::{Duration, Instant};

use sepconv::cpu::fast::Conv2dCpu;
use sepconv::{layers, Tensor};

fn median_time(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut warm = 0;
    while warm < 3 || start.elapsed() < Duration::from_millis(100) {
        f();
        warm += 1;
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    eprintln!("simd: {:?}", pulp::Arch::new());
    let filter: Vec<String> = std::env::args().skip(1).collect();
    let mut total = 0.0;
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    for l in &layers::LAYERS {
        if !filter.is_empty() && !filter.iter().any(|f| l.name.contains(f.as_str())) {
            continue;
        }
        let spec = l.spec();
        let shape = l.input_shape();
        let x = Tensor::new(shape, (0..shape.len().unwrap()).map(|_| rnd()).collect()).unwrap();
        let w: Vec<f32> = (0..spec.weight_count()).map(|_| rnd()).collect();
        let b: Vec<f32> = (0..spec.c_out).map(|_| rnd()).collect();
        let conv = Conv2dCpu::new(spec, &w, Some(&b)).unwrap();
        let mut out = conv.run(&x).unwrap();
        let t = median_time(|| conv.run_into(&x, &mut out).unwrap());
        total += t;
        println!(
            "{:18} {:10} {:8.3} ms {:7.1} GFLOP/s",
            l.name,
            spec.kind().to_string(),
            t * 1e3,
            l.flops() as f64 / t / 1e9
        );
    }
    println!("total {:.3} ms", total * 1e3);
}
