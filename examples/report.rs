//! Runs the 41 benchmark layers once each on the fast CPU path and on the GPU, measures the
//! adapter's own ceilings, and writes a table (stdout, CSV, JSON) and a PNG chart; then whole
//! networks (MobileNet v1 and v2, 1.0-224) on the fast CPU path and the GPU.
//!
//! ```text
//! cargo run --release --example report -- [--out DIR] [--only a,b] [--no-gpu] [--no-check]
//!                                         [--no-networks] [--peer FILE]... [--font FILE.ttf]
//! ```
//!
//! - Three figures per layer and per network: the fast CPU path (`cpu ms`), the GPU (`gpu
//!   ms`), and the f64 reference's time (`check ms`, one call): the checker that both are
//!   compared against, not a competitor. When the adapter is a software one
//!   (`wgpu::DeviceType::Cpu`: lavapipe, llvmpipe, SwiftShader, WARP) the header says so: the
//!   fast CPU path is then the faster choice on this machine. `--no-check` skips the reference
//!   (and its comparison); `--no-networks` skips the whole networks; with `--only`, only the
//!   networks it names (`mobilenet_v1`, `mobilenet_v2`) run.
//! - Timing, per layer and path: the first call alone, then warm-up (≥ 3 calls and ≥ 0.1 s),
//!   then calls timed one by one until they add up to ≥ 0.3 s (≥ 5 calls); the **median** is
//!   reported. GPU times are one dispatch on resident buffers plus the wait for it (`gpu ms`)
//!   and upload + dispatch + readback (`gpu e2e ms`); `gpu cpu ms` is the CPU time this
//!   process spent per resident call (Linux only), which on a software adapter is the
//!   driver's threads at work and moves far less with other load than wall time.
//! - Ceilings (measured here, on the adapter in use): `shaders/ceiling_fma.wgsl` (16
//!   independent vec4 fma chains per invocation) and `shaders/ceiling_copy.wgsl` (a vec4 copy
//!   kernel, bytes read + written), median of 5 dispatches each.
//! - `GB/s` counts the minimum bytes a layer must move: input, weights, bias and output once,
//!   4 bytes each. `%fma` and `%bw` are the GPU's GFLOP/s and GB/s as fractions of the ceilings.
//! - `--peer FILE` reads `RESULT<TAB>engine<TAB>layer<TAB>ms…` lines (the format of the ONNX
//!   Runtime / PyTorch harness) and adds `cpu ÷ engine` and `gpu ÷ engine` ratio columns per
//!   engine (> 1: sepconv is slower).
//! - Pointwise and grouped layers (with a GPU): `gpu ms` runs the kernel `ConvKernel::Auto`
//!   measured fastest on the first call (`kernel`; the first call's time includes that
//!   measurement); `windows ms` and `gemm ms` time each of the two kernels pinned, with the
//!   same protocol; `gemm slices` is how many ways the tiled product splits the layer's sums
//!   (`SplitK::Auto`: more than 1 only where its tiles alone would not fill the device).
//! - Separable blocks (with a GPU): MobileNet v1's 13 depthwise + pointwise pairs
//!   (`mbv1_dw{i}` then `mbv1_pw{i}`, named `mbv1_block{i}`) run as a `SeparableBlock` on
//!   resident tensors both ways, two kernels and fused, with the same protocol; the table
//!   gives both medians, `fused_speedup` = two-kernel ÷ fused time, and the path
//!   `Fusion::Auto` picks. `--only` selects blocks by name too.
//! - Output goes to `target/report/` unless `--out` says otherwise: `report.csv`,
//!   `report.json`, `report.png`, `blocks.csv`. The chart needs a TrueType font; it looks in the usual system
//!   places (DejaVu Sans, Liberation Sans, Arial) or takes `--font`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

use common::{median, time_calls, uniform, BoxError};
use sepconv::cpu::fast::Conv2dCpu;
use sepconv::cpu::{self, reference};
use sepconv::networks::layers::{Layer, LAYERS};
use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{mobilenet_v1, mobilenet_v2, Network};
use sepconv::{
    BlockPath, Conv2d, ConvKernel, ConvKind, CpuNetwork, Fusion, Gpu, GpuNetwork, GpuTensor,
    SeparableBlock, Tensor, Tuning,
};

