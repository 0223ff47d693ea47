"""The grader: the registry's checks, run against a submission's functions in a sandboxed child (classroom grading).

The grader owns the truth. For each exercise of the submission's lesson it generates the cases from the
instructor's seed, sends the child only the inputs, receives plain data back (:mod:`~stn_course.grading.codec`)
and compares it here with references computed here – the very :func:`~stn_course.checks.registry.run_check` that
``check()`` runs in a notebook, given an :class:`~stn_course.checks.registry.Attempt` that reaches across the
process boundary. On top of the visible cases every exercise has hidden ones (``Check.hidden_cases``) whose inputs
and results never appear in student feedback; all visible cases of a submission run before any hidden one, so no
hidden input can come back inside a visible case's error message.

Scoring: an exercise earns ``points × passed cases / cases`` (visible and hidden together); a banned call (the
exercise's own function, the package's or torch's) earns nothing. A cell that raises, times out or kills its
process is recorded and the notebook goes on (a killed child is replaced, the cells before replayed), so later
exercises are still graded; each exercise has its own time budget, and one whose visible cases timed out does not run
its hidden ones (:mod:`.budgets`). Feedback is in two parts: ``feedback`` speaks of the visible cases only (students
read it at once), ``hidden_feedback`` of the hidden ones (Gradescope shows it once grades are published).
"""
from __future__ import annotations

import hashlib
import hmac
import importlib.util
import io
import math
import pickle
import queue
import select
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from ..checks import hints, registry
from ..checks.registry import (
    BANNED,
    ERROR,
    FAILED,
    MISSING,
    PASSED,
    TIMED_OUT,
    Attempt,
    BannedCall,
    CallTimeout,
    Case,
    Check,
    CheckResult,
    LearnerError,
    iter_cases,
    run_check,
)
from .budgets import CellBudget, Deadline
from .codec import CodecError, decode
from .memory import fewer_arenas, is_out_of_memory, memory_feedback, oom_kills, return_freed_memory
from .review import review
from .limits import wall_backstop
from .protocol import ProtocolError, recv_frame, send_frame
from .sandbox import GRACE_S, Limits, Session, SessionDied, SessionTimeout, Worker, sandbox_status
from .submissions import Submission

__all__ = ["Grader", "ExerciseResult", "SubmissionResult", "derive_seed", "load_checks_dir", "DEFAULT_SEED"]

DEFAULT_SEED = "stn-course"  # used without --seed-file: fine for practice, not for hidden cases (students know it)
MAX_RESTARTS = 3  # a notebook whose process is killed more often than this gets no further chances
_SEVERITY = {BANNED: 5, TIMED_OUT: 4, MISSING: 3, ERROR: 2, FAILED: 1, PASSED: 0}


class _CasePickler(pickle.Pickler):
    """Pickles a case's plain CPU tensors as NumPy arrays (several times faster than torch's own reduction)."""

    def reducer_override(self, obj: Any) -> Any:
        if (type(obj) is torch.Tensor and obj.layout == torch.strided and obj.device.type == "cpu"
                and not obj.requires_grad and obj.dtype is not torch.bfloat16):
            return torch.from_numpy, (obj.numpy(),)
        return NotImplemented


def _dumps(case: Case) -> bytes:
    buffer = io.BytesIO()
    _CasePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(case)
    return buffer.getvalue()


def derive_seed(master: str, check_id: str, part: str) -> int:
    """The seed of ``check_id``'s ``part`` ("visible" or "hidden") cases: independent of everything but these, so a
    score does not depend on the order or the company of a submission. A keyed hash (HMAC-SHA256 with the secret as
    the key): a visible seed printed in feedback says nothing about the hidden one, and checking a guess of the
    secret against it costs a full HMAC per guess – with a strong secret (``--new-seed``) no guess succeeds."""
    digest = hmac.new(master.encode(), f"{check_id}\x00{part}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "little") % 2**31


@dataclass
class ExerciseResult:
    id: str
    title: str
    score: float
    max_score: float
    status: str
    feedback: str
    visible: tuple[int, int] = (0, 0)  # (passed, total)
    hidden: tuple[int, int] = (0, 0)
    worst_error: float | None = None
    # the numbers (1-based) of the hidden cases that failed: for the instructor's class report only (--json,
    # --report), never in a student-facing output (Gradescope, Classroom, feedback)
    hidden_failed: tuple[int, ...] = ()
    # the hidden part's own text (counts; "not run: …"): never in what students read before publication
    hidden_feedback: str = ""

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "score": self.score, "max_score": self.max_score,
                "status": self.status, "feedback": self.feedback,
                "visible_cases": {"passed": self.visible[0], "total": self.visible[1]},
                "hidden_cases": {"passed": self.hidden[0], "total": self.hidden[1],
                                 "failed_cases": list(self.hidden_failed), "feedback": self.hidden_feedback}}


