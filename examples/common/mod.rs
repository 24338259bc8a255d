//! What the timing examples (`report`, `precision`) share: one timing protocol for every
//! number they print (the first call alone; warm-up of at least 3 calls and 0.1 s; then calls
//! timed one by one until at least 5 calls and 0.3 s; the median per call, and the process's
//! CPU time per timed call), and their seeded data.
#![allow(dead_code)] // each example uses a different subset

use std::time::{Duration, Instant};

/// The examples' error type.
pub type BoxError = Box<dyn std::error::Error>;

/// Timing of one path: the first call and the median timed call in seconds, and the CPU time
/// this process spent per timed call (see [`process_cpu_seconds`]).
pub struct Timing {
    pub first: f64,
    pub median: f64,
    pub cpu_per_call: Option<f64>,
}

/// CPU time (user + system) this process has used, in seconds; `None` off Linux. On a
/// software GPU adapter this is the time the driver's threads spent, which moves far less
/// with other load on the machine than wall time. `/proc` counts clock ticks of 1/100 s
/// (`CLK_TCK`, 100 on Linux's usual configurations).
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// First call, then the median of the timed calls (the protocol in the module docs).
pub fn time_calls(mut f: impl FnMut() -> Result<(), BoxError>) -> Result<Timing, BoxError> {
    let t = Instant::now();
    f()?;
    let first = t.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut warm = 0;
    while warm < 3 || start.elapsed() < Duration::from_millis(100) {
        f()?;
        warm += 1;
    }
    let mut times = Vec::new();
    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    while times.len() < 5 || start.elapsed() < Duration::from_millis(300) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    let calls = times.len() as f64;
    let cpu_per_call = process_cpu_seconds()
        .zip(cpu_start)
        .map(|(end, start)| (end - start) / calls);
    Ok(Timing {
        first,
        median: median(&mut times),
        cpu_per_call,
    })
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seeded uniform values in [-1, 1) (xorshift64*), never all zeros.
pub fn uniform(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let v = s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            v as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}