struct Args {
    out: PathBuf,
    only: Option<Vec<String>>,
    gpu: bool,
    peers: Vec<PathBuf>,
    font: Option<PathBuf>,
    check: bool,
    networks: bool,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        out: PathBuf::from("target/report"),
        only: None,
        gpu: true,
        peers: Vec::new(),
        font: None,
        check: true,
        networks: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--only" => args.only = Some(value("--only")?.split(',').map(str::to_owned).collect()),
            "--no-gpu" => args.gpu = false,
            "--no-check" => args.check = false,
            "--no-networks" => args.networks = false,
            "--peer" => args.peers.push(PathBuf::from(value("--peer")?)),
            "--font" => args.font = Some(PathBuf::from(value("--font")?)),
            "-h" | "--help" => {
                println!("usage: report [--out DIR] [--only a,b] [--no-gpu] [--no-check] [--no-networks] [--peer FILE]... [--font FILE.ttf]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(args)
}

/// The adapter's measured ceilings.
#[derive(Debug, Clone, Copy)]
struct Ceilings {
    fma_gflops: f64,
    copy_gbs: f64,
}

fn measure_ceilings(gpu: &Gpu) -> Result<Ceilings, BoxError> {
    use wgpu::util::DeviceExt;
    let device = gpu.device();
    let queue = gpu.queue();
    let pipeline = |label: &str, source: &str| {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let run = |pipeline: &wgpu::ComputePipeline, group: &wgpu::BindGroup, groups: u32| {
        let mut encoder = device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(groups, 1, 1);
        }
        let t = Instant::now();
        queue.submit([encoder.finish()]);
        gpu.wait().map(|_| t.elapsed().as_secs_f64())
    };
    let storage = |label, bytes: u64| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };

    // FMA: 2048 workgroups of 64, iterations scaled so one dispatch takes ≳ 0.1 s.
    let fma = pipeline("ceiling.fma", include_str!("../shaders/ceiling_fma.wgsl"));
    let (groups, invocations) = (2048u32, 2048u64 * 64);
    let out = storage("ceiling.fma.out", invocations * 16);
    let bind = |iters: u32| {
        let mut params = [0u8; 16];
        params[..4].copy_from_slice(&iters.to_le_bytes());
        params[4..8].copy_from_slice(&0.5f32.to_le_bytes());
        params[8..12].copy_from_slice(&0.9999f32.to_le_bytes());
        params[12..16].copy_from_slice(&1e-4f32.to_le_bytes());
        let uniform = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("ceiling.fma.params"),
            contents: &params,
            usage: wgpu::BufferUsages::UNIFORM,
        });
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("ceiling.fma"),
            layout: &fma.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniform.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: out.as_entire_binding(),
                },
            ],
        })
    };
    let mut iters = 64u32;
    loop {
        let t = run(&fma, &bind(iters), groups)?;
        if t > 0.1 || iters >= 1 << 20 {
            break;
        }
        iters *= 2;
    }
    let group = bind(iters);
    let mut times = (0..5)
        .map(|_| run(&fma, &group, groups))
        .collect::<Result<Vec<_>, _>>()?;
    let flops = invocations as f64 * f64::from(iters) * 4.0 * 16.0 * 4.0 * 2.0;
    let fma_gflops = flops / median(&mut times) / 1e9;

    // Copy: 64 MiB (or the device's binding limit) each way.
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let bytes = (64u64 << 20).min(limit) / (16 * 4 * 1024) * (16 * 4 * 1024);
    let copy = pipeline("ceiling.copy", include_str!("../shaders/ceiling_copy.wgsl"));
    let (src, dst) = (
        storage("ceiling.copy.src", bytes),
        storage("ceiling.copy.dst", bytes),
    );
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("ceiling.copy"),
        layout: &copy.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: src.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: dst.as_entire_binding(),
            },
        ],
    });
    let copy_groups = (bytes / (16 * 4 * 1024)) as u32;
    run(&copy, &group, copy_groups)?;
    let mut times = (0..5)
        .map(|_| run(&copy, &group, copy_groups))
        .collect::<Result<Vec<_>, _>>()?;
    let copy_gbs = 2.0 * bytes as f64 / median(&mut times) / 1e9;
    Ok(Ceilings {
        fma_gflops,
        copy_gbs,
    })
}