@dataclass
class SubmissionResult:
    path: str
    student: str
    lesson: str | None
    score: float = 0.0
    max_score: float = 0.0
    exercises: list[ExerciseResult] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)  # cells that did not run cleanly: index, status, error
    error: str | None = None
    sandbox: str = ""
    seconds: float = 0.0
    execution_seconds: float = 0.0  # inside the learner's cells and functions (the rest is the grader's overhead)
    restarts: int = 0
    source_sha256: str | None = None
    review: list[dict] = field(default_factory=list)  # for the instructor: code that reaches for the grader

    def as_json(self) -> dict:
        return {"path": self.path, "student": self.student, "lesson": self.lesson, "score": self.score,
                "max_score": self.max_score, "exercises": [e.as_json() for e in self.exercises],
                "cells": self.cells, "error": self.error, "sandbox": self.sandbox,
                "lesson_source_sha256": self.source_sha256, "review": self.review,
                "timing": {"seconds": round(self.seconds, 3), "execution_seconds": round(self.execution_seconds, 3),
                           "restarts": self.restarts}}


def load_checks_dir(folder: Path) -> list[str]:
    """Import every ``*.py`` module in ``folder`` (an instructor's own checks, kept out of the students' package);
    their ``register(Check(...))`` calls add checks. Returns the ids they added."""
    before = {c.id for c in registry.all_checks()}
    for path in sorted(Path(folder).glob("*.py")):
        name = f"stn_course_instructor_checks.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sorted({c.id for c in registry.all_checks()} - before)


# ----------------------------------------------------------------------------------------------------------------
# One submission in one child
# ----------------------------------------------------------------------------------------------------------------


class GuardBreach(Exception):
    """The guard reported tampering, or a graded copy did not arm itself: the part's results are not trusted."""


