"""Every Triton kernel the package launches, compiled ahead of time for named GPUs on a machine without one (lesson 7).

:func:`launched_variants` enumerates ``(kernel, signature, constants)`` as the package launches them on CUDA – from
the declarations the launch code itself is checked against (``KERNELS`` and ``launch_constants`` of
:mod:`stn_course.gpu.affine` and :mod:`stn_course.gpu.deform`; :func:`stn_course.gpu.launches.launch`), in every
dtype the kernels take (:data:`~stn_course.gpu.launches.DTYPES`). :func:`lesson_variants` adds lesson 7's solution
kernel, read from the lesson's source. :func:`compile_variant` compiles one for a target – ``triton.compile`` of an
``ASTSource`` for ``GPUTarget("cuda", cc, 32)``, needing no driver and no device – and runs the ptxas bundled in the
triton wheel with ``-v`` on its PTX for the registers, spills and shared memory. :func:`spread` picks the compiles
CI runs: every kernel in every dtype on each target (:data:`TARGETS`: T4, A100, H100) and every variant on at least
one. A compile error, or a spill in a float32/float16/bfloat16 kernel, fails (:meth:`Row.problem`); float64 spills
are reported, not failed (float64 is the checking precision, not the speed one).

Run with ``TRITON_INTERPRET`` unset (the interpreter replaces ``triton.jit``): ``python -m stn_course.gpu.aot
[--all] [--jobs N] [--json PATH]`` – the test (``tests/test_kernels_compile.py``) and
``benchmarks/kernel_report.py`` call it so. Triton caches compiles under ``TRITON_CACHE_DIR``.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import hashlib
import importlib.util
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from . import affine, block_size, deform, interpreter
from .launches import DATA, DTYPES, KernelSpec, argument_names

__all__ = ["TARGETS", "Variant", "Row", "launched_variants", "lesson_variants", "all_variants", "spread",
           "compile_variant", "ptxas_usage", "compile_all", "main", "lesson_kernels"]

#: Compute capability -> the GPU it stands for: T4 (the free Colab GPU), A100, H100.
TARGETS = {75: "T4", 80: "A100", 90: "H100"}
#: Lesson 7's exercise kernels (``@jit_exercise`` in the lesson's source), compiled as the lesson launches them:
#: in float64 and float32, every lower-case argument a pointer to the input's dtype (the lesson's launchers cast θ
#: to it), every other one a 32-bit integer or, annotated ``tl.constexpr``, a constant (:func:`_lesson_constant`).
LESSON7_DTYPES = (torch.float64, torch.float32)
_JIT = ("jit", "jit_exercise")  # the decorators of Triton functions in a lesson: triton.jit and jit_exercise


@dataclass(frozen=True)
class Variant:
    """One compile: ``kernel`` (a ``triton.jit`` function) of ``module`` with Triton's ``signature`` and the
    ``constants``; ``dtypes``: the input dtypes whose launches compile to exactly this (float16 and bfloat16 share
    the float32 kernels that never touch the input)."""

    module: str
    name: str
    kernel: Any = field(repr=False, compare=False)
    signature: tuple[tuple[str, str], ...]
    constants: tuple[tuple[str, Any], ...] = field(compare=False)
    dtypes: tuple[str, ...] = field(compare=False)
    key: str = ""

    @property
    def dtype(self) -> str:
        """The widest input dtype served: ``float32`` for the row of float32/float16/bfloat16."""
        return self.dtypes[0]

    @property
    def half_or_single(self) -> bool:
        """Whether this is a float32/float16/bfloat16 kernel (no spills allowed)."""
        return self.dtype != "float64"


def _describe(value: Any) -> str:
    """A constant as the table shows it: a compiled padding fold by its Python name, else its value."""
    fn = getattr(value, "fn", None)
    return fn.__name__ if fn is not None else repr(value)


def _variant(module: str, spec: KernelSpec, kernel: Any, dtypes: Sequence[torch.dtype],
             constants: dict) -> Variant:
    signature = tuple(spec.signature(kernel, dtypes[0], constants).items())
    shown = ",".join(f"{k}={_describe(v)}" for k, v in constants.items())
    names = tuple(str(d).removeprefix("torch.") for d in dtypes)
    return Variant(module, spec.name, kernel, signature, tuple(constants.items()), names,
                   f"{module}.{spec.name}[{names[0]}]({shown})")


def _merged(module: str, spec: KernelSpec, kernel: Any, dtypes: Iterable[torch.dtype],
            sets: list[dict]) -> list[Variant]:
    """One :class:`Variant` per distinct compile of ``kernel`` over ``dtypes`` × ``sets``."""
    out = []
    for constants in sets:
        by_signature: dict[tuple, list[torch.dtype]] = {}
        for dtype in dtypes:
            by_signature.setdefault(tuple(spec.signature(kernel, dtype, constants).items()), []).append(dtype)
        out += [_variant(module, spec, kernel, served, constants) for served in by_signature.values()]
    return out


def launched_variants() -> list[Variant]:
    """Every distinct ``(kernel, signature, constants)`` the package launches on CUDA, in every dtype it takes."""
    variants = []
    for module in (affine, deform):
        short = module.__name__.rsplit(".", 1)[-1]
        for name, sets in module.launch_constants("cuda").items():
            variants += _merged(short, module.KERNELS[name], getattr(module.kernels(), name), DTYPES, sets)
    return variants


def lesson_source() -> Path | None:
    """Lesson 7's percent-format source (the solution), where the course's sources are present."""
    from .. import course

    source = course.get("07").source
    return source if source is not None and source.exists() else None


def _decorators(node: ast.FunctionDef) -> list[str]:
    names = []
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.append(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


def lesson_kernels(source: Path) -> dict[str, Any]:
    """The exercise kernels (``@jit_exercise``) defined in the lesson ``source``, as ``triton.jit`` functions by
    name. Every Triton function of the lesson (its ``@triton.jit`` helpers too), at whatever indentation (the lesson
    defines them inside ``if gpu.triton_available():``), is copied into a module of its own and imported: Triton
    reads a kernel's source from its file. A solution's body is compiled; a stub's would fail here, as on a GPU."""
    functions, exercises = [], []
    for cell in re.split(r"(?m)^# %%.*\n", source.read_text(encoding="utf-8")):  # the cells: some hold magics
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        lines = cell.splitlines()
        for node in ast.walk(tree):
            decorators = _decorators(node) if isinstance(node, ast.FunctionDef) else []
            if any(name in _JIT for name in decorators):
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                code = "\n".join(lines[first - 1:node.end_lineno])
                functions.append(textwrap.dedent(code).replace("@jit_exercise", "@triton.jit"))
                exercises += [node.name] if "jit_exercise" in decorators else []
    text = (f"# the Triton functions of {source}\nimport triton\nimport triton.language as tl\n\n\n"
            + "\n\n\n".join(functions) + "\n")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]  # one file per version of the lesson, reused
    path = Path(tempfile.gettempdir()) / f"stn-course-lesson07-{digest}" / "lesson07_kernels.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("lesson07_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return {name: getattr(module, name) for name in exercises}