/// One row of the report.
struct Row {
    layer: &'static Layer,
    kind: String,
    min_bytes: u64,
    cpu_first_ms: f64,
    cpu_ms: f64,
    /// One call of the f64 reference, the checker.
    check_ms: Option<f64>,
    gpu_first_ms: Option<f64>,
    gpu_ms: Option<f64>,
    /// Process CPU time per resident GPU call (the driver's threads, on a software adapter).
    gpu_cpu_ms: Option<f64>,
    gpu_e2e_ms: Option<f64>,
    /// Pointwise and grouped layers: the kernel `ConvKernel::Auto` chose, and each kernel
    /// pinned.
    gpu_kernel: Option<ConvKernel>,
    windows_ms: Option<f64>,
    gemm_ms: Option<f64>,
    /// Slices the tiled product splits its sums into on this layer (`SplitK::Auto`).
    gemm_slices: Option<usize>,
    peers: BTreeMap<String, f64>,
}

impl Row {
    fn gflops(&self, ms: f64) -> f64 {
        self.layer.flops() as f64 / ms / 1e6
    }
    fn gbs(&self, ms: f64) -> f64 {
        self.min_bytes as f64 / ms / 1e6
    }
}

fn measure_layer(
    i: usize,
    l: &'static Layer,
    gpu: Option<&Gpu>,
    check: bool,
) -> Result<Row, BoxError> {
    let spec = l.spec();
    let shape = l.input_shape();
    let x = Tensor::new(shape, uniform(3 * i as u64 + 1, shape.len()?))?;
    let w = uniform(3 * i as u64 + 2, spec.weight_count());
    let b = uniform(3 * i as u64 + 3, spec.c_out);
    let out_shape = spec.output_shape(shape)?;
    let min_bytes = 4 * (shape.len()? + w.len() + b.len() + out_shape.len()?) as u64;

    let cpu = Conv2dCpu::new(spec, &w, Some(&b))?;
    let mut out = Tensor::full(out_shape, 0.0)?;
    let cpu_timing = time_calls(|| Ok(cpu.run_into(&x, &mut out)?))?;
    // The checker: one call of the f64 reference, and the fast path against it.
    let check_ms = if check {
        let start = Instant::now();
        let want = reference::conv2d(&spec, &x, &w, Some(&b))?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let worst = out
            .data()
            .iter()
            .zip(want.data())
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0f32, f32::max);
        if worst.is_nan() || worst > 1e-3 {
            return Err(format!(
                "{}: fast path and reference disagree (worst relative {worst})",
                l.name
            )
            .into());
        }
        Some(ms)
    } else {
        None
    };

    let (mut gpu_first_ms, mut gpu_ms, mut gpu_cpu_ms, mut gpu_e2e_ms) = (None, None, None, None);
    let (mut gpu_kernel, mut windows_ms, mut gemm_ms, mut gemm_slices) = (None, None, None, None);
    if let Some(gpu) = gpu {
        let conv = Conv2d::new(gpu, spec, &w, Some(&b))?;
        let gx = GpuTensor::from_tensor(gpu, &x)?;
        let gy = GpuTensor::full(gpu, out_shape, f32::NAN)?;
        let resident = time_calls(|| {
            conv.run_into(&gx, &gy)?;
            Ok(gpu.wait()?)
        })?;
        // The GPU result must agree with the CPU's (same data), or the times mean nothing.
        let got = gy.read()?;
        let worst = got
            .data()
            .iter()
            .zip(out.data())
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0f32, f32::max);
        if worst.is_nan() || worst > 1e-3 {
            return Err(
                format!("{}: GPU and CPU disagree (worst relative {worst})", l.name).into(),
            );
        }
        let e2e = time_calls(|| {
            let gx = GpuTensor::from_tensor(gpu, &x)?;
            conv.run(&gx)?.read()?;
            Ok(())
        })?;
        if !matches!(spec.kind(), ConvKind::Depthwise { .. }) {
            gpu_kernel = conv.chosen_kernel(shape);
            gemm_slices = Some(conv.split_k_parts(shape)?);
            for (kernel, ms) in [
                (ConvKernel::UniformWindows, &mut windows_ms),
                (ConvKernel::TiledGemm, &mut gemm_ms),
            ] {
                let pinned = Conv2d::new(gpu, spec, &w, Some(&b))?
                    .with_tuning(Tuning::auto().with_kernel(kernel));
                let timing = time_calls(|| {
                    pinned.run_into(&gx, &gy)?;
                    Ok(gpu.wait()?)
                })?;
                *ms = Some(timing.median * 1e3);
            }
        }
        gpu_first_ms = Some(resident.first * 1e3);
        gpu_ms = Some(resident.median * 1e3);
        gpu_cpu_ms = resident.cpu_per_call.map(|s| s * 1e3);
        gpu_e2e_ms = Some(e2e.median * 1e3);
    }
    Ok(Row {
        layer: l,
        kind: spec.kind().to_string(),
        min_bytes,
        cpu_first_ms: cpu_timing.first * 1e3,
        cpu_ms: cpu_timing.median * 1e3,
        check_ms,
        gpu_first_ms,
        gpu_ms,
        gpu_cpu_ms,
        gpu_e2e_ms,
        gpu_kernel,
        windows_ms,
        gemm_ms,
        gemm_slices,
        peers: BTreeMap::new(),
    })
}