class _Run:
    """A submission's notebook living in a sandboxed child: cells, then exercise parts, surviving the child's death.

    An exercise part (its visible cases, or its hidden ones) runs in a *caller*: the holder forks it, it arms
    itself, the guard reports ``armed <check id> <pid>`` on the channel, and only then does this grader stop the
    submission's other processes and send the inputs. Every answer is read together with the channel: a ban or a
    tampering report there decides the part, whatever the answer says."""

    def __init__(self, worker: Worker, submission: Submission, limits: Limits, run: Deadline | None = None) -> None:
        self.worker, self.submission, self.limits = worker, submission, limits
        self.cell_budget = CellBudget(limits.cell_s, limits.cells_s)
        self.session: Session | None = None
        self.replayable: list[tuple[int, str]] = []  # cells that ran without killing the child
        self.cells: list[dict] = []
        self.restarts = 0
        self.execution_s = 0.0
        self.exercise: dict | None = None  # the current exercise request (re-sent to a replacement child)
        self.gave_up = False
        self.oom_before = 0  # the job's cgroup's OOM kills before the current child, cell or call started
        own = Deadline(limits.submission_budget_s, "the submission")
        self.budget = Deadline.first(own, run) if run is not None else own  # the run's, when it comes first
        self.deadline = self.budget.at
        self.caller: int | None = None  # the armed caller of the current part (its pid in the sandbox)
        self.part_id: str | None = None
        self.banned: str | None = None  # a ban the guard reported in the current part
        self.refused: list[str] = []  # what the guard refused (for the instructor's review list)
        self.forged = 0
        self.armed: list[str] | None = None  # the guard's last "armed <check id> <pid>" report
        self.compromised: str | None = None  # the notebook stopped the guard from arming: nothing more is trusted

    # -- the child's life ---------------------------------------------------------------------------------------

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline - 0.5

    @property
    def stop_reason(self) -> str:
        if self.out_of_time():
            return self.budget.reason
        return "the notebook's process was killed too often"

    def _spawn(self) -> None:
        self.oom_before = oom_kills(self._cgroup_path())
        self.session = self.worker.spawn()

    def _cgroup_path(self) -> Path | None:
        """The job's memory cgroup, where the grader could make one."""
        group = getattr(self.worker, "cgroup", None)
        return getattr(group, "path", None)

    def _death(self, message: str) -> str:
        """``message``, or – where the kernel's OOM killer ended a process of the job since ``oom_before`` – that
        the submission went past the job's memory budget."""
        if oom_kills(self._cgroup_path()) > self.oom_before:
            return (f"used more than {self.limits.total_memory_mb} MB of memory (all of the submission's processes "
                    "together), so its process was killed")
        return _clean(message)

    def _respawn(self) -> bool:
        """Replace a dead child: a fresh one, the good cells replayed. False when there are no chances left."""
        self._collect()
        if self.session is not None:
            self.session.close(kill=True)
            self.session = None
        self.caller = None
        self.restarts += 1
        if self.restarts > MAX_RESTARTS or self.out_of_time():
            self.gave_up = True
            return False
        try:
            self._spawn()
            for index, source in self.replayable:  # cells that ran before: a cell's own limit each
                self._request({"op": "cell", "index": index, "source": source, "timeout": self.limits.cell_s},
                              timeout=wall_backstop(self.limits.cell_s) + GRACE_S)
            if self.exercise is not None:
                self._request(self.exercise, timeout=30)
        except (SessionDied, SessionTimeout):
            return self._respawn()
        return True

    def _request(self, header: dict, payload: bytes = b"", timeout: float = 60.0) -> tuple[dict, bytes]:
        assert self.session is not None
        return self.session.request(header, payload, min(timeout, max(self.deadline - time.monotonic(), 1.0)))

    def _collect(self) -> list[tuple[str, str]]:
        """Read the guard's reports; remember bans, refusals and tampering."""
        if self.session is None:
            return []
        found = self.session.reports()
        self.forged = self.session.forged
        for kind, detail in found:
            if kind == "armed":
                self.armed = detail.split()
            elif kind == "refused":
                if len(self.refused) < 50:
                    self.refused.append(_clean(detail, 80))
            elif kind in ("banned", "tamper") and self.part_id is not None and self.banned is None:
                self.banned = (_clean(detail, 120) if kind == "banned"
                               else f"tampering with the grader's guard ({_clean(detail, 120)})")
        return found

    def close(self) -> None:
        self.end_part()
        if self.session is not None:
            self._collect()
            self.session.close(kill=True)
            self.session = None

    # -- cells --------------------------------------------------------------------------------------------------

    def run_cells(self) -> None:
        self._spawn()
        for index, source in self.submission.cells:
            if self.gave_up or self.out_of_time():
                self.cells.append({"index": index, "status": "not run", "error": self.stop_reason})
                continue
            start = time.perf_counter()
            limit = self.cell_budget.limit(self.budget.left(), self.budget.seconds or math.inf)
            self.oom_before = oom_kills(self._cgroup_path())
            try:
                reply, _ = self._request({"op": "cell", "index": index, "source": source, "timeout": limit},
                                         timeout=wall_backstop(limit) + GRACE_S)
            except SessionTimeout:
                self.execution_s += time.perf_counter() - start
                self.cell_budget.spend(limit)
                why = (self.stop_reason if self.out_of_time() else
                       f"{self.cell_budget.timed_out(limit)} (the process was killed)")
                self.cells.append({"index": index, "status": "timed out", "error": why})
                self._respawn()
                continue
            except SessionDied as exc:
                self.execution_s += time.perf_counter() - start
                self.cells.append({"index": index, "status": "error", "error": self._death(str(exc))})
                self._respawn()
                continue
            seconds = _finite(reply.get("seconds"), time.perf_counter() - start)
            self.execution_s += seconds
            self.cell_budget.spend(seconds)
            self._collect()
            self.replayable.append((index, source))
            if reply.get("status") == "timed out":
                self.cells.append({"index": index, "status": "timed out", "error": self.cell_budget.timed_out(limit)})
            elif reply.get("status") != "ok":  # the cell raised, or its copy died (the kernel's OOM killer too)
                error = memory_feedback(_clean(reply.get("error", "")), self.limits.memory_mb)
                if error.startswith("the cell ended its process"):  # the holder's word for a copy that died
                    error = self._death(error)
                self.cells.append({"index": index, "status": "error", "error": error})

    # -- exercises ----------------------------------------------------------------------------------------------

    def begin(self, check: Check, lesson_checks: list[Check]) -> dict:
        """Tell the child which function the next parts call; its answer (ready, missing, banned)."""
        self.end_part()
        stand_ins = [[c.function_name, c.id] for c in lesson_checks if c.id in check.builds_on]
        self.exercise = {"op": "exercise", "id": check.id, "function": check.function_name,
                         "forbidden": list(check.forbidden), "stand_ins": stand_ins}
        if self.compromised is not None:
            return {"state": "banned", "name": "", "reason": self.compromised}
        if self.gave_up or self.out_of_time():
            return {"state": "error", "message": self.stop_reason}
        try:
            reply, _ = self._request(self.exercise, timeout=30)
        except (SessionDied, SessionTimeout) as exc:
            self._respawn()
            return {"state": "error", "message": _clean(str(exc))}
        self._collect()
        state = reply.get("state")
        if state == "banned":
            name = str(reply.get("name"))
            return {"state": "banned", "name": name if name in check.forbidden else "a function this exercise bans"}
        if state in ("missing", "not callable"):
            what = "defines no" if state == "missing" else "defines something that is not a function called"
            return {"state": "missing", "message": f"the notebook {what} `{check.function_name}`"}
        if state != "ready":
            return {"state": "error", "message": "the exercise could not be started"}
        return {"state": "ready"}

    def _start_caller(self) -> None:
        """A fresh armed caller for the next calls, and every other process of the submission stopped."""
        check_id = str(self.part_id)
        assert self.session is not None
        self._collect()
        self.armed = None
        send_frame(self.session.sock, {"op": "caller", "id": check_id})
        end = time.monotonic() + 15.0
        reply: dict = {}
        while time.monotonic() < end:  # the copy's "armed", or a ban or tampering report on the channel
            readable, _, _ = select.select([self.session.sock, self.session.channel], [], [], 0.5)
            if self.session.channel in readable:
                self._collect()
                if self.banned is not None:
                    raise GuardBreach(self.banned)
            if self.session.sock in readable:
                self.session.sock.settimeout(10)
                try:
                    reply, _ = recv_frame(self.session.sock)
                except (ProtocolError, OSError, socket.timeout):
                    raise SessionDied("the notebook's process ended") from None
                break
        self._collect()  # the guard wrote its report before the copy answered
        armed = self.armed
        if self.banned is not None:
            raise GuardBreach(self.banned)
        if not reply.get("armed") or armed is None or len(armed) != 2 or armed[0] != check_id \
                or not armed[1].isdigit():
            raise GuardBreach("the graded copy was not armed by the grader's guard")
        self.caller = int(armed[1])
        if not self.worker.freeze(self.session.pid, self.caller):
            raise GuardBreach("the submission's other processes could not be stopped")

    def new_part(self, check_id: str) -> None:
        """The next calls are a new part of ``check_id``: its caller starts on the first call."""
        self.end_part()
        self.part_id, self.banned = check_id, None

    def end_part(self) -> None:
        if self.caller is not None and self.session is not None:
            self.worker.end_caller(self.session.pid, self.caller)
        self.caller = None

    def _answer(self, timeout: float) -> tuple[dict, bytes] | str:
        """The caller's answer, or ``"banned"`` (the guard reported it), ``"died"`` or ``"timed out"``."""
        assert self.session is not None and self.caller is not None
        sock, channel = self.session.sock, self.session.channel
        end = time.monotonic() + timeout
        next_check = time.monotonic() + 0.2
        while True:
            now = time.monotonic()
            if now >= end:
                return "timed out"
            readable, _, _ = select.select([sock] + ([channel] if channel else []), [], [], min(0.2, end - now))
            if channel in readable:
                self._collect()
                if self.banned is not None:
                    return "banned"
            if sock in readable:
                sock.settimeout(max(end - time.monotonic(), 1.0))
                try:
                    return recv_frame(sock)
                except (ProtocolError, OSError, socket.timeout):
                    return "died"
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.2
                if not self.worker.alive(self.caller):
                    self._collect()
                    return "banned" if self.banned is not None else "died"

    def call(self, case: Case, positions: tuple[int, ...] | None, budget: "_Budget") -> Any:
        """The learner's result for ``case`` (its gradients with ``positions``), decoded; raises what
        :func:`run_check` turns into a status."""
        if self.compromised is not None:
            raise BannedCall(self.compromised)
        if self.out_of_time():
            raise CallTimeout(f"timed out: {self.stop_reason}")
        if self.gave_up:
            raise LearnerError("ProcessError", self.stop_reason)
        if self.banned is not None:
            raise BannedCall(self.banned)
        remaining = budget.remaining()
        if remaining <= 0:
            raise CallTimeout(f"timed out: the exercise's {budget.total:g} s are used up")
        if self.caller is None:
            try:
                self._start_caller()
            except GuardBreach as exc:
                self.banned = self.compromised = str(exc)
                if self.session is not None:  # whatever the notebook started instead is gone with its process
                    self.session.close(kill=True)
                    self.session = None
                self.gave_up = True
                raise BannedCall(self.banned) from None
            except (SessionDied, SessionTimeout) as exc:
                self._respawn()
                raise LearnerError("ProcessExit", _clean(str(exc))) from None
        header = {"op": "gradients" if positions is not None else "call", "timeout": remaining,
                  "positions": list(positions or ())}
        start = time.perf_counter()
        assert self.session is not None
        self.oom_before = oom_kills(self._cgroup_path())
        try:
            send_frame(self.session.sock, header, _dumps(case))
        except OSError:
            self._respawn()
            raise LearnerError("ProcessExit", "the notebook's process ended") from None
        answer = self._answer(min(wall_backstop(remaining), max(self.deadline - time.monotonic(), 0.5)))
        wall = time.perf_counter() - start
        if answer in ("timed out", "died", "banned"):
            self.execution_s += wall
        if answer == "banned":
            self.end_part()
            raise BannedCall(str(self.banned))
        if answer == "timed out":
            budget.spend(remaining)
            self.end_part()
            raise CallTimeout(f"timed out after {budget.total:g} s (the process was killed)") from None
        if answer == "died":
            self.end_part()
            why = self._death("your function ended the notebook's process")
            raise LearnerError("MemoryError" if why.startswith("used more") else "ProcessExit", why) from None
        reply, payload = answer
        self.execution_s += _finite(reply.get("seconds"), wall)  # inside the learner's function, as the child timed it
        self._collect()
        if self.banned is not None:
            self.end_part()
            raise BannedCall(self.banned)
        budget.spend(_finite(reply.get("seconds"), wall))
        status = reply.get("status")
        if status == "ok":
            try:
                return decode(payload)
            except CodecError as exc:
                raise LearnerError("unsupported result", _clean(str(exc))) from None
        if status == "not implemented":
            raise NotImplementedError
        if status == "timed out":
            self.end_part()
            raise CallTimeout(f"timed out after {budget.total:g} s")
        if status == "no gradient":
            return _clean(reply.get("message", "no gradient"))
        if status == "missing":
            raise LearnerError("NameError", f"the notebook defines no `{self.exercise and self.exercise['function']}`")
        kind = _clean(reply.get("type", "Error"), 60)
        message = _clean(str(reply.get("message", "")).removeprefix(f"{reply.get('type')}: "))  # the type once
        if is_out_of_memory(f"{kind}: {message}"):
            raise LearnerError("MemoryError", memory_feedback(f"{kind}: {message}", self.limits.memory_mb))
        raise LearnerError(kind, message)


