//! Checkpoint loading on files the tests write themselves (no download needed): safetensors
//! in every float type, typed lookup errors, batch norm folding by name, the EfficientNet-Lite
//! and torchvision MobileNet v2 key maps on random checkpoints of their shapes, the
//! EfficientNet-Lite parameter counts, and corrupt or hostile files (a proptest over mutated
//! files). The pretrained network on real photos is in `tests/pretrained.rs`.

mod common;

use common::gpu;
use proptest::prelude::*;
use sepconv::checkpoint::{keys, load_weights, Format, LayerKeys, StateDict};
use sepconv::networks::weights::{random_input, NetworkWeights};
use sepconv::networks::{
    efficientnet_lite, Counting, EfficientNetLite, MobileNetV2, Network, NetworkBuilder, Op,
    EFFICIENTNET_LITE_BN_EPS,
};
use sepconv::{cpu, Activation, Conv2dSpec, Error, GpuNetwork, GpuTensor, Padding, Shape};

/// SplitMix64 values in [-1, 1): enough randomness for weights, no dependency on `rand`'s
/// stream.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A random state dict with every tensor `net` needs under `keys`' names, batch norm variance
/// in [0.5, 1.5]. Returns the dict and the number of trainable values it holds.
fn random_checkpoint(
    net: &Network,
    mut keys: impl FnMut(usize, &sepconv::networks::Node) -> Option<LayerKeys>,
    seed: u64,
) -> (StateDict, u64) {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut trainable = 0u64;
    for (id, node) in net.nodes().iter().enumerate() {
        let Some(spec) = node.op.conv_spec() else {
            continue;
        };
        let k = keys(id, node).unwrap_or_else(|| panic!("no keys for {}", node.name));
        let shape = if matches!(node.op, Op::FullyConnected { .. }) {
            vec![spec.c_out, spec.c_in]
        } else {
            vec![
                spec.c_out,
                spec.c_in_per_group(),
                spec.kernel[0],
                spec.kernel[1],
            ]
        };
        let n: usize = shape.iter().product();
        let fan_in = (n / spec.c_out) as f32;
        let w = values(seed ^ id as u64, n)
            .into_iter()
            .map(|v| v * (3.0 / fan_in).sqrt())
            .collect();
        tensors.push((format!("{}.weight", k.conv), shape, w));
        trainable += n as u64;
        if spec.bias {
            tensors.push((
                format!("{}.bias", k.conv),
                vec![spec.c_out],
                values(seed ^ 0xb1a5 ^ id as u64, spec.c_out),
            ));
            trainable += spec.c_out as u64;
        }
        if let Some(bn) = k.batch_norm {
            let c = spec.c_out;
            let v = |salt: u64| values(seed ^ salt ^ (id as u64) << 8, c);
            tensors.push((
                format!("{}.weight", bn.prefix),
                vec![c],
                v(1).iter().map(|x| 1.0 + 0.5 * x).collect(),
            ));
            tensors.push((
                format!("{}.bias", bn.prefix),
                vec![c],
                v(2).iter().map(|x| 0.1 * x).collect(),
            ));
            tensors.push((
                format!("{}.running_mean", bn.prefix),
                vec![c],
                v(3).iter().map(|x| 0.1 * x).collect(),
            ));
            tensors.push((
                format!("{}.running_var", bn.prefix),
                vec![c],
                v(4).iter().map(|x| 1.0 + 0.5 * x).collect(),
            ));
            trainable += 2 * c as u64;
        }
    }
    (StateDict::from_tensors(tensors).unwrap(), trainable)
}

/// A small network with a grouped conv, a depthwise conv with bias, batch norm and a
/// classifier, named like a PyTorch `Sequential`.
fn tiny() -> Network {
    let mut b = NetworkBuilder::new("tiny", Shape::new(1, 4, 9, 9), Counting::TRAINABLE).unwrap();
    let x = b
        .conv(
            "features.0",
            b.input(),
            Conv2dSpec::new(4, 8, [3, 3])
                .groups(2)
                .padding(Padding::uniform(1))
                .bias(false)
                .activation(Activation::Relu6),
            true,
        )
        .unwrap();
    let x = b
        .conv(
            "features.2",
            x,
            Conv2dSpec::depthwise(8, [3, 3])
                .stride([2, 2])
                .padding(Padding::same()),
            false,
        )
        .unwrap();
    let x = b.global_avg_pool("pool", x).unwrap();
    b.fully_connected("fc", x, 5, true, Activation::None)
        .unwrap();
    b.build()
}

