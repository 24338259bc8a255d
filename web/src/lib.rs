//! sepconv in the browser: the wasm module behind the demo page (`www/index.html`) and the
//! browser benchmark (`www/bench.html`), and helpers for the browser test suite.
//!
//! On the web nothing blocks: every GPU call here is awaited ([`sepconv::Gpu::new_async`],
//! [`sepconv::GpuTensor::read_async`], [`work_done`]), and JavaScript gets promises.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod check;

use std::collections::HashMap;
use std::rc::Rc;

use js_sys::Promise;
use sepconv::networks::layers::{self, Layer};
use sepconv::networks::weights::NetworkWeights;
use sepconv::networks::{mobilenet_v1, Network};
use sepconv::{cpu, Conv2d, ConvKernel, Gpu, GpuNetwork, GpuTensor, Tensor, Tuning};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use check::ConvData;

/// The adapter as the page shows it: browsers often hide the name.
fn adapter_label(gpu: &Gpu) -> String {
    let info = gpu.adapter_info();
    match info.name.as_str() {
        "" => format!("{:?} (the browser hides the adapter's name)", info.backend),
        name => format!("{name} ({:?})", info.backend),
    }
}

fn js(e: sepconv::Error) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// Resolves once the GPU has finished all work submitted so far (WebGPU's
/// `onSubmittedWorkDone`), without reading anything back.
pub async fn work_done(gpu: &Gpu) -> Result<(), JsValue> {
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    gpu.queue().on_submitted_work_done(move || {
        let _ = sender.send(());
    });
    receiver
        .receive()
        .await
        .ok_or_else(|| JsError::new("the GPU dropped the work-done callback").into())
}

/// `performance.now()` in milliseconds.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

/// Whether this browser exposes WebGPU at all (`navigator.gpu`).
#[wasm_bindgen(js_name = hasWebGpu)]
pub fn has_webgpu() -> bool {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into());
    navigator
        .and_then(|n| js_sys::Reflect::get(&n, &"gpu".into()))
        .is_ok_and(|gpu| !gpu.is_undefined() && !gpu.is_null())
}

/// Escapes `s` as a JSON string.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite JSON number (`null` otherwise).
fn json_number(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else {
        "null".into()
    }
}

/// MobileNet v1 on WebGPU with seeded weights (batch norm folded), for the demo page. Its
/// classes mean nothing until pretrained weights are loaded; the page says so.
#[wasm_bindgen]
pub struct Classifier {
    inner: Rc<ClassifierInner>,
}

struct ClassifierInner {
    net: Network,
    weights: NetworkWeights,
    gnet: GpuNetwork,
}

#[wasm_bindgen]
impl Classifier {
    /// Opens a WebGPU device and builds MobileNet v1 with width `alpha` at `resolution`
    /// pixels, weights from `seed`. Resolves to a `Classifier`.
    pub fn create(alpha: f64, resolution: usize, seed: u32) -> Promise {
        future_to_promise(async move {
            let gpu = Gpu::new_async().await.map_err(js)?;
            let net = mobilenet_v1(alpha, resolution).map_err(js)?;
            let weights = NetworkWeights::random(&net, u64::from(seed)).map_err(js)?;
            let gnet = GpuNetwork::new(&gpu, &net, &weights).map_err(js)?;
            Ok(Classifier {
                inner: Rc::new(ClassifierInner { net, weights, gnet }),
            }
            .into())
        })
    }

    /// The adapter WebGPU gave us.
    pub fn adapter(&self) -> String {
        adapter_label(self.inner.gnet.gpu())
    }

    /// The input's side in pixels.
    pub fn resolution(&self) -> usize {
        self.inner.net.input_shape().h
    }

