//! Counts the compute dispatches one run of each network with residual adds records, with
//! the adds folded into their producers' epilogues and run as ops of their own, under pinned
//! kernels (`Tuning::pinned()`: uniform windows, no fusion; and the tiled product with fused
//! blocks, which a device with fewer than 7 storage buffers per stage refuses) and measured ones
//! (`Tuning::auto()`; the counts then depend on what the adapter's timings chose), and the
//! median wall time of a run (submit to done) each way, the two interleaved.
//!
//! Run with: `cargo run --release --example dispatches`

mod common;

use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{efficientnet_lite, mobilenet_v2, resnet50, Network, Op};
use sepconv::{ConvKernel, Fusion, Gpu, GpuNetwork, GpuTensor, Tuning};
use std::time::Instant;

/// Timed runs of each network each way.
const RUNS: usize = 7;

fn main() -> sepconv::Result<()> {
    let networks: Vec<Network> = vec![mobilenet_v2(1.0, 224)?, efficientnet_lite(0)?, resnet50()?];
    println!(
        "| network | tuning | residual adds | dispatches unfolded | folded | saved \
         | median ms unfolded | folded |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let tiled_fused = Tuning::pinned()
        .with_kernel(ConvKernel::TiledGemm)
        .with_fusion(Fusion::Always);
    for (name, tuning) in [
        ("pinned windows", Tuning::pinned()),
        ("pinned tiled + fused", tiled_fused),
        ("auto", Tuning::auto()),
    ] {
        // A device per tuning, so that each network's convs take it.
        let gpu = Gpu::new()?;
        gpu.tuner().set_tuning(tuning);
        for net in &networks {
            let weights = NetworkWeights::random(net, 1)?;
            let x = GpuTensor::from_tensor(&gpu, &random_input(net.input_shape(), 1)?)?;
            let adds = net
                .nodes()
                .iter()
                .filter(|n| matches!(n.op, Op::Add { .. }))
                .count();
            let folded = GpuNetwork::new(&gpu, net, &weights)?;
            let unfolded = GpuNetwork::new(&gpu, net, &weights)?.with_folded_adds(false);
            // One run each first: under auto it measures and settles its choices.
            for network in [&folded, &unfolded] {
                network.run(&x)?;
                gpu.wait()?;
            }
            let count = |network: &GpuNetwork| -> sepconv::Result<u64> {
                let before = gpu.dispatch_count();
                network.run(&x)?;
                gpu.wait()?;
                Ok(gpu.dispatch_count() - before)
            };
            let (d_unfolded, d_folded) = (count(&unfolded)?, count(&folded)?);
            let mut times = [Vec::new(), Vec::new()];
            for _ in 0..RUNS {
                for (network, times) in [&unfolded, &folded].into_iter().zip(&mut times) {
                    let start = Instant::now();
                    network.run(&x)?;
                    gpu.wait()?;
                    times.push(start.elapsed().as_secs_f64() * 1e3);
                }
            }
            let [t_unfolded, t_folded] = times.map(|mut t| common::median(&mut t));
            println!(
                "| {} | {name} | {adds} | {d_unfolded} | {d_folded} | {} | {t_unfolded:.1} \
                 | {t_folded:.1} |",
                net.name(),
                d_unfolded as i64 - d_folded as i64
            );
        }
        gpu.tuner().flush();
    }
    Ok(())
}
