//! f16 against f32 storage on the 41 benchmark layers (`sepconv::networks::layers`): each
//! layer's GPU conv on resident tensors, once with f32 tensors and weights and once with f16
//! (f32 sums either way), with the protocol of `examples/report.rs` (first call alone,
//! warm-up ≥ 3 calls and ≥ 0.1 s, then calls timed one by one until ≥ 0.3 s and ≥ 5 calls;
//! the median per call). The two precisions of a layer are timed back to back, f32 first in
//! even rounds and f16 first in odd ones, so that slow drift of the machine falls on both.
//!
//! ```text
//! cargo run --release --example precision -- [--only a,b] [--rounds N]
//! ```
//!
//! Prints one tab-separated line per layer and round: the layer, its kind, the kernel each
//! precision ran (`ConvKernel::Auto` measures per precision), both medians in ms, the CPU time
//! per call of each (Linux; on a software adapter, the driver's threads), f16 ÷ f32, and the
//! largest difference of the f16 output from the f32 one relative to the f32 output's RMS
//! (the f16 result must be an f16 rounding of the same conv, not garbage: at most 1e-2).
//! Then the totals of medians. Needs an adapter with `SHADER_F16` (lavapipe has it).

mod common;

use common::{time_calls, uniform, BoxError};
use sepconv::networks::layers::LAYERS;
use sepconv::{Conv2d, ConvKind, Gpu, GpuTensor, Precision, Tensor};

/// One precision's run of one layer: the kernel, the median ms, the CPU ms per call, the
/// output.
struct Run {
    kernel: String,
    ms: f64,
    cpu_ms: Option<f64>,
    output: Tensor,
}

fn run(gpu: &Gpu, conv: &Conv2d, x: &Tensor, precision: Precision) -> Result<Run, BoxError> {
    let gx = GpuTensor::from_tensor_as(gpu, x, precision)?;
    let shape = conv.output_shape(x.shape())?;
    let gy = GpuTensor::full_as(gpu, shape, f32::NAN, precision)?;
    let timing = time_calls(|| {
        conv.run_into(&gx, &gy)?;
        Ok(gpu.wait()?)
    })?;
    let kernel = match conv.kind() {
        ConvKind::Depthwise { .. } => "-".to_string(),
        _ => conv
            .chosen_kernel(x.shape())
            .map_or("?".into(), |k| format!("{k:?}")),
    };
    Ok(Run {
        kernel,
        ms: timing.median * 1e3,
        cpu_ms: timing.cpu_per_call.map(|s| s * 1e3),
        output: gy.read()?,
    })
}

fn main() -> Result<(), BoxError> {
    let mut only: Option<Vec<String>> = None;
    let mut rounds = 1;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => {
                let v = args.next().ok_or("--only needs a value")?;
                only = Some(v.split(',').map(str::to_owned).collect());
            }
            "--rounds" => rounds = args.next().ok_or("--rounds needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: precision [--only a,b] [--rounds N]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    let gpu = Gpu::new()?;
    println!("# adapter {} ({:?})", gpu.adapter_name(), gpu.backend());
    if !gpu.supports_f16() {
        return Err("this adapter has no SHADER_F16: f16 cannot run here".into());
    }
    let cpu = |c: Option<f64>| c.map_or("-".into(), |c| format!("{c:.2}"));
    println!("round\tlayer\tkind\tkernel_f32\tkernel_f16\tf32_ms\tf16_ms\tf32_cpu_ms\tf16_cpu_ms\tf16/f32\tmax_diff/rms");
    for round in 0..rounds {
        let (mut total32, mut total16) = (0.0, 0.0);
        for (i, l) in LAYERS.iter().enumerate() {
            if only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|n| n == l.name))
            {
                continue;
            }
            let spec = l.spec();
            let shape = l.input_shape();
            let x = Tensor::new(shape, uniform(3 * i as u64 + 1, shape.len()?))?;
            let w = uniform(3 * i as u64 + 2, spec.weight_count());
            let b = uniform(3 * i as u64 + 3, spec.c_out);
            let conv32 = Conv2d::new(&gpu, spec, &w, Some(&b))?;
            let conv16 = Conv2d::new(&gpu, spec, &w, Some(&b))?.with_precision(Precision::F16)?;
            let (r32, r16) = if round % 2 == 0 {
                let r32 = run(&gpu, &conv32, &x, Precision::F32)?;
                (r32, run(&gpu, &conv16, &x, Precision::F16)?)
            } else {
                let r16 = run(&gpu, &conv16, &x, Precision::F16)?;
                (run(&gpu, &conv32, &x, Precision::F32)?, r16)
            };
            let n = r32.output.data().len() as f64;
            let rms = (r32
                .output
                .data()
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                / n)
                .sqrt();
            let diff = r16
                .output
                .data()
                .iter()
                .zip(r32.output.data())
                .map(|(a, b)| f64::from((a - b).abs()))
                .fold(0f64, f64::max)
                / rms;
            if diff.is_nan() || diff > 1e-2 {
                return Err(
                    format!("{}: f16 output off the f32 one ({diff:e} of rms)", l.name).into(),
                );
            }
            total32 += r32.ms;
            total16 += r16.ms;
            println!(
                "{round}\t{}\t{}\t{}\t{}\t{:.3}\t{:.3}\t{}\t{}\t{:.2}\t{diff:.1e}",
                l.name,
                spec.kind(),
                r32.kernel,
                r16.kernel,
                r32.ms,
                r16.ms,
                cpu(r32.cpu_ms),
                cpu(r16.cpu_ms),
                r16.ms / r32.ms
            );
        }
        println!(
            "{round}\ttotal\t\t\t\t{total32:.1}\t{total16:.1}\t\t\t{:.2}\t",
            total16 / total32
        );
    }
    Ok(())
}
