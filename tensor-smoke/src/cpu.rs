//! The CPU reference: the same checks on the host, in f32, compared with f64.

use std::time::Instant;

use crate::report::{self, Check, DeviceKind, Group};
use crate::{Sizes, dot_ref, dot_tolerance, inputs, samples};

const B: Group = Group::Cpu;

/// c = a x b, row-major n x n, in f32 (ikj order).
pub fn matmul(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0f32; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            let row = &b[k * n..(k + 1) * n];
            let out = &mut c[i * n..(i + 1) * n];
            for (o, bv) in out.iter_mut().zip(row) {
                *o += aik * *bv;
            }
        }
    }
    c
}

pub fn saxpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * *xi;
    }
}

pub fn run(sizes: &Sizes) -> Vec<Check> {
    let device = Some("host");
    let mut out = Vec::new();

    // SAXPY against f64.
    let n = sizes.vector;
    let x = inputs(n, 1);
    let mut y = inputs(n, 2);
    let want: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(xi, yi)| 2.5 * f64::from(*xi) + f64::from(*yi))
        .collect();
    let t = Instant::now();
    saxpy(2.5, &x, &mut y);
    let s = t.elapsed().as_secs_f64();
    let err = y
        .iter()
        .zip(&want)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max);
    out.push(Check::new(B, device, "saxpy").compared(err, 1e-6).timed(
        s,
        (3 * n * 4) as f64 / s / 1e9,
        "GB/s",
        None,
    ));

    // Matmul against f64 at sampled positions.
    let m = sizes.matmul;
    let a = inputs(m * m, 3);
    let b = inputs(m * m, 4);
    let t = Instant::now();
    let c = matmul(&a, &b, m);
    let s = t.elapsed().as_secs_f64();
    let err = samples(m)
        .into_iter()
        .map(|(i, j)| (f64::from(c[i * m + j]) - dot_ref(&a, &b, m, i, j)).abs())
        .fold(0.0, f64::max);
    out.push(
        Check::new(B, device, &format!("matmul {m}x{m}"))
            .compared(err, dot_tolerance(m))
            .timed(s, 2.0 * (m * m * m) as f64 / s / 1e9, "GFLOP/s", None),
    );

    // Copy bandwidth (read + write).
    let bytes = sizes.copy_bytes;
    let src: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    let mut dst = vec![0u8; bytes];
    // A first copy faults the destination's pages in (a zeroed allocation may not be
    // backed yet); the timed one measures bandwidth only.
    dst.copy_from_slice(&src);
    dst.fill(0);
    let t = Instant::now();
    dst.copy_from_slice(&src);
    let s = t.elapsed().as_secs_f64();
    let same = dst == src;
    let mut check =
        Check::new(B, device, "copy").timed(s, 2.0 * bytes as f64 / s / 1e9, "GB/s", None);
    if !same {
        check = Check::fail(B, device, "copy", "copied bytes differ");
    }
    out.push(check);
    report::on(DeviceKind::Cpu, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matmul_matches_f64() {
        let n = 32;
        let a = inputs(n * n, 7);
        let b = inputs(n * n, 8);
        let c = matmul(&a, &b, n);
        for (i, j) in samples(n) {
            assert!((f64::from(c[i * n + j]) - dot_ref(&a, &b, n, i, j)).abs() < dot_tolerance(n));
        }
    }

    #[test]
    fn cpu_checks_pass() {
        let sizes = Sizes {
            vector: 1 << 12,
            copy_bytes: 1 << 16,
            matmul: 32,
            gemm: 32,
        };
        let checks = run(&sizes);
        assert_eq!(checks.len(), 3);
        assert!(
            checks.iter().all(|c| c.status == crate::Status::Pass),
            "{checks:?}"
        );
        assert!(checks.iter().all(|c| c.rate.is_some_and(|r| r > 0.0)));
    }
}
