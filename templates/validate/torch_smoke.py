"""Level 3 of `cargo xtask validate`: torch in the project's environment.

Checks that torch sees the expected device, that tensor operations on it match the CPU,
and that a GPT-2 built from a tiny config (no download) trains 10 steps with a falling
loss and generates. Prints one JSON object; exit 0 when it ran (pass or fail is in the
JSON), 3 when torch is not installed.

Each check has the fields of tensor-smoke's checks (group, device, device_kind, name,
status, reason and the metrics), so `validate` reads both reports as one type.
"""

import argparse
import json
import sys
import time

CHECKS = []
# Where the checks run: set once torch has chosen the device.
DEVICE = {"device": None, "device_kind": None}
# torch's device types as tensor-smoke's device kinds (MPS runs on Metal).
KINDS = {"cuda": "cuda", "mps": "metal", "cpu": "cpu"}


def check(name, status, reason=None, kind=None, **metrics):
    entry = {"group": "torch", "name": name, "status": status, **DEVICE}
    if kind:
        entry["device_kind"] = kind
    if reason:
        entry["reason"] = reason
    entry.update({k: v for k, v in metrics.items() if v is not None})
    CHECKS.append(entry)


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--expect", choices=["cuda", "mps", "cpu"], required=True)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"torch is not installed: {e}"}))
        return 3

    info = {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "python": sys.version.split()[0],
    }
    cuda_ok = torch.cuda.is_available()
    # The GPU code the build carries: answered without a GPU (get_arch_list needs one).
    if torch.version.cuda:
        try:
            info["arch_flags"] = torch._C._cuda_getArchFlags()
        except Exception as e:  # an unusual build: said, not fatal
            info["arch_flags_error"] = f"{type(e).__name__}: {e}"
    if cuda_ok:
        info["capabilities"] = ["%d.%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())]
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if args.expect == "cuda":
        if cuda_ok:
            n = torch.cuda.device_count()
            names = [torch.cuda.get_device_name(i) for i in range(n)]
            info["devices"] = names
            check("torch sees CUDA", "pass", f"{n} device(s): {', '.join(names)}", kind="cuda")
        else:
            check("torch sees CUDA", "fail", f"torch.cuda.is_available() is False (torch {torch.__version__}, built for CUDA {torch.version.cuda})", kind="cuda")
    elif args.expect == "mps":
        check("torch sees MPS", "pass" if mps_ok else "fail", None if mps_ok else "torch.backends.mps.is_available() is False", kind="metal")
    else:
        check("torch sees a GPU", "skip", "this host has no GPU backend: torch runs on CPU", kind="cpu")
    device = torch.device(args.expect if (args.expect == "cuda" and cuda_ok) or (args.expect == "mps" and mps_ok) else "cpu")
    info["device"] = str(device)
    DEVICE.update(device=str(device), device_kind=KINDS[device.type])

    # Tensor ops on the device against the CPU.
    torch.manual_seed(0)
    n = 256 if args.quick else 1024
    a = torch.rand(n, n) * 2 - 1
    b = torch.rand(n, n) * 2 - 1
    want = a.double() @ b.double()
    da, db = a.to(device), b.to(device)
    got = (da @ db).cpu().double()
    err = (got - want).abs().max().item()
    tol = 1e-5 + 4e-7 * n if device.type != "cuda" else 1e-2  # TF32 may be on for CUDA matmuls
    check(f"matmul {n}x{n} vs CPU", "pass" if err <= tol else "fail", None if err <= tol else f"max |error| {err:.3e} > {tol:.1e}", max_abs_err=err, tolerance=tol)
    x = torch.randn(64, 1000)
    soft_err = (torch.softmax(x.to(device), dim=-1).cpu() - torch.softmax(x, dim=-1)).abs().max().item()
    check("softmax vs CPU", "pass" if soft_err <= 1e-5 else "fail", None if soft_err <= 1e-5 else f"max |error| {soft_err:.3e}", max_abs_err=soft_err, tolerance=1e-5)

    # Rates PyTorch reaches on this device, to compare with tensor-smoke's.
    g = 4096 if device.type != "cpu" and not args.quick else 512
    ga = torch.randn(g, g, device=device)
    gb = torch.randn(g, g, device=device)
    ga @ gb
    sync(torch, device)
    t = time.perf_counter()
    ga @ gb
    sync(torch, device)
    s = time.perf_counter() - t
    check(f"torch GEMM {g}x{g} fp32", "pass", seconds=s, rate=2 * g**3 / s / 1e9, unit="GFLOP/s")
    words = (256 << 20) // 4 if device.type != "cpu" else (16 << 20) // 4
    src = torch.randn(words, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    sync(torch, device)
    t = time.perf_counter()
    dst.copy_(src)
    sync(torch, device)
    s = time.perf_counter() - t
    check("torch device copy", "pass" if torch.equal(dst, src) else "fail", seconds=s, rate=2 * words * 4 / s / 1e9, unit="GB/s")

    # A tiny GPT-2: train 10 steps, loss must fall, then generate.
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as e:
        check("GPT-2 train 10 steps", "skip", f"transformers is not installed: {e}")
    else:
        torch.manual_seed(0)
        cfg = GPT2Config(n_layer=2, n_head=2, n_embd=64, vocab_size=256, n_positions=64)
        model = GPT2LMHeadModel(cfg).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        batch = torch.randint(0, 256, (4, 32), device=device)
        losses = []
        t = time.perf_counter()
        for _ in range(10):
            out = model(input_ids=batch, labels=batch)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            losses.append(out.loss.item())
        sync(torch, device)
        s = time.perf_counter() - t
        falls = losses[-1] < losses[0]
        check(
            "GPT-2 train 10 steps",
            "pass" if falls else "fail",
            f"loss {losses[0]:.3f} -> {losses[-1]:.3f}" + ("" if falls else ": did not fall"),
            seconds=s,
        )
        t = time.perf_counter()
        gen = model.generate(batch[:1, :8], max_new_tokens=8, do_sample=False, pad_token_id=0)
        s = time.perf_counter() - t
        ok = gen.shape[1] == 16
        check("GPT-2 generate 8 tokens", "pass" if ok else "fail", None if ok else f"generated shape {tuple(gen.shape)}", seconds=s)

    print(json.dumps({"info": info, "checks": CHECKS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
