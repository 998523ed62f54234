//! The CUDA backend: every GPU, embedded PTX kernels (fill, SAXPY, tiled matmul), host to
//! device round trips, device-to-device bandwidth, and cuBLAS SGEMM / half-precision GEMM
//! when cuBLAS loads. The driver is loaded at run time: its absence is a skip.

use std::sync::Arc;
use std::time::Instant;

use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, sys::cublasOperation_t};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use crate::report::{Check, DeviceKind, Group};
use crate::{PTX, Sizes, dot_ref, dot_tolerance, inputs, max_abs_err, peaks, samples};

const B: Group = Group::Cuda;

/// Why CUDA cannot run here, before any call that could panic.
pub fn unavailable() -> Option<String> {
    // SAFETY: only tries to dlopen the driver library.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Some("libcuda is not installed (no NVIDIA driver)".into());
    }
    match CudaContext::device_count() {
        Ok(0) => Some("the NVIDIA driver reports no CUDA device".into()),
        Ok(_) => None,
        Err(e) => Some(format!("the NVIDIA driver cannot be used: {e:?}")),
    }
}

pub fn run(sizes: &Sizes) -> Vec<Check> {
    if let Some(why) = unavailable() {
        return vec![Check::skip(B, None, "cuda", why)];
    }
    let count = CudaContext::device_count().unwrap_or(0).max(0) as usize;
    let mut out = Vec::new();
    for ordinal in 0..count {
        let start = out.len();
        match device(ordinal, sizes, &mut out) {
            Ok(()) => {}
            Err(e) => out.push(Check::fail(B, Some(&format!("#{ordinal}")), "device", e)),
        }
        let uuid = CudaContext::new(ordinal)
            .ok()
            .and_then(|c| c.uuid().ok())
            .map(|u| uuid_string(&u.bytes));
        for c in &mut out[start..] {
            c.device_uuid.clone_from(&uuid);
            c.device_kind = Some(DeviceKind::Cuda);
        }
    }
    out
}

/// A CUDA device UUID as nvidia-smi writes it: `GPU-` and 16 bytes in 8-4-4-4-12 hex.
pub fn uuid_string(bytes: &[std::ffi::c_char; 16]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{:02x}", *b as u8)).collect();
    format!(
        "GPU-{}-{}-{}-{}-{}",
        hex[0..4].concat(),
        hex[4..6].concat(),
        hex[6..8].concat(),
        hex[8..10].concat(),
        hex[10..16].concat()
    )
}

fn err<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

/// One device's stream, its name in reports and its known peak rates.
struct On<'a> {
    stream: &'a Arc<CudaStream>,
    dev: &'a str,
    peak: Option<&'a peaks::Peak>,
}

impl On<'_> {
    fn check(&self, name: &str) -> Check {
        Check::new(B, Some(self.dev), name)
    }

    fn fail(&self, name: &str, why: impl Into<String>) -> Check {
        Check::fail(B, Some(self.dev), name, why)
    }
}

fn device(ordinal: usize, sizes: &Sizes, out: &mut Vec<Check>) -> Result<(), String> {
    let ctx = CudaContext::new(ordinal).map_err(err("creating a context"))?;
    let name = ctx.name().map_err(err("device name"))?;
    let dev = format!("#{ordinal} {name}");
    let peak = peaks::for_device(&name);
    let stream = ctx.default_stream();
    let module = ctx
        .load_module(Ptx::from_src(PTX))
        .map_err(err("loading the PTX kernels"))?;
    let kernel = |name: &'static str| module.load_function(name).map_err(err(name));
    let on = On {
        stream: &stream,
        dev: &dev,
        peak: peak.as_ref(),
    };
    out.push(fill(&on, &kernel("fill_f32")?, sizes.vector)?);
    out.push(saxpy(&on, &kernel("saxpy_f32")?, sizes.vector)?);
    out.push(round_trip(&on, sizes.vector)?);
    out.push(copy(&on, sizes.copy_bytes)?);
    out.push(matmul(&on, &kernel("matmul_tiled_f32")?, sizes.matmul)?);
    cublas(&on, sizes, out);
    Ok(())
}