fn tiny_keys(_: usize, node: &sepconv::networks::Node) -> Option<LayerKeys> {
    match node.name.as_str() {
        "features.0" => Some(LayerKeys::conv("features.0").batch_norm("features.1", 1e-3)),
        "features.2" => Some(LayerKeys::conv("features.2")),
        "fc" => Some(LayerKeys::conv("fc")),
        _ => None,
    }
}

/// Writes `bytes` to a fresh file under the target dir and returns its path.
fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sepconv-checkpoints-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn safetensors_round_trip_and_float_conversions() {
    use safetensors::{tensor::TensorView, Dtype};
    let x = [1.5f32, -2.25, 0.0, 65504.0, 3.0e-5, -7.0];
    let f16: Vec<u8> = x
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let bf16: Vec<u8> = x
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let f64b: Vec<u8> = x.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect();
    let f32b: Vec<u8> = x.iter().flat_map(|&v| v.to_le_bytes()).collect();
    let i64b: Vec<u8> = (0..6i64).flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        (
            "a.f16",
            TensorView::new(Dtype::F16, vec![2, 3], &f16).unwrap(),
        ),
        (
            "a.bf16",
            TensorView::new(Dtype::BF16, vec![2, 3], &bf16).unwrap(),
        ),
        (
            "a.f64",
            TensorView::new(Dtype::F64, vec![6], &f64b).unwrap(),
        ),
        (
            "a.f32",
            TensorView::new(Dtype::F32, vec![3, 2], &f32b).unwrap(),
        ),
        (
            "a.i64",
            TensorView::new(Dtype::I64, vec![6], &i64b).unwrap(),
        ),
    ];
    let bytes = safetensors::serialize(views, None).unwrap();
    let path = temp_file("floats.safetensors", &bytes);
    let dict = StateDict::open(&path).unwrap();
    assert_eq!(dict.format(), Format::Safetensors);
    assert_eq!(dict.len(), 5);
    assert_eq!(dict.get("a.f32", &[3, 2]).unwrap(), x);
    assert_eq!(dict.get("a.f64", &[6]).unwrap(), x);
    let want16: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    let wantb16: Vec<f32> = x
        .iter()
        .map(|&v| half::bf16::from_f32(v).to_f32())
        .collect();
    assert_eq!(dict.get("a.f16", &[2, 3]).unwrap(), want16);
    assert_eq!(dict.get("a.bf16", &[2, 3]).unwrap(), wantb16);
    assert!(
        matches!(dict.get("a.i64", &[6]), Err(Error::KeyDtype { key, dtype }) if key == "a.i64" && dtype == "I64")
    );
    // Written back as f32 and read again: the same values.
    let again = StateDict::from_safetensors(&dict.to_safetensors().unwrap()).unwrap();
    assert_eq!(again.get("a.f16", &[2, 3]).unwrap(), want16);
    assert_eq!(again.len(), 4, "the integer tensor is not written as f32");
}

