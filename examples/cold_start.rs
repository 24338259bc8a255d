//! The first run of a network in a new process, with and without the tuner's cache file.
//!
//! Run with: `cargo run --release --example cold_start [-- --cache DIR|off] [--runs K]`
//!
//! Builds MobileNet v1 1.0-224 with seeded weights on the default adapter, then times the
//! first `GpuNetwork::run` (submit to read-back, kernel choices measured or read from the
//! cache file) and the median of `K` runs after it (default 5). Run it twice with the same
//! `--cache DIR`: the second process finds every choice in the file, so its first run should
//! cost about what a warm run does. `--cache off` measures every choice, as the first process
//! on a machine does.

use std::time::{Duration, Instant};

use sepconv::networks::mobilenet_v1;
use sepconv::networks::weights::NetworkWeights;
use sepconv::{Gpu, GpuNetwork, GpuTensor, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cache: Option<String> = None;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--cache" => cache = Some(args.next().ok_or("--cache needs DIR or off")?),
            "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
            _ => return Err(format!("unknown option {flag}; see the file's header").into()),
        }
    }
    let gpu = Gpu::new()?;
    match cache.as_deref() {
        Some("off") => gpu.tuner().set_cache_dir(None),
        Some(dir) => gpu.tuner().set_cache_dir(Some(std::path::Path::new(dir))),
        None => {}
    }
    let net = mobilenet_v1(1.0, 224)?;
    let weights = NetworkWeights::random(&net, 1)?;
    let x = GpuTensor::from_tensor(&gpu, &Tensor::random(net.input_shape(), 1)?)?;
    let start = Instant::now();
    let gnet = GpuNetwork::new(&gpu, &net, &weights)?;
    let built = start.elapsed();
    let time_run = || -> Result<Duration, sepconv::Error> {
        let start = Instant::now();
        gnet.run(&x)?.read()?;
        Ok(start.elapsed())
    };
    let first = time_run()?;
    // A second network on the same Gpu: what a first run costs once the process is warm.
    let again = GpuNetwork::new(&gpu, &net, &weights)?;
    let start = Instant::now();
    again.run(&x)?.read()?;
    let second_network = start.elapsed();
    let mut later: Vec<Duration> = (0..runs.max(1))
        .map(|_| time_run())
        .collect::<Result<_, _>>()?;
    later.sort();
    let warm = later[later.len() / 2];
    println!(
        "adapter {} ({:?}); cache file {}",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.tuner()
            .cache_file()
            .map_or("none".into(), |p| p.display().to_string())
    );
    println!(
        "build {:.0} ms, first run {:.0} ms, warm run (median of {}) {:.0} ms: first/warm {:.2}; \
         a second network's first run {:.0} ms",
        built.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        later.len(),
        warm.as_secs_f64() * 1e3,
        first.as_secs_f64() / warm.as_secs_f64(),
        second_network.as_secs_f64() * 1e3
    );
    Ok(())
}
