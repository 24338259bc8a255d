//! Trained weights from files: a [`StateDict`] read from a PyTorch checkpoint (`.pt`/`.pth`,
//! the zip archive of PyTorch ≥ 1.6 and the legacy pickle stream before it, through the
//! `pytorch-reader` crate) or a safetensors file (through the `safetensors` crate), with every
//! floating-point tensor converted to `f32`; and [`load_weights`], which fills a
//! [`Network`](crate::networks::Network)'s
//! [`NetworkWeights`](crate::networks::weights::NetworkWeights) from one by name, folding each batch norm in `f64` with
//! the model's own ε.
//!
//! Key maps for the architectures whose checkpoints circulate under well-known names are in
//! [`keys`]: EfficientNet-Lite with the EfficientNet-PyTorch port's names and MobileNet v2
//! with torchvision's.
//!
//! # Hostile files
//! A file that is truncated, corrupt or made to hurt gives [`Error::BadFile`], never a panic,
//! and never an allocation larger than the file: every tensor's byte length (element count ×
//! element size, computed with overflow checks) is checked against the file's length before
//! its bytes are read. PyTorch never compresses the tensors in its zip archives, so a
//! legitimate checkpoint always passes this check.
//!
//! # Example: your own architecture
//! Build the network with [`crate::networks::NetworkBuilder`], naming each convolution after
//! the PyTorch module that holds its weights, then say where each batch norm lives:
//! ```
//! use sepconv::checkpoint::{load_weights, LayerKeys, StateDict};
//! use sepconv::networks::{Counting, NetworkBuilder};
//! use sepconv::{cpu, Activation, Conv2dSpec, Padding, Shape, Tensor};
//!
//! // A PyTorch model `features = Sequential(Conv2d(3, 4, 3, padding=1, bias=False),
//! // BatchNorm2d(4), ReLU6())` and `fc = Linear(4, 2)`, saved as a state dict.
//! let mut b = NetworkBuilder::new("tiny", Shape::new(1, 3, 8, 8), Counting::WEIGHTS)?;
//! let conv = Conv2dSpec::new(3, 4, [3, 3]).padding(Padding::uniform(1)).bias(false);
//! let x = b.conv("features.0", b.input(), conv.activation(Activation::Relu6), true)?;
//! let x = b.global_avg_pool("pool", x)?;
//! b.fully_connected("fc", x, 2, true, Activation::None)?;
//! let net = b.build();
//!
//! # let dict = StateDict::from_tensors([
//! #     ("features.0.weight", vec![4, 3, 3, 3], vec![0.1; 108]),
//! #     ("features.1.weight", vec![4], vec![1.0; 4]),
//! #     ("features.1.bias", vec![4], vec![0.0; 4]),
//! #     ("features.1.running_mean", vec![4], vec![0.0; 4]),
//! #     ("features.1.running_var", vec![4], vec![1.0; 4]),
//! #     ("fc.weight", vec![2, 4], vec![0.5; 8]),
//! #     ("fc.bias", vec![2], vec![0.0; 2]),
//! # ])?;
//! # let dir = std::env::temp_dir().join(format!("sepconv-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("tiny.safetensors");
//! # std::fs::write(&path, dict.to_safetensors()?).unwrap();
//! let dict = StateDict::open(&path)?; // .safetensors, .pt or .pth
//! let weights = load_weights(&net, &dict, |_, node| match node.name.as_str() {
//!     "features.0" => Some(LayerKeys::conv("features.0").batch_norm("features.1", 1e-5)),
//!     "fc" => Some(LayerKeys::conv("fc")),
//!     _ => None,
//! })?;
//! let y = cpu::network::forward(&net, &weights, &Tensor::full(net.input_shape(), 1.0)?)?;
//! assert_eq!(y.last().unwrap().shape(), Shape::new(1, 2, 1, 1));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), sepconv::Error>(())
//! ```
//! The same weights run on the GPU with [`crate::GpuNetwork::new`].

pub mod keys;
mod load;
mod state_dict;

pub use load::{load_weights, BatchNormKeys, LayerKeys};
pub use state_dict::{Format, StateDict};

use crate::error::Error;

/// Shorthand for a [`Error::BadFile`] about a checkpoint.
pub(crate) fn bad_checkpoint(file: &str, reason: impl Into<String>) -> Error {
    Error::BadFile {
        what: "checkpoint",
        file: file.to_owned(),
        reason: reason.into(),
    }
}
