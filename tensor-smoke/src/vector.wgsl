// Vector kernels of tensor-smoke's wgpu backend (Metal on macOS, Vulkan elsewhere).

struct Params {
    n: u32,
    a: f32,
    value: f32,
    pad: u32,
}

@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

fn index(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.x + gid.y * groups.x * 256u;
}

// y[i] = value
@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i < params.n) {
        y[i] = params.value;
    }
}

// y[i] = a * x[i] + y[i]
@compute @workgroup_size(256)
fn saxpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = index(gid, groups);
    if (i < params.n) {
        y[i] = fma(params.a, x[i], y[i]);
    }
}
