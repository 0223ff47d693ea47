"""The instructor's review list: code in a submission that reaches for the grader's machinery (classroom grading).

The guard in the sandbox stops the attacks it knows; a determined student who reads the grader's source may find
others, and those need the same doors: torch's private modules, ``ctypes``, the garbage collector, frames,
profile and trace hooks, the grading and checks modules, the course's files, dynamic imports. This scan reads the
submission's code cells here, in the grader's process – nothing of the student's runs – and flags every line that
mentions one, for a person to read. A flag is not a verdict: honest notebooks rarely have any, and the report says
which rule matched and shows the line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Flag", "RULES", "review"]


@dataclass(frozen=True)
class Flag:
    cell: int  # the cell's index in the notebook
    line: int  # 1-based, in the cell
    rule: str
    text: str  # the line, shortened and with control characters escaped

    def as_json(self) -> dict:
        return {"cell": self.cell, "line": self.line, "rule": self.rule, "text": self.text}


RULES: dict[str, str] = {
    "torch internals": r"torch\s*\.\s*(ops|_C|_ops|library|_decomp|_refs|_prims|overrides|utils\s*\._python_dispatch)"
                       r"|\b_?TorchDispatchMode\b|\bTorchFunctionMode\b|__torch_(dispatch|function)__",
    "ctypes": r"\bctypes\b|\bcffi\b|pythonapi",
    "numpy internals": r"\b_core\b|\bmultiarray\b|numpy\s*\.\s*core\b",
    "profile or trace hooks": r"set(profile|trace)\b|get(profile|trace)\b|_lsprof|cProfile|\bsys\s*\.\s*monitoring"
                              r"|addaudithook|\bsys\s*\.\s*audit\b",
    "garbage collector": r"\bgc\s*\.\s*get_(objects|referrers|referents)|\bimport\s+gc\b|\bfrom\s+gc\b",
    "frames": r"_getframe|currentframe|\bf_back\b|\bf_locals\b|\bf_globals\b|\btb_frame\b|\bgi_frame\b"
              r"|_current_frames|inspect\s*\.\s*stack",
    "code objects": r"__code__|\bco_code\b|CodeType|FunctionType|\.replace\s*\(\s*co_|\bmarshal\b",
    "grader and checks modules": r"stn_course\s*\.\s*grading|stn_course\s*\.\s*checks\s*(\.(?!kernels\s+import\s+"
                                 r"jit_exercise\b\s*(#.*)?$)|import\s+(?!(check|status)"
                                 r"\b\s*(,\s*(check|status)\b\s*)*$))|from\s+stn_course\s+import\s+.*\b(grading|checks)"
                                 r"\b|\bshortcuts\b|\bfind_shortcut\b|\bregistry\b|_ACTIVE",
    "course files": r"solutions/|lessons/|\.ipynb\b|seed\.txt|\bseed_file\b|/proc/|/autograder",
    "dynamic code": r"\bexec\s*\(|\beval\s*\(|__import__|importlib|\bcompile\s*\(|\bglobals\s*\(\s*\)\s*\[",
    "autograd internals": r"\bgrad_fn\b|next_functions|_execution_engine|\b_set_grad_enabled\b|forward_ad",
    "tracing and compiling": r"torch\s*\.\s*(compile|jit|fx|export|_dynamo)|\bmake_fx\b|symbolic_trace|aot_function",
    "threads and processes": r"\b_thread\b|_start_new_thread|_profile_hook|\bsubprocess\b|\bos\s*\.\s*(system|exec|"
                             r"spawn|posix_spawn|fork|kill)|\bimport\s+signal\b|\bsignal\s*\.\s*(signal|setitimer|alarm|SIG)",
}
_COMPILED = {rule: re.compile(pattern) for rule, pattern in RULES.items()}


def _shown(line: str, limit: int = 160) -> str:
    line = line.strip()
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line[:limit])
    return text + ("…" if len(line) > limit else "")


def review(cells: list[tuple[int, str]], limit: int = 100) -> list[Flag]:
    """The flags for a submission's code cells ``(index, source)``, at most ``limit`` of them.

    >>> [f.rule for f in review([(3, "import ctypes\\nx = 1")])]
    ['ctypes']
    >>> review([(0, "y = torch.sin(x)")])
    []
    """
    flags: list[Flag] = []
    for index, source in cells:
        for number, line in enumerate(source.splitlines(), start=1):
            for rule, pattern in _COMPILED.items():
                if pattern.search(line):
                    flags.append(Flag(index, number, rule, _shown(line)))
                    if len(flags) >= limit:
                        return flags
    return flags
