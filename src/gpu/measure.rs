//! Choosing between two ways of running the same work by timing them on the device: used by
//! [`super::Conv2d`] (its pointwise kernels) and [`super::SeparableBlock`] (fused or not).

use crate::error::Result;
#[cfg(not(target_arch = "wasm32"))]
use std::time::{Duration, Instant};

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
