"""The GPU path (lesson 7), measured: the fused Triton affine sampler against ``F.affine_grid`` + ``F.grid_sample``
and against ``torch.compile`` of the same two calls; the deformable path against torchvision's kernel and against
the floor, a plain ``F.conv2d`` of the same shape; the bytes each pass moves (``stn_course.gpu.traffic``) and the
bandwidth it achieves as a fraction of the device's measured copy bandwidth.

    python benchmarks/bench_gpu.py            # print the tables
    python benchmarks/bench_gpu.py --write    # ... and store them in benchmarks/README.md (section "gpu")
    python benchmarks/bench_gpu.py --smoke    # tiny sizes, every code path once (the kernels through Triton's
                                              # interpreter on a CPU): what tests/test_benchmarks.py runs

On a machine with CUDA everything runs there, at the sizes of issue 14: C ∈ {1, 3, 64} up to (256, 3, 224, 224)
and (1024, 1, 60, 60). Without CUDA it says so: the fused kernels are not timed (Triton's interpreter runs them
through NumPy, one program after another – a correctness tool, not a speed), and the CPU tables (the ATen sampler's
achieved bandwidth, the deformable fast path as a multiple of ``F.conv2d``) are measured at an eighth of the batch.
Before timing, every fused result is compared with torch's; a mismatch stops the run with status 1.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

if not torch.cuda.is_available():  # before anything imports triton: the kernels then run on CPU tensors
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch.nn.functional as F  # noqa: E402

from _common import machine, markdown_table, write_section  # noqa: E402
from stn_course import gpu  # noqa: E402
from stn_course.deform import deform_conv2d  # noqa: E402
from stn_course.gpu.affine import affine_sample  # noqa: E402
from stn_course.gpu.measure import copy_bandwidth, time_many  # noqa: E402
from stn_course.gpu.traffic import sampler_traffic  # noqa: E402

AFFINE_SIZES = [(1024, 1, 60, 60), (256, 1, 224, 224), (256, 3, 224, 224), (32, 64, 56, 56)]  # (N, C, H, W), out = in
DEFORM_SIZES = [(8, 16, 16, 32), (4, 64, 64, 56), (2, 128, 128, 28)]  # (N, C_in, C_out, H = W), 3×3, padding 1
SMOKE_AFFINE, SMOKE_DEFORM = [(2, 1, 12, 10), (2, 3, 9, 9)], [(1, 4, 4, 8)]
TARGET_SPEEDUP = 1.3  # issue 14: fused forward+backward vs F.affine_grid + F.grid_sample, C <= 3


def _theta(n: int, device, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.eye(2, 3) + 0.2 * torch.randn(n, 2, 3, generator=g)).to(device, dtype)


def aten_sample(x, theta):
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def fused_sample(x, theta):
    return affine_sample(x, theta, None, "zeros", False)


def _step(fn, x, theta, grad):
    def run():
        xx, tt = x.detach().requires_grad_(), theta.detach().requires_grad_()
        torch.autograd.backward(fn(xx, tt), grad)
    return run


def check_parity(x, theta) -> float:
    """Largest relative difference between the fused kernel and torch, forward and gradients, in float64: in float32
    a sampling point within rounding of a pixel centre takes the left slope in one kernel and the right slope in the
    other (both valid; lesson 7), which moves θ's gradient at large sizes by more than any tolerance for bugs."""
    x, theta = x.double(), theta.double()
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(x.device)
    results = []
    for fn in (fused_sample, aten_sample):
        xx, tt = x.detach().requires_grad_(), theta.detach().requires_grad_()
        out = fn(xx, tt)
        results.append([out, *torch.autograd.grad(out, (xx, tt), g)])
    worst = 0.0
    for got, want in zip(*results):
        worst = max(worst, ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item())
    return worst


