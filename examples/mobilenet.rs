//! MobileNet v1 on the fast CPU path and on the GPU, layer by layer, checked against the CPU
//! reference, with the papers' figures beside ours, and the same network with standard
//! convolutions: the promise of depthwise separable convolution, measured.
//!
//! Run with: `cargo run --release --example mobilenet [-- OPTIONS]`
//!
//! ```text
//! --net NAME         mobilenet-v1 (default), mobilenet-v2, xception, resnet50, resnext50,
//!                    shufflenet, alexnet
//! --alpha A          width multiplier of MobileNet v1/v2 (default 1.0)
//! --resolution R     input height and width (default: the paper's, 224 / 299 / 227)
//! --batch N          batch size (default 1)
//! --groups G         ShuffleNet's groups (1, 2, 3, 4, 8; default 3) or AlexNet's (default 2)
//! --run / --no-run   run the network on GPU and CPU (default: when it has at most 1.5 G MACs)
//! --standard-full    also run the whole standard-convolution network, not just one block
//!                    (slow on a CPU-only machine: 8.6× the work for MobileNet v1)
//! --runs K           repetitions of the whole-network timings (median; default 1)
//! ```
//!
//! For the chosen network it builds the layer graph (`sepconv::networks`), makes seeded random
//! weights with batch norm folded in, runs every node on the fast CPU path (`CpuNetwork`, all
//! cores), on the GPU (activations stay there; each node timed by submit-and-wait) and on the
//! CPU reference (`f64` accumulation, the checker: its time is shown, but it is not built for
//! speed), checks that both agree with the reference, and prints per layer: kind, output shape,
//! parameters, MACs, fast-path ms, GPU ms, reference ms and the differences. When the adapter is
//! a software one (lavapipe, llvmpipe, SwiftShader, WARP) it says so: the fast CPU path is then
//! the faster choice, and `Device::Auto` picks it. Totals are set against the figures the paper
//! prints. Then the same
//! network with every separable or grouped convolution replaced by the standard convolution
//! it stands for: parameters and MACs, and the time of one block both ways.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sepconv::accounting::Cost;
use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{
    AlexNet, MobileNetV1, MobileNetV2, Network, NetworkBuilder, ResNet, ShuffleNetV1, Xception,
};
use sepconv::{cpu, CpuNetwork, Device, Gpu, GpuNetwork, GpuTensor, Tensor};

/// Which network, and its knobs.
#[derive(Debug, Clone)]
struct Options {
    net: String,
    alpha: f64,
    resolution: Option<usize>,
    batch: usize,
    groups: Option<usize>,
    run: Option<bool>,
    standard_full: bool,
    runs: usize,
}

const USAGE: &str = "usage: cargo run --release --example mobilenet -- [--net mobilenet-v1|mobilenet-v2|xception|resnet50|resnext50|shufflenet|alexnet] [--alpha A] [--resolution R] [--batch N] [--groups G] [--run|--no-run] [--standard-full] [--runs K]";

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        net: "mobilenet-v1".into(),
        alpha: 1.0,
        resolution: None,
        batch: 1,
        groups: None,
        run: None,
        standard_full: false,
        runs: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag} takes a whole number, got {v:?}"))
        };
        match flag.as_str() {
            "--net" => o.net = value()?,
            "--alpha" => {
                let v = value()?;
                o.alpha = v
                    .parse()
                    .map_err(|_| format!("--alpha takes a number, got {v:?}"))?;
            }
            "--resolution" => o.resolution = Some(number(value()?)?),
            "--batch" => o.batch = number(value()?)?,
            "--groups" => o.groups = Some(number(value()?)?),
            "--runs" => o.runs = number(value()?)?.max(1),
            "--run" => o.run = Some(true),
            "--no-run" => o.run = Some(false),
            "--standard-full" => o.standard_full = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(o)
}

/// A figure a paper prints, to set beside ours.
struct Paper {
    params: &'static str,
    macs: &'static str,
    source: &'static str,
}