def _clean(text: Any, limit: int = 300) -> str:
    """Text that came from the learner's process, safe to show: a string, control characters escaped, at most
    ``limit`` characters."""
    text = text if isinstance(text, str) else str(type(text).__name__)
    out = "".join(c if (c.isprintable() or c == "\n") and c not in "\x1b\x9b" else repr(c)[1:-1] for c in text[:limit])
    return out[:limit] + ("…" if len(text) > limit else "")


def _finite(value: Any, fallback: float) -> float:
    """A non-negative finite number of seconds from the child, else ``fallback`` (the grader's own clock)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return fallback
    return min(number, fallback) if math.isfinite(number) and number >= 0 else fallback


class _Budget:
    """An exercise's time limit, shared by all its calls."""

    def __init__(self, total: float) -> None:
        self.total, self.used = total, 0.0

    def remaining(self) -> float:
        return self.total - self.used

    def spend(self, seconds: float) -> None:
        self.used += seconds


class _RemoteAttempt(Attempt):
    """The learner's function, in the child, as :func:`run_check` sees it."""

    def __init__(self, run: _Run, budget: _Budget, shortcut: str | None) -> None:
        super().__init__(fn=None)
        self.run, self.budget, self._shortcut = run, budget, shortcut

    def shortcut(self, forbidden: tuple[str, ...]) -> str | None:
        return self._shortcut

    def call(self, case: Case) -> Any:
        return self.run.call(case, None, self.budget)

    def gradients(self, case: Case, positions: tuple[int, ...]) -> Any:
        value = self.run.call(case, positions, self.budget)
        if isinstance(value, str) or value is None:
            return value
        return list(value) if isinstance(value, (list, tuple)) else "the gradients could not be computed"