def _lesson_spec(name: str, kernel: Any) -> KernelSpec:
    return KernelSpec(name, {arg: DATA for arg in argument_names(kernel) if arg[0].islower()})


def _lesson_constant(kernel: str, name: str) -> Any:
    """The value lesson 7's launch gives the compile-time argument ``name``: ``BLOCK`` is ``gpu.block_size``'s."""
    if name == "BLOCK":
        return block_size(torch.device("cuda"))
    if name == "ALIGN":  # the backward kernel's convention: align_corners=False, F.affine_grid's default
        return False
    raise LookupError(f"lesson 7's {kernel}: no launch value known for its constexpr {name} (add it in "
                      "stn_course.gpu.aot._lesson_constant)")


def lesson_variants(source: Path | None = None) -> list[Variant]:
    """Lesson 7's exercise kernels (their solutions) as the lesson launches them on CUDA, in float64 and float32."""
    source = source or lesson_source()
    if source is None:
        return []
    variants = []
    for name, kernel in lesson_kernels(source).items():
        constants = {param.name: _lesson_constant(name, param.name) for param in kernel.params if param.is_constexpr}
        variants += _merged("lesson07", _lesson_spec(name, kernel), kernel, LESSON7_DTYPES, [constants])
    return variants


def all_variants() -> list[Variant]:
    """The package's launches and lesson 7's solution kernel."""
    return launched_variants() + lesson_variants()


def spread(variants: Sequence[Variant], targets: Sequence[int] = tuple(TARGETS)) -> list[tuple[int, int]]:
    """The compiles CI runs, as ``(variant index, capability)``: each kernel in each dtype on every target, and
    every variant on at least one – a kernel's variants dealt round the targets (starting one further for each
    kernel, to balance them), and where a kernel has fewer variants than targets, some compiled on several."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, v in enumerate(variants):
        groups.setdefault((v.module, v.name, v.dtype), []).append(i)
    plan = []
    for g, members in enumerate(groups.values()):
        for j in range(max(len(members), len(targets))):
            plan.append((members[j % len(members)], targets[(g + j) % len(targets)]))
    return plan


@dataclass
class Row:
    """One compile's result: registers, spill bytes (stores + loads), shared memory and stack, or the error."""

    key: str
    module: str
    kernel: str
    dtypes: tuple[str, ...]
    constants: str
    cc: int
    registers: int = -1
    spill_stores: int = -1
    spill_loads: int = -1
    shared: int = -1
    stack: int = -1
    seconds: float = 0.0
    error: str = ""

    def problem(self, half_or_single: bool) -> str:
        """What fails the check: the compile error, or a spill in a float32/half kernel; else ``""``."""
        if self.error:
            return f"{self.key} sm_{self.cc}: does not compile: {self.error}"
        if half_or_single and self.spill_stores + self.spill_loads > 0:
            return (f"{self.key} sm_{self.cc}: spills registers ({self.spill_stores} bytes stored, "
                    f"{self.spill_loads} loaded; {self.registers} registers)")
        return ""


