//! The tuner's cache file: measured choices that outlive the process.
//!
//! One text file per device identity (adapter, driver, backend, crate version), so that a
//! choice is only ever reused where it was measured:
//!
//! ```text
//! sepconv tuning cache 2
//! crate 0.1.0
//! adapter llvmpipe (LLVM 19.1.7, 256 bits)
//! driver llvmpipe Mesa 25.0.7 (LLVM 19.1.7)
//! backend Vulkan Cpu 65541:0
//! limits 8 256 256 134217728 65535
//! Kernel { run: RunKey { … }, split_k: Auto, precision: F32 }<TAB>UniformWindows
//! end 1
//! ```
//!
//! The last line counts the entries, so a truncated file is recognised. Anything unexpected
//! (another identity, a malformed line, an unknown choice, a missing or wrong count, a file
//! past [`MAX_FILE_BYTES`]) makes the whole file ignored, with a warning: its choices are
//! measured again and the file is rewritten. Writes take a lock file, merge with what is on
//! disk, write a temporary file and rename it over the old one, so concurrent processes never
//! see or leave a torn file.

use super::choice::Choice;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file's first line; the number changes with the format.
const MAGIC: &str = "sepconv tuning cache 2";

/// Larger files are not read (thousands of layers take well under 1 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 16 << 20;

/// The environment variable that moves the cache (a directory) or turns it off (`off`, `0` or
/// empty).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const ENV: &str = "SEPCONV_TUNE_CACHE";

/// The cache directory: [`ENV`]'s, else `sepconv` in the user's cache directory; `None` when
/// turned off or when there is no such directory (the web).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn default_dir() -> Option<PathBuf> {
    match std::env::var_os(ENV) {
        Some(v) if v.is_empty() || v == "off" || v == "0" => None,
        Some(v) => Some(PathBuf::from(v)),
        None => dirs::cache_dir().map(|d| d.join("sepconv")),
    }
}

/// No file system on the web: measured choices live in memory only.
#[cfg(target_arch = "wasm32")]
pub(crate) fn default_dir() -> Option<PathBuf> {
    None
}

/// What a cache file is tied to: its header lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    header: String,
}

impl Identity {
    /// The identity of the adapter `info` describes, with this crate's version.
    /// (The limits that decide which kernels can run are part of it: a device made with
    /// lowered limits must not share choices with the full one.)
    pub(crate) fn of(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Self {
        // One line each: names are the driver's text, which could hold anything.
        let line = |s: &str| s.replace(['\n', '\r'], " ");
        let header = format!(
            "crate {}\nadapter {}\ndriver {} {}\nbackend {:?} {:?} {}:{}\nlimits {} {} {} {} {}\n",
            env!("CARGO_PKG_VERSION"),
            line(&info.name),
            line(&info.driver),
            line(&info.driver_info),
            info.backend,
            info.device_type,
            info.vendor,
            info.device,
            limits.max_storage_buffers_per_shader_stage,
            limits.max_compute_invocations_per_workgroup,
            limits.max_compute_workgroup_size_x,
            limits.max_storage_buffer_binding_size,
            limits.max_compute_workgroups_per_dimension,
        );
        Self { header }
    }

    /// A short name for the file: a 64-bit FNV-1a hash of the header (collisions are caught by
    /// the header check on load).
    fn file_name(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.header.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("tune-{h:016x}.txt")
    }
}

/// The cache file of one device and what has been read from it.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    identity: Identity,
    /// Loaded on first use; choices this process measured are added.
    entries: Option<HashMap<String, Choice>>,
    /// Entries added since the last write, and when that was: a process that measures many
    /// shapes in a row (a test suite, a sweep) writes at most every [`WRITE_EVERY`], and the
    /// rest when the store is dropped with its [`crate::Gpu`].
    unwritten: bool,
    written: Option<Instant>,
}

/// Least time between two writes of one store's file.
const WRITE_EVERY: Duration = Duration::from_secs(2);

