//! Where to run a network: [`Device`] (`auto`, `gpu`, `cpu`), resolved once into a
//! [`Selection`] that says what it chose and why, and [`Runner`], a network on the chosen side
//! behind one `run` on host tensors.
//!
//! `auto` takes a hardware GPU when wgpu finds one and the fast CPU path otherwise. A software
//! adapter (`wgpu::DeviceType::Cpu`: Mesa's lavapipe and llvmpipe, SwiftShader, WARP) runs the
//! shaders on the same CPU cores the fast path uses, through a driver built for rendering, and
//! is slower than the fast path on every network measured (BENCHMARKS.md), by an order of
//! magnitude on MobileNet v1. So `auto` never picks one.

use std::fmt;
use std::str::FromStr;

use crate::cpu::fast::CpuNetwork;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, GpuNetwork, GpuTensor};
use crate::networks::weights::NetworkWeights;
use crate::networks::Network;
use crate::tensor::Tensor;

/// Which side runs a network, as a user asks for it (`--device auto|gpu|cpu` in the
/// examples).
///
/// # Example
/// ```
/// use sepconv::Device;
///
/// assert_eq!("auto".parse::<Device>()?, Device::Auto);
/// assert_eq!("GPU".parse::<Device>()?, Device::Gpu);
/// assert!("tpu".parse::<Device>().is_err());
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// A hardware GPU when there is one, else the fast CPU path.
    #[default]
    Auto,
    /// The GPU wgpu picks ([`Gpu::new`]), even a software adapter; an error without one.
    Gpu,
    /// The fast CPU path ([`CpuNetwork`]).
    Cpu,
}

impl FromStr for Device {
    type Err = Error;

    /// `auto`, `gpu` or `cpu`, in any case.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(Error::InvalidArgument {
                what: "device",
                reason: format!("{s:?} is not one of auto, gpu, cpu"),
            }),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        })
    }
}

/// What a [`Device`] resolved to: a GPU or the fast CPU path, and one line saying why.
#[derive(Debug, Clone)]
pub struct Selection {
    gpu: Option<Gpu>,
    reason: String,
}

impl Device {
    /// Resolves the choice. `Auto` opens the adapter wgpu ranks best ([`Gpu::new`]: hardware
    /// before software, `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` respected) and keeps it only
    /// when it is not a software adapter; with none, or a software one, it selects the CPU.
    ///
    /// # Errors
    /// For [`Device::Gpu`] only, the errors of [`Gpu::new`] (no adapter, no device).
    pub fn select(self) -> Result<Selection> {
        match self {
            Self::Cpu => Ok(Selection {
                gpu: None,
                reason: "CPU (fast path): asked for".into(),
            }),
            Self::Gpu => {
                let gpu = Gpu::new()?;
                let info = gpu.adapter_info();
                let reason = if info.device_type == wgpu::DeviceType::Cpu {
                    format!(
                        "GPU: asked for; {} is a software adapter, so the fast CPU path is the \
                         faster choice on this machine (--device cpu or auto)",
                        info.name
                    )
                } else {
                    format!("GPU: asked for; {} ({:?})", info.name, info.device_type)
                };
                Ok(Selection {
                    gpu: Some(gpu),
                    reason,
                })
            }
            Self::Auto => Ok(match Gpu::new() {
                Ok(gpu) => {
                    let info = gpu.adapter_info();
                    let (keep, reason) = auto_choice(info.device_type, &info.name);
                    Selection {
                        gpu: keep.then_some(gpu),
                        reason,
                    }
                }
                Err(e) => Selection {
                    gpu: None,
                    reason: format!("CPU (fast path): no GPU adapter ({e})"),
                },
            }),
        }
    }
}

/// `auto`'s rule on an adapter wgpu found: keep it (`true`) unless it is a software one, and
/// the line that says so.
fn auto_choice(device_type: wgpu::DeviceType, name: &str) -> (bool, String) {
    if device_type == wgpu::DeviceType::Cpu {
        (
            false,
            format!(
                "CPU (fast path): the best adapter wgpu found, {name}, is a software one (it \
                 runs on these same CPU cores, slower than the fast path)"
            ),
        )
    } else {
        (true, format!("GPU: {name} ({device_type:?})"))
    }
}

