"""Sampler and grid benchmark (lessons 2–4): the package's three implementations against each other, side by side.

    python benchmarks/bench_sampler.py            # print the tables (about a minute)
    python benchmarks/bench_sampler.py --write    # also store them in benchmarks/README.md
    python benchmarks/bench_sampler.py --threads 1   # steadier when other processes share the CPU

Per input size (N, C, H, W), an affine grid of the same output size (float32, CPU), gradients w.r.t. input and
theta. The implementations, in the package's one ``impl`` vocabulary:

* ``aten`` – ``F.affine_grid`` + ``F.grid_sample`` (torch's kernels, forward and backward);
* ``reference`` – ``grids.affine_grid`` + ``sampling.bilinear_sample``, the readable code of lessons 2–3,
  differentiated by autograd;
* ``fast`` – ``autograd.affine_grid_analytic`` + ``autograd.bilinear_sample_analytic``: the package's optimised
  forward with the hand-derived backward of lesson 4.

Tables: forward time; forward+backward time (a training step's sampler cost – *different forwards*, so the fast
path's margin is partly its forward); and the **backward alone, like with like**: after one reference forward,
autograd's backward of that graph against the hand-derived (readable) backward of lesson 4
(``autograd.bilinear_sample_backward`` + ``affine_grid_backward``) computing the same gradients from the same
forward's inputs; plus the fast path's own backward (after its own forward) for comparison.
Also ``impl="aten"`` overhead: ``SpatialTransformer(impl="aten")`` vs the same localisation + head + F calls
written by hand (target <= 1.10).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, time_many, write_section  # noqa: E402

from stn_course.autograd import (affine_grid_analytic, affine_grid_backward, bilinear_sample_analytic,  # noqa: E402
                                 bilinear_sample_backward)
from stn_course.grids import affine_grid  # noqa: E402
from stn_course.sampling import bilinear_sample  # noqa: E402
from stn_course.stn import SpatialTransformer  # noqa: E402

SIZES = [(64, 1, 28, 28), (16, 3, 224, 224), (8, 64, 56, 56)]


def _inputs(size):
    g = torch.Generator().manual_seed(0)
    n = size[0]
    x = torch.randn(*size, generator=g)
    theta = torch.eye(2, 3) + 0.2 * torch.randn(n, 2, 3, generator=g)
    return x, theta


def bench_size(size, repeats: int) -> dict[str, float]:
    x, theta = _inputs(size)
    xg, tg = x.clone().requires_grad_(), theta.clone().requires_grad_()
    go = torch.randn(size)

    forward = {
        "aten": lambda x, t: F.grid_sample(x, F.affine_grid(t, size, align_corners=False), align_corners=False),
        "reference": lambda x, t: bilinear_sample(x, affine_grid(t, size, False), "zeros", False),
        "fast": lambda x, t: bilinear_sample_analytic(x, affine_grid_analytic(t, size, False), "zeros", False),
    }

    def fwd_bwd(impl):
        return lambda: torch.autograd.grad(forward[impl](xg, tg), (xg, tg), go)

    # backward alone: each graph is built once and its backward run again and again (retain_graph)
    reference_out = forward["reference"](xg, tg)
    fast_out = forward["fast"](xg, tg)

    def autograd_bwd():  # autograd's backward through the reference forward
        return torch.autograd.grad(reference_out, (xg, tg), go, retain_graph=True)

    def readable_bwd():  # lesson 4's hand-derived backward, from the same forward's inputs
        grid = affine_grid(theta, size, False)
        grad_x, grad_grid = bilinear_sample_backward(go, x, grid, "zeros", False)
        return grad_x, affine_grid_backward(grad_grid, size, False)

    def fast_bwd():  # the fast path's backward, after its own forward
        return torch.autograd.grad(fast_out, (xg, tg), go, retain_graph=True)

    with torch.no_grad():
        fwd = time_many({impl: (lambda impl=impl: forward[impl](x, theta)) for impl in forward}, repeats=repeats)
    both = time_many({impl: fwd_bwd(impl) for impl in forward}, repeats=repeats)
    bwd = time_many({"autograd": autograd_bwd, "readable": readable_bwd, "fast": fast_bwd}, repeats=repeats)
    return {**{f"fwd_{k}": v for k, v in fwd.items()}, **{f"both_{k}": v for k, v in both.items()},
            **{f"bwd_{k}": v for k, v in bwd.items()}}


def bench_aten_overhead(repeats: int) -> tuple[float, float]:
    """SpatialTransformer(impl="aten") vs the same computation written with F calls directly, forward only."""
    torch.manual_seed(0)
    loc = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), nn.ReLU())
    stn = SpatialTransformer(loc, "affine", impl="aten").eval()
    x = torch.randn(64, 1, 28, 28)
    head = stn.head

    def direct():
        theta = head(loc(x)).view(-1, 2, 3)
        return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)

    def module():
        return stn(x)

    with torch.no_grad():
        t = time_many({"direct": direct, "module": module}, repeats=repeats, min_time=0.1)
    return t["direct"], t["module"]


# glibc's allocator returns big freed blocks to the system, so the next tensor of that size starts on fresh pages
# and pays a page fault per 4 KiB on first touch. These settings keep freed memory for reuse instead (what a caching
# allocator such as jemalloc does), to show how much of a speed-up is page faults.
KEEP_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": "2000000000", "MALLOC_TRIM_THRESHOLD_": "4000000000",
                     "MALLOC_TOP_PAD_": "500000000"}


def speedups_without_page_faults(repeats: int, threads: int | None) -> dict[str, list[float]]:
    """Run the speed-up measurements again in a child process with :data:`KEEP_FREED_MEMORY`."""
    command = [sys.executable, __file__, "--speedups-json", "--repeats", str(repeats)]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, env={**os.environ, **KEEP_FREED_MEMORY}, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store the table in benchmarks/README.md")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's choice); 1 is steadier on a shared machine")
    parser.add_argument("--speedups-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speedups_json:  # child of speedups_without_page_faults
        measured = [bench_size(size, args.repeats) for size in SIZES]
        print(json.dumps({"fwd_bwd": [r["both_reference"] / r["both_fast"] for r in measured],
                          "bwd_like_for_like": [r["bwd_autograd"] / r["bwd_readable"] for r in measured]}))
        return
    command = "python benchmarks/bench_sampler.py --write" + (f" --threads {args.threads}" if args.threads else "")

    results = {}
    for size in SIZES:
        results[size] = bench_size(size, args.repeats)
        print(f"done {size}", file=sys.stderr)
    name = lambda size: "×".join(map(str, size))  # noqa: E731
    ms = lambda seconds: f"{seconds * 1e3:.2f}"  # noqa: E731
    forward_table = markdown_table(
        ["size (N×C×H×W)", "aten ms", "reference ms", "fast ms", "reference / aten", "fast / aten"],
        [[name(s), ms(r["fwd_aten"]), ms(r["fwd_reference"]), ms(r["fwd_fast"]),
          f"{r['fwd_reference'] / r['fwd_aten']:.1f}×", f"{r['fwd_fast'] / r['fwd_aten']:.1f}×"]
         for s, r in results.items()])
    step_table = markdown_table(
        ["size (N×C×H×W)", "aten ms", "reference + autograd ms", "fast (hand-derived backward) ms",
         "fast / aten", "reference+autograd / fast"],
        [[name(s), ms(r["both_aten"]), ms(r["both_reference"]), ms(r["both_fast"]),
          f"{r['both_fast'] / r['both_aten']:.1f}×", f"**{r['both_reference'] / r['both_fast']:.1f}×**"]
         for s, r in results.items()])
    backward_table = markdown_table(
        ["size (N×C×H×W)", "autograd through the reference forward ms", "hand-derived readable backward ms",
         "autograd / hand-derived (same forward)", "fast path's backward ms", "autograd / fast backward"],
        [[name(s), ms(r["bwd_autograd"]), ms(r["bwd_readable"]), f"**{r['bwd_autograd'] / r['bwd_readable']:.1f}×**",
          ms(r["bwd_fast"]), f"{r['bwd_autograd'] / r['bwd_fast']:.1f}×"] for s, r in results.items()])
    print("measuring again with freed memory kept (no page faults)", file=sys.stderr)
    kept = speedups_without_page_faults(args.repeats, args.threads)
    kept_table = markdown_table(
        ["size (N×C×H×W)", "reference+autograd / fast, glibc default", "… freed memory kept",
         "autograd / hand-derived backward, glibc default", "… freed memory kept"],
        [[name(s), f"{results[s]['both_reference'] / results[s]['both_fast']:.1f}×", f"{kept['fwd_bwd'][i]:.1f}×",
          f"{results[s]['bwd_autograd'] / results[s]['bwd_readable']:.1f}×", f"{kept['bwd_like_for_like'][i]:.1f}×"]
         for i, s in enumerate(SIZES)])
    direct, module = bench_aten_overhead(args.repeats)
    overhead = (f'`SpatialTransformer(impl="aten")` forward, 64×1×28×28 affine: {module * 1e3:.3f} ms vs '
                f"{direct * 1e3:.3f} ms for the same localisation + head + `F.affine_grid`/`F.grid_sample` by hand "
                f"(ratio {module / direct:.2f}, target ≤ 1.10).")
    mark = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    step_speedups = [r["both_reference"] / r["both_fast"] for r in results.values()]
    like_for_like = [r["bwd_autograd"] / r["bwd_readable"] for r in results.values()]
    fwd56 = results[(8, 64, 56, 56)]["fwd_reference"] / results[(8, 64, 56, 56)]["fwd_aten"]
    fwd224 = results[(16, 3, 224, 224)]["fwd_reference"] / results[(16, 3, 224, 224)]["fwd_aten"]
    verdict = (f"In this run: the fast path's forward+backward is {min(step_speedups):.1f}–{max(step_speedups):.1f}× "
               f"faster than autograd through the reference (target ≥ 2 – {mark(min(step_speedups) >= 2)}); "
               f"with the same forward, the hand-derived backward alone is {min(like_for_like):.1f}–"
               f"{max(like_for_like):.1f}× the speed of autograd's; reference forward ≤ 10× aten at 8×64×56×56 – "
               f"{mark(fwd56 <= 10)} ({fwd56:.1f}×), ≤ 30× at 16×3×224×224 – {mark(fwd224 <= 30)} ({fwd224:.1f}×); "
               f"`impl=\"aten\"` overhead ≤ 1.10 – {mark(module / direct <= 1.10)} ({module / direct:.2f}).")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    body = "\n".join([
        "## Sampler and grid (lessons 2–4): `benchmarks/bench_sampler.py`",
        "",
        f"Command: `{command}` (float32, affine grid, `padding_mode=\"zeros\"`, `align_corners=False`; median of "
        "interleaved repeats, all columns measured in the same run). `aten` = `F.affine_grid` + `F.grid_sample`; "
        "`reference` = the readable `grids.affine_grid` + `sampling.bilinear_sample` differentiated by autograd; "
        "`fast` = the package's optimised forward with the hand-derived backward (`stn_course.autograd`).",
        f"Machine: {machine()}; load average {load:.1f} at the end of the run (on a shared machine the "
        "absolute times and, less so, the ratios move with the load).",
        "",
        "Forward:",
        "",
        forward_table,
        "",
        "Forward + backward (gradients w.r.t. input and theta) – what a training step pays. The reference and fast "
        "columns run *different forwards*, so this ratio is not the backward's alone:",
        "",
        step_table,
        "",
        "Backward alone. Like with like: one reference forward, then autograd's backward of its graph against "
        "lesson 4's hand-derived backward (`bilinear_sample_backward` + `affine_grid_backward`, readable) computing "
        "the same gradients from the same forward's inputs. The last columns time the fast path's backward after "
        "its own forward:",
        "",
        backward_table,
        "",
        overhead,
        "",
        verdict,
        "",
        "How much of the margins is memory management: the same ratios measured again in a child process whose "
        "glibc allocator keeps freed memory for reuse (`" + " ".join(f"{k}={v}" for k, v in
                                                              KEEP_FREED_MEMORY.items()) + "`), so that no "
        "operation starts on fresh pages. With the defaults, every large temporary that glibc hands back to the "
        "system costs a page fault per 4 KiB when the next one is touched; autograd through the reference keeps "
        "many more and larger temporaries than the hand-derived backward, which saves only what eq. 6–7 need.",
        "",
        kept_table,
    ])
    print(body)
    if args.write:
        write_section("bench_sampler", body)
        print("\nwrote benchmarks/README.md", file=sys.stderr)


if __name__ == "__main__":
    main()
