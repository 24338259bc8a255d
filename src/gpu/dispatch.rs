//! Workgroup-grid arithmetic: one flat range of workgroups, spread over x and y when it
//! exceeds the per-dimension limit (65,535 on most adapters).
//!
//! The shaders rebuild the flat workgroup index as `wg.y · num_workgroups.x + wg.x` and
//! bounds-check the element index, so the few extra workgroups a near-square spread launches
//! do nothing. A near-square grid wastes fewer than `x` workgroups, against up to a whole row
//! for `{limit, ceil(n / limit)}`.

use crate::error::{Error, Result};

/// Grid `[x, y, 1]` holding at least `workgroups` workgroups, each side at most `max_per_dim`.
pub(crate) fn grid(workgroups: u64, max_per_dim: u32) -> Result<[u32; 3]> {
    let max = u64::from(max_per_dim);
    if workgroups <= max {
        // workgroups ≤ max_per_dim fits in u32.
        return Ok([workgroups.max(1) as u32, 1, 1]);
    }
    let x = (workgroups as f64).sqrt().ceil() as u64;
    let x = x.min(max);
    let y = workgroups.div_ceil(x);
    if y > max {
        return Err(Error::DispatchTooLarge {
            workgroups,
            max_per_dimension: max_per_dim,
        });
    }
    Ok([x as u32, y as u32, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_grids_stay_one_dimensional() {
        assert_eq!(grid(1, 65_535).unwrap(), [1, 1, 1]);
        assert_eq!(grid(65_535, 65_535).unwrap(), [65_535, 1, 1]);
    }

    #[test]
    fn large_grids_spread_near_square_and_cover_everything() {
        for n in [65_536u64, 100_000, 1 << 24, 4_000_000_001] {
            let [x, y, z] = grid(n, 65_535).unwrap();
            assert_eq!(z, 1);
            assert!(x <= 65_535 && y <= 65_535);
            let total = u64::from(x) * u64::from(y);
            assert!(total >= n, "{n}: {x}×{y} too small");
            assert!(total - n < u64::from(x), "{n}: {x}×{y} wastes a whole row");
        }
    }

    #[test]
    fn impossible_grids_are_errors() {
        let n = 65_535u64 * 65_535 + 1;
        assert!(matches!(
            grid(n, 65_535),
            Err(Error::DispatchTooLarge { .. })
        ));
        assert_eq!(grid(10, 4).unwrap(), [4, 3, 1]);
    }
}
