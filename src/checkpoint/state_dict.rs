//! [`StateDict`]: named tensors read from a checkpoint file, converted to `f32`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::bad_checkpoint;
use crate::error::{Error, Result};

/// The container a [`StateDict`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A safetensors file.
    Safetensors,
    /// A PyTorch checkpoint (`torch.save` of a state dict): zip archive or legacy pickle.
    Pytorch,
    /// Built in memory ([`StateDict::from_tensors`]).
    Memory,
}

/// One tensor of a [`StateDict`]: its shape and, for floating-point element types, its
/// values as `f32`.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    shape: Vec<usize>,
    /// `Err(dtype name)` for element types that do not convert to `f32`.
    data: std::result::Result<Vec<f32>, String>,
}

/// Named tensors from a checkpoint, as PyTorch's `state_dict()` names them
/// (`"features.0.0.weight"`). Floating-point tensors (f64, f32, f16, bf16) are converted to
/// `f32` when the file is read; integer and boolean ones (batch norm's `num_batches_tracked`)
/// are kept by name and shape only, and looking up their values is an [`Error::KeyDtype`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    format: Format,
    entries: BTreeMap<String, Entry>,
}

impl StateDict {
    /// Reads a checkpoint, telling safetensors from PyTorch by the file's first bytes (a
    /// safetensors file opens with an 8-byte header length and a JSON `{`; a PyTorch file with
    /// a zip signature or a pickle).
    ///
    /// # Errors
    /// [`Error::BadFile`] when the file cannot be read, is of neither format, or is truncated,
    /// corrupt or hostile (see the [module docs](super)).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io = |e: std::io::Error| bad_checkpoint(&name, e.to_string());
        let mut file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut head = Vec::with_capacity(9);
        (&mut file).take(9).read_to_end(&mut head).map_err(io)?;
        if looks_like_safetensors(&head, len) {
            let bytes = std::fs::read(path).map_err(io)?;
            Self::safetensors(&name, &bytes)
        } else {
            Self::pytorch(&name, path, len)
        }
    }

    /// Reads a safetensors file held in memory.
    ///
    /// # Errors
    /// [`Error::BadFile`] for a truncated, corrupt or hostile file.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self> {
        Self::safetensors("<bytes>", bytes)
    }

    /// A state dict of `f32` tensors given as `(name, shape, values)`, for tests and for
    /// weights made in code.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when a tensor's values are not its shape's element count,
    /// [`Error::InvalidArgument`] for a name given twice.
    pub fn from_tensors<S: Into<String>>(
        tensors: impl IntoIterator<Item = (S, Vec<usize>, Vec<f32>)>,
    ) -> Result<Self> {
        let mut entries = BTreeMap::new();
        for (name, shape, values) in tensors {
            let name = name.into();
            let count = element_count(&shape).ok_or_else(|| Error::Overflow {
                what: "state dict tensor",
                detail: format!("{name} has shape {shape:?}"),
            })?;
            if count != values.len() {
                return Err(Error::LengthMismatch {
                    what: "state dict tensor",
                    expected: count,
                    got: values.len(),
                    hint: Some(format!("{name} has shape {shape:?}")),
                });
            }
            if entries.contains_key(&name) {
                return Err(Error::InvalidArgument {
                    what: "state dict tensor name",
                    reason: format!("{name} is given twice"),
                });
            }
            entries.insert(
                name,
                Entry {
                    shape,
                    data: Ok(values),
                },
            );
        }
        Ok(Self {
            format: Format::Memory,
            entries,
        })
    }

    /// Writes the floating-point tensors as an `f32` safetensors file.
    ///
    /// # Errors
    /// [`Error::BadFile`] if the `safetensors` crate refuses (it never does for a valid dict).
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let bytes: Vec<(&String, &Vec<usize>, Vec<u8>)> = self
            .entries
            .iter()
            .filter_map(|(name, e)| {
                e.data.as_ref().ok().map(|values| {
                    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (name, &e.shape, raw)
                })
            })
            .collect();
        let mut views = Vec::with_capacity(bytes.len());
        for (name, shape, raw) in &bytes {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.to_vec(), raw)
                    .map_err(|e| bad_checkpoint(name, e.to_string()))?;
            views.push((name.as_str(), view));
        }
        safetensors::serialize(views, None).map_err(|e| bad_checkpoint("<bytes>", e.to_string()))
    }

    /// The container the tensors came from.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every tensor name, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The shape of tensor `key`.
    ///
    /// # Errors
    /// [`Error::MissingKey`].
    pub fn shape(&self, key: &str) -> Result<&[usize]> {
        Ok(&self.entry(key)?.shape)
    }

    /// The values of tensor `key` (row-major, PyTorch's contiguous order), checked to have
    /// exactly `shape`.
    ///
    /// # Errors
    /// [`Error::MissingKey`], [`Error::KeyShape`] naming both shapes, [`Error::KeyDtype`] for
    /// a tensor of integers or booleans.
    pub fn get(&self, key: &str, shape: &[usize]) -> Result<&[f32]> {
        let entry = self.entry(key)?;
        if entry.shape != shape {
            return Err(Error::KeyShape {
                key: key.to_owned(),
                expected: shape.to_vec(),
                got: entry.shape.clone(),
            });
        }
        entry.data.as_deref().map_err(|dtype| Error::KeyDtype {
            key: key.to_owned(),
            dtype: dtype.clone(),
        })
    }

    fn entry(&self, key: &str) -> Result<&Entry> {
        self.entries.get(key).ok_or_else(|| Error::MissingKey {
            key: key.to_owned(),
            nearest: self.nearest(key),
        })
    }

    /// The key sharing the longest prefix with `key` (ties: the shortest), if any shares one.
    fn nearest(&self, key: &str) -> Option<String> {
        let common = |k: &str| {
            k.bytes()
                .zip(key.bytes())
                .take_while(|(a, b)| a == b)
                .count()
        };
        self.entries
            .keys()
            .map(|k| (common(k), std::cmp::Reverse(k.len()), k))
            .filter(|(c, _, _)| *c > 0)
            .max()
            .map(|(_, _, k)| k.clone())
    }

    fn safetensors(name: &str, bytes: &[u8]) -> Result<Self> {
        use safetensors::Dtype;
        let file = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad_checkpoint(name, format!("safetensors: {e}")))?;
        let mut entries = BTreeMap::new();
        for (key, view) in file.iter() {
            let raw = view.data();
            let data = match view.dtype() {
                Dtype::F32 => Ok(to_f32(Float::F32, raw)),
                Dtype::F64 => Ok(to_f32(Float::F64, raw)),
                Dtype::F16 => Ok(to_f32(Float::F16, raw)),
                Dtype::BF16 => Ok(to_f32(Float::BF16, raw)),
                other => Err(format!("{other:?}")),
            };
            entries.insert(
                key.to_owned(),
                Entry {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Self {
            format: Format::Safetensors,
            entries,
        })
    }

    fn pytorch(name: &str, path: &Path, file_len: u64) -> Result<Self> {
        use pytorch_reader::DType;
        let reader = pytorch_reader::PytorchReader::new(path)
            .map_err(|e| bad_checkpoint(name, format!("PyTorch: {e}")))?;
        let mut entries = BTreeMap::new();
        for (key, tensor) in reader.tensors() {
            let shape = tensor.shape().to_vec();
            let dtype = tensor.dtype();
            let bytes = element_count(&shape)
                .and_then(|n| n.checked_mul(dtype.size()))
                .ok_or_else(|| bad_checkpoint(name, format!("{key}: shape {shape:?} overflows")))?;
            if bytes as u64 > file_len {
                return Err(bad_checkpoint(
                    name,
                    format!(
                        "{key}: shape {shape:?} of {dtype:?} needs {bytes} bytes, more than the \
                         whole file ({file_len} bytes)"
                    ),
                ));
            }
            let float = match dtype {
                DType::F32 => Some(Float::F32),
                DType::F64 => Some(Float::F64),
                DType::F16 => Some(Float::F16),
                DType::BF16 => Some(Float::BF16),
                _ => None,
            };
            let data = match float {
                Some(float) => {
                    let raw = tensor
                        .read()
                        .map_err(|e| bad_checkpoint(name, format!("{key}: {e}")))?;
                    if raw.len() != bytes {
                        return Err(bad_checkpoint(
                            name,
                            format!("{key}: read {} bytes, expected {bytes}", raw.len()),
                        ));
                    }
                    Ok(to_f32(float, &raw))
                }
                None => Err(format!("{dtype:?}")),
            };
            entries.insert(key.clone(), Entry { shape, data });
        }
        Ok(Self {
            format: Format::Pytorch,
            entries,
        })
    }
}

