//! Classifies photos with a pretrained network: loads the checkpoint, decodes and preprocesses
//! each photo, runs the network on the GPU and on the fast CPU path, and prints the top-5
//! ImageNet classes with their probabilities, how far the two sides' logits are apart, and the
//! time per image on each.
//!
//! ```text
//! cargo run --release --example classify -- --weights FILE PHOTO… [OPTIONS]
//!
//! --weights FILE     a checkpoint: .pth/.pt (PyTorch, zip or legacy) or .safetensors;
//!                    `random` for seeded random weights (timing only: the classes mean nothing)
//! --net NAME         efficientnet-lite0..4 (default, with the EfficientNet-PyTorch port's
//!                    names) or mobilenet-v2 (torchvision's names)
//! --device D         both (default): the GPU and the fast CPU path, the GPU's result printed
//!                    and the CPU's compared with it; gpu or cpu: one side; auto: the fastest
//!                    thing here (a hardware GPU, else the fast CPU path), saying why
//! --runs K           timed repetitions per image on each device (median; default 3)
//! --precision P      f32 (default) or f16: the GPU's activations and weights (f32 sums);
//!                    f16 needs an adapter with SHADER_F16
//! --dump DIR         also write each photo's input and logits as little-endian f32 files
//!                    (DIR/NAME.input.bin, DIR/NAME.logits.bin), e.g. to compare with ONNX
//!                    Runtime
//! ```
//!
//! `scripts/fetch-models.sh` fetches a pretrained EfficientNet-Lite0 and two photos into
//! `.cache/models`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sepconv::checkpoint::{keys, load_weights, LayerKeys, StateDict};
use sepconv::networks::weights::NetworkWeights;
use sepconv::networks::{
    EfficientNetLite, MobileNetV2, Network, Node, NodeId, EFFICIENTNET_LITE_BN_EPS,
};
use sepconv::preprocess::{softmax, top_k, Preprocess};
use sepconv::{imagenet, CpuNetwork, Gpu, GpuNetwork, GpuTensor, Precision, Tensor};

/// Where to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Device {
    Gpu,
    Cpu,
    Both,
    Auto,
}

struct Options {
    weights: PathBuf,
    net: String,
    device: Device,
    runs: usize,
    precision: Precision,
    dump: Option<PathBuf>,
    photos: Vec<PathBuf>,
}

const USAGE: &str = "usage: cargo run --release --example classify -- --weights FILE PHOTO... \
[--net efficientnet-lite0..4|mobilenet-v2] [--device both|gpu|cpu|auto] [--runs K] \
[--precision f32|f16] [--dump DIR]";

fn parse_options() -> Result<Options, String> {
    let mut weights = None;
    let mut o = Options {
        weights: PathBuf::new(),
        net: "efficientnet-lite0".into(),
        device: Device::Both,
        runs: 3,
        precision: Precision::F32,
        dump: None,
        photos: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--weights" => weights = Some(PathBuf::from(value("--weights")?)),
            "--net" => o.net = value("--net")?,
            "--device" => {
                o.device = match value("--device")?.as_str() {
                    "gpu" => Device::Gpu,
                    "cpu" => Device::Cpu,
                    "both" => Device::Both,
                    "auto" => Device::Auto,
                    other => {
                        return Err(format!("--device {other}: expected both, gpu, cpu or auto"))
                    }
                }
            }
            "--runs" => {
                o.runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|&k| k > 0)
                    .ok_or("--runs needs a positive integer")?
            }
            "--precision" => {
                o.precision = match value("--precision")?.as_str() {
                    "f32" => Precision::F32,
                    "f16" => Precision::F16,
                    other => return Err(format!("--precision {other}: expected f32 or f16")),
                }
            }
            "--dump" => o.dump = Some(PathBuf::from(value("--dump")?)),
            "-h" | "--help" => return Err(String::new()),
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            photo => o.photos.push(PathBuf::from(photo)),
        }
    }
    o.weights = weights.ok_or("--weights FILE is required")?;
    if o.photos.is_empty() {
        return Err("give at least one photo".into());
    }
    Ok(o)
}

type KeyMap = Box<dyn FnMut(NodeId, &Node) -> Option<LayerKeys>>;

/// The network, its key map and its preprocessing.
fn model(name: &str) -> Result<(Network, KeyMap, Preprocess), String> {
    if let Some(v) = name.strip_prefix("efficientnet-lite") {
        let variant: usize = v.parse().map_err(|_| format!("unknown network {name}"))?;
        let config = EfficientNetLite::new(variant).map_err(|e| e.to_string())?;
        let net = config.build().map_err(|e| e.to_string())?;
        let keys: KeyMap = Box::new(keys::efficientnet_lite(EFFICIENTNET_LITE_BN_EPS));
        Ok((net, keys, Preprocess::efficientnet(config.resolution)))
    } else if name == "mobilenet-v2" {
        let net =
            keys::torchvision_mobilenet_v2(MobileNetV2::default()).map_err(|e| e.to_string())?;
        let keys: KeyMap = Box::new(keys::torchvision_mobilenet_v2_keys(&net));
        Ok((net, keys, Preprocess::torchvision(224)))
    } else {
        Err(format!("unknown network {name}"))
    }
}

