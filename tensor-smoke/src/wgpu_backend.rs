//! The wgpu backend: Metal on macOS (Apple GPUs), Vulkan elsewhere (any Vulkan driver,
//! lavapipe included). The same checks as CUDA, in WGSL.

use std::time::Instant;

use wgpu::{
    BindGroupDescriptor, BindGroupEntry, Buffer, BufferDescriptor, BufferUsages, ComputePipeline,
    ComputePipelineDescriptor, Device, Queue,
};

use crate::report::{self, Check, DeviceKind, Group};
use crate::{
    Sizes, WGSL_MATMUL, WGSL_VECTOR, dot_ref, dot_tolerance, inputs, max_abs_err, samples,
};

const B: Group = Group::Wgpu;

pub fn run(sizes: &Sizes) -> Vec<Check> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL;
    let instance = wgpu::Instance::new(desc);
    let adapter = match pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        ..Default::default()
    })) {
        Ok(a) => a,
        Err(e) => {
            return vec![Check::skip(
                B,
                None,
                "wgpu",
                format!("no Metal or Vulkan adapter: {e}"),
            )];
        }
    };
    let info = adapter.get_info();
    let dev = format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type);
    let kind = match (info.device_type, info.backend) {
        (wgpu::DeviceType::Cpu, _) => DeviceKind::Cpu,
        (_, wgpu::Backend::Metal) => DeviceKind::Metal,
        _ => DeviceKind::Vulkan,
    };
    let limits = adapter.limits();
    let device_desc = wgpu::DeviceDescriptor {
        label: Some("tensor-smoke"),
        required_limits: limits.clone(),
        ..Default::default()
    };
    let (device, queue) = match pollster::block_on(adapter.request_device(&device_desc)) {
        Ok(dq) => dq,
        Err(e) => {
            return vec![
                Check::fail(B, Some(&dev), "device", format!("request_device: {e}")).on(kind),
            ];
        }
    };
    // Validation and device errors become failed checks, not a panic.
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = errors.clone();
    device.on_uncaptured_error(std::sync::Arc::new(move |e: wgpu::Error| {
        sink.lock()
            .expect("error sink")
            .push(e.to_string().lines().next().unwrap_or("").to_string());
    }));
    let ctx = Ctx { device, queue };
    let max_buffer =
        (limits.max_storage_buffer_binding_size as usize).min(limits.max_buffer_size as usize);
    let mut out = Vec::new();
    let d = Some(dev.as_str());
    out.extend(ctx.vector(sizes.vector.min(max_buffer / 4), d));
    out.push(ctx.copy(sizes.copy_bytes.min(max_buffer), d));
    out.push(ctx.matmul(sizes.matmul, d));
    let errors = errors.lock().expect("error sink");
    if !errors.is_empty() {
        out.push(Check::fail(B, d, "wgpu errors", errors.join("; ")));
    }
    report::on(kind, out)
}

struct Ctx {
    device: Device,
    queue: Queue,
}

impl Ctx {
    fn storage(&self, bytes: usize, extra: BufferUsages) -> Buffer {
        self.device.create_buffer(&BufferDescriptor {
            label: None,
            size: bytes as u64,
            usage: BufferUsages::STORAGE | BufferUsages::COPY_DST | BufferUsages::COPY_SRC | extra,
            mapped_at_creation: false,
        })
    }

    fn upload(&self, data: &[f32]) -> Buffer {
        let b = self.storage(data.len() * 4, BufferUsages::empty());
        self.queue.write_buffer(&b, 0, &to_bytes(data));
        b
    }

