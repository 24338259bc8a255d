//! MobileNet v1's body on the GPU, checked against the CPU reference, with a per-layer table.
//!
//! Run with: `cargo run --release --example mobilenet [-- --resolution 224 --batch 1]`
//!
//! Builds the first standard 3×3 stride-2 convolution and the 13 depthwise separable blocks
//! of MobileNet v1 (Howard et al. 2017, Table 1) with seeded random weights (ReLU6 fused, as
//! with batch norm folded in), runs the whole stack on the GPU with every activation staying
//! there, runs it again layer by layer on the CPU reference, checks that the two agree, and
//! prints shape, parameters, MACs and time per layer.

use std::time::Instant;

use sepconv::{
    accounting, cpu::reference, Activation, Conv2d, Conv2dSpec, Gpu, GpuTensor, Padding,
    SeparableBlock, Shape, Tensor,
};

/// (c_in, c_out, stride) of the 13 separable blocks.
const BLOCKS: [(usize, usize, usize); 13] = [
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
    (256, 512, 2),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 512, 1),
    (512, 1024, 2),
    (1024, 1024, 1),
];

struct Layer {
    name: String,
    spec: Conv2dSpec,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Deterministic pseudo-random values in [-scale, scale] (a small LCG keeps the example free
/// of extra dependencies).
fn values(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn layers() -> Vec<Layer> {
    let relu6 = Activation::Relu6;
    let mut specs = vec![(
        "conv1".to_string(),
        Conv2dSpec::new(3, 32, [3, 3])
            .stride([2, 2])
            .padding(Padding::uniform(1))
            .activation(relu6),
    )];
    for (i, &(c_in, c_out, stride)) in BLOCKS.iter().enumerate() {
        specs.push((
            format!("dw{}", i + 1),
            Conv2dSpec::depthwise(c_in, [3, 3])
                .stride([stride, stride])
                .padding(Padding::uniform(1))
                .activation(relu6),
        ));
        specs.push((
            format!("pw{}", i + 1),
            Conv2dSpec::pointwise(c_in, c_out).activation(relu6),
        ));
    }
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, spec))| {
            // He-style scaling keeps activations in a sensible range through 27 layers.
            let fan_in = (spec.c_in_per_group() * spec.kernel[0] * spec.kernel[1]) as f32;
            let scale = (6.0 / fan_in).sqrt();
            Layer {
                weights: values(2 * i as u64 + 1, spec.weight_count(), scale),
                bias: values(2 * i as u64 + 2, spec.c_out, 0.1),
                name,
                spec,
            }
        })
        .collect()
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v}"))
        })
        .unwrap_or(default)
}

