//! Published peaks of common accelerators, to report a measured rate as a fraction of
//! what the part can do (dense, no sparsity). Matched on the device name.

pub struct Peak {
    /// Memory bandwidth, GB/s.
    pub memory_gbs: f64,
    /// FP32 (non-tensor) GFLOP/s.
    pub fp32_gflops: f64,
    /// FP16 tensor-core GFLOP/s, dense.
    pub fp16_gflops: f64,
}

/// The peak for a device name, most specific names first.
pub fn for_device(name: &str) -> Option<Peak> {
    let n = name.to_ascii_uppercase();
    let table: &[(&[&str], f64, f64, f64)] = &[
        (&["GH200"], 4000.0, 67_000.0, 989_000.0),
        (&["H200"], 4800.0, 67_000.0, 989_000.0),
        (&["H100", "PCIE"], 2000.0, 51_000.0, 756_000.0),
        (&["H100", "NVL"], 3900.0, 60_000.0, 835_000.0),
        (&["H100"], 3350.0, 67_000.0, 989_000.0),
        (&["GB200"], 8000.0, 80_000.0, 2_500_000.0),
        (&["B200"], 8000.0, 80_000.0, 2_250_000.0),
        (&["A100", "80GB"], 2039.0, 19_500.0, 312_000.0),
        (&["A100"], 1555.0, 19_500.0, 312_000.0),
        (&["L40S"], 864.0, 91_600.0, 362_000.0),
        (&["L4"], 300.0, 30_300.0, 121_000.0),
    ];
    table
        .iter()
        .find(|(keys, ..)| keys.iter().all(|k| n.contains(k)))
        .map(|(_, m, f32_, f16)| Peak {
            memory_gbs: *m,
            fp32_gflops: *f32_,
            fp16_gflops: *f16,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_most_specific_first() {
        assert_eq!(
            for_device("NVIDIA H100 80GB HBM3").unwrap().memory_gbs,
            3350.0
        );
        assert_eq!(for_device("NVIDIA H100 PCIe").unwrap().memory_gbs, 2000.0);
        assert_eq!(for_device("NVIDIA GH200 480GB").unwrap().memory_gbs, 4000.0);
        assert_eq!(for_device("NVIDIA H200").unwrap().memory_gbs, 4800.0);
        assert!(for_device("llvmpipe (LLVM 15.0.6, 256 bits)").is_none());
    }
}
