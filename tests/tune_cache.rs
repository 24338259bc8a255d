//! The tuner's cache file: choices measured in one process are taken by the next, and a file
//! that is missing, corrupt, from another crate version, in a directory that cannot be
//! written, or written by several processes at once never breaks a run or gets trusted when
//! it should not. Every run is checked against the reference, exactly (small integers).

use sepconv::cpu::reference;
use sepconv::{Conv2d, Conv2dSpec, ConvKernel, Gpu, GpuTensor, Shape, Tensor};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sepconv-tune-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Small integers in [-3, 3] from `seed`: every sum the conv makes is exact.
fn ints(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 7) as f32 - 3.0
        })
        .collect()
}

/// Runs a 64 → 64 pointwise conv (a spec with a kernel choice) on `input` on `gpu` into a
/// NaN-filled output, checks it bit for bit, and returns the kernel it took.
fn run_checked(gpu: &Gpu, input: Shape) -> ConvKernel {
    let spec = Conv2dSpec::pointwise(64, 64);
    let w = ints(1, spec.weight_count());
    let b = ints(2, 64);
    let x = Tensor::new(input, ints(3, input.len().unwrap())).unwrap();
    let conv = Conv2d::new(gpu, spec, &w, Some(&b)).unwrap();
    let want = reference::conv2d(&spec, &x, &w, Some(&b)).unwrap();
    let y = GpuTensor::full(gpu, want.shape(), f32::NAN).unwrap();
    conv.run_into(&GpuTensor::from_tensor(gpu, &x).unwrap(), &y)
        .unwrap();
    assert_eq!(y.read().unwrap(), want);
    conv.chosen_kernel(input).expect("a run records its kernel")
}

/// A Gpu whose tuner keeps its file in `dir`.
fn gpu_with_cache(dir: &Path) -> Gpu {
    let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
    gpu.tuner().set_cache_dir(Some(dir));
    gpu
}

/// The cache file in `dir` (there is one per device).
fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// The entry count on a well-formed file's last line.
fn entries(file: &Path) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.starts_with("sepconv tuning cache 2\n"), "{text}");
    let last = text.lines().last().unwrap();
    last.strip_prefix("end ").unwrap().parse().unwrap()
}

fn other(kernel: ConvKernel) -> ConvKernel {
    match kernel {
        ConvKernel::TiledGemm => ConvKernel::UniformWindows,
        _ => ConvKernel::TiledGemm,
    }
}

fn word(kernel: ConvKernel) -> &'static str {
    match kernel {
        ConvKernel::TiledGemm => "TiledGemm",
        _ => "UniformWindows",
    }
}

#[test]
fn the_next_process_takes_the_files_choices() {
    let dir = scratch_dir("next");
    let input = Shape::new(1, 64, 6, 6);
    // Missing file: measured, then written.
    let first = gpu_with_cache(&dir);
    let measured = run_checked(&first, input);
    let file = cache_file(&dir);
    assert_eq!(first.tuner().cache_file().as_deref(), Some(file.as_path()));
    assert_eq!(entries(&file), 1);
    // Plant the other kernel in the file: a new Gpu (as a new process would) must run it
    // without measuring.
    let text = std::fs::read_to_string(&file).unwrap();
    let planted = text.replace(
        &format!("\t{}\n", word(measured)),
        &format!("\t{}\n", word(other(measured))),
    );
    assert_ne!(planted, text);
    std::fs::write(&file, planted).unwrap();
    let second = gpu_with_cache(&dir);
    assert_eq!(run_checked(&second, input), other(measured));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn corrupt_truncated_and_stale_files_are_ignored_and_rewritten() {
    let input = Shape::new(1, 64, 5, 5);
    let dir = scratch_dir("corrupt");
    run_checked(&gpu_with_cache(&dir), input);
    let file = cache_file(&dir);
    let good = std::fs::read_to_string(&file).unwrap();
    let measured = if good.contains("\tTiledGemm\n") {
        ConvKernel::TiledGemm
    } else {
        ConvKernel::UniformWindows
    };
    let flipped = good.replace(
        &format!("\t{}\n", word(measured)),
        &format!("\t{}\n", word(other(measured))),
    );
    let version = env!("CARGO_PKG_VERSION");
    for (what, bad) in [
        ("garbage", "\u{0}\u{7f}not a cache at all".to_string()),
        ("truncated", flipped[..flipped.len() - 8].to_string()),
        ("wrong count", flipped.replace("end 1", "end 2")),
        (
            "unknown choice",
            flipped
                .replace("\tTiledGemm\n", "\tSomethingElse\n")
                .replace("\tUniformWindows\n", "\tSomethingElse\n"),
        ),
        (
            "a path for a kernel",
            good.replace(&format!("\t{}\n", word(measured)), "\tFused\n"),
        ),
        (
            "stale version",
            flipped.replace(&format!("crate {version}"), "crate 0.0.0-old"),
        ),
    ] {
        std::fs::write(&file, &bad).unwrap();
        let gpu = gpu_with_cache(&dir);
        // The run still matches the reference (checked inside) ...
        let taken = run_checked(&gpu, input);
        // ... and the file is this version's again, with one entry.
        let now = std::fs::read_to_string(&file).unwrap();
        assert!(now.contains(&format!("crate {version}\n")), "{what}: {now}");
        assert_eq!(entries(&file), 1, "{what}");
        // The stale file's flipped choice was not trusted: what ran is what was written.
        assert!(now.contains(&format!("\t{}\n", word(taken))), "{what}");
        assert!(!now.contains("\tFused\n"), "{what}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_directory_leaves_runs_working() {
    let dir = scratch_dir("unwritable");
    // A directory below a regular file can never be created.
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let gpu = gpu_with_cache(&blocker.join("cache"));
    run_checked(&gpu, Shape::new(1, 64, 4, 4));
    run_checked(&gpu, Shape::new(2, 64, 4, 4));
    assert!(!blocker.join("cache").exists());
    // Turned off: no file anywhere, runs as before.
    let off = Gpu::new().unwrap();
    off.tuner().set_cache_dir(None);
    assert_eq!(off.tuner().cache_file(), None);
    run_checked(&off, Shape::new(1, 64, 4, 4));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Run by `processes_writing_at_once_keep_every_entry` in child processes (ignored
/// otherwise): one conv on the shape `SEPCONV_TEST_ROWS` names, with the cache directory from
/// `SEPCONV_TUNE_CACHE`, as a user's process would.
#[test]
#[ignore = "a child process of processes_writing_at_once_keep_every_entry"]
fn child_writes_its_choice() {
    let rows: usize = std::env::var("SEPCONV_TEST_ROWS").unwrap().parse().unwrap();
    let gpu = Gpu::new().unwrap();
    assert!(gpu.tuner().cache_file().is_some());
    run_checked(&gpu, Shape::new(1, 64, rows, 3));
}

#[test]
fn processes_writing_at_once_keep_every_entry() {
    let dir = scratch_dir("processes");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (1..=4)
        .map(|rows| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "child_writes_its_choice", "--quiet"])
                .env("SEPCONV_TUNE_CACHE", &dir)
                .env("SEPCONV_TEST_ROWS", rows.to_string())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // One well-formed file holding all four shapes' choices: none lost, none torn.
    assert_eq!(entries(&cache_file(&dir)), 4);
    let _ = std::fs::remove_dir_all(&dir);
}