def affine_rows(device, sizes, repeats, compile_too, bandwidth, time_fused):
    rows, failures, met = [], [], []
    for n, c, h, w in sizes:
        x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0)).to(device)
        theta = _theta(n, device)
        grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).to(device)
        fns_fwd, fns_step = {"aten": lambda: aten_sample(x, theta)}, {"aten": _step(aten_sample, x, theta, grad)}
        if device.type == "cuda" or gpu.interpreter():
            error = check_parity(x, theta)
            if not error < 1e-8:
                failures.append(f"fused vs aten at {(n, c, h, w)}: relative error {error:.1e}")
                continue
        if time_fused:
            fns_fwd["fused"], fns_step["fused"] = (lambda: fused_sample(x, theta)), _step(fused_sample, x, theta, grad)
        if compile_too:
            compiled = torch.compile(aten_sample, dynamic=False)  # one compilation per size (static shapes)
            fns_fwd["compile"], fns_step["compile"] = (lambda: compiled(x, theta)), _step(compiled, x, theta, grad)
        with torch.no_grad():
            fwd = time_many(fns_fwd, repeats=repeats, device=device)
        step = time_many(fns_step, repeats=repeats, device=device)
        bytes_ = {fused: sampler_traffic((n, c, h, w), (h, w), 4, fused).total for fused in (False, True)}
        bytes_step = {fused: bytes_[fused] + sampler_traffic((n, c, h, w), (h, w), 4, fused, backward=True).total
                      for fused in (False, True)}
        row = [f"({n}, {c}, {h}, {w})", f"{bytes_[False] / bytes_[True]:.2f}×"]
        for name in ("aten", "compile", "fused"):
            if name not in fwd:
                row += ["–"] * 3
                continue
            traffic = bytes_step[name == "fused"]
            row += [f"{1e3 * fwd[name]:.2f}", f"{1e3 * step[name]:.2f}",
                    f"{traffic / step[name] / 1e9:.0f} ({traffic / step[name] / bandwidth:.0%})"]
        if "fused" in step:
            speedup = step["aten"] / step["fused"]
            row.append(f"**{speedup:.2f}×**")
            if c <= 3:
                met.append(speedup >= TARGET_SPEEDUP and ("compile" not in step or step["fused"] <= step["compile"]))
        else:
            row.append("–")
        rows.append(row)
    return rows, failures, met