fn median_ms(mut f: impl FnMut(), runs: usize) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() -> Result<(), sepconv::Error> {
    let resolution = arg("--resolution", 224);
    let batch = arg("--batch", 1);
    let runs = arg("--runs", 3).max(1);
    let gpu = Gpu::new()?;
    println!("MobileNet v1 body at {resolution}×{resolution}, batch {batch}");
    println!("adapter: {} ({:?})\n", gpu.adapter_name(), gpu.backend());

    let layers = layers();
    let convs: Vec<Conv2d> = layers
        .iter()
        .map(|l| Conv2d::new(&gpu, l.spec, &l.weights, Some(&l.bias)))
        .collect::<Result<_, _>>()?;
    let input_shape = Shape::new(batch, 3, resolution, resolution);
    let input = Tensor::new(input_shape, values(99, input_shape.len()?, 1.0))?;

    // CPU reference, layer by layer, keeping every activation for the per-layer check.
    let mut cpu_acts = vec![input.clone()];
    let mut cpu_ms = Vec::new();
    for l in &layers {
        let x = cpu_acts.last().expect("input");
        let t = Instant::now();
        let y = reference::conv2d(&l.spec, x, &l.weights, Some(&l.bias))?;
        cpu_ms.push(t.elapsed().as_secs_f64() * 1e3);
        cpu_acts.push(y);
    }

    // GPU per layer: each conv timed on the reference's input (submit + wait, data resident).
    let mut gpu_ms = Vec::new();
    let mut worst = 0f32;
    for (i, conv) in convs.iter().enumerate() {
        let x = GpuTensor::from_tensor(&gpu, &cpu_acts[i])?;
        let y = GpuTensor::full(&gpu, conv.output_shape(x.shape())?, f32::NAN)?;
        conv.run_into(&x, &y)?; // warm-up: pipeline creation
        gpu.wait()?;
        gpu_ms.push(median_ms(
            || {
                conv.run_into(&x, &y).expect("dispatch");
                gpu.wait().expect("wait");
            },
            runs,
        ));
        let got = y.read()?;
        worst = worst.max(max_rel_err(&got, &cpu_acts[i + 1]));
    }

    // The whole network on the GPU: conv1, then 13 separable blocks, one submission each,
    // activations resident until the final read.
    let blocks: Vec<SeparableBlock> = {
        let mut it = layers.iter().skip(1);
        let mut out = Vec::new();
        while let (Some(d), Some(p)) = (it.next(), it.next()) {
            out.push(SeparableBlock::new(
                Conv2d::new(&gpu, d.spec, &d.weights, Some(&d.bias))?,
                Conv2d::new(&gpu, p.spec, &p.weights, Some(&p.bias))?,
            )?);
        }
        out
    };
    let x0 = GpuTensor::from_tensor(&gpu, &input)?;
    let forward = || -> Result<GpuTensor, sepconv::Error> {
        let mut x = convs[0].run(&x0)?;
        for b in &blocks {
            x = b.run(&x)?;
        }
        Ok(x)
    };
    let final_gpu = forward()?.read()?;
    let end_to_end_err = max_rel_err(&final_gpu, cpu_acts.last().expect("output"));
    let net_ms = median_ms(
        || drop(forward().and_then(|y| y.read()).expect("forward")),
        runs,
    );

    println!(
        "{:<6} {:<11} {:>16} {:>16} {:>10} {:>13} {:>9} {:>9}",
        "layer", "kind", "input", "output", "params", "MACs", "CPU ms", "GPU ms"
    );
    let (mut params, mut macs, mut cpu_total, mut gpu_total) = (0u64, 0u64, 0.0, 0.0);
    for (i, l) in layers.iter().enumerate() {
        let cost = accounting::Cost::of(&l.spec, cpu_acts[i].shape())?;
        params += cost.params;
        macs += cost.macs;
        cpu_total += cpu_ms[i];
        gpu_total += gpu_ms[i];
        println!(
            "{:<6} {:<11} {:>16} {:>16} {:>10} {:>13} {:>9.2} {:>9.2}",
            l.name,
            l.spec.kind().to_string(),
            cpu_acts[i].shape().to_string(),
            cpu_acts[i + 1].shape().to_string(),
            cost.params,
            cost.macs,
            cpu_ms[i],
            gpu_ms[i]
        );
    }
    println!(
        "{:<6} {:<11} {:>16} {:>16} {:>10} {:>13} {:>9.2} {:>9.2}",
        "total", "", "", "", params, macs, cpu_total, gpu_total
    );
    println!("\nwhole stack on the GPU (upload, 14 submissions, read): {net_ms:.2} ms");
    println!("largest relative error per layer (GPU vs CPU f64 reference): {worst:.2e}");
    println!("largest relative error at the output, errors carried through 27 layers: {end_to_end_err:.2e}");
    let ok = worst < 1e-4 && end_to_end_err < 1e-3;
    println!("agreement: {}", if ok { "OK" } else { "FAILED" });
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Largest |got - want| relative to the largest |want| (activations span orders of magnitude,
/// so per-element relative error would be dominated by near-zero outputs).
fn max_rel_err(got: &Tensor, want: &Tensor) -> f32 {
    let scale = want
        .data()
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    got.data()
        .iter()
        .zip(want.data())
        .map(|(g, w)| {
            if g.is_nan() {
                f32::INFINITY
            } else {
                (g - w).abs() / scale
            }
        })
        .fold(0.0, f32::max)
}