    fn uniform(&self, words: [u32; 4]) -> Buffer {
        let b = self.device.create_buffer(&BufferDescriptor {
            label: None,
            size: 16,
            usage: BufferUsages::UNIFORM | BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.queue.write_buffer(&b, 0, &bytes);
        b
    }

    fn download(&self, src: &Buffer, bytes: usize) -> Vec<u8> {
        let staging = self.device.create_buffer(&BufferDescriptor {
            label: None,
            size: bytes as u64,
            usage: BufferUsages::MAP_READ | BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes as u64);
        self.queue.submit([enc.finish()]);
        staging.map_async(wgpu::MapMode::Read, .., |_| {});
        self.wait();
        let data = staging
            .get_mapped_range(..)
            .map(|v| v.to_vec())
            .unwrap_or_default();
        staging.unmap();
        data
    }

    fn wait(&self) {
        let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
    }

    fn pipeline(&self, src: &str, entry: &str) -> ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
        self.device
            .create_compute_pipeline(&ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    /// Bind (binding, buffer) pairs (bindings a shader does not use are left out: the
    /// automatic layout drops them) and run one dispatch, timed.
    fn dispatch(
        &self,
        pipeline: &ComputePipeline,
        buffers: &[(u32, &Buffer)],
        groups: (u32, u32),
    ) -> f64 {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<BindGroupEntry> = buffers
            .iter()
            .map(|(i, b)| BindGroupEntry {
                binding: *i,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind = self.device.create_bind_group(&BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let mut enc = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        }
        let t = Instant::now();
        self.queue.submit([enc.finish()]);
        self.wait();
        t.elapsed().as_secs_f64()
    }

    fn vector(&self, n: usize, d: Option<&str>) -> Vec<Check> {
        let groups = (n as u32).div_ceil(256);
        let dims = (groups.min(65_535), groups.div_ceil(65_535).max(1));
        let mut out = Vec::new();

        let y = self.storage(n * 4, BufferUsages::empty());
        let value = 3.25f32;
        let params = self.uniform([n as u32, 0, value.to_bits(), 0]);
        let fill = self.pipeline(WGSL_VECTOR, "fill");
        self.dispatch(&fill, &[(0, &y), (2, &params)], dims);
        let got = from_bytes(&self.download(&y, n * 4));
        let e = got
            .iter()
            .map(|v| f64::from((v - value).abs()))
            .fold(0.0, f64::max);
        out.push(Check::new(B, d, "fill (WGSL)").compared(e, 0.0));

        let x = inputs(n, 1);
        let y0 = inputs(n, 2);
        let a = 2.5f32;
        let t = Instant::now();
        let xb = self.upload(&x);
        let back = from_bytes(&self.download(&xb, n * 4));
        let s = t.elapsed().as_secs_f64();
        let rt = Check::new(B, d, "host<->device round trip").timed(
            s,
            (2 * n * 4) as f64 / s / 1e9,
            "GB/s",
            None,
        );
        let yb = self.upload(&y0);
        let params = self.uniform([n as u32, a.to_bits(), 0, 0]);
        let saxpy = self.pipeline(WGSL_VECTOR, "saxpy");
        let s = self.dispatch(&saxpy, &[(0, &yb), (1, &xb), (2, &params)], dims);
        let got = from_bytes(&self.download(&yb, n * 4));
        let mut want = y0;
        crate::cpu::saxpy(a, &x, &mut want);
        out.push(
            Check::new(B, d, "saxpy (WGSL)")
                .compared(max_abs_err(&got, &want), 1e-6)
                .timed(s, (3 * n * 4) as f64 / s / 1e9, "GB/s", None),
        );
        out.push(if back == x {
            rt
        } else {
            Check::fail(B, d, "host<->device round trip", "data changed on the way")
        });
        out
    }

    fn copy(&self, bytes: usize, d: Option<&str>) -> Check {
        let words = bytes / 4;
        let data = inputs(words, 5);
        let src = self.upload(&data);
        let dst = self.storage(words * 4, BufferUsages::empty());
        self.wait();
        let mut enc = self.device.create_command_encoder(&Default::default());
        enc.copy_buffer_to_buffer(&src, 0, &dst, 0, (words * 4) as u64);
        let t = Instant::now();
        self.queue.submit([enc.finish()]);
        self.wait();
        let s = t.elapsed().as_secs_f64();
        let back = from_bytes(&self.download(&dst, words * 4));
        let check = Check::new(B, d, "device copy").timed(
            s,
            2.0 * (words * 4) as f64 / s / 1e9,
            "GB/s",
            None,
        );
        if back == data {
            check
        } else {
            Check::fail(B, d, "device copy", "copied data differ")
        }
    }

    fn matmul(&self, m: usize, d: Option<&str>) -> Check {
        let a = inputs(m * m, 3);
        let b = inputs(m * m, 4);
        let ab = self.upload(&a);
        let bb = self.upload(&b);
        let cb = self.storage(m * m * 4, BufferUsages::empty());
        let dims = self.uniform([m as u32, 0, 0, 0]);
        let p = self.pipeline(WGSL_MATMUL, "matmul");
        let s = self.dispatch(
            &p,
            &[(0, &ab), (1, &bb), (2, &cb), (3, &dims)],
            ((m / 16) as u32, (m / 16) as u32),
        );
        let c = from_bytes(&self.download(&cb, m * m * 4));
        let e = samples(m)
            .into_iter()
            .map(|(i, j)| (f64::from(c[i * m + j]) - dot_ref(&a, &b, m, i, j)).abs())
            .fold(0.0, f64::max);
        Check::new(B, d, &format!("matmul {m}x{m} (WGSL, tiled)"))
            .compared(e, dot_tolerance(m))
            .timed(s, 2.0 * (m * m * m) as f64 / s / 1e9, "GFLOP/s", None)
    }
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