fn build(o: &Options) -> Result<(Network, Option<Paper>, Option<Paper>), sepconv::Error> {
    let res = o.resolution;
    let b = o.batch;
    let paper = |params, macs, source| {
        Some(Paper {
            params,
            macs,
            source,
        })
    };
    Ok(match o.net.as_str() {
        "mobilenet-v1" | "mobilenet" => {
            let r = res.unwrap_or(224);
            let net = MobileNetV1 {
                alpha: o.alpha,
                resolution: r,
                batch: b,
                ..Default::default()
            }
            .build()?;
            let alpha = (o.alpha * 100.0).round() as u32;
            let figures = match (alpha, r) {
                (100, 224) => paper("4.2M", "569M", "Howard et al. 2017, Table 1"),
                (75, 224) => paper("2.6M", "325M", "Howard et al. 2017, Table 6"),
                (50, 224) => paper("1.3M", "149M", "Howard et al. 2017, Table 6"),
                (25, 224) => paper("0.5M", "41M", "Howard et al. 2017, Table 6"),
                (100, 192) => paper("4.2M", "418M", "Howard et al. 2017, Table 7"),
                (100, 160) => paper("4.2M", "290M", "Howard et al. 2017, Table 7"),
                (100, 128) => paper("4.2M", "186M", "Howard et al. 2017, Table 7"),
                _ => None,
            };
            let standard = if (alpha, r) == (100, 224) {
                paper(
                    "29.3M",
                    "4866M",
                    "Howard et al. 2017, Table 4 (\"Conv MobileNet\")",
                )
            } else {
                None
            };
            (net, figures, standard)
        }
        "mobilenet-v2" => {
            let r = res.unwrap_or(224);
            let net = MobileNetV2 {
                alpha: o.alpha,
                resolution: r,
                batch: b,
                ..Default::default()
            }
            .build()?;
            let figures = if (o.alpha, r) == (1.0, 224) {
                paper("3.4M", "300M", "Sandler et al. 2018, Table 4")
            } else {
                None
            };
            (net, figures, None)
        }
        "xception" => {
            let r = res.unwrap_or(299);
            let net = Xception {
                resolution: r,
                batch: b,
                ..Default::default()
            }
            .build()?;
            let figures = paper("22,855,952", "-", "Chollet 2017, Table 3");
            (net, figures, None)
        }
        "resnet50" | "resnext50" => {
            let base = if o.net == "resnet50" {
                ResNet::resnet50()
            } else {
                ResNet::resnext50_32x4d()
            };
            let r = res.unwrap_or(224);
            let net = ResNet {
                resolution: r,
                batch: b,
                ..base
            }
            .build()?;
            let figures = match (o.net.as_str(), r) {
                ("resnet50", 224) => paper("25.5M", "4.1G", "Xie et al. 2017, Table 1"),
                ("resnext50", 224) => paper("25.0M", "4.2G", "Xie et al. 2017, Table 1"),
                _ => None,
            };
            (net, figures, None)
        }
        "shufflenet" => {
            let g = o.groups.unwrap_or(3);
            let r = res.unwrap_or(224);
            let net = ShuffleNetV1 {
                groups: g,
                resolution: r,
                batch: b,
                ..Default::default()
            }
            .build()?;
            let figures = if (g, r) == (3, 224) {
                paper("-", "137M", "Zhang et al. 2017, Table 1")
            } else {
                None
            };
            (net, figures, None)
        }
        "alexnet" => {
            let g = o.groups.unwrap_or(2);
            let r = res.unwrap_or(227);
            let net = AlexNet {
                groups: g,
                resolution: r,
                batch: b,
                ..Default::default()
            }
            .build()?;
            let figures = if (g, r) == (2, 227) {
                paper("60M", "-", "Krizhevsky et al. 2012, §1")
            } else {
                None
            };
            (net, figures, None)
        }
        other => {
            return Err(sepconv::Error::InvalidArgument {
                what: "--net",
                reason: format!("unknown network {other:?}"),
            })
        }
    })
}