/// One whole network's three figures.
struct NetworkRow {
    cpu_ms: f64,
    gpu_ms: Option<f64>,
    check_ms: Option<f64>,
}

/// Times `net` whole on the fast CPU path and the GPU (same protocol as the layers, after a
/// first run that also makes the GPU's measured kernel choices), checks both against one run
/// of the reference.
fn measure_network(net: &Network, gpu: Option<&Gpu>, check: bool) -> Result<NetworkRow, BoxError> {
    let weights = NetworkWeights::random(net, 2017)?;
    let x = random_input(net.input_shape(), 2017)?;
    let fast = CpuNetwork::new(net, &weights)?;
    let mut logits = fast.run(&x)?;
    let cpu_ms = time_calls(|| {
        logits = fast.run(&x)?;
        Ok(())
    })?
    .median
        * 1e3;
    let mut gpu_logits = None;
    let gpu_ms = match gpu {
        Some(gpu) => {
            let gnet = GpuNetwork::new(gpu, net, &weights)?;
            let t = time_calls(|| {
                let gx = GpuTensor::from_tensor(gpu, &x)?;
                gpu_logits = Some(gnet.run(&gx)?.read()?);
                Ok(())
            })?;
            Some(t.median * 1e3)
        }
        None => None,
    };
    let check_ms = if check {
        let start = Instant::now();
        let want = cpu::network::forward(net, &weights, &x)?;
        let ms = start.elapsed().as_secs_f64() * 1e3;
        let want = &want[want.len() - 1];
        for (side, got) in [("fast path", Some(&logits)), ("GPU", gpu_logits.as_ref())] {
            let Some(got) = got else { continue };
            let worst = got
                .data()
                .iter()
                .zip(want.data())
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            if worst.is_nan() || worst > 1e-3 {
                return Err(format!(
                    "{}: {side} and reference disagree at the logits (worst relative {worst})",
                    net.name()
                )
                .into());
            }
        }
        Some(ms)
    } else {
        None
    };
    Ok(NetworkRow {
        cpu_ms,
        gpu_ms,
        check_ms,
    })
}

/// One MobileNet v1 separable block timed both ways.
struct BlockRow {
    name: String,
    input: sepconv::Shape,
    two_kernels_ms: f64,
    fused_ms: f64,
    auto: BlockPath,
}