    /// Runs the network on `pixels` (1×3×r×r, NCHW, normalised) node by node, timing each
    /// node from submit to `onSubmittedWorkDone`. Resolves to a JSON string:
    /// `{"logits": [...], "layers": [{"name", "kind", "ms"}], "total_ms"}`.
    pub fn classify(&self, pixels: Vec<f32>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let gnet = &inner.gnet;
            let gpu = gnet.gpu();
            let input = GpuTensor::from_slice(gpu, inner.net.input_shape(), &pixels).map_err(js)?;
            let mut outputs: Vec<GpuTensor> = Vec::new();
            let mut layers = Vec::new();
            let mut total = 0.0;
            for (id, node) in inner.net.nodes().iter().enumerate() {
                if id == 0 {
                    outputs.push(GpuTensor::from_slice(gpu, node.output, &pixels).map_err(js)?);
                    continue;
                }
                let inputs: Vec<&GpuTensor> = node.inputs.iter().map(|&i| &outputs[i]).collect();
                let start = now_ms();
                let output = gnet.run_node(id, &inputs).map_err(js)?;
                work_done(gpu).await?;
                let ms = now_ms() - start;
                total += ms;
                layers.push(format!(
                    "{{\"name\":{},\"kind\":{},\"ms\":{}}}",
                    json_string(&node.name),
                    json_string(&node.kind().to_string()),
                    json_number(ms)
                ));
                outputs.push(output);
            }
            drop(input);
            let logits = outputs
                .last()
                .ok_or_else(|| JsError::new("empty network"))?
                .read_async()
                .await
                .map_err(js)?;
            let logits: Vec<String> = logits
                .data()
                .iter()
                .map(|&v| json_number(v.into()))
                .collect();
            Ok(format!(
                "{{\"logits\":[{}],\"layers\":[{}],\"total_ms\":{}}}",
                logits.join(","),
                layers.join(","),
                json_number(total)
            )
            .into())
        })
    }

    /// Runs the CPU reference (single-threaded f64 here) on the same pixels and returns the
    /// worst `|gpu − cpu|` of the logits relative to the native tests' end-to-end bound
    /// (at most 1 passes).
    #[wasm_bindgen(js_name = checkAgainstCpu)]
    pub fn check_against_cpu(&self, pixels: Vec<f32>, logits: Vec<f32>) -> Result<f64, JsValue> {
        let inner = &self.inner;
        let x = Tensor::new(inner.net.input_shape(), pixels).map_err(js)?;
        let want = cpu::network::forward(&inner.net, &inner.weights, &x).map_err(js)?;
        let want = want.last().ok_or_else(|| JsError::new("empty network"))?;
        let tol = check::chained_tolerance(want.data());
        Ok(check::worst_ratio(&logits, want.data(), Some(&tol)))
    }
}

/// The browser benchmark's sepconv side: the 41 layers of `sepconv::networks::layers`, their seeded
/// data and CPU reference outputs (made once per layer, shared with the peers' checks), and
/// timed runs on WebGPU.
#[wasm_bindgen]
pub struct Bench {
    inner: Rc<BenchInner>,
}

struct BenchInner {
    gpu: Gpu,
    data: std::cell::RefCell<HashMap<&'static str, Rc<LayerCase>>>,
}

struct LayerCase {
    layer: &'static Layer,
    data: ConvData,
    want: Tensor,
    tol: Vec<f32>,
}

fn layer_named(name: &str) -> Result<&'static Layer, JsValue> {
    layers::find(name).ok_or_else(|| JsError::new(&format!("no layer {name:?}")).into())
}

impl BenchInner {
    fn case(&self, name: &str) -> Result<Rc<LayerCase>, JsValue> {
        let layer = layer_named(name)?;
        if let Some(c) = self.data.borrow().get(layer.name) {
            return Ok(Rc::clone(c));
        }
        let spec = layer.spec();
        let data = ConvData::new(&spec, layer.input_shape(), 41).map_err(js)?;
        let want = data.reference(&spec).map_err(js)?;
        let tol = check::tolerances(&spec, &data, &want).map_err(js)?;
        let case = Rc::new(LayerCase {
            layer,
            data,
            want,
            tol,
        });
        self.data.borrow_mut().insert(layer.name, Rc::clone(&case));
        Ok(case)
    }
}

#[wasm_bindgen]
impl Bench {
    /// Opens a WebGPU device. Resolves to a `Bench`.
    pub fn create() -> Promise {
        future_to_promise(async move {
            let gpu = Gpu::new_async().await.map_err(js)?;
            Ok(Bench {
                inner: Rc::new(BenchInner {
                    gpu,
                    data: Default::default(),
                }),
            }
            .into())
        })
    }

    /// The adapter WebGPU gave us.
    pub fn adapter(&self) -> String {
        adapter_label(&self.inner.gpu)
    }