/// `1234567` → `"1,234,567"`.
fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Largest |got − want| divided by the RMS of `want` (activations span orders of magnitude, so
/// per-element relative error would be dominated by outputs near zero). NaN counts as ∞.
fn scaled_error(got: &Tensor, want: &Tensor) -> f64 {
    let n = want.data().len() as f64;
    let rms = (want
        .data()
        .iter()
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        / n)
        .sqrt()
        .max(f64::from(f32::MIN_POSITIVE));
    got.data()
        .iter()
        .zip(want.data())
        .map(|(&g, &w)| {
            if g.is_nan() {
                f64::INFINITY
            } else {
                f64::from((g - w).abs()) / rms
            }
        })
        .fold(0.0, f64::max)
}

/// Agreement bound for `scaled_error`. GPU and CPU each run the network on their own outputs,
/// so rounding differences (each layer's own is ~1e-6 of its scale; tests/gpu_networks.rs
/// checks every layer in isolation to that precision) are carried through the whole depth:
/// measured up to ~5e-4 deep in MobileNet v2 1.0-224, 3e-5 in MobileNet v1. A real fault (a
/// wrong tap, channel or pixel) is of the order of the values themselves, 0.1 or more.
const AGREEMENT: f64 = 1e-2;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(o) => o,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything one network run measured.
struct Measured {
    /// The fast CPU path, per node.
    fast: Vec<Duration>,
    gpu: Vec<Duration>,
    /// The f64 reference (the checker), per node.
    cpu: Vec<Duration>,
    /// GPU vs reference, per node (`scaled_error`).
    error: Vec<f64>,
    /// Fast path vs reference, per node.
    fast_error: Vec<f64>,
    whole_fast: Duration,
    whole_gpu: Duration,
    logits_error: f64,
}

/// Runs `net` on the fast CPU path and on the GPU (node by node, timed, then all at once) and
/// on the CPU reference.
fn measure(gpu: &Gpu, net: &Network, runs: usize) -> Result<Measured, sepconv::Error> {
    let weights = NetworkWeights::random(net, 2017)?;
    let x = random_input(net.input_shape(), 2017)?;

    // The fast CPU path: an untimed first run (page faults, rayon's threads starting), then
    // node by node, then whole runs.
    let fnet = CpuNetwork::new(net, &weights)?;
    fnet.run(&x)?;
    let (fast_outputs, fast_times) = fnet.run_timed(&x)?;
    let mut whole_fast = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        fnet.run(&x)?;
        whole_fast.push(start.elapsed());
    }

    let gnet = GpuNetwork::new(gpu, net, &weights)?;
    let gx = GpuTensor::from_tensor(gpu, &x)?;

    // An untimed first run: each pointwise and grouped conv times its two kernels on its
    // first run of a shape and keeps the faster (`ConvKernel::Auto`), so the timed runs
    // below see the kernels that will run from then on.
    gnet.run(&gx)?.read()?;
    // Node by node: submit, wait, next; every activation stays on the GPU.
    let (gpu_outputs, gpu_times) = gnet.run_timed(&gx)?;
    // All nodes in one submission, the logits read back at the end.
    let mut whole = Vec::new();
    let mut logits = None;
    for _ in 0..runs {
        let start = Instant::now();
        let y = gnet.run(&gx)?.read()?;
        whole.push(start.elapsed());
        logits = Some(y);
    }

    // The CPU reference, node by node on its own outputs.
    let mut cpu_outputs: Vec<Tensor> = vec![x];
    let mut cpu_times = vec![Duration::ZERO];
    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &cpu_outputs[i]).collect();
        let start = Instant::now();
        let y = cpu::network::forward_node(net, &weights, id, &inputs)?;
        cpu_times.push(start.elapsed());
        cpu_outputs.push(y);
    }
    let mut error = Vec::with_capacity(net.nodes().len());
    for (g, c) in gpu_outputs.iter().zip(&cpu_outputs) {
        error.push(scaled_error(&g.read()?, c));
    }
    let fast_error = fast_outputs
        .iter()
        .zip(&cpu_outputs)
        .map(|(f, c)| scaled_error(f, c))
        .collect();
    let last = &cpu_outputs[cpu_outputs.len() - 1];
    let logits_error = logits.map_or(f64::INFINITY, |l| scaled_error(&l, last));
    Ok(Measured {
        fast: fast_times,
        gpu: gpu_times,
        cpu: cpu_times,
        error,
        fast_error,
        whole_fast: median(whole_fast),
        whole_gpu: median(whole),
        logits_error,
    })
}