# ----------------------------------------------------------------------------------------------------------------
# Scoring and feedback
# ----------------------------------------------------------------------------------------------------------------


def _planned(check: Check, seed: int, hidden: bool) -> int:
    return sum(1 for _ in iter_cases(check, seed, hidden))


def _visible_feedback(result: CheckResult, seed: int) -> str:
    check, failure = result.check, result.first_failure
    assert failure is not None
    number = result.results.index(failure) + 1
    if failure.status == MISSING:
        return "not implemented yet (the stub raises NotImplementedError)"
    if failure.status == BANNED:
        return failure.message
    lines = [f"visible case {number}: {failure.case.description}", failure.message.strip()]
    if failure.status in (FAILED, ERROR):
        lines += [line.strip() for line in hints(result, stage=2)]
    lines.append(f"Reproduce in the notebook with check({check.id!r}, {check.function_name}, seed={seed}).")
    return "\n".join(line for line in lines if line)


def _hidden_feedback(hidden: CheckResult | None, total: int, skipped: str | None) -> str:
    """The hidden part's own text, for the instructor and for students only once grades are published: counts,
    and whether the first failure was a timeout – never a hidden case's inputs or results."""
    if not total:
        return ""
    if skipped is not None:
        return f"not run: {skipped} (the {total} hidden cases score 0)"
    results = hidden.results if hidden is not None else []
    passed = sum(r.passed for r in results)
    if passed == total:
        return f"passed all {total} hidden cases"
    failure = hidden.first_failure if hidden is not None else None
    why = {TIMED_OUT: "; the first failure timed out", BANNED: "; a banned call",
           ERROR: "; the first failure raised an error"}.get(failure.status if failure else "", "")
    return f"passed {passed} of {total} hidden cases{why}"