    /// The benchmark layers as JSON: `[{"name", "kind", "n", "c_in", "c_out", "h", "w",
    /// "kernel", "stride", "pad", "dilation", "groups", "macs"}]`.
    pub fn layers() -> String {
        let rows: Vec<String> = layers::LAYERS
            .iter()
            .map(|l| {
                format!(
                    "{{\"name\":{},\"kind\":{},\"n\":{},\"c_in\":{},\"c_out\":{},\"h\":{},\"w\":{},\
                     \"kernel\":{},\"stride\":{},\"pad\":{},\"dilation\":{},\"groups\":{},\"macs\":{}}}",
                    json_string(l.name),
                    json_string(&l.kind().to_string()),
                    l.n,
                    l.c_in,
                    l.c_out,
                    l.h,
                    l.w,
                    l.kernel,
                    l.stride,
                    l.pad,
                    l.dilation,
                    l.groups,
                    l.macs
                )
            })
            .collect();
        format!("[{}]", rows.join(","))
    }

    /// The layer's seeded input (NCHW), made once and shared by every library.
    pub fn input(&self, name: &str) -> Result<Vec<f32>, JsValue> {
        Ok(self.inner.case(name)?.data.input.data().to_vec())
    }

    /// The layer's weights, `[c_out, c_in/groups, k, k]`.
    pub fn weights(&self, name: &str) -> Result<Vec<f32>, JsValue> {
        Ok(self.inner.case(name)?.data.weights.clone())
    }

    /// The layer's bias, `[c_out]`.
    pub fn bias(&self, name: &str) -> Result<Vec<f32>, JsValue> {
        let case = self.inner.case(name)?;
        Ok(case.data.bias.clone().unwrap_or_default())
    }

    /// The worst `|got − reference| / tolerance` of a library's NCHW output for the layer
    /// (at most 1 passes; NaN or a wrong length is infinite).
    pub fn check(&self, name: &str, got: Vec<f32>) -> Result<f64, JsValue> {
        let case = self.inner.case(name)?;
        Ok(check::worst_ratio(&got, case.want.data(), Some(&case.tol)))
    }

    /// Times sepconv on the layer: `warmup` untimed runs, then `runs` timed ones, each from
    /// submit to `onSubmittedWorkDone`, into an output poisoned with NaN first and checked
    /// against the reference. `kernel`: "auto", "windows" or "gemm" (pointwise and grouped
    /// layers). Resolves to JSON `{"median_ms", "times_ms": [...], "check"}`.
    pub fn time(&self, name: &str, kernel: &str, warmup: u32, runs: u32) -> Promise {
        let inner = Rc::clone(&self.inner);
        let name = name.to_string();
        let kernel = match kernel {
            "windows" => ConvKernel::UniformWindows,
            "gemm" => ConvKernel::TiledGemm,
            _ => ConvKernel::Auto,
        };
        future_to_promise(async move {
            let case = inner.case(&name)?;
            let gpu = &inner.gpu;
            let spec = case.layer.spec();
            let conv = Conv2d::new(gpu, spec, &case.data.weights, case.data.bias.as_deref())
                .map_err(js)?
                .with_tuning(Tuning::auto().with_kernel(kernel));
            let x = GpuTensor::from_tensor(gpu, &case.data.input).map_err(js)?;
            let y = GpuTensor::full(gpu, case.want.shape(), f32::NAN).map_err(js)?;
            for _ in 0..warmup {
                conv.run_into(&x, &y).map_err(js)?;
                work_done(gpu).await?;
            }
            let mut times = Vec::new();
            for _ in 0..runs {
                let start = now_ms();
                conv.run_into(&x, &y).map_err(js)?;
                work_done(gpu).await?;
                times.push(now_ms() - start);
            }
            let got = y.read_async().await.map_err(js)?;
            let ratio = check::worst_ratio(got.data(), case.want.data(), Some(&case.tol));
            let mut sorted = times.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
            let times: Vec<String> = times.iter().map(|&t| json_number(t)).collect();
            Ok(format!(
                "{{\"median_ms\":{},\"times_ms\":[{}],\"check\":{}}}",
                json_number(median),
                times.join(","),
                json_number(ratio)
            )
            .into())
        })
    }
}