/// Times MobileNet v1's blocks (`mbv1_dw{i}` + `mbv1_pw{i}`) as two kernels and fused, after
/// checking that the two paths agree.
fn measure_blocks(gpu: &Gpu, only: Option<&[String]>) -> Result<Vec<BlockRow>, BoxError> {
    let mut rows = Vec::new();
    for i in 1.. {
        let (Some(dw), Some(pw)) = (
            sepconv::networks::layers::find(&format!("mbv1_dw{i}")),
            sepconv::networks::layers::find(&format!("mbv1_pw{i}")),
        ) else {
            break;
        };
        let name = format!("mbv1_block{i}");
        if only.is_some_and(|o| !o.contains(&name)) {
            continue;
        }
        let (dw_spec, pw_spec) = (dw.spec(), pw.spec());
        let shape = dw.input_shape();
        let seed = 1000 + 4 * i as u64;
        let x = GpuTensor::from_slice(gpu, shape, &uniform(seed, shape.len()?))?;
        let block = |fusion| -> Result<SeparableBlock, BoxError> {
            Ok(SeparableBlock::new(
                Conv2d::new(
                    gpu,
                    dw_spec,
                    &uniform(seed + 1, dw_spec.weight_count()),
                    Some(&uniform(seed + 2, dw_spec.c_out)),
                )?,
                Conv2d::new(
                    gpu,
                    pw_spec,
                    &uniform(seed + 3, pw_spec.weight_count()),
                    Some(&uniform(seed + 4, pw_spec.c_out)),
                )?,
            )?
            .with_tuning(Tuning::auto().with_fusion(fusion)))
        };
        let (_, out_shape) = block(Fusion::Never)?.shapes(shape)?;
        let mut medians = Vec::new();
        let mut outputs = Vec::new();
        for fusion in [Fusion::Never, Fusion::Always] {
            let block = block(fusion)?;
            let y = GpuTensor::full(gpu, out_shape, f32::NAN)?;
            let timing = time_calls(|| {
                block.run_into(&x, &y)?;
                Ok(gpu.wait()?)
            })?;
            medians.push(timing.median * 1e3);
            outputs.push(y.read()?);
        }
        let worst = outputs[0]
            .data()
            .iter()
            .zip(outputs[1].data())
            .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
            .fold(0f32, f32::max);
        if worst.is_nan() || worst > 1e-3 {
            return Err(format!("{name}: fused and two-kernel paths disagree ({worst})").into());
        }
        let auto = block(Fusion::Auto)?;
        auto.run(&x)?;
        let chosen = auto.chosen_path(shape).ok_or("Auto recorded no path")?;
        eprintln!(
            "{name:18} two kernels {:8.3} ms  fused {:8.3} ms",
            medians[0], medians[1]
        );
        rows.push(BlockRow {
            name,
            input: shape,
            two_kernels_ms: medians[0],
            fused_ms: medians[1],
            auto: chosen,
        });
    }
    Ok(rows)
}