impl Store {
    pub(crate) fn new(dir: &Path, identity: &Identity) -> Self {
        Self {
            path: dir.join(identity.file_name()),
            identity: identity.clone(),
            entries: None,
            unwritten: false,
            written: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The choice stored for `key`, reading the file on first use.
    pub(crate) fn get(&mut self, key: &str) -> Option<Choice> {
        self.entries().get(key).copied()
    }

    /// Adds `key`'s choice and writes the file (merged with what other processes wrote since),
    /// now or, when it was written less than [`WRITE_EVERY`] ago, later. A failure to write is
    /// a warning, not an error: the choice is still used.
    pub(crate) fn insert(&mut self, key: String, choice: Choice) {
        self.entries().insert(key, choice);
        self.unwritten = true;
        if self.written.is_none_or(|t| t.elapsed() >= WRITE_EVERY) {
            self.flush();
        }
    }

    /// Writes what was added since the last write.
    pub(crate) fn flush(&mut self) {
        if !self.unwritten {
            return;
        }
        self.unwritten = false;
        self.written = Some(Instant::now());
        if let Err(e) = self.write() {
            log::warn!(
                "sepconv: could not write the tuning cache {}: {e}",
                self.path.display()
            );
        }
    }

    fn entries(&mut self) -> &mut HashMap<String, Choice> {
        let (path, identity) = (&self.path, &self.identity);
        self.entries.get_or_insert_with(|| read(path, identity))
    }

    /// Writes every entry, merged with the file's current ones, under the lock file.
    fn write(&mut self) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let lock = File::create(self.path.with_extension("lock"))?;
        lock.lock()?;
        let on_disk = read(&self.path, &self.identity);
        let entries = self.entries.get_or_insert_with(HashMap::new);
        for (k, v) in on_disk {
            entries.entry(k).or_insert(v);
        }
        let text = render(&self.identity, entries);
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        let written = File::create(&tmp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&tmp, &self.path));
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        lock.unlock()?;
        written
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The entries of the file at `path`, or none (with a warning) when it is missing or cannot
/// be trusted.
fn read(path: &Path, identity: &Identity) -> HashMap<String, Choice> {
    match load(path, identity) {
        Ok(entries) => entries,
        Err(Missing) => HashMap::new(),
        Err(Ignored(reason)) => {
            log::warn!(
                "sepconv: ignoring the tuning cache {}: {reason}; it will be rewritten",
                path.display()
            );
            HashMap::new()
        }
    }
}

/// Why a file gave no entries.
#[derive(Debug, PartialEq)]
pub(crate) enum LoadError {
    /// There is no file (or it cannot be opened): nothing to warn about.
    Missing,
    /// The file is there but cannot be trusted.
    Ignored(String),
}
use LoadError::{Ignored, Missing};

/// Reads and checks the file at `path`.
pub(crate) fn load(path: &Path, identity: &Identity) -> Result<HashMap<String, Choice>, LoadError> {
    let file = File::open(path).map_err(|_| Missing)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Ignored(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Ignored(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| Ignored("not UTF-8".into()))?;
    parse(&text, identity)
}

/// Checks and parses a file's text.
pub(crate) fn parse(text: &str, identity: &Identity) -> Result<HashMap<String, Choice>, LoadError> {
    let body = text
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix('\n'))
        .ok_or_else(|| Ignored(format!("it does not start with {MAGIC:?}")))?;
    let body = body.strip_prefix(identity.header.as_str()).ok_or_else(|| {
        Ignored("it was written by another crate version, adapter, driver or backend".into())
    })?;
    let mut entries = HashMap::new();
    let mut lines = body.lines();
    loop {
        let line = lines
            .next()
            .ok_or_else(|| Ignored("it has no final count (truncated?)".into()))?;
        if let Some(count) = line.strip_prefix("end ") {
            let count: usize = count
                .parse()
                .map_err(|_| Ignored(format!("bad final count {count:?}")))?;
            if count != entries.len() || lines.next().is_some() {
                return Err(Ignored(format!(
                    "it counts {count} entries but holds {} (or more after the count)",
                    entries.len()
                )));
            }
            return Ok(entries);
        }
        let (key, word) = line
            .split_once('\t')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| Ignored(format!("malformed line {line:?}")))?;
        let choice =
            Choice::from_word(word).ok_or_else(|| Ignored(format!("unknown choice {word:?}")))?;
        entries.insert(key.to_string(), choice);
    }
}

/// The file's text for `entries` (sorted, so equal contents give equal files).
fn render(identity: &Identity, entries: &HashMap<String, Choice>) -> String {
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = format!("{MAGIC}\n{}", identity.header);
    for (key, choice) in &sorted {
        text.push_str(key);
        text.push('\t');
        text.push_str(choice.word());
        text.push('\n');
    }
    text.push_str(&format!("end {}\n", sorted.len()));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::choice::{BlockPath, ConvKernel};

    fn identity(name: &str) -> Identity {
        Identity {
            header: format!(
                "crate {}\nadapter {name}\ndriver d 1\nbackend Vulkan Cpu 1:2\n",
                env!("CARGO_PKG_VERSION")
            ),
        }
    }

    fn two_entries() -> HashMap<String, Choice> {
        HashMap::from([
            (
                "Kernel { a }".to_string(),
                Choice::Kernel(ConvKernel::TiledGemm),
            ),
            ("Path { b }".to_string(), Choice::Path(BlockPath::Fused)),
        ])
    }

    #[test]
    fn a_written_file_reads_back() {
        let id = identity("adapter");
        let text = render(&id, &two_entries());
        assert_eq!(parse(&text, &id), Ok(two_entries()));
    }

    #[test]
    fn untrusted_files_are_ignored_with_a_reason() {
        let id = identity("adapter");
        let good = render(&id, &two_entries());
        let ignored = |text: &str| matches!(parse(text, &id), Err(Ignored(_)));
        // Every proper prefix is a truncated file.
        for cut in 0..good.len() - 1 {
            assert!(ignored(&good[..cut]), "prefix of {cut} bytes accepted");
        }
        assert!(ignored(&render(
            &identity("another adapter"),
            &two_entries()
        )));
        assert!(ignored(&good.replace("crate ", "crate 9")));
        assert!(ignored(&good.replace("TiledGemm", "Tiled")));
        assert!(ignored(&good.replace("end 2", "end 3")));
        assert!(ignored(&good.replace('\t', " ")));
        assert!(ignored(&format!("{good}extra\n")));
        assert!(ignored(""));
        assert!(ignored("\u{0}\u{1}garbage"));
    }

    #[test]
    fn missing_oversized_and_binary_files() {
        let dir = std::env::temp_dir().join(format!("sepconv-cache-unit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let id = identity("adapter");
        let path = dir.join("x.txt");
        assert_eq!(load(&path, &id), Err(Missing));
        fs::write(&path, vec![0xff; 10]).unwrap();
        assert!(matches!(load(&path, &id), Err(Ignored(_))));
        let big = File::create(&path).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(load(&path, &id), Err(Ignored(_))));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stores_merge_what_other_processes_wrote() {
        let dir = std::env::temp_dir().join(format!("sepconv-cache-merge-{}", std::process::id()));
        let id = identity("adapter");
        let mut a = Store::new(&dir, &id);
        let mut b = Store::new(&dir, &id);
        assert_eq!(a.get("k1"), None);
        assert_eq!(b.get("k2"), None);
        a.insert("k1".into(), Choice::Kernel(ConvKernel::TiledGemm));
        b.insert("k2".into(), Choice::Path(BlockPath::TwoKernels));
        let on_disk = load(a.path(), &id).unwrap();
        assert_eq!(on_disk.len(), 2, "{on_disk:?}");
        let mut c = Store::new(&dir, &id);
        assert_eq!(c.get("k1"), Some(Choice::Kernel(ConvKernel::TiledGemm)));
        assert_eq!(c.get("k2"), Some(Choice::Path(BlockPath::TwoKernels)));
        fs::remove_dir_all(&dir).unwrap();
    }
}
