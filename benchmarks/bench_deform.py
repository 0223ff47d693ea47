"""Benchmark: ``stn_course.deform.deform_conv2d(impl="fast")`` vs ``torchvision.ops.deform_conv2d`` on CPU.

Forward and forward+backward (gradients w.r.t. input, offset, weight, bias and mask), measured side by side in the
same run (interleaved repeats, median; ``benchmarks/_common.time_many``) at the sizes of issue 5: 3×3 kernels,
padding 1, with and without the DCNv2 mask. Before timing, each size checks that both give the same output and
gradients; if any size disagrees (beyond float32 reordering, or NaN) the script says where and exits with status 1.

torchvision must match the installed torch release. The course's own environment has a CPU-only torch for which no
matching torchvision wheel exists here, so the benchmark runs in a separate virtual environment (ignored by git):

    python -m venv .venv-bench
    .venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy   # CUDA builds; they run fine on CPU
    .venv-bench/bin/python benchmarks/bench_deform.py            # print the table
    .venv-bench/bin/python benchmarks/bench_deform.py --write    # ... and store it in benchmarks/README.md

(or ``pip install -e ".[bench]"`` in any environment where torchvision matches torch). The script imports
``stn_course`` from this checkout, so the package need not be installed in that environment. Without a working
torchvision it says so and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from _common import machine, markdown_table, time_many, write_section  # noqa: E402
from stn_course.deform import deform_conv2d  # noqa: E402

# (N, C_in, C_out, H = W)
SIZES = [(8, 16, 16, 32), (4, 64, 64, 56), (2, 128, 128, 28)]
TARGET = 3.0


def load_torchvision():
    """Return ``torchvision.ops.deform_conv2d`` if it imports *and* runs on this torch, else exit with a clear note."""
    recipe = ("  python -m venv .venv-bench\n"
              "  .venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy\n"
              "  .venv-bench/bin/python benchmarks/bench_deform.py")
    try:
        import torchvision
        from torchvision.ops import deform_conv2d as tv_deform_conv2d

        x = torch.zeros(1, 1, 3, 3)
        tv_deform_conv2d(x, torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 1, 1))  # loads the compiled kernel
    except Exception as exc:  # ImportError, or a torchvision built for another torch (undefined symbols …)
        print(f"torchvision is missing or does not work with torch {torch.__version__}: "
              f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n"
              f"This benchmark compares against torchvision.ops.deform_conv2d and cannot run without it. "
              f"Install a torchvision that matches torch (the optional 'bench' extra), e.g.:\n{recipe}",
              file=sys.stderr)
        sys.exit(2)
    return tv_deform_conv2d, torchvision.__version__


# Parity tolerances (float32): the two compute the same sums in a different order.
MAX_OUTPUT_DIFF, MAX_REL_GRAD_DIFF = 1e-3, 1e-3


def run(repeats: int, threads: int) -> tuple[list[list[object]], bool, list[str]]:
    tv_deform_conv2d, _ = load_torchvision()
    rows, all_met, broken = [], True, []
    for n, c_in, c_out, size in SIZES:
        for with_mask in (False, True):
            g = torch.Generator().manual_seed(0)
            x = torch.randn(n, c_in, size, size, generator=g)
            offset = torch.randn(n, 18, size, size, generator=g) * 2
            weight = torch.randn(c_out, c_in, 3, 3, generator=g) / (3 * c_in ** 0.5)
            bias = torch.randn(c_out, generator=g)
            mask = torch.rand(n, 9, size, size, generator=g) if with_mask else None
            grad_out = torch.randn(n, c_out, size, size, generator=g)
            leaves = [t.clone().requires_grad_() for t in (x, offset, weight, bias)]
            mask_leaf = mask.clone().requires_grad_() if with_mask else None
            inputs = leaves + ([mask_leaf] if with_mask else [])

            def forward(fn):
                def call():
                    with torch.no_grad():
                        return fn(x, offset, weight, bias, padding=1, mask=mask)
                return call

            def forward_backward(fn):
                def call():
                    out = fn(*leaves, padding=1, mask=mask_leaf)
                    return torch.autograd.grad(out, inputs, grad_out)
                return call

            # same numbers first (outputs and gradients)
            diff = (forward(deform_conv2d)() - forward(tv_deform_conv2d)()).abs().max().item()
            grads_ours, grads_tv = forward_backward(deform_conv2d)(), forward_backward(tv_deform_conv2d)()
            grad_diff = max(((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
                            for a, b in zip(grads_ours, grads_tv))
            if not (diff <= MAX_OUTPUT_DIFF and grad_diff <= MAX_REL_GRAD_DIFF):  # NaN fails too
                broken.append(f"({n}, {c_in}→{c_out}, {size}×{size}) mask={with_mask}: max |Δ| out {diff:.1e} "
                              f"(≤ {MAX_OUTPUT_DIFF:g}), rel. Δ grads {grad_diff:.1e} (≤ {MAX_REL_GRAD_DIFF:g})")
            t = time_many({
                "tv fwd": forward(tv_deform_conv2d), "ours fwd": forward(deform_conv2d),
                "tv fwd+bwd": forward_backward(tv_deform_conv2d), "ours fwd+bwd": forward_backward(deform_conv2d),
            }, repeats=repeats, warmup=1, min_time=0.1)
            fwd_ratio, fb_ratio = t["tv fwd"] / t["ours fwd"], t["tv fwd+bwd"] / t["ours fwd+bwd"]
            all_met &= fb_ratio >= TARGET
            rows.append([threads, f"({n}, {c_in}→{c_out}, {size}×{size})", "yes" if with_mask else "no",
                         f"{t['tv fwd'] * 1e3:.1f}", f"{t['ours fwd'] * 1e3:.1f}", f"**{fwd_ratio:.1f}×**",
                         f"{t['tv fwd+bwd'] * 1e3:.1f}", f"{t['ours fwd+bwd'] * 1e3:.1f}", f"**{fb_ratio:.1f}×**",
                         f"{diff:.1e} / {grad_diff:.1e}"])
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    return rows, all_met, broken


HEADER = ["threads", "size (N, C_in→C_out, H×W)", "mask", "torchvision fwd ms", "ours fwd ms", "fwd speed-up",
          "torchvision fwd+bwd ms", "ours fwd+bwd ms", "fwd+bwd speed-up", "max |Δ| out / rel. Δ grads"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="store the table in benchmarks/README.md")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per timing (median)")
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                        help="torch.set_num_threads for both, one table block per value (default: torch's default)")
    args = parser.parse_args(argv)
    _, tv_version = load_torchvision()
    print(f"machine: {machine()}, torchvision {tv_version}")
    rows, all_met, verdicts, broken = [], True, [], []
    load_before = os.getloadavg()[0]
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"-- {threads} torch thread(s)")
        block, met, block_broken = run(args.repeats, threads)
        rows += block
        broken += block_broken
        all_met &= met
        verdicts.append(f"{threads} thread(s): {'yes' if met else 'NO'}")
    busy = max(load_before, os.getloadavg()[0]) > 0.5 * (os.cpu_count() or 1)
    load = f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after (on {os.cpu_count()} CPUs)"
    table = markdown_table(HEADER, rows)
    verdict = (f"fast path forward+backward ≥ {TARGET:.0f}× faster than torchvision at every size – "
               + ", ".join(verdicts) + f" ({load})")
    print("\n" + table + "\n\n" + verdict)
    if broken:  # a benchmark of two things that no longer compute the same result is not a benchmark
        print("PARITY BROKEN – ours and torchvision disagree:\n  " + "\n  ".join(broken), file=sys.stderr)
        return 1
    if args.write:
        command = "python -m venv .venv-bench && .venv-bench/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy"
        body = "\n".join([
            "## Deformable convolution: `deform_conv2d(impl=\"fast\")` vs `torchvision.ops.deform_conv2d` (CPU)",
            "",
            "3×3 kernel, padding 1, stride 1, offsets ~ 2·N(0, 1) px; forward under `no_grad`, forward+backward = "
            "gradients w.r.t. input, offset, weight, bias (and mask). Median of interleaved repeats; speed-up = "
            "torchvision time / ours. The last column checks that both compute the same thing.",
            "",
            table,
            "",
            verdict + ".",
            "",
            f"Machine: {machine().split(', ', 1)[0]}, torch {torch.__version__}, torchvision {tv_version}; {load}."
            + (" Other processes shared the CPU during this run. A loaded machine hurts the multi-threaded fast path "
               "(its threads wait for each other at every parallel region) far more than torchvision's "
               "single-threaded loops, so the 1-thread rows are the stable comparison."
               if busy else ""),
            "",
            "Reproduce (torchvision must match torch, so it runs in its own venv, ignored by git):",
            "",
            "```",
            command,
            " ".join([".venv-bench/bin/python benchmarks/bench_deform.py", *sys.argv[1:]]),
            "```",
            "",
            "Why it is faster: torchvision's CPU kernel builds its im2col columns and their gradients in scalar "
            "loops (one bilinear interpolation at a time, single-threaded); the fast path samples every tap of every "
            "location with one vectorized `grid_sample` call and multiplies by the weight with one batched GEMM, and "
            "its backward is `grid_sample`'s fused backward plus GEMMs.",
        ])
        write_section("deform", body)
        print("wrote the 'deform' section of benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