/// `RESULT\tengine\tlayer\tms…` lines → (engine, layer) → ms.
fn read_peers(paths: &[PathBuf]) -> Result<BTreeMap<(String, String), f64>, BoxError> {
    let mut map = BTreeMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read peer file {}: {e}", path.display()))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() >= 4 && f[0] == "RESULT" {
                if let Ok(ms) = f[3].parse::<f64>() {
                    map.insert((f[1].to_owned(), f[2].to_owned()), ms);
                }
            }
        }
    }
    Ok(map)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let gpu = if args.gpu {
        match Gpu::new() {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("no GPU adapter, GPU columns left empty: {e}");
                None
            }
        }
    } else {
        None
    };
    let ceilings = gpu.as_ref().map(measure_ceilings).transpose()?;
    let peers = read_peers(&args.peers)?;
    let engines: Vec<String> = {
        let mut e: Vec<String> = peers.keys().map(|(e, _)| e.clone()).collect();
        e.dedup();
        e
    };

    let mut rows = Vec::new();
    for (i, l) in LAYERS.iter().enumerate() {
        if let Some(only) = &args.only {
            if !only.iter().any(|o| o == l.name) {
                continue;
            }
        }
        let mut row = measure_layer(i, l, gpu.as_ref(), args.check)?;
        for e in &engines {
            if let Some(ms) = peers.get(&(e.clone(), l.name.to_owned())) {
                row.peers.insert(e.clone(), *ms);
            }
        }
        eprintln!(
            "{:18} cpu {:8.3} ms  gpu {} ms",
            l.name,
            row.cpu_ms,
            opt(row.gpu_ms, 3)
        );
        rows.push(row);
    }

    // Header: machine, adapter, ceilings.
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut head = String::new();
    writeln!(
        head,
        "# sepconv report: {} layers, {cpus} CPU threads, SIMD {}",
        rows.len(),
        simd_level()
    )?;
    match (&gpu, &ceilings) {
        (Some(g), Some(c)) => writeln!(
            head,
            "# adapter: {} ({:?}); measured ceilings: FMA {:.1} GFLOP/s, copy kernel {:.1} GB/s",
            g.adapter_name(),
            g.backend(),
            c.fma_gflops,
            c.copy_gbs
        )?,
        _ => writeln!(head, "# no GPU")?,
    }
    if let Some(g) = &gpu {
        if g.adapter_info().device_type == wgpu::DeviceType::Cpu {
            writeln!(
                head,
                "# note: {} is a software adapter (it runs the shaders on this machine's CPU \
                 cores); the fast CPU path is the faster choice here, and Device::Auto picks it",
                g.adapter_name()
            )?;
        }
    }
    writeln!(
        head,
        "# cpu: the fast CPU path; gpu: the GPU; check: one call of the f64 reference, the \
         checker both are compared against (not a competitor)"
    )?;
    print!("{head}");

    // Table.
    let mut cols = vec![
        "layer",
        "kind",
        "MMACs",
        "cpu_ms",
        "cpu_gflops",
        "gpu_ms",
        "check_ms",
        "gpu_cpu_ms",
        "gpu_e2e_ms",
        "gpu_gflops",
        "gpu_gbs",
        "gpu_pct_fma",
        "gpu_pct_bw",
        "cpu_first_ms",
        "gpu_first_ms",
        "kernel",
        "windows_ms",
        "gemm_ms",
        "gemm_slices",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    for e in &engines {
        cols.push(format!("{e}_ms"));
        cols.push(format!("cpu_over_{e}"));
        cols.push(format!("gpu_over_{e}"));
    }
    let mut table: Vec<Vec<String>> = Vec::new();
    for r in &rows {
        let gpu_gflops = r.gpu_ms.map(|ms| r.gflops(ms));
        let gpu_gbs = r.gpu_ms.map(|ms| r.gbs(ms));
        let mut cells = vec![
            r.layer.name.to_owned(),
            r.kind.clone(),
            format!("{:.2}", r.layer.macs as f64 / 1e6),
            format!("{:.4}", r.cpu_ms),
            format!("{:.1}", r.gflops(r.cpu_ms)),
            opt(r.gpu_ms, 4),
            opt(r.check_ms, 2),
            opt(r.gpu_cpu_ms, 2),
            opt(r.gpu_e2e_ms, 4),
            opt(gpu_gflops, 2),
            opt(gpu_gbs, 2),
            opt(
                gpu_gflops
                    .zip(ceilings)
                    .map(|(g, c)| 100.0 * g / c.fma_gflops),
                1,
            ),
            opt(
                gpu_gbs.zip(ceilings).map(|(g, c)| 100.0 * g / c.copy_gbs),
                1,
            ),
            format!("{:.3}", r.cpu_first_ms),
            opt(r.gpu_first_ms, 3),
            match r.gpu_kernel {
                Some(ConvKernel::TiledGemm) => "gemm".to_owned(),
                Some(_) => "windows".to_owned(),
                None => "-".to_owned(),
            },
            opt(r.windows_ms, 4),
            opt(r.gemm_ms, 4),
            r.gemm_slices.map_or("-".to_owned(), |n| n.to_string()),
        ];
        for e in &engines {
            let p = r.peers.get(e).copied();
            cells.push(opt(p, 4));
            cells.push(opt(p.map(|p| r.cpu_ms / p), 2));
            cells.push(opt(p.zip(r.gpu_ms).map(|(p, g)| g / p), 2));
        }
        table.push(cells);
    }
    let widths: Vec<usize> = (0..cols.len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].len())
                .chain([cols[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    println!("{}", line(&cols));
    for r in &table {
        println!("{}", line(r));
    }
    let sum = |f: &dyn Fn(&Row) -> Option<f64>| rows.iter().map(f).sum::<Option<f64>>();
    println!(
        "total: cpu {:.3} ms, gpu {} ms, gpu e2e {} ms, check {} ms{}",
        rows.iter().map(|r| r.cpu_ms).sum::<f64>(),
        opt(sum(&|r| r.gpu_ms), 3),
        opt(sum(&|r| r.gpu_e2e_ms), 3),
        opt(sum(&|r| r.check_ms), 1),
        engines
            .iter()
            .map(|e| format!(", {e} {} ms", opt(sum(&|r| r.peers.get(e).copied()), 3)))
            .collect::<String>()
    );

    // Per kind: the fast path's summed time against each engine's.
    for e in &engines {
        let mut kinds: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
        for r in &rows {
            if let Some(&p) = r.peers.get(e) {
                let k = kinds.entry(r.kind.as_str()).or_default();
                k.0 += r.cpu_ms;
                k.1 += p;
                k.2 = k.2.max(r.cpu_ms / p);
            }
        }
        let cells: Vec<String> = kinds
            .iter()
            .map(|(k, (c, p, worst))| format!("{k} {:.2}× (worst layer {worst:.2}×)", c / p))
            .collect();
        if !cells.is_empty() {
            println!("cpu ÷ {e} by kind: {}", cells.join(", "));
        }
    }

    // Whole networks: fast CPU path, GPU, checker.
    let mut networks_csv = String::from("network,cpu_ms,gpu_ms,check_ms,gpu_over_cpu\n");
    let wanted = |key: &str| {
        args.networks
            && args
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == key))
    };
    if wanted("mobilenet_v1") || wanted("mobilenet_v2") {
        println!(
            "\nwhole network        {:>9}  {:>9}  {:>9}  {:>10}{}",
            "cpu ms",
            "gpu ms",
            "check ms",
            "gpu / cpu",
            engines
                .iter()
                .map(|e| format!("  {:>9}  {:>10}", format!("{e} ms"), format!("cpu / {e}")))
                .collect::<String>()
        );
        for (key, net) in [
            ("mobilenet_v1", mobilenet_v1(1.0, 224)?),
            ("mobilenet_v2", mobilenet_v2(1.0, 224)?),
        ] {
            if !wanted(key) {
                continue;
            }
            let n = measure_network(&net, gpu.as_ref(), args.check)?;
            let peer_cells: String = engines
                .iter()
                .map(|e| {
                    let p = peers.get(&(e.clone(), key.to_owned())).copied();
                    format!(
                        "  {:>9}  {:>10}",
                        opt(p, 3),
                        opt(p.map(|p| n.cpu_ms / p), 2)
                    )
                })
                .collect();
            println!(
                "{key:<20} {:>9.3}  {:>9}  {:>9}  {:>10}{peer_cells}",
                n.cpu_ms,
                opt(n.gpu_ms, 3),
                opt(n.check_ms, 1),
                opt(n.gpu_ms.map(|g| g / n.cpu_ms), 2)
            );
            writeln!(
                networks_csv,
                "{key},{:.4},{},{},{}",
                n.cpu_ms,
                opt(n.gpu_ms, 4),
                opt(n.check_ms, 2),
                opt(n.gpu_ms.map(|g| g / n.cpu_ms), 3)
            )?;
        }
        println!(
            "(medians of whole runs after a first untimed one; gpu: upload, one submission, \
             logits read back; check: one run of the reference)"
        );
    }

    // Separable blocks, both paths.
    let blocks = match &gpu {
        Some(gpu) => measure_blocks(gpu, args.only.as_deref())?,
        None => Vec::new(),
    };
    let mut blocks_csv = String::from("block,input,two_kernels_ms,fused_ms,fused_speedup,auto\n");
    if !blocks.is_empty() {
        println!(
            "\nseparable blocks  {:>16}  {:>14}  {:>9}  {:>13}  auto",
            "input", "two kernels ms", "fused ms", "fused speedup"
        );
    }
    for b in &blocks {
        println!(
            "{:16}  {:>16}  {:>14.3}  {:>9.3}  {:>13.2}  {:?}",
            b.name,
            b.input.to_string(),
            b.two_kernels_ms,
            b.fused_ms,
            b.two_kernels_ms / b.fused_ms,
            b.auto
        );
        writeln!(
            blocks_csv,
            "{},{},{:.4},{:.4},{:.3},{:?}",
            b.name,
            b.input,
            b.two_kernels_ms,
            b.fused_ms,
            b.two_kernels_ms / b.fused_ms,
            b.auto
        )?;
    }

    // Files.
    std::fs::create_dir_all(&args.out)?;
    if !blocks.is_empty() {
        std::fs::write(args.out.join("blocks.csv"), blocks_csv)?;
    }
    if networks_csv.lines().count() > 1 {
        std::fs::write(args.out.join("networks.csv"), networks_csv)?;
    }
    let mut csv = cols.join(",") + "\n";
    for r in &table {
        csv += &(r.join(",") + "\n");
    }
    std::fs::write(args.out.join("report.csv"), csv)?;
    std::fs::write(args.out.join("report.json"), to_json(&head, &cols, &table))?;
    let png = args.out.join("report.png");
    // No layer rows (an `--only` naming networks alone): no chart, whose axes need a range.
    let font = if rows.is_empty() {
        Err("no layers to chart".into())
    } else {
        load_font(args.font.as_deref())
    };
    match font {
        Ok(()) => {
            draw_chart(
                &png,
                &rows,
                &engines,
                &gpu.as_ref().map(|g| g.adapter_name().to_owned()),
            )?;
            eprintln!("wrote {}/report.{{csv,json,png}}", args.out.display());
        }
        Err(e) => eprintln!(
            "chart skipped ({e}); wrote {}/report.{{csv,json}}",
            args.out.display()
        ),
    }
    Ok(())
}

