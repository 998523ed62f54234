//! tensor-smoke: does this machine's accelerator compute correctly, and how fast?
//!
//! Backends: `cpu` (the reference, always built), `cuda` (cudarc with the driver loaded at
//! run time: a host without it is a skip, not a crash; embedded PTX kernels; cuBLAS when it
//! loads), `wgpu` (Metal on macOS, Vulkan elsewhere; the same checks in WGSL). Every check
//! compares with a CPU reference under a stated tolerance and reports its timing.

//!
//! Without features (as `xtask` depends on it) the crate is its check vocabulary alone,
//! `report`, with serde: the checks themselves come with `cpu` (the default), which the
//! GPU backends build on.

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cpu")]
pub mod peaks;
pub mod report;
#[cfg(feature = "wgpu")]
pub mod wgpu_backend;

pub use report::{Check, DeviceKind, Group, Report, Status};

#[cfg(feature = "cpu")]
pub use checks::*;

/// Problem sizes, inputs and reference results shared by the backends.
#[cfg(feature = "cpu")]
mod checks {

    /// The WGSL shaders (also translated to Metal Shading Language in the tests).
    pub const WGSL_VECTOR: &str = include_str!("vector.wgsl");
    pub const WGSL_MATMUL: &str = include_str!("matmul.wgsl");
    /// The PTX kernels of the CUDA backend.
    pub const PTX: &str = include_str!("kernels.ptx");

    /// Problem sizes.
    #[derive(Debug, Clone, Copy)]
    pub struct Sizes {
        /// Elements in the vector checks (fill, SAXPY).
        pub vector: usize,
        /// Bytes in the copy-bandwidth checks.
        pub copy_bytes: usize,
        /// n of the n x n matmul checked against the CPU everywhere.
        pub matmul: usize,
        /// n of the larger GEMMs timed on GPUs (entries sampled against the CPU).
        pub gemm: usize,
    }

    impl Default for Sizes {
        fn default() -> Self {
            Sizes {
                vector: 1 << 22,
                copy_bytes: 256 << 20,
                matmul: 256,
                gemm: 4096,
            }
        }
    }

    /// Deterministic inputs in [-1, 1).
    pub fn inputs(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The largest absolute difference between two slices.
    pub fn max_abs_err(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
            .fold(0.0, f64::max)
    }

    /// Sampled positions of an n x n matrix (corners, diagonal, and a spread).
    pub fn samples(n: usize) -> Vec<(usize, usize)> {
        let mut out = vec![(0, 0), (n - 1, n - 1), (0, n - 1), (n - 1, 0)];
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..60 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            out.push(((s % n as u64) as usize, ((s >> 32) % n as u64) as usize));
        }
        out
    }

    /// c[i][j] = sum_k a[i][k] * b[k][j], in f64, at one position.
    pub fn dot_ref(a: &[f32], b: &[f32], n: usize, i: usize, j: usize) -> f64 {
        (0..n)
            .map(|k| f64::from(a[i * n + k]) * f64::from(b[k * n + j]))
            .sum()
    }

    /// f32 tolerance for a length-k dot product of values in [-1, 1].
    pub fn dot_tolerance(k: usize) -> f64 {
        1e-5 + 4e-7 * k as f64
    }
}
