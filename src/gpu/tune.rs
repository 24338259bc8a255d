//! The tuner: every choice sepconv makes by measurement, in one place on the [`super::Gpu`].
//!
//! A pointwise or grouped conv has two kernels ([`ConvKernel`]) and a separable block two
//! paths ([`BlockPath`]); which is faster depends on the adapter and the layer, so by default
//! the first run of each shape times both and keeps the faster. [`Tuning`] says what may be
//! measured and what is pinned; the [`Tuner`] keeps the measured choices, one entry per
//! [`TuneKey`] (what makes a choice's speed what it is: specs, shapes, settings, never the
//! weights' values), shared by every conv, block and network on the device, and writes them to
//! a cache file (`cache.rs`) so that the next process starts with them.

use super::cache::Store;
use super::choice::{Choice, ConvKernel, SplitK, Tuning};
use super::recent::Recent;
use crate::error::Result;
use crate::precision::Precision;
use crate::spec::{Conv2dSpec, Residual, Shape};
use std::sync::Mutex;
#[cfg(not(target_arch = "wasm32"))]
use std::time::{Duration, Instant};

/// One run (or one piece of a run split past the binding limit) of a conv: the piece's spec
/// (a split piece differs in its padding; a network's run may finish with another activation
/// than the conv was made with), its shapes, and where a residual add joins the epilogue.
/// Launches and choices are kept per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunKey {
    pub(crate) spec: Conv2dSpec,
    pub(crate) input: Shape,
    pub(crate) output: Shape,
    pub(crate) residual: Option<Residual>,
}

/// What a measured choice depends on. Its `Debug` text is its key in the cache file, which is
/// tied to the crate version, so the text only has to be stable within a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TuneKey {
    /// A pointwise or grouped conv's kernel.
    Kernel {
        run: RunKey,
        split_k: SplitK,
        precision: Precision,
    },
    /// A separable block's path.
    Path {
        depthwise: Conv2dSpec,
        pointwise: Conv2dSpec,
        residual: Option<Residual>,
        kernel: ConvKernel,
        split_k: SplitK,
        input: Shape,
        precision: Precision,
    },
}

impl TuneKey {
    /// Whether `choice` is of the kind this key chooses.
    pub(crate) fn takes(&self, choice: Choice) -> bool {
        matches!(
            (self, choice),
            (
                TuneKey::Kernel { .. },
                Choice::Kernel(ConvKernel::UniformWindows | ConvKernel::TiledGemm)
            ) | (TuneKey::Path { .. }, Choice::Path(_))
        )
    }
}

/// Distinct keys whose choices a [`Tuner`] keeps in memory: every pointwise and grouped layer
/// and every separable block of a few large networks.
const KEPT: usize = 512;

/// The device's measured choices: kept in memory (the most recent 512), read from and
/// written to a cache file when one is set (see [`Tuner::set_cache_dir`]).
///
/// The cache file lives in the user's cache directory by default (`sepconv/` under
/// `$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on
/// Windows), one file per adapter, driver, backend and crate version. The environment
/// variable `SEPCONV_TUNE_CACHE` moves it (a directory) or turns it off (`off`, `0` or empty).
/// A missing file is created; one that is truncated, corrupt, or from another version or
/// adapter is ignored with a warning (through the `log` crate) and rewritten, and an entry of
/// the wrong kind for its key is measured again. Writes go through a temporary file and a
/// rename under a lock file, so concurrent processes never leave a torn file. They happen at
/// most every 2 s while a process measures many shapes in a row, and the rest when the `Gpu`
/// is dropped, or at [`Tuner::flush`]: call it for a `Gpu` that is never dropped (one held in
/// a `static`, or before `std::process::exit`).
pub struct Tuner {
    /// What the cache file is tied to: adapter, driver, backend, crate version.
    identity: super::cache::Identity,
    tuning: Mutex<Tuning>,
    measured: Recent<TuneKey, Choice>,
    store: Mutex<Option<Store>>,
}

impl std::fmt::Debug for Tuner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tuner")
            .field("tuning", &self.tuning())
            .field("cache_file", &self.cache_file())
            .finish_non_exhaustive()
    }
}