_USAGE = {
    "registers": re.compile(r"Used (\d+) registers"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "smem": re.compile(r"(\d+) bytes smem"),
}


def ptxas_usage(ptx: str, cc: int, max_registers: int | None = None) -> dict[str, int]:
    """``ptxas -v`` (the one in the triton wheel, for the arch Triton compiled for) on ``ptx``: registers, spill
    stores and loads, stack frame and static shared memory in bytes (0 where ptxas prints none).
    ``max_registers``: a ``.maxnreg`` directive put on the kernel (a test forces a spill with it; Triton's
    ``.reqntid`` makes ptxas ignore ``--maxrregcount``)."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kernel.ptx"
        if max_registers:
            ptx = re.sub(r"(?m)^\{", f".maxnreg {max_registers}\n{{", ptx, count=1)  # before the entry's body
        path.write_text(ptx, encoding="utf-8")
        command = [get_ptxas(cc).path, "-v", f"--gpu-name={sm_arch_from_capability(cc)}", str(path),
                   "-o", os.devnull]
        log = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    found = {name: pattern.search(log) for name, pattern in _USAGE.items()}
    if found["registers"] is None:
        raise RuntimeError(f"ptxas -v printed no register count:\n{log}")
    return {name: int(match.group(1)) if match else 0 for name, match in found.items()}


def compile_variant(variant: Variant, cc: int) -> Row:
    """Compile ``variant`` for compute capability ``cc`` and measure it (:func:`ptxas_usage`); a compile error is
    caught into :attr:`Row.error`."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    row = Row(variant.key, variant.module, variant.name, variant.dtypes,
              ", ".join(f"{k}={_describe(v)}" for k, v in variant.constants), cc)
    start = time.perf_counter()
    try:
        source = ASTSource(fn=variant.kernel, signature=dict(variant.signature), constexprs=dict(variant.constants))
        compiled = triton.compile(source, target=GPUTarget("cuda", cc, 32))
        usage = ptxas_usage(compiled.asm["ptx"], cc)
    except Exception as error:  # noqa: BLE001 – every failure is a row that says what it was
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        row.error = f"{type(error).__name__}: {lines[-1] if lines else ''}"  # (Triton's message ends its text)
    else:
        row.registers, row.stack = usage["registers"], usage["stack"]
        row.spill_stores, row.spill_loads = usage["spill_stores"], usage["spill_loads"]
        row.shared = max(int(compiled.metadata.shared), usage["smem"])
    row.seconds = round(time.perf_counter() - start, 2)
    return row


_VARIANTS: list[Variant] = []  # the worker processes' copy (forked)


def _compile_job(job: tuple[int, int]) -> Row:
    return compile_variant(_VARIANTS[job[0]], job[1])


def compile_all(variants: Sequence[Variant], plan: Sequence[tuple[int, int]], jobs: int = 2) -> list[Row]:
    """Run ``plan`` (:func:`spread`'s pairs) over ``jobs`` forked processes; rows in the plan's order."""
    _VARIANTS[:] = variants
    if jobs <= 1:
        return [_compile_job(job) for job in plan]
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return list(pool.map(_compile_job, plan))


def main(argv: Sequence[str] | None = None) -> int:
    """Compile (CI's spread, or ``--all``), print one line per compile and the problems; exit 1 on any."""
    parser = argparse.ArgumentParser(prog="python -m stn_course.gpu.aot", description=__doc__.split("\n")[0])
    parser.add_argument("--all", action="store_true", help="every variant on every target (default: the spread)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles in parallel")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    if interpreter():
        parser.error("TRITON_INTERPRET is set: the interpreter replaces triton.jit; unset it to compile")
    variants = all_variants()
    plan = [(i, cc) for i in range(len(variants)) for cc in TARGETS] if args.all else spread(variants)
    start, cpu = time.perf_counter(), time.process_time()
    rows = compile_all(variants, plan, args.jobs)
    children = os.times()
    for row in rows:
        print(f"sm_{row.cc} {row.key}: " + (row.error or f"{row.registers} registers, {row.spill_stores}+"
                                              f"{row.spill_loads} spill bytes, {row.shared} B shared, {row.seconds} s"))
    problems = [p for (i, _), row in zip(plan, rows) if (p := row.problem(variants[i].half_or_single))]
    print(f"{len(rows)} compiles of {len(variants)} variants in {time.perf_counter() - start:.0f} s wall, "
          f"{time.process_time() - cpu + children.children_user + children.children_system:.0f} s CPU")
    if args.json:
        args.json.write_text(json.dumps([{**asdict(row), "half_or_single": variants[i].half_or_single}
                                         for (i, _), row in zip(plan, rows)], indent=1), encoding="utf-8")
    for problem in problems:
        print("PROBLEM:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