impl Selection {
    /// The GPU, when the selection is the GPU.
    pub fn gpu(&self) -> Option<&Gpu> {
        self.gpu.as_ref()
    }

    /// Whether the selection is the fast CPU path.
    pub fn is_cpu(&self) -> bool {
        self.gpu.is_none()
    }

    /// One line: what was chosen and why (e.g. `CPU (fast path): the best adapter wgpu found,
    /// llvmpipe (LLVM 19.1.7, 256 bits), is a software one …`).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A network ready to run on the side a [`Selection`] chose: a [`GpuNetwork`] or a
/// [`CpuNetwork`], behind one [`Runner::run`] on host tensors.
///
/// # Example
/// ```
/// use sepconv::networks::{mobilenet_v1, weights::{random_input, NetworkWeights}};
/// use sepconv::{Device, Runner};
///
/// let net = mobilenet_v1(0.25, 64)?;
/// let weights = NetworkWeights::random(&net, 7)?;
/// let runner = Runner::new(&Device::Cpu.select()?, &net, &weights)?;
/// println!("{}", runner.reason());
/// let logits = runner.run(&random_input(net.input_shape(), 7)?)?;
/// assert_eq!(logits.shape(), net.output_shape());
/// # Ok::<(), sepconv::Error>(())
/// ```
#[derive(Debug)]
pub struct Runner {
    engine: Engine,
    reason: String,
}

/// The network behind a [`Runner`].
#[derive(Debug)]
pub enum Engine {
    /// On the GPU.
    Gpu(GpuNetwork),
    /// On the fast CPU path.
    Cpu(CpuNetwork),
}

impl Runner {
    /// Prepares `net` with `weights` on the side `selection` chose.
    ///
    /// # Errors
    /// Those of [`GpuNetwork::new`] or [`CpuNetwork::new`].
    pub fn new(selection: &Selection, net: &Network, weights: &NetworkWeights) -> Result<Self> {
        let engine = match &selection.gpu {
            Some(gpu) => Engine::Gpu(GpuNetwork::new(gpu, net, weights)?),
            None => Engine::Cpu(CpuNetwork::new(net, weights)?),
        };
        Ok(Self {
            engine,
            reason: selection.reason.clone(),
        })
    }

    /// Runs the network on `input` and returns the last node's output. On the GPU this
    /// uploads the input and reads the output back.
    ///
    /// # Errors
    /// Those of [`GpuNetwork::run`] or [`CpuNetwork::run`].
    pub fn run(&self, input: &Tensor) -> Result<Tensor> {
        match &self.engine {
            Engine::Gpu(net) => net.run(&GpuTensor::from_tensor(net.gpu(), input)?)?.read(),
            Engine::Cpu(net) => net.run(input),
        }
    }

    /// The network on its side, for what only one side offers.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The network.
    pub fn network(&self) -> &Network {
        match &self.engine {
            Engine::Gpu(net) => net.network(),
            Engine::Cpu(net) => net.network(),
        }
    }

    /// The selection's line: what runs the network and why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_never_keeps_a_software_adapter() {
        let (keep, why) = auto_choice(wgpu::DeviceType::Cpu, "llvmpipe (LLVM 19, 256 bits)");
        assert!(!keep);
        assert!(
            why.starts_with("CPU (fast path)") && why.contains("llvmpipe"),
            "{why}"
        );
        for hardware in [
            wgpu::DeviceType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu,
            wgpu::DeviceType::Other,
        ] {
            let (keep, why) = auto_choice(hardware, "Some GPU");
            assert!(keep, "{hardware:?}");
            assert!(why.starts_with("GPU: Some GPU"), "{why}");
        }
    }

    #[test]
    fn device_names_round_trip() {
        for d in [Device::Auto, Device::Gpu, Device::Cpu] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        assert!(matches!(
            "".parse::<Device>(),
            Err(Error::InvalidArgument { what: "device", .. })
        ));
    }
}