/// Runs `f` `runs` times after one untimed warm-up run; returns the last result and the
/// median time.
fn timed<T>(
    runs: usize,
    mut f: impl FnMut() -> sepconv::Result<T>,
) -> sepconv::Result<(T, Duration)> {
    let mut out = f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        out = f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok((out, times[times.len() / 2]))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn write_f32(path: &Path, values: &[f32]) -> std::io::Result<()> {
    std::fs::write(
        path,
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    )
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let (net, keys, pre) = model(&o.net)?;
    let t = Instant::now();
    let (weights, source): (NetworkWeights, String) = if o.weights == Path::new("random") {
        (
            NetworkWeights::random(&net, 1)?,
            "seeded random weights (timing only)".into(),
        )
    } else {
        let dict = StateDict::open(&o.weights)?;
        let source = format!(
            "{} tensors from {} ({:?})",
            dict.len(),
            o.weights.display(),
            dict.format()
        );
        (load_weights(&net, &dict, keys)?, source)
    };
    println!(
        "{}: {source}, loaded in {:.0} ms; {} parameters, {:.0} M MACs",
        net.name(),
        ms(t.elapsed()),
        net.total().params,
        net.total().macs as f64 / 1e6
    );
    let classes = imagenet::classes();
    // `auto`: the library's choice of the fastest thing here, with its reason.
    let (use_gpu, use_cpu) = match o.device {
        Device::Auto => {
            let selection = sepconv::Device::Auto.select()?;
            println!("auto: {}", selection.reason());
            (selection.gpu().cloned(), selection.is_cpu())
        }
        Device::Gpu => (Some(Gpu::new()?), false),
        Device::Cpu => (None, true),
        Device::Both => (Some(Gpu::new()?), true),
    };
    let gpu_net = match &use_gpu {
        Some(gpu) => {
            println!(
                "GPU: {} ({:?}), {} activations",
                gpu.adapter_name(),
                gpu.backend(),
                o.precision
            );
            Some(GpuNetwork::new_as(gpu, &net, &weights, o.precision)?)
        }
        None => None,
    };
    let cpu_net = if use_cpu {
        Some(CpuNetwork::new(&net, &weights)?)
    } else {
        None
    };
    for photo in &o.photos {
        let t = Instant::now();
        let x = pre.open(photo)?;
        let decode = t.elapsed();
        let mut results: Vec<(&str, Tensor, Duration, Duration)> = Vec::new();
        if let Some(g) = &gpu_net {
            let gx_once = GpuTensor::from_tensor_as(g.gpu(), &x, o.precision)?;
            // Resident: input on the GPU, logits left there until one final read.
            let (_, resident) = timed(o.runs, || {
                let y = g.run(&gx_once)?;
                g.gpu().wait()?;
                Ok(y)
            })?;
            // End to end: decoded photo in host memory to probabilities in host memory.
            let (logits, end_to_end) = timed(o.runs, || {
                let gx = GpuTensor::from_tensor_as(g.gpu(), &x, o.precision)?;
                let y = g.run(&gx)?.read()?;
                let _ = softmax(y.data());
                Ok(y)
            })?;
            results.push(("gpu", logits, resident, end_to_end));
        }
        if let Some(c) = &cpu_net {
            let (logits, end_to_end) = timed(o.runs, || {
                let y = c.run(&x)?;
                let _ = softmax(y.data());
                Ok(y)
            })?;
            results.push(("cpu", logits, end_to_end, end_to_end));
        }
        let (device, logits, _, _) = &results[0];
        let p = softmax(logits.data());
        println!(
            "\n{} (decoded and preprocessed in {:.1} ms), on the {device}:",
            photo.display(),
            ms(decode)
        );
        for i in top_k(&p, 5) {
            let name = classes.get(i).map_or("?", |c| c.names);
            println!("  {i:4}  {:6.2}%  {name}", 100.0 * p[i]);
        }
        for (device, _, resident, end_to_end) in &results {
            if device == &"gpu" {
                println!("  {device}: {:.1} ms per image resident, {:.1} ms end to end (upload, run, read, softmax)", ms(*resident), ms(*end_to_end));
            } else {
                println!(
                    "  {device}: {:.1} ms per image (fast CPU path, multi-threaded)",
                    ms(*end_to_end)
                );
            }
        }
        if let [(_, a, _, _), (_, b, _, _)] = results.as_slice() {
            let rms = (b.data().iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()
                / b.data().len() as f64)
                .sqrt();
            let worst = a
                .data()
                .iter()
                .zip(b.data())
                .map(|(x, y)| f64::from((x - y).abs()))
                .fold(0.0, f64::max);
            let same = top_k(&p, 5) == top_k(&softmax(b.data()), 5);
            println!(
                "  GPU vs CPU: max |Δlogit| {worst:.2e} ({:.1e} of the logits' RMS), top-5 {}",
                worst / rms,
                if same { "identical" } else { "DIFFERENT" }
            );
        }
        if let Some(dir) = &o.dump {
            std::fs::create_dir_all(dir)?;
            let stem = photo
                .file_stem()
                .map_or("photo".into(), |s| s.to_string_lossy().into_owned());
            write_f32(&dir.join(format!("{stem}.input.bin")), x.data())?;
            write_f32(&dir.join(format!("{stem}.logits.bin")), logits.data())?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("{e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