fn simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "AVX2+FMA";
        }
    }
    "baseline"
}

/// A JSON document: the header lines and one object per row (numbers where they parse).
fn to_json(head: &str, cols: &[String], table: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut j = String::from("{\n  \"header\": [");
    j += &head
        .lines()
        .map(|l| format!("\"{}\"", esc(l.trim_start_matches("# "))))
        .collect::<Vec<_>>()
        .join(", ");
    j += "],\n  \"rows\": [\n";
    let rows: Vec<String> = table
        .iter()
        .map(|r| {
            let fields: Vec<String> = cols
                .iter()
                .zip(r)
                .map(|(c, v)| {
                    let value = if v.parse::<f64>().is_ok() {
                        v.clone()
                    } else if v == "-" {
                        "null".into()
                    } else {
                        format!("\"{}\"", esc(v))
                    };
                    format!("\"{c}\": {value}")
                })
                .collect();
            format!("    {{{}}}", fields.join(", "))
        })
        .collect();
    j += &rows.join(",\n");
    j += "\n  ]\n}\n";
    j
}

fn load_font(explicit: Option<&Path>) -> Result<(), BoxError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_owned()],
        None => [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/Library/Fonts/Arial.ttf",
            "C:\\Windows\\Fonts\\arial.ttf",
        ]
        .iter()
        .map(PathBuf::from)
        .collect(),
    };
    for path in &candidates {
        if let Ok(bytes) = std::fs::read(path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .map_err(|_| format!("{} is not a usable TrueType font", path.display()).into());
        }
    }
    Err("no TrueType font found; pass --font FILE.ttf".into())
}