impl Tuner {
    /// A tuner for the device `info` describes, with the cache directory from the environment.
    pub(crate) fn new(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Self {
        let identity = super::cache::Identity::of(info, limits);
        let store = super::cache::default_dir().map(|dir| Store::new(&dir, &identity));
        Self {
            identity,
            tuning: Mutex::new(Tuning::default()),
            measured: Recent::new(KEPT),
            store: Mutex::new(store),
        }
    }

    /// The tuning that convs, blocks and networks made from now on take.
    pub fn tuning(&self) -> Tuning {
        *self.tuning.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the tuning for convs, blocks and networks made from now on (see [`Tuning`]).
    pub fn set_tuning(&self, tuning: Tuning) {
        *self.tuning.lock().unwrap_or_else(|e| e.into_inner()) = tuning;
    }

    /// Keeps measured choices in a file in `dir` (created if missing), or only in memory with
    /// `None`. Choices measured from now on are written there; those already measured stay in
    /// memory only.
    pub fn set_cache_dir(&self, dir: Option<&std::path::Path>) {
        // No file system on the web.
        let dir = dir.filter(|_| !cfg!(target_arch = "wasm32"));
        let store = dir.map(|dir| Store::new(dir, &self.identity));
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }

    /// The cache file, when there is one.
    pub fn cache_file(&self) -> Option<std::path::PathBuf> {
        let store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        store.as_ref().map(|s| s.path().to_path_buf())
    }

    /// Writes the choices measured since the cache file was last written (see [`Tuner`]).
    pub fn flush(&self) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = store.as_mut() {
            s.flush();
        }
    }

    /// The choice for `key` measured in this process, if any (no file is read).
    pub(crate) fn measured(&self, key: &TuneKey) -> Option<Choice> {
        self.measured.get(key)
    }

    /// The choice for `key` if it is known without measuring: measured in this process or
    /// read from the cache file (then kept in memory).
    pub(crate) fn known(&self, key: TuneKey) -> Option<Choice> {
        self.choose(key, || {
            Err(crate::Error::Unsupported {
                reason: String::new(),
            })
        })
        .ok()
    }

    /// The choice for `key`: measured in this process, else read from the cache file, else
    /// what `measure` returns, which is then kept (and written to the file).
    pub(crate) fn choose(
        &self,
        key: TuneKey,
        measure: impl FnOnce() -> Result<Choice>,
    ) -> Result<Choice> {
        self.measured.get_or_try_insert_with(key, || {
            let text = format!("{key:?}");
            let stored = {
                let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
                store.as_mut().and_then(|s| s.get(&text))
            };
            // An entry of the wrong kind for its key is not trusted: measured again and
            // overwritten.
            if let Some(choice) = stored.filter(|c| key.takes(*c)) {
                return Ok(choice);
            }
            let choice = measure()?;
            let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = store.as_mut() {
                s.insert(text, choice);
            }
            Ok(choice)
        })
    }

    /// Records `choice` for `key` in memory only (the crate's tests plant choices with it).
    #[cfg(test)]
    pub(crate) fn plant(&self, key: TuneKey, choice: Choice) {
        self.measured.insert(key, choice);
    }
}

/// Most timed runs of each candidate, after one untimed run of each.
#[cfg(not(target_arch = "wasm32"))]
const TIMED_RUNS: usize = 3;

/// Past this ratio of medians after a round, further rounds would not change the answer.
#[cfg(not(target_arch = "wasm32"))]
const CLEAR_RATIO: f64 = 2.0;

/// The faster of `candidates` by median wall time of `run`, which must submit one run of the
/// candidate and wait for the device. The candidates alternate, so drifting load on the
/// machine affects both alike; ties go to the first.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn faster<T: Copy>(
    candidates: [T; 2],
    mut run: impl FnMut(T) -> Result<()>,
) -> Result<T> {
    let mut time = |candidate| -> Result<Duration> {
        let start = Instant::now();
        run(candidate)?;
        Ok(start.elapsed())
    };
    // Untimed first runs build the launches and touch every buffer.
    for candidate in candidates {
        time(candidate)?;
    }
    let mut times = [Vec::new(), Vec::new()];
    for _ in 0..TIMED_RUNS {
        for (candidate, t) in candidates.into_iter().zip(&mut times) {
            t.push(time(candidate)?);
        }
        let [a, b] = [median(&times[0]), median(&times[1])];
        if a.as_secs_f64() > CLEAR_RATIO * b.as_secs_f64()
            || b.as_secs_f64() > CLEAR_RATIO * a.as_secs_f64()
        {
            break;
        }
    }
    Ok(if median(&times[1]) < median(&times[0]) {
        candidates[1]
    } else {
        candidates[0]
    })
}

/// The first candidate, unmeasured: a web page cannot wait for the device between timed runs.
#[cfg(target_arch = "wasm32")]
pub(crate) fn faster<T: Copy>(candidates: [T; 2], _run: impl FnMut(T) -> Result<()>) -> Result<T> {
    Ok(candidates[0])
}

#[cfg(not(target_arch = "wasm32"))]
fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
