//! Counts the compute dispatches one run of each network with residual adds records, with
//! the adds folded into their producers' epilogues and run as ops of their own, under pinned
//! kernels (`Tuning::pinned()`: uniform windows, no fusion) and measured ones
//! (`Tuning::auto()`; the counts then depend on what the adapter's timings chose).
//!
//! Run with: `cargo run --release --example dispatches`

use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{efficientnet_lite, mobilenet_v2, resnet50, Network, Op};
use sepconv::{Gpu, GpuNetwork, GpuTensor, Tuning};

fn main() -> sepconv::Result<()> {
    let networks: Vec<Network> = vec![mobilenet_v2(1.0, 224)?, efficientnet_lite(0)?, resnet50()?];
    println!("| network | tuning | residual adds | dispatches unfolded | folded | saved |");
    println!("|---|---|---:|---:|---:|---:|");
    for (name, tuning) in [("pinned", Tuning::pinned()), ("auto", Tuning::auto())] {
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
            println!(
                "| {} | {name} | {adds} | {d_unfolded} | {d_folded} | {} |",
                net.name(),
                d_unfolded - d_folded
            );
        }
        gpu.tuner().flush();
    }
    Ok(())
}