/// Whether a file of `len` bytes opening with `head` looks like safetensors: a little-endian
/// `u64` header length that fits the file, then `{`.
fn looks_like_safetensors(head: &[u8], len: u64) -> bool {
    head.len() > 8
        && head[8] == b'{'
        && u64::from_le_bytes(head[..8].try_into().unwrap_or([0xff; 8])) <= len.saturating_sub(8)
}

/// Elements of `shape`, `None` on overflow. A scalar (`[]`) has one.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// The floating-point element types that convert to `f32`.
#[derive(Debug, Clone, Copy)]
enum Float {
    F64,
    F32,
    F16,
    BF16,
}

/// Little-endian elements to `f32` (f64 rounded to nearest; f16 and bf16 exactly). A
/// trailing partial element, which the parsers never hand over, is dropped.
fn to_f32(float: Float, raw: &[u8]) -> Vec<f32> {
    fn each<const N: usize>(raw: &[u8], f: impl Fn([u8; N]) -> f32) -> Vec<f32> {
        raw.chunks_exact(N)
            .map(|c| f(c.try_into().unwrap_or([0; N])))
            .collect()
    }
    match float {
        Float::F64 => each(raw, |b| f64::from_le_bytes(b) as f32),
        Float::F32 => each(raw, f32::from_le_bytes),
        Float::F16 => each(raw, |b| half::f16::from_le_bytes(b).to_f32()),
        Float::BF16 => each(raw, |b| half::bf16::from_le_bytes(b).to_f32()),
    }
}
