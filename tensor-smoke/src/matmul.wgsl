// Tiled matmul of tensor-smoke's wgpu backend: c = a x b, row-major n x n, n a multiple
// of 16, 16 x 16 tiles in workgroup memory. Dispatch (n / 16, n / 16, 1).

struct Dims {
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> tile_a: array<f32, 256>;
var<workgroup> tile_b: array<f32, 256>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let n = dims.n;
    let row = wid.y * 16u + lid.y;
    let col = wid.x * 16u + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < n; k0 += 16u) {
        tile_a[lid.y * 16u + lid.x] = a[row * n + k0 + lid.x];
        tile_b[lid.y * 16u + lid.x] = b[(k0 + lid.y) * n + col];
        workgroupBarrier();
        for (var k = 0u; k < 16u; k++) {
            acc = fma(tile_a[lid.y * 16u + k], tile_b[k * 16u + lid.x], acc);
        }
        workgroupBarrier();
    }
    c[row * n + col] = acc;
}