def deform_rows(device, sizes, repeats, time_fused):
    try:
        from torchvision.ops import deform_conv2d as tv_deform_conv2d

        tv_deform_conv2d(torch.zeros(1, 1, 3, 3, device=device), torch.zeros(1, 2, 3, 3, device=device),
                         torch.zeros(1, 1, 1, 1, device=device))
    except Exception:  # not installed, or built for another torch
        tv_deform_conv2d = None
    impls = ["fast"] + (["triton"] if time_fused else [])
    rows = []
    for n, c_in, c_out, size in sizes:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, c_in, size, size, generator=g).to(device)
        offset = (2 * torch.randn(n, 18, size, size, generator=g)).to(device)
        weight = (torch.randn(c_out, c_in, 3, 3, generator=g) / (3 * c_in ** 0.5)).to(device)
        grad = torch.randn(n, c_out, size, size, generator=g).to(device)

        def step(fn):
            def run():
                leaves = [t.detach().requires_grad_() for t in (x, offset, weight)]
                torch.autograd.backward(fn(*leaves), grad)
            return run

        fns = {"conv2d": step(lambda a, o, w: F.conv2d(a, w, padding=1) + 0 * o.sum())}
        for impl in impls:
            fns[impl] = step(lambda a, o, w, impl=impl: deform_conv2d(a, o, w, padding=1, impl=impl))
        if tv_deform_conv2d is not None:
            fns["torchvision"] = step(lambda a, o, w: tv_deform_conv2d(a, o, w, padding=(1, 1)))
        t = time_many(fns, repeats=repeats, device=device)
        row = [f"({n}, {c_in}→{c_out}, {size}×{size})", f"{1e3 * t['conv2d']:.2f}"]
        for impl in ("fast", "triton", "torchvision"):
            row += [f"{1e3 * t[impl]:.2f} ({t[impl] / t['conv2d']:.1f}×)" if impl in t else "–"]
        rows.append(row)
    return rows, tv_deform_conv2d is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="store the tables in benchmarks/README.md")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: every code path once")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else "the CPU (no CUDA device: the fused kernels are not timed)"
    print(f"device: {name}")
    if not cuda:
        print("No CUDA: the fused Triton kernels are checked through the interpreter but not timed (it is not a speed);"
              " the CPU tables follow, at an eighth of the batch.")
    repeats = 1 if args.smoke else args.repeats
    if args.smoke:
        affine_sizes, deform_sizes = SMOKE_AFFINE, SMOKE_DEFORM
    elif cuda:
        affine_sizes, deform_sizes = AFFINE_SIZES, DEFORM_SIZES
    else:
        affine_sizes = [(max(1, n // 8), c, h, w) for n, c, h, w in AFFINE_SIZES]
        deform_sizes = DEFORM_SIZES
    bandwidth = copy_bandwidth(device, megabytes=8 if args.smoke else 256)
    print(f"copy bandwidth: {bandwidth / 1e9:.0f} GB/s")

    traffic_rows = []
    for n, c, h, w in AFFINE_SIZES:
        unfused, fused = (sampler_traffic((n, c, h, w), (h, w), 4, f) for f in (False, True))
        unfused_b, fused_b = (sampler_traffic((n, c, h, w), (h, w), 4, f, backward=True) for f in (False, True))
        traffic_rows.append([f"({n}, {c}, {h}, {w})", f"{unfused.total / 1e6:.0f}", f"{unfused.grid / unfused.total:.0%}",
                             f"{fused.total / 1e6:.0f}", f"{unfused.total / fused.total:.2f}×",
                             f"{unfused_b.total / 1e6:.0f}", f"{fused_b.total / 1e6:.0f}",
                             f"{unfused_b.total / fused_b.total:.2f}×"])
    traffic = markdown_table(["input = output (N, C, H, W)", "unfused fwd MB", "of it the grid", "fused fwd MB",
                              "fwd bytes saved", "unfused bwd MB", "fused bwd MB", "bwd bytes saved"], traffic_rows)
    print("\nBytes moved (float32, stn_course.gpu.traffic):\n" + traffic)

    # the fused kernels are timed on CUDA; --smoke runs them (through the interpreter on a CPU) to test the code path
    time_fused = cuda or args.smoke
    rows, failures, met = affine_rows(device, affine_sizes, repeats, (cuda or args.smoke) and not args.no_compile,
                                      bandwidth, time_fused)
    if failures:
        print("PARITY BROKEN: " + "; ".join(failures), file=sys.stderr)
        return 1
    affine = markdown_table(["(N, C, H, W)", "bytes saved", "aten fwd ms", "aten fwd+bwd ms", "aten GB/s (of copy)",
                             "compile fwd ms", "compile fwd+bwd ms", "compile GB/s", "fused fwd ms",
                             "fused fwd+bwd ms", "fused GB/s", "fwd+bwd speed-up vs aten"], rows)
    print(f"\nAffine sampling on {device.type}, float32, output = input size:\n" + affine)

    drows, has_tv = deform_rows(device, deform_sizes, repeats, time_fused)
    deform = markdown_table(["(N, C_in→C_out, H×W)", "conv2d fwd+bwd ms", "fast fwd+bwd ms (× conv2d)",
                             "triton fwd+bwd ms (× conv2d)", "torchvision fwd+bwd ms (× conv2d)"], drows)
    print(f"\nDeformable convolution 3×3 on {device.type}, forward+backward:\n" + deform)
    verdict = (f"Fused forward+backward ≥ {TARGET_SPEEDUP}× faster than aten (and not slower than torch.compile) for "
               f"every C ≤ 3 size: {'yes' if met and all(met) else 'no'}." if cuda else
               "Fused kernels not timed: no CUDA device on this machine.")
    print("\n" + verdict)
    if args.write and not args.smoke:
        date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        body = (f"## The GPU path (lesson 7): `benchmarks/bench_gpu.py` – {name}\n\n"
                f"Measured {date} on {name}; {machine()}. Copy bandwidth (a large `copy_`, read + write): "
                f"{bandwidth / 1e9:.0f} GB/s. Median of interleaved repeats, synchronised.\n\n"
                "Bytes each pass moves, by the model of `stn_course.gpu.traffic` (every tensor once; the grid is "
                "what fusing removes):\n\n" + traffic + "\n\n"
                f"Affine sampling on {device.type}"
                + ("" if cuda else ", at an eighth of the batch of the sizes above") +
                " (float32, zeros padding, output = input size; fwd+bwd = "
                "gradients w.r.t. input and θ; GB/s = modelled bytes of fwd+bwd / time, in brackets the fraction "
                "of the copy bandwidth):\n\n" + affine + "\n\n"
                f"Deformable convolution (3×3, padding 1, offsets ~ 2·N(0, 1)) on {device.type}, forward+backward, "
                "and in brackets as a multiple of `F.conv2d` of the same shape (the floor)"
                + ("" if has_tv else "; torchvision not installed in this run") + ":\n\n" + deform + "\n\n"
                + verdict + f"\n\nReproduce: `python benchmarks/bench_gpu.py --write --repeats {args.repeats}`")
        write_section("gpu", body)
        print("written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