fn fill(on: &On, f: &CudaFunction, n: usize) -> Result<Check, String> {
    let n32 = n as u32;
    let mut buf = on.stream.alloc_zeros::<f32>(n).map_err(err("alloc"))?;
    let value = 3.25f32;
    // SAFETY: fill_f32(float* out, float value, unsigned n) with a buffer of n floats.
    unsafe {
        on.stream
            .launch_builder(f)
            .arg(&mut buf)
            .arg(&value)
            .arg(&n32)
            .launch(LaunchConfig::for_num_elems(n32))
    }
    .map_err(err("fill launch"))?;
    let got = on.stream.clone_dtoh(&buf).map_err(err("copy back"))?;
    let e = got
        .iter()
        .map(|v| f64::from((v - value).abs()))
        .fold(0.0, f64::max);
    Ok(on.check("fill (PTX)").compared(e, 0.0))
}

/// SAXPY against the CPU, timed on a second launch.
fn saxpy(on: &On, f: &CudaFunction, n: usize) -> Result<Check, String> {
    let n32 = n as u32;
    let x = inputs(n, 1);
    let y0 = inputs(n, 2);
    let dx = on.stream.clone_htod(&x).map_err(err("upload"))?;
    let mut dy = on.stream.clone_htod(&y0).map_err(err("upload"))?;
    let a = 2.5f32;
    let launch = |dy: &mut CudaSlice<f32>| -> Result<(), String> {
        // SAFETY: saxpy_f32(float* y, const float* x, float a, unsigned n), both of n floats.
        unsafe {
            on.stream
                .launch_builder(f)
                .arg(dy)
                .arg(&dx)
                .arg(&a)
                .arg(&n32)
                .launch(LaunchConfig::for_num_elems(n32))
        }
        .map(drop)
        .map_err(err("saxpy launch"))
    };
    launch(&mut dy)?;
    let got = on.stream.clone_dtoh(&dy).map_err(err("copy back"))?;
    let mut want = y0.clone();
    crate::cpu::saxpy(a, &x, &mut want);
    let e = max_abs_err(&got, &want);
    let t = Instant::now();
    launch(&mut dy)?;
    on.stream.synchronize().map_err(err("synchronize"))?;
    let s = t.elapsed().as_secs_f64();
    let gbs = (3 * n * 4) as f64 / s / 1e9;
    Ok(on.check("saxpy (PTX)").compared(e, 1e-6).timed(
        s,
        gbs,
        "GB/s",
        on.peak.map(|p| p.memory_gbs),
    ))
}

/// Host to device and back.
fn round_trip(on: &On, n: usize) -> Result<Check, String> {
    let name = "host<->device round trip";
    let x = inputs(n, 1);
    let t = Instant::now();
    let dev_copy = on.stream.clone_htod(&x).map_err(err("upload"))?;
    let back = on.stream.clone_dtoh(&dev_copy).map_err(err("download"))?;
    let s = t.elapsed().as_secs_f64();
    if back != x {
        return Ok(on.fail(name, "data changed on the way"));
    }
    Ok(on
        .check(name)
        .timed(s, (2 * n * 4) as f64 / s / 1e9, "GB/s", None))
}

/// Device-to-device copy bandwidth.
fn copy(on: &On, bytes: usize) -> Result<Check, String> {
    let words = bytes / 4;
    let src_host = inputs(words, 5);
    let src = on.stream.clone_htod(&src_host).map_err(err("upload"))?;
    let mut dst = on.stream.alloc_zeros::<f32>(words).map_err(err("alloc"))?;
    on.stream.memcpy_dtod(&src, &mut dst).map_err(err("dtod"))?;
    on.stream.synchronize().map_err(err("synchronize"))?;
    let t = Instant::now();
    on.stream.memcpy_dtod(&src, &mut dst).map_err(err("dtod"))?;
    on.stream.synchronize().map_err(err("synchronize"))?;
    let s = t.elapsed().as_secs_f64();
    let back = on.stream.clone_dtoh(&dst).map_err(err("download"))?;
    if back != src_host {
        return Ok(on.fail("device copy", "copied data differ"));
    }
    Ok(on.check("device copy").timed(
        s,
        2.0 * (words * 4) as f64 / s / 1e9,
        "GB/s",
        on.peak.map(|p| p.memory_gbs),
    ))
}