def score_exercise(check: Check, visible: CheckResult | None, hidden: CheckResult | None, visible_seed: int,
                   planned: tuple[int, int], begin: dict | None = None,
                   hidden_skipped: str | None = None) -> ExerciseResult:
    """One exercise's score, status and feedback from its visible and hidden runs. ``feedback`` speaks of the
    visible cases only (students read it at once); ``hidden_feedback`` of the hidden ones (published later).
    ``hidden_skipped`` says why the hidden part did not run (its cases then score 0)."""
    title, points = check.title, float(check.points)
    if begin is not None and begin.get("state") != "ready":
        state = begin.get("state")
        if state == "banned" and begin.get("reason"):
            status, feedback = BANNED, f"not graded: {begin['reason']}"
        elif state == "banned":
            status = BANNED
            feedback = (f"your function uses {begin.get('name')}, which is what this exercise asks you to write – "
                        "write it with the lesson's building blocks instead")
        elif state == "missing":
            status, feedback = MISSING, str(begin.get("message", "missing"))
        else:
            status, feedback = ERROR, str(begin.get("message", "the exercise could not be run"))
        return ExerciseResult(check.id, title, 0.0, points, status, feedback, (0, planned[0]), (0, planned[1]),
                              hidden_feedback=_hidden_feedback(None, planned[1], "the exercise was not graded"))
    v_results = visible.results if visible else []
    h_results = hidden.results if hidden else []
    v_passed = sum(r.passed for r in v_results)
    h_passed = sum(r.passed for r in h_results)
    total = planned[0] + planned[1]
    statuses = [r.status for r in v_results + h_results if not r.passed]
    status = max(statuses, key=_SEVERITY.__getitem__) if statuses else PASSED
    if hidden_skipped is None and statuses == [] and (len(v_results) < planned[0] or len(h_results) < planned[1]):
        status = ERROR  # cases that never ran (should not happen)
    score = 0.0 if status == BANNED else round(points * (v_passed + h_passed) / max(total, 1), 4)
    worst = max((r.error for r in v_results if r.passed), default=None)  # a hidden case's error is never shown
    if status == BANNED and (visible is None or visible.passed):  # a verdict on the code, wherever it was found
        feedback = ("this exercise asks you to write it yourself: your function called a function that is the "
                    "exercise")
    elif visible is not None and not visible.passed:
        feedback = _visible_feedback(visible, visible_seed)
    elif planned[0] == 0:  # an instructor's hidden check: nothing here is visible
        feedback = "graded on cases that are not shown to you; the result is shown when grades are published"
    else:
        feedback = f"passed all {planned[0]} visible cases"
        if worst is not None:
            note = getattr(check, "error_note", "")
            feedback += f" (worst error {worst:.2g}{' – ' + note if note else ''})"
    return ExerciseResult(check.id, title, score, points, status, feedback, (v_passed, planned[0]),
                          (h_passed, planned[1]), worst,
                          tuple(number for number, r in enumerate(h_results, start=1) if not r.passed),
                          hidden_feedback=_hidden_feedback(hidden, planned[1], hidden_skipped))