fn run(o: &Options) -> Result<bool, sepconv::Error> {
    let (net, paper, paper_standard) = build(o)?;
    let total = net.total();
    let run_it = o.run.unwrap_or(total.macs <= 1_500_000_000);
    println!(
        "{} (batch {}), {}",
        net.name(),
        o.batch,
        describe_counting(&net)
    );

    let gpu = if run_it { Some(Gpu::new()?) } else { None };
    if let Some(gpu) = &gpu {
        let info = gpu.adapter_info();
        println!(
            "adapter: {} ({:?}, {:?})",
            gpu.adapter_name(),
            gpu.backend(),
            info.device_type
        );
        if info.device_type == wgpu::DeviceType::Cpu {
            println!(
                "note: {} is a software adapter: it runs the shaders on this machine's CPU \
                 cores, and the fast CPU path is the faster choice here (`--device auto` in \
                 the examples, `sepconv::Device::Auto` in code, picks it)",
                gpu.adapter_name()
            );
        }
        println!(
            "fast CPU path: {} rayon threads; device auto: {}",
            rayon::current_num_threads(),
            Device::Auto.select()?.reason()
        );
    }
    println!();
    let measured = match &gpu {
        Some(gpu) => match measure(gpu, &net, o.runs) {
            Ok(m) => Some(m),
            // A layer larger than this device's buffers (AlexNet's 151 MB fc6 on lavapipe):
            // report it and keep to the accounting.
            Err(e @ sepconv::Error::TooLarge { .. }) => {
                println!("not run on this device: {e}\n");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };

    // Per-layer table.
    let timing_header = if measured.is_some() {
        format!(
            "{:>9} {:>9} {:>9} {:>9} {:>9}",
            "fast ms", "GPU ms", "check ms", "fast diff", "GPU diff"
        )
    } else {
        String::new()
    };
    println!(
        "{:<24} {:<10} {:>18} {:>11} {:>14} {timing_header}",
        "layer", "kind", "output", "params", "MACs"
    );
    let (mut fast_sum, mut gpu_sum, mut cpu_sum) = (0.0, 0.0, 0.0);
    let (mut worst, mut worst_fast) = (0f64, 0f64);
    for (id, node) in net.nodes().iter().enumerate().skip(1) {
        let cost = node.cost(net.counting());
        let timing = measured.as_ref().map(|m| {
            fast_sum += ms(m.fast[id]);
            gpu_sum += ms(m.gpu[id]);
            cpu_sum += ms(m.cpu[id]);
            worst = worst.max(m.error[id]);
            worst_fast = worst_fast.max(m.fast_error[id]);
            format!(
                "{:>9.2} {:>9.2} {:>9.1} {:>9.1e} {:>9.1e}",
                ms(m.fast[id]),
                ms(m.gpu[id]),
                ms(m.cpu[id]),
                m.fast_error[id],
                m.error[id]
            )
        });
        println!(
            "{:<24} {:<10} {:>18} {:>11} {:>14} {}",
            node.name,
            node.kind().label(),
            node.output.to_string(),
            thousands(cost.params),
            thousands(cost.macs),
            timing.unwrap_or_default()
        );
    }
    let sums = if measured.is_some() {
        format!("{fast_sum:>9.2} {gpu_sum:>9.2} {cpu_sum:>9.1}")
    } else {
        String::new()
    };
    println!(
        "{:<24} {:<10} {:>18} {:>11} {:>14} {}",
        "total",
        "",
        "",
        thousands(total.params),
        thousands(total.macs),
        sums
    );
    if measured.is_some() {
        println!(
            "(fast: the fast CPU path, all cores; GPU: submit to done per node; check: the f64 \
             reference, the checker, not a competitor; diff: largest |fast - check| or \
             |GPU - check| over the RMS of the reference's output, each side running the whole \
             network on its own outputs)"
        );
    }
    if let Some(p) = &paper {
        println!(
            "{:<24} {:<10} {:>18} {:>11} {:>14}   ({}{})",
            "paper",
            "",
            "",
            p.params,
            p.macs,
            p.source,
            if o.batch > 1 {
                "; per image, ours are for the batch"
            } else {
                ""
            }
        );
    }

    // Per layer type, as MobileNet's Table 2.
    println!("\nby layer type          params   share            MACs   share");
    for (kind, cost) in net.by_kind() {
        if cost == Cost::default() {
            continue;
        }
        println!(
            "{:<12} {:>16} {:>6.2}% {:>15} {:>6.2}%",
            kind.label(),
            thousands(cost.params),
            100.0 * cost.params as f64 / total.params.max(1) as f64,
            thousands(cost.macs),
            100.0 * cost.macs as f64 / total.macs.max(1) as f64
        );
    }
    if net.name() == "MobileNet v1 1.0-224" {
        println!(
            "paper (Howard et al. 2017, Table 2; params / mult-adds): pointwise 74.59% / 94.86%,\n  \
             depthwise 1.06% / 3.06%, conv 0.02% / 1.19% (a misprint: the first layer is 1.91% of\n  \
             the mult-adds), fc 24.33% / 0.18%"
        );
    }

    let mut agree = true;
    if let Some(m) = &measured {
        println!(
            "\nwhole network on the fast CPU path: {:.1} ms; on the GPU, one submission, logits \
             read back: {:.1} ms (medians of {}); the GPU takes {:.1}× the fast path's time",
            ms(m.whole_fast),
            ms(m.whole_gpu),
            o.runs,
            m.whole_gpu.as_secs_f64() / m.whole_fast.as_secs_f64().max(1e-9)
        );
        let fast_agree = worst_fast <= AGREEMENT;
        println!(
            "fast CPU path vs CPU reference: largest difference {worst_fast:.1e} of a layer's RMS \
             (bound {AGREEMENT:.0e}): {}",
            if fast_agree { "agree" } else { "DISAGREE" }
        );
        agree = fast_agree && worst <= AGREEMENT && m.logits_error <= AGREEMENT;
        println!(
            "GPU vs CPU reference: largest difference {worst:.1e} of a layer's RMS, {:.1e} at the logits \
             (bound {AGREEMENT:.0e}): {}",
            m.logits_error,
            if agree { "agree" } else { "DISAGREE" }
        );
    } else if !run_it {
        println!(
            "\nnot run ({} MACs; pass --run to run it anyway, or lower --resolution)",
            thousands(total.macs)
        );
    }

    // The same network with standard convolutions.
    let standard = net.with_standard_convs()?;
    let st = standard.total();
    println!("\n{}", standard.name());
    if st == total {
        println!("  the same network: it has no separable or grouped convolutions");
        return Ok(agree);
    }
    println!(
        "  params {:>15}  ({:.1}× the separable/grouped network's; it uses {:.1}%)",
        thousands(st.params),
        st.params as f64 / total.params as f64,
        100.0 * total.params as f64 / st.params as f64
    );
    println!(
        "  MACs   {:>15}  ({:.1}× the separable/grouped network's; it uses {:.1}%)",
        thousands(st.macs),
        st.macs as f64 / total.macs as f64,
        100.0 * total.macs as f64 / st.macs as f64
    );
    if let Some(p) = &paper_standard {
        println!(
            "  paper  {:>15} params, {} mult-adds ({})",
            p.params, p.macs, p.source
        );
        println!(
            "         our {:.0}M mult-adds include the classifier's 1.0M; without it, {:.0}M",
            st.macs as f64 / 1e6,
            (st.macs
                - standard
                    .by_kind()
                    .iter()
                    .filter(|(k, _)| *k == sepconv::networks::LayerKind::FullyConnected)
                    .map(|(_, c)| c.macs)
                    .sum::<u64>()) as f64
                / 1e6
        );
    }
    if let (Some(gpu), Some(_)) = (&gpu, &measured) {
        if o.standard_full {
            let m = measure(gpu, &standard, o.runs)?;
            let cpu_total: Duration = m.cpu.iter().sum();
            let gpu_total: Duration = m.gpu.iter().sum();
            let worst_std = m
                .error
                .iter()
                .chain(&m.fast_error)
                .copied()
                .fold(0.0, f64::max);
            println!(
                "  time   fast CPU {:.1} ms whole, GPU {:.1} ms node by node, {:.1} ms in one \
                 submission, reference (checker) {:.1} ms (separable: fast CPU {:.1} ms, GPU \
                 {gpu_sum:.1} ms, {:.1} ms, reference {cpu_sum:.1} ms)",
                ms(m.whole_fast),
                ms(gpu_total),
                ms(m.whole_gpu),
                ms(cpu_total),
                measured.as_ref().map_or(0.0, |m| ms(m.whole_fast)),
                measured.as_ref().map_or(0.0, |m| ms(m.whole_gpu))
            );
            let ok = worst_std <= AGREEMENT && m.logits_error <= AGREEMENT;
            println!(
                "         fast CPU and GPU vs reference: largest difference {worst_std:.1e} of a \
                 layer's RMS, {:.1e} at the GPU's logits: {}",
                m.logits_error,
                if ok { "agree" } else { "DISAGREE" }
            );
            agree &= ok;
        } else {
            agree &= time_one_block(gpu, &net, &standard)?;
        }
    }
    Ok(agree)
}

fn describe_counting(net: &Network) -> &'static str {
    let c = net.counting();
    if c == sepconv::networks::Counting::WEIGHTS {
        "parameters = weights (the paper's count)"
    } else if c == sepconv::networks::Counting::TRAINABLE {
        "parameters = weights, biases, batch norm γ/β (the paper's count)"
    } else {
        "parameters = weights and biases (the paper's count)"
    }
}

/// Times the most expensive separable pair (or grouped convolution) of `net` against the
/// standard convolution that replaces it in `standard`, on GPU and CPU: the whole standard
/// network is ~8× the work, too slow for a CPU-only machine in an example.
fn time_one_block(gpu: &Gpu, net: &Network, standard: &Network) -> Result<bool, sepconv::Error> {
    // The standard node with the most MACs that replaced something, and what it replaced.
    let Some((sid, snode)) = standard
        .nodes()
        .iter()
        .enumerate()
        .filter(|(_, n)| {
            let original = net.nodes().iter().find(|m| m.name == n.name);
            // A merged pair is named "dw + pw"; a grouped conv keeps its name but not its kind.
            n.name.contains(" + ") || original.is_some_and(|m| m.kind() != n.kind())
        })
        .max_by_key(|&(i, n)| (n.macs, std::cmp::Reverse(i)))
    else {
        println!("  (no separable or grouped layer to compare)");
        return Ok(true);
    };
    let parts: Vec<&str> = snode.name.split(" + ").collect();
    let originals: Vec<usize> = parts
        .iter()
        .filter_map(|p| net.nodes().iter().position(|m| m.name == *p))
        .collect();
    let input_shape = standard.nodes()[snode.inputs[0]].output;

    // The block alone, both ways, as two small networks on the same input.
    let as_network =
        |name: &str, nodes: &[&sepconv::networks::Node]| -> Result<Network, sepconv::Error> {
            let mut b = NetworkBuilder::new(name, input_shape, net.counting())?;
            let mut x = b.input();
            for node in nodes {
                x = b.push(node.name.clone(), node.op, vec![x])?;
            }
            Ok(b.build())
        };
    let cheap_nodes: Vec<&sepconv::networks::Node> =
        originals.iter().map(|&i| &net.nodes()[i]).collect();
    let cheap = as_network("separable", &cheap_nodes)?;
    let full = as_network("standard", &[&standard.nodes()[sid]])?;
    let block_label = snode.name.clone();
    println!(
        "  time   measured on one block, {} on {} (the whole standard network is {:.1}× \
         the work of {}; --standard-full runs it):",
        block_label,
        input_shape,
        standard.total().macs as f64 / net.total().macs as f64,
        net.name()
    );
    let mut ok = true;
    let mut rows = Vec::new();
    for (label, block) in [("separable", &cheap), ("standard", &full)] {
        let m = measure(gpu, block, 1)?;
        let cpu_t: Duration = m.fast.iter().sum();
        let gpu_t: Duration = m.gpu.iter().sum();
        let worst = m
            .error
            .iter()
            .chain(&m.fast_error)
            .copied()
            .fold(0.0, f64::max);
        ok &= worst <= AGREEMENT;
        let kinds: Vec<&str> = block.nodes()[1..]
            .iter()
            .map(|n| n.kind().label())
            .collect();
        let cost = block.total();
        rows.push((label, kinds.join("+"), cost, cpu_t, gpu_t));
    }
    for (label, kinds, cost, cpu_t, gpu_t) in &rows {
        println!(
            "         {label:<10} {kinds:<20} params {:>11}  MACs {:>13}  fast CPU {:>8.2} ms  GPU {:>8.2} ms",
            thousands(cost.params),
            thousands(cost.macs),
            ms(*cpu_t),
            ms(*gpu_t)
        );
    }
    if let [(_, _, _, c0, g0), (_, _, _, c1, g1)] = rows.as_slice() {
        println!(
            "         the standard convolution takes {:.1}× the fast CPU time and {:.1}× the GPU time",
            c1.as_secs_f64() / c0.as_secs_f64().max(1e-9),
            g1.as_secs_f64() / g0.as_secs_f64().max(1e-9)
        );
    }
    Ok(ok)
}