#[test]
fn lookups_give_typed_errors() {
    let dict = StateDict::from_tensors([("features.0.weight", vec![2, 3], vec![0.0; 6])]).unwrap();
    match dict.get("features.1.weight", &[2, 3]) {
        Err(e @ Error::MissingKey { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("features.1.weight") && msg.contains("features.0.weight"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    match dict.get("features.0.weight", &[3, 2]) {
        Err(e @ Error::KeyShape { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("[2, 3]") && msg.contains("[3, 2]"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        StateDict::from_tensors([("a", vec![2], vec![0.0; 3])]),
        Err(Error::LengthMismatch { .. })
    ));
    // Missing batch norm tensors, a node without keys, keys naming a batch norm the node lacks.
    let net = tiny();
    let (full, _) = random_checkpoint(&net, tiny_keys, 3);
    let partial = StateDict::from_tensors(
        full.keys()
            .filter(|k| *k != "features.1.running_var")
            .map(|k| {
                (
                    k.to_owned(),
                    full.shape(k).unwrap().to_vec(),
                    full.get(k, full.shape(k).unwrap()).unwrap().to_vec(),
                )
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        matches!(load_weights(&net, &partial, tiny_keys), Err(Error::MissingKey { key, .. }) if key == "features.1.running_var")
    );
    assert!(matches!(
        load_weights(&net, &full, |_, _| None),
        Err(Error::Incompatible { .. })
    ));
    let extra_bn = |id, node: &sepconv::networks::Node| {
        tiny_keys(id, node).map(|k| {
            if k.conv == "features.2" {
                k.batch_norm("features.3", 1e-5)
            } else {
                k
            }
        })
    };
    assert!(matches!(
        load_weights(&net, &full, extra_bn),
        Err(Error::Incompatible { .. })
    ));
}

#[test]
fn loaded_weights_fold_batch_norm_with_the_given_eps() {
    let net = tiny();
    let (dict, trainable) = random_checkpoint(&net, tiny_keys, 11);
    assert_eq!(trainable, net.total_with(Counting::TRAINABLE).params);
    let w = load_weights(&net, &dict, tiny_keys).unwrap();
    // features.0 folded by hand in f64 with ε = 1e-3.
    let conv = w.layer(1).unwrap();
    let raw = dict.get("features.0.weight", &[8, 2, 3, 3]).unwrap();
    let g = |k: &str| dict.get(&format!("features.1.{k}"), &[8]).unwrap();
    for o in 0..8 {
        let s = f64::from(g("weight")[o]) / (f64::from(g("running_var")[o]) + 1e-3f64).sqrt();
        for i in 0..18 {
            assert_eq!(
                conv.weights[o * 18 + i],
                (f64::from(raw[o * 18 + i]) * s) as f32
            );
        }
        let b = f64::from(g("bias")[o]) - f64::from(g("running_mean")[o]) * s;
        assert_eq!(conv.bias.as_ref().unwrap()[o], b as f32);
    }
    // The bias-carrying depthwise and the classifier are copied as they are.
    assert_eq!(
        w.layer(2).unwrap().bias.as_deref().unwrap(),
        dict.get("features.2.bias", &[8]).unwrap()
    );
    assert_eq!(
        w.layer(4).unwrap().weights,
        dict.get("fc.weight", &[5, 8]).unwrap()
    );
}

/// The EfficientNet-Lite variants against TensorFlow's `efficientnet/lite/README.md`: params
/// 4.7M, 5.4M, 6.1M, 8.2M, 13.0M (counted as TensorFlow trains them: weights, biases, batch
/// norm γ and β); Lite0 exactly the 4,652,008 trainable values of the PyTorch port's
/// checkpoint (tests/pretrained.rs checks the file). The README's MAdds (407M, 631M, 899M,
/// 1.44B, 2.64B) count more than the convolutions' and classifier's multiply-adds this crate
/// counts (385M for Lite0), so they are printed, not checked.
#[test]
fn efficientnet_lite_reproduces_published_counts() {
    let published = [4.7, 5.4, 6.1, 8.2, 13.0];
    let mut got = Vec::new();
    for (variant, &params_m) in published.iter().enumerate() {
        let net = efficientnet_lite(variant).unwrap();
        let total = net.total();
        got.push((total.params, total.macs));
        assert_eq!(net.counting(), Counting::TRAINABLE);
        let rounded = (total.params as f64 / 1e5).round() / 10.0;
        assert_eq!(rounded, params_m, "Lite{variant}: {} params", total.params);
    }
    assert_eq!(got[0].0, 4_652_008);
    eprintln!("EfficientNet-Lite0..4 (params, MACs): {got:?}");
}

/// Every variant loads a random checkpoint of its shape written as a safetensors file, and
/// the loaded weights are the file's.
#[test]
fn efficientnet_lite_variants_load_random_checkpoints() {
    for variant in 0..5 {
        let net = efficientnet_lite(variant).unwrap();
        let (dict, trainable) = random_checkpoint(
            &net,
            keys::efficientnet_lite(EFFICIENTNET_LITE_BN_EPS),
            variant as u64,
        );
        assert_eq!(trainable, net.total().params, "Lite{variant}");
        let path = temp_file(
            &format!("lite{variant}.safetensors"),
            &dict.to_safetensors().unwrap(),
        );
        let read = StateDict::open(&path).unwrap();
        let w = load_weights(
            &net,
            &read,
            keys::efficientnet_lite(EFFICIENTNET_LITE_BN_EPS),
        )
        .unwrap();
        let fc = net.nodes().iter().position(|n| n.name == "_fc").unwrap();
        assert_eq!(
            w.layer(fc).unwrap().weights,
            read.get("_fc.weight", &[1000, 1280]).unwrap()
        );
        std::fs::remove_file(path).unwrap();
    }
}

/// torchvision's MobileNet v2 names on a random checkpoint written as safetensors (torchvision's
/// own file cannot be fetched here), run on the GPU and the CPU reference. The key names are
/// checked against torchvision's layout: 52 convolutions and the classifier, all 314 tensors
/// of its `state_dict()` less the 52 `num_batches_tracked`.
#[test]
fn torchvision_mobilenet_v2_loads_and_runs() {
    let config = MobileNetV2 {
        alpha: 1.0,
        resolution: 64,
        classes: 1000,
        batch: 1,
    };
    let net = keys::torchvision_mobilenet_v2(config).unwrap();
    let (dict, _) = random_checkpoint(&net, keys::torchvision_mobilenet_v2_keys(&net), 5);
    assert_eq!(dict.len(), 314 - 52);
    let names: Vec<&str> = dict.keys().collect();
    for expected in [
        "features.0.0.weight",
        "features.0.1.running_var",
        "features.1.conv.0.0.weight",
        "features.1.conv.1.weight",
        "features.1.conv.2.running_mean",
        "features.2.conv.0.0.weight",
        "features.2.conv.1.0.weight",
        "features.2.conv.2.weight",
        "features.2.conv.3.bias",
        "features.17.conv.3.running_var",
        "features.18.0.weight",
        "features.18.1.weight",
        "classifier.1.weight",
        "classifier.1.bias",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    // torchvision pads every 3×3 convolution by one on all sides.
    for node in net.nodes() {
        if let Op::Conv { spec, .. } = node.op {
            assert_eq!(
                spec.padding,
                if spec.kernel == [3, 3] {
                    Padding::uniform(1)
                } else {
                    Padding::uniform(0)
                },
                "{}",
                node.name
            );
        }
    }
    let path = temp_file("mobilenet_v2.safetensors", &dict.to_safetensors().unwrap());
    let dict = StateDict::open(&path).unwrap();
    let w = load_weights(&net, &dict, keys::torchvision_mobilenet_v2_keys(&net)).unwrap();
    let x = random_input(net.input_shape(), 5).unwrap();
    let want = cpu::network::forward(&net, &w, &x).unwrap().pop().unwrap();
    let got = GpuNetwork::new(gpu(), &net, &w)
        .unwrap()
        .run(&GpuTensor::from_tensor(gpu(), &x).unwrap())
        .unwrap()
        .read()
        .unwrap();
    let rms = (want
        .data()
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        / 1000.0)
        .sqrt() as f32;
    assert!(rms > 1e-2, "degenerate logits");
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() <= 1e-3 * rms + 1e-5 * w.abs(), "{g} vs {w}");
    }
    std::fs::remove_file(path).unwrap();
}

/// Hostile or damaged files: every way a file can be wrong gives `Error::BadFile`.
#[test]
fn bad_files_give_typed_errors() {
    let net = tiny();
    let (dict, _) = random_checkpoint(&net, tiny_keys, 1);
    let good = dict.to_safetensors().unwrap();
    let bad = |bytes: &[u8]| match StateDict::from_safetensors(bytes) {
        Err(Error::BadFile {
            what: "checkpoint", ..
        }) => {}
        other => panic!("{other:?}"),
    };
    bad(&good[..good.len() - 1]); // truncated data
    bad(&good[..20]); // truncated header
    bad(&[]);
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes()); // header length past the file
    bad(&huge);
    let mut lies = good.clone();
    let header = String::from_utf8_lossy(&lies[8..]).into_owned();
    let at = header.find("[5,8]").unwrap() + 8;
    lies[at..at + 5].copy_from_slice(b"[9,9]"); // a shape its offsets do not hold
    bad(&lies);
    // Neither format: the PyTorch reader refuses it.
    for bytes in [
        b"not a checkpoint at all".as_slice(),
        b"PK\x03\x04garbage",
        b"\x80\x02\x8a\x0a",
    ] {
        let path = temp_file("garbage.pt", bytes);
        assert!(
            matches!(
                StateDict::open(&path),
                Err(Error::BadFile {
                    what: "checkpoint",
                    ..
                })
            ),
            "{bytes:?}"
        );
    }
    assert!(matches!(
        StateDict::open("/nonexistent/model.pth"),
        Err(Error::BadFile { .. })
    ));
}

/// Mutations of a valid file: bytes overwritten (biased to the header, where the length
/// fields are), runs of 0xff (huge lengths), truncation. Each must give a `StateDict` or an
/// error, never a panic or a hang; proptest's `handle-panics` turns a panic into a failure.
fn mutate(bytes: &[u8], edits: &[(usize, u8, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, value, kind) in edits {
        if out.is_empty() {
            break;
        }
        // Half the edits land in the first 256 bytes (header), the rest anywhere.
        let i = if kind % 2 == 0 {
            at % out.len().min(256)
        } else {
            at % out.len()
        };
        match kind % 4 {
            0 | 1 => out[i] = value,
            2 => out[i..].iter_mut().take(8).for_each(|b| *b = 0xff),
            _ => out[i] ^= 1 << (value % 8),
        }
    }
    if let Some(cut) = cut {
        out.truncate(cut % (out.len() + 1));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_safetensors_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let net = tiny();
        let (dict, _) = random_checkpoint(&net, tiny_keys, 2);
        let bytes = mutate(&dict.to_safetensors().unwrap(), &edits, cut);
        if let Ok(d) = StateDict::from_safetensors(&bytes) {
            // Whatever parsed must also load or fail with an error.
            let _ = load_weights(&net, &d, tiny_keys);
        }
    }
}

#[test]
fn gpu_runs_loaded_tiny_network() {
    // Loaded weights are ordinary NetworkWeights: the GPU agrees with the CPU on them.
    let net = tiny();
    let (dict, _) = random_checkpoint(&net, tiny_keys, 9);
    let w = load_weights(&net, &dict, tiny_keys).unwrap();
    let random = NetworkWeights::random(&net, 9).unwrap();
    assert_ne!(w, random);
    let x = random_input(net.input_shape(), 9).unwrap();
    let want = cpu::network::forward(&net, &w, &x).unwrap().pop().unwrap();
    let got = GpuNetwork::new(gpu(), &net, &w)
        .unwrap()
        .run(&GpuTensor::from_tensor(gpu(), &x).unwrap())
        .unwrap()
        .read()
        .unwrap();
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
    }
}

#[test]
fn efficientnet_lite_rejects_unknown_variants() {
    assert!(matches!(
        efficientnet_lite(5),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        EfficientNetLite {
            variant: 9,
            resolution: 224,
            classes: 1000,
            batch: 1
        }
        .build(),
        Err(Error::InvalidArgument { .. })
    ));
}

/// A PyTorch ≥ 1.6 zip-format checkpoint of `tensors` as `torch.save(state_dict)` writes it:
/// `archive/data.pkl` (a protocol-2 pickle of an `OrderedDict` of
/// `torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())`,
/// storages as persistent ids), one `archive/data/K` entry of little-endian values per
/// storage, `archive/version` and `archive/byteorder`. Written here because no PyTorch is
/// available to write one; f16 storages when `half_precision`.
fn torch_zip(tensors: &[(&str, Vec<usize>, Vec<f32>)], half_precision: bool) -> Vec<u8> {
    use std::io::Write;
    fn unicode(p: &mut Vec<u8>, s: &str) {
        p.push(b'X');
        p.extend((s.len() as u32).to_le_bytes());
        p.extend(s.as_bytes());
    }
    fn int(p: &mut Vec<u8>, v: usize) {
        p.push(b'J');
        p.extend((v as i32).to_le_bytes());
    }
    fn ints(p: &mut Vec<u8>, vs: &[usize]) {
        p.push(b'(');
        vs.iter().for_each(|&v| int(p, v));
        p.push(b't');
    }
    let ordered_dict = b"ccollections\nOrderedDict\n)R";
    let mut p = vec![0x80, 2];
    p.extend(ordered_dict);
    for (k, (name, shape, values)) in tensors.iter().enumerate() {
        unicode(&mut p, name);
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        p.push(b'(');
        unicode(&mut p, "storage");
        p.extend(if half_precision {
            &b"ctorch\nHalfStorage\n"[..]
        } else {
            b"ctorch\nFloatStorage\n"
        });
        unicode(&mut p, &k.to_string());
        unicode(&mut p, "cpu");
        int(&mut p, values.len());
        p.extend(b"tQ");
        int(&mut p, 0);
        ints(&mut p, shape);
        let mut stride = vec![1; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * shape[i + 1];
        }
        ints(&mut p, &stride);
        p.push(0x89); // False
        p.extend(ordered_dict);
        p.extend(b"tRs");
    }
    p.push(b'.');
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", opts).unwrap();
    zip.write_all(&p).unwrap();
    for (k, (_, _, values)) in tensors.iter().enumerate() {
        zip.start_file(format!("archive/data/{k}"), opts).unwrap();
        let bytes: Vec<u8> = if half_precision {
            values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect()
        } else {
            values.iter().flat_map(|&v| v.to_le_bytes()).collect()
        };
        zip.write_all(&bytes).unwrap();
    }
    zip.start_file("archive/version", opts).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.start_file("archive/byteorder", opts).unwrap();
    zip.write_all(b"little").unwrap();
    zip.finish().unwrap().into_inner()
}

/// The zip format of PyTorch ≥ 1.6 (the legacy format is the real checkpoint's, in
/// tests/pretrained.rs): a whole network's state dict, f32 and f16, loads by name.
#[test]
fn pytorch_zip_checkpoints_load() {
    let net = tiny();
    let (dict, _) = random_checkpoint(&net, tiny_keys, 21);
    let tensors: Vec<(&str, Vec<usize>, Vec<f32>)> = dict
        .keys()
        .map(|k| {
            let shape = dict.shape(k).unwrap().to_vec();
            let values = dict.get(k, &shape).unwrap().to_vec();
            (k, shape, values)
        })
        .collect();
    let path = temp_file("tiny.pt", &torch_zip(&tensors, false));
    let read = StateDict::open(&path).unwrap();
    assert_eq!(read.format(), Format::Pytorch);
    assert_eq!(read.len(), dict.len());
    for (name, shape, values) in &tensors {
        assert_eq!(read.get(name, shape).unwrap(), values.as_slice(), "{name}");
    }
    assert_eq!(
        load_weights(&net, &read, tiny_keys).unwrap(),
        load_weights(&net, &dict, tiny_keys).unwrap()
    );
    // f16 storages are widened exactly.
    let path16 = temp_file("tiny16.pt", &torch_zip(&tensors, true));
    let read16 = StateDict::open(&path16).unwrap();
    let (name, shape, values) = &tensors[0];
    let want: Vec<f32> = values
        .iter()
        .map(|&v| half::f16::from_f32(v).to_f32())
        .collect();
    assert_eq!(read16.get(name, shape).unwrap(), want.as_slice());
    // Cut anywhere, the archive is refused.
    let bytes = std::fs::read(&path).unwrap();
    for len in [0, 30, bytes.len() / 2, bytes.len() - 1] {
        let cut = temp_file("cut.pt", &bytes[..len]);
        assert!(
            matches!(
                StateDict::open(&cut),
                Err(Error::BadFile {
                    what: "checkpoint",
                    ..
                })
            ),
            "cut at {len}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Mutated zip-format checkpoints (pickle, storage entries, zip directory and sizes).
    #[test]
    fn mutated_pytorch_zip_never_panics(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let tensors = [("a.weight", vec![4, 2, 3, 3], values(1, 72)), ("a.bias", vec![4], values(2, 4))];
        let bytes = torch_zip(&tensors, false);
        // Edits biased to the first 256 bytes land in data.pkl; the others hit anything,
        // including the central directory at the end.
        let bytes = mutate(&bytes, &edits, cut);
        let path = temp_file(&format!("mutated-{}.pt", edits[0].0 % 1000), &bytes);
        match StateDict::open(&path) {
            Ok(_) | Err(Error::BadFile { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
}