/// Grouped bars per layer, log-scale milliseconds: CPU fast path, GPU (resident), and peers.
fn draw_chart(
    path: &Path,
    rows: &[Row],
    engines: &[String],
    adapter: &Option<String>,
) -> Result<(), BoxError> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (1800, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut series: Vec<(String, RGBColor, Vec<Option<f64>>)> = vec![(
        "sepconv CPU (fast path)".into(),
        RGBColor(31, 119, 180),
        rows.iter().map(|r| Some(r.cpu_ms)).collect(),
    )];
    if rows.iter().any(|r| r.gpu_ms.is_some()) {
        series.push((
            format!(
                "sepconv GPU, resident ({})",
                adapter.clone().unwrap_or_default()
            ),
            RGBColor(214, 39, 40),
            rows.iter().map(|r| r.gpu_ms).collect(),
        ));
    }
    let palette = [
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
    ];
    for (e, color) in engines.iter().zip(palette) {
        series.push((
            format!("{e} (same machine)"),
            color,
            rows.iter().map(|r| r.peers.get(e).copied()).collect(),
        ));
    }
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().flatten().copied())
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1e-4) / 1.5;
    let hi = all.iter().copied().fold(0.0, f64::max) * 1.5;
    let n = rows.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "time per layer (median, ms, log scale): lower is better",
            ("sans-serif", 28),
        )
        .margin(15)
        .x_label_area_size(150)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("ms")
        .y_label_style(("sans-serif", 16))
        .draw()?;
    // Layer names under the axis, rotated, one per bar group.
    let label_style = ("sans-serif", 15)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK);
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
        root.draw(&Text::new(
            r.layer.name,
            (px + 7, py + 6),
            label_style.clone(),
        ))?;
    }
    let width = 0.8 / series.len() as f64;
    for (k, (name, color, values)) in series.iter().enumerate() {
        let color = *color;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                v.map(|v| {
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    Rectangle::new([(x0, lo), (x0 + width, v)], color.filled())
                })
            }))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    root.present()?;
    Ok(())
}