/// The tiled PTX matmul against the CPU at sampled positions.
fn matmul(on: &On, f: &CudaFunction, m: usize) -> Result<Check, String> {
    let am = inputs(m * m, 3);
    let bm = inputs(m * m, 4);
    let da = on.stream.clone_htod(&am).map_err(err("upload"))?;
    let db = on.stream.clone_htod(&bm).map_err(err("upload"))?;
    let mut dc = on.stream.alloc_zeros::<f32>(m * m).map_err(err("alloc"))?;
    let m32 = m as u32;
    let cfg = LaunchConfig {
        grid_dim: (m32 / 16, m32 / 16, 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    let t = Instant::now();
    // SAFETY: matmul_tiled_f32(float* c, const float* a, const float* b, unsigned n), n % 16 == 0.
    unsafe {
        on.stream
            .launch_builder(f)
            .arg(&mut dc)
            .arg(&da)
            .arg(&db)
            .arg(&m32)
            .launch(cfg)
    }
    .map_err(err("matmul launch"))?;
    on.stream.synchronize().map_err(err("synchronize"))?;
    let s = t.elapsed().as_secs_f64();
    let c = on.stream.clone_dtoh(&dc).map_err(err("download"))?;
    let e = samples(m)
        .into_iter()
        .map(|(i, j)| (f64::from(c[i * m + j]) - dot_ref(&am, &bm, m, i, j)).abs())
        .fold(0.0, f64::max);
    Ok(on
        .check(&format!("matmul {m}x{m} (PTX, tiled)"))
        .compared(e, dot_tolerance(m))
        .timed(
            s,
            2.0 * (m * m * m) as f64 / s / 1e9,
            "GFLOP/s",
            on.peak.map(|p| p.fp32_gflops),
        ))
}

/// cuBLAS SGEMM and half-precision GEMM, when cuBLAS loads.
fn cublas(on: &On, sizes: &Sizes, out: &mut Vec<Check>) {
    // SAFETY: only tries to dlopen cuBLAS.
    if !unsafe { cudarc::cublas::sys::is_culib_present() } {
        let why = "libcublas is not installed (the driver alone has no cuBLAS)";
        out.push(Check::skip(B, Some(on.dev), "cuBLAS GEMM", why));
        return;
    }
    let blas = match CudaBlas::new(on.stream.clone()) {
        Ok(b) => b,
        Err(e) => {
            out.push(on.fail("cuBLAS GEMM", format!("cuBLAS handle: {e:?}")));
            return;
        }
    };
    let n = sizes.gemm;
    let a = inputs(n * n, 11);
    let b = inputs(n * n, 12);
    out.push(sgemm(on, &blas, n, &a, &b).unwrap_or_else(|e| on.fail("cuBLAS SGEMM", e)));
    out.push(hgemm(on, &blas, n, &a, &b).unwrap_or_else(|e| on.fail("cuBLAS half GEMM", e)));
}

fn sgemm(on: &On, blas: &CudaBlas, n: usize, a: &[f32], b: &[f32]) -> Result<Check, String> {
    let stream = on.stream;
    let da = stream.clone_htod(a).map_err(err("upload"))?;
    let db = stream.clone_htod(b).map_err(err("upload"))?;
    let mut dc = stream.alloc_zeros::<f32>(n * n).map_err(err("alloc"))?;
    let cfg = gemm_cfg(n, 1.0f32, 0.0f32);
    // Row-major c = a x b is column-major c^T = b^T a^T: pass b first.
    // SAFETY: all buffers hold n * n elements and the leading dimensions are n.
    unsafe { blas.gemm(cfg, &db, &da, &mut dc) }.map_err(err("sgemm"))?;
    stream.synchronize().map_err(err("synchronize"))?;
    let t = Instant::now();
    unsafe { blas.gemm(cfg, &db, &da, &mut dc) }.map_err(err("sgemm"))?;
    stream.synchronize().map_err(err("synchronize"))?;
    let s = t.elapsed().as_secs_f64();
    let c = stream.clone_dtoh(&dc).map_err(err("download"))?;
    let e = samples(n)
        .into_iter()
        .map(|(i, j)| (f64::from(c[i * n + j]) - dot_ref(a, b, n, i, j)).abs())
        .fold(0.0, f64::max);
    Ok(on
        .check(&format!("cuBLAS SGEMM {n}x{n}"))
        .compared(e, dot_tolerance(n))
        .timed(
            s,
            2.0 * (n * n * n) as f64 / s / 1e9,
            "GFLOP/s",
            on.peak.map(|p| p.fp32_gflops),
        ))
}

fn hgemm(on: &On, blas: &CudaBlas, n: usize, a: &[f32], b: &[f32]) -> Result<Check, String> {
    use half::f16;
    let stream = on.stream;
    let ah: Vec<f16> = a.iter().map(|v| f16::from_f32(*v)).collect();
    let bh: Vec<f16> = b.iter().map(|v| f16::from_f32(*v)).collect();
    let da = stream.clone_htod(&ah).map_err(err("upload"))?;
    let db = stream.clone_htod(&bh).map_err(err("upload"))?;
    let mut dc = stream.alloc_zeros::<f16>(n * n).map_err(err("alloc"))?;
    let cfg = gemm_cfg(n, f16::ONE, f16::ZERO);
    // SAFETY: as for SGEMM.
    unsafe { blas.gemm(cfg, &db, &da, &mut dc) }.map_err(err("hgemm"))?;
    stream.synchronize().map_err(err("synchronize"))?;
    let t = Instant::now();
    unsafe { blas.gemm(cfg, &db, &da, &mut dc) }.map_err(err("hgemm"))?;
    stream.synchronize().map_err(err("synchronize"))?;
    let s = t.elapsed().as_secs_f64();
    let c = stream.clone_dtoh(&dc).map_err(err("download"))?;
    let ar: Vec<f32> = ah.iter().map(|v| v.to_f32()).collect();
    let br: Vec<f32> = bh.iter().map(|v| v.to_f32()).collect();
    let mut worst = 0.0f64;
    let mut scale = 0.0f64;
    for (i, j) in samples(n) {
        let want = dot_ref(&ar, &br, n, i, j);
        scale = scale.max(want.abs());
        worst = worst.max((f64::from(c[i * n + j].to_f32()) - want).abs());
    }
    // f32 accumulation, f16 output: the output rounding dominates.
    let tol = 2e-3 * (1.0 + scale) + dot_tolerance(n);
    Ok(on
        .check(&format!("cuBLAS half GEMM {n}x{n}"))
        .compared(worst, tol)
        .timed(
            s,
            2.0 * (n * n * n) as f64 / s / 1e9,
            "GFLOP/s",
            on.peak.map(|p| p.fp16_gflops),
        ))
}

fn gemm_cfg<T>(n: usize, alpha: T, beta: T) -> GemmConfig<T> {
    let n = n as i32;
    GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_N,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: n,
        n,
        k: n,
        alpha,
        lda: n,
        ldb: n,
        beta,
        ldc: n,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_read_as_nvidia_smi_writes_them() {
        let bytes: [u8; 16] = [
            0x5c, 0x2e, 0x1a, 0x07, 0x9f, 0x10, 0x4b, 0x8e, 0xa1, 0xd2, 0x00, 0x31, 0xfe, 0x7a,
            0x64, 0x0b,
        ];
        let c = bytes.map(|b| b as std::ffi::c_char);
        assert_eq!(
            super::uuid_string(&c),
            "GPU-5c2e1a07-9f10-4b8e-a1d2-0031fe7a640b"
        );
    }
}