# ----------------------------------------------------------------------------------------------------------------
# The grader
# ----------------------------------------------------------------------------------------------------------------


class Grader:
    """Grades submissions with ``jobs`` sandboxed workers. ``seed`` is the instructor's secret."""

    def __init__(self, seed: str = DEFAULT_SEED, limits: Limits = Limits(), jobs: int = 1, sandbox: bool = True,
                 allow_unsandboxed: bool = False) -> None:
        """``sandbox=False`` switches bubblewrap off; either way, grading without it needs ``allow_unsandboxed``
        (``--allow-unsandboxed``): the student's code then runs as separate processes with rlimits, as an
        unprivileged uid when the grader runs as root."""
        self.seed, self.limits, self.jobs = str(seed), limits, max(1, int(jobs))
        self.sandbox = sandbox
        self.startup_seconds = 0.0  # starting the workers (each imports torch once), before any submission
        self.sandbox_text = sandbox_status(disable=not sandbox)
        if not allow_unsandboxed and not self.sandbox_text.startswith("sandboxed"):
            from .sandbox import SandboxUnavailable

            raise SandboxUnavailable(f"refusing to grade without the sandbox ({self.sandbox_text}); pass "
                                     "--allow-unsandboxed to grade with plain processes")

    def checks_for(self, lesson: str) -> list[Check]:
        return [c for c in registry.all_checks() if c.lesson == lesson]

    def grade(self, submissions: Iterable[Submission],
              progress: Callable[[SubmissionResult], None] | None = None) -> list[SubmissionResult]:
        """Grade every submission (in parallel over ``jobs`` workers); results in the submissions' order."""
        submissions = list(submissions)
        fewer_arenas()  # before the job threads start: their arenas would keep what they free
        self.run_deadline = Deadline(self.limits.run_s, "the grading run")  # workers' start-up included
        workers: queue.Queue[Worker] = queue.Queue()
        started: list[Worker] = []
        lock = threading.Lock()

        def grade_one(submission: Submission) -> SubmissionResult:
            worker = workers.get()
            try:
                result = self.grade_submission(submission, worker)
            finally:
                workers.put(worker)
            if progress is not None:
                with lock:
                    progress(result)
            return result

        try:
            needed = min(self.jobs, max(1, sum(s.error is None for s in submissions)))
            started += [Worker(slot, self.limits, self.sandbox) for slot in range(needed)]
            start = time.perf_counter()
            for worker in started:  # launched from this thread, they start (import torch) in parallel
                worker.launch()
            for worker in started:
                worker.wait_ready()
            self.startup_seconds = time.perf_counter() - start
            for worker in started:
                workers.put(worker)
            with ThreadPoolExecutor(max_workers=needed) as pool:
                return list(pool.map(grade_one, submissions))
        finally:
            for worker in started:
                worker.close()

    def grade_submission(self, submission: Submission, worker: Worker) -> SubmissionResult:
        start = time.perf_counter()
        result = SubmissionResult(str(submission.path), submission.student, submission.lesson,
                                   sandbox=self.sandbox_text, source_sha256=submission.source_sha256)
        checks = self.checks_for(submission.lesson) if submission.lesson else []
        if submission.error is None and not checks:
            submission.error = f"lesson {submission.lesson} has no exercises to grade"
        result.max_score = float(sum(c.points for c in checks)) if submission.counted else 0.0
        if not submission.counted:
            checks = []
        if submission.error is not None:
            result.error = submission.error
            result.exercises = [ExerciseResult(c.id, c.title, 0.0, float(c.points), ERROR, submission.error,
                                               (0, 0), (0, 0)) for c in checks]
            result.seconds = time.perf_counter() - start
            return result
        if worker.control is None:
            worker.start()
        run = _Run(worker, submission, self.limits, getattr(self, "run_deadline", None))
        try:
            run.run_cells()
            result.exercises = self._grade_exercises(run, checks)
        except Exception as exc:  # noqa: BLE001 – the grader must finish every batch; say what went wrong
            result.error = f"the grader failed on this submission: {type(exc).__name__}: {exc}"
            done = {e.id for e in result.exercises}
            result.exercises += [ExerciseResult(c.id, c.title, 0.0, float(c.points), ERROR, result.error)
                                 for c in checks if c.id not in done]
        finally:
            run.close()
            return_freed_memory()  # the submission's references and cases (section 9 of docs/grading.md)
        result.cells = run.cells
        result.restarts = run.restarts
        result.score = round(sum(e.score for e in result.exercises), 4)
        result.execution_seconds = run.execution_s
        result.review = [f.as_json() for f in review(submission.cells)]
        result.review += [{"cell": None, "line": None, "rule": "refused by the guard", "text": what}
                          for what in dict.fromkeys(run.refused)]
        if run.forged:
            result.review.append({"cell": None, "line": None, "rule": "forged guard reports",
                                  "text": f"{run.forged} line(s) on the guard's channel without its nonce"})
        result.seconds = time.perf_counter() - start
        return result

    def _grade_exercises(self, run: _Run, checks: list[Check]) -> list[ExerciseResult]:
        budgets = {c.id: _Budget(self.limits.timeout_s) for c in checks}
        begins: dict[str, dict] = {}
        visible: dict[str, CheckResult | None] = {}
        seeds = {c.id: (derive_seed(self.seed, c.id, "visible"), derive_seed(self.seed, c.id, "hidden"))
                 for c in checks}
        # every visible case of every exercise first, then the hidden ones (see the module docstring)
        for check in checks:
            if check.hidden:  # an instructor's hidden check has no visible part
                visible[check.id] = None
                continue
            begins[check.id] = begin = run.begin(check, checks)
            if begin.get("state") != "ready":
                visible[check.id] = None
                continue
            attempt = _RemoteAttempt(run, budgets[check.id], None)
            run.new_part(check.id)
            visible[check.id] = run_check(check, attempt, seeds[check.id][0], stop_at_first_failure=False)
            run.end_part()
        results = []
        for check in checks:
            begin = begins.get(check.id)
            v_seed, h_seed = seeds[check.id]
            planned = (0 if check.hidden else _planned(check, v_seed, False),
                       _planned(check, h_seed, True) + (_planned(check, h_seed, False) if check.hidden else 0))
            if begin is not None and begin.get("state") != "ready":
                results.append(score_exercise(check, None, None, v_seed, planned, begin))
                continue
            shown = visible.get(check.id)
            if shown is not None and any(r.status == TIMED_OUT for r in shown.results):
                results.append(score_exercise(check, shown, None, v_seed, planned,  # a loop costs one budget
                                              hidden_skipped="the visible cases timed out"))
                continue
            begin = run.begin(check, checks)
            if check.hidden and begin.get("state") != "ready":
                results.append(score_exercise(check, None, None, v_seed, planned, begin))
                continue
            attempt = _RemoteAttempt(run, budgets[check.id], None)
            run.new_part(check.id)  # a fresh caller: nothing of the visible part's process is left
            hidden = run_check(check, attempt, h_seed, stop_at_first_failure=False, hidden=True)
            if check.hidden:  # all of an instructor's check is hidden: its "visible" cases too
                extra = run_check(check, attempt, h_seed, stop_at_first_failure=False)
                hidden = CheckResult(check, h_seed, hidden.results + extra.results, hidden.planned + extra.planned)
            run.end_part()
            results.append(score_exercise(check, visible.get(check.id), hidden, v_seed, planned))
        return results
