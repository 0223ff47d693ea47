"""The check registry (every lesson): every exercise check is data, kept in one place.

A :class:`Check` says *what* to test – a reference callable, a seeded case generator, a comparison, a hint, points,
visibility – and :func:`run_check` says *how*: it builds the cases, runs the reference first on its own copy of the
inputs, runs the learner's function on another copy, and compares the two itself, outside the learner's reach.

Three users share this registry: ``check(id, fn)`` in the notebooks (visible cases), the classroom grader
(visible + hidden cases, same code, with the learner's function in a sandboxed process: :class:`Attempt` is how
:func:`run_check` reaches it) and the mutation tests (known bugs must fail).

Lesson modules register their checks with :func:`register` at import time; :func:`get` imports every
``stn_course.checks.lessonNN`` module on first use, so adding a lesson needs no edit here.
"""
from __future__ import annotations

import copy
import importlib
import pkgutil
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from .shortcuts import find_shortcut

__all__ = ["Case", "Check", "CaseResult", "CheckResult", "Attempt", "BannedCall", "CallTimeout", "LearnerError",
           "STATUSES", "register", "call_case", "gradients_of", "get", "all_checks", "run_check", "compare", "iter_cases", "plain",
           "unwrap_kernel_error"]

# What happened to one case (and, for the grader, to a whole exercise): one vocabulary everywhere.
PASSED, FAILED, ERROR, TIMED_OUT, MISSING, BANNED = "passed", "failed", "error", "timed out", "missing", "banned call"
STATUSES = (PASSED, FAILED, ERROR, TIMED_OUT, MISSING, BANNED)


class BannedCall(Exception):
    """The learner's function called what the exercise asks them to write (the package's version or torch's)."""


class CallTimeout(Exception):
    """The learner's function ran past its time limit (raised by the grader's :class:`Attempt`)."""


class LearnerError(Exception):
    """An exception the learner's code raised in another process, by type name and message."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message


@dataclass
class Case:
    """One call of the exercise: ``fn(*args, **kwargs)``, described in words for feedback.

    ``compare_gradients=False`` marks a case whose points sit on kinks (pixel centres, the border), where any
    one-sided derivative is a correct gradient: its values are compared, its gradients are not.
    ``hint`` is a hint about *this* case (a reflection case gets a reflection hint), shown before the check's own.
    """

    description: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    compare_gradients: bool = True
    hint: str = ""


@dataclass(frozen=True)
class Check:
    """An exercise check, as data.

    ``cases(rng)`` yields :class:`Case` objects from a seeded ``numpy.random.Generator`` (edge cases first).
    ``compare(expected, actual, case)`` returns ``(ok, worst_error, message)``; the default compares tensors, arrays,
    numbers and tuples of them with ``rtol``/``atol``. ``hidden`` checks run only in the grader.
    Hints come in stages: ``idea`` (the first failure: what to think about, no formula) and ``hint`` (a later
    failure: the recipe); a failing case's own :attr:`Case.hint` comes first.
    ``grad_args`` (positions of tensor arguments) makes the check compare gradients too, wherever the lesson states
    a gradient requirement: the learner's result must stay connected to those inputs, and the gradients of a fixed
    random weighting of its outputs must match the reference's, finite where the reference's are
    (:func:`compare_gradients`). ``forbidden`` names the functions that *are* the exercise (the package's own
    version, or torch's): a learner's function that calls one fails before any case runs
    (:func:`~stn_course.checks.shortcuts.find_shortcut`); the grader also bans them while the learner's function
    runs. ``function`` is the name the lesson's exercise defines (default: the id after the lesson number).
    ``hidden_cases(rng)`` yields the cases only the grader runs (larger and non-square sizes, float64, batch > 1,
    points far outside, 1-pixel sides…), from the instructor's secret seed. ``builds_on`` lists the check ids of the
    lesson's exercises this one calls by their lesson names (as the solution does): while the grader calls this
    exercise, those names are the registry's references (so a mistake there costs one exercise), and no other.
    """

    id: str
    reference: Callable[..., Any]
    cases: Callable[[np.random.Generator], Iterable[Case]]
    hint: str
    idea: str = ""
    forbidden: tuple[str, ...] = ()
    points: float = 1.0
    rtol: float = 1e-5
    atol: float = 1e-5
    hidden: bool = False
    title: str = ""
    compare: Callable[[Any, Any, Case], tuple[bool, float, str]] | None = None
    grad_args: tuple[int, ...] = ()
    function: str = ""
    hidden_cases: Callable[[np.random.Generator], Iterable[Case]] | None = None
    builds_on: tuple[str, ...] = ()

    @property
    def function_name(self) -> str:
        """The name of the learner's function in the lesson: ``function`` or the id's part after ``NN.``."""
        return self.function or self.id.split(".", 1)[1]

    @property
    def lesson(self) -> str:
        """The lesson number, ``"02"`` for ``"02.bilinear_sample"``."""
        return self.id.split(".", 1)[0]


@dataclass
class CaseResult:
    """The verdict on one case: ``status`` is one of :data:`STATUSES`; ``error`` the worst absolute error."""

    case: Case
    passed: bool
    error: float
    message: str
    status: str = ""

    def __post_init__(self) -> None:
        self.status = self.status or (PASSED if self.passed else FAILED)


@dataclass
class CheckResult:
    check: Check
    seed: int
    results: list[CaseResult]
    planned: int = 0  # how many cases there were (a run stops early on a banned call or a timeout)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def worst_error(self) -> float:
        return max((r.error for r in self.results), default=0.0)

    @property
    def first_failure(self) -> CaseResult | None:
        return next((r for r in self.results if not r.passed), None)

    @property
    def status(self) -> str:
        """``"passed"``, or the status of the first failing case (``"missing"`` for a stub, ``"banned call"``…)."""
        failure = self.first_failure
        return PASSED if failure is None and self.results else (failure.status if failure else MISSING)

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "failed"
        return f"<CheckResult {self.check.id}: {verdict} {len(self.results)} cases, seed {self.seed}>"


_REGISTRY: dict[str, Check] = {}
_LOADED = False


def register(check: Check) -> Check:
    """Add a check to the registry (ids are unique)."""
    if check.id in _REGISTRY and _REGISTRY[check.id] is not check:
        raise ValueError(f"check id {check.id!r} is registered twice")
    _REGISTRY[check.id] = check
    return check


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import stn_course.checks as package

    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.name.startswith("lesson")):
        importlib.import_module(f"stn_course.checks.{module}")
    _LOADED = True


def get(check_id: str) -> Check:
    """Look a check up by id, e.g. ``"02.bilinear_sample"``."""
    _load_all()
    try:
        return _REGISTRY[check_id]
    except KeyError:
        close = [k for k in _REGISTRY if k.split(".")[0] == check_id.split(".")[0]]
        raise KeyError(f"unknown check id {check_id!r}; this lesson has: {', '.join(sorted(close)) or 'none'}") from None


def all_checks(include_hidden: bool = True) -> list[Check]:
    """Every registered check, sorted by id."""
    _load_all()
    return [c for _, c in sorted(_REGISTRY.items()) if include_hidden or not c.hidden]


# ----------------------------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def unwrap_kernel_error(exc: BaseException) -> BaseException:
    """The learner's own exception behind Triton's interpreter wrapper: a kernel run by ``TRITON_INTERPRET=1``
    re-raises whatever its body raised as an ``InterpreterError`` – a stub's ``NotImplementedError`` too (lesson 7).
    """
    cause = exc.__cause__
    if type(exc).__name__ == "InterpreterError" and isinstance(cause, Exception):
        return cause
    return exc


def compare(expected: Any, actual: Any, rtol: float = 1e-5, atol: float = 1e-5) -> tuple[bool, float, str]:
    """Compare the reference's result with the learner's: same type, shape and dtype, values within tolerance.

    Returns ``(ok, worst_absolute_error, message)``.
    """
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)) or len(actual) != len(expected):
            return False, float("inf"), f"expected a sequence of {len(expected)} results, got {_describe(actual)}"
        worst, messages = 0.0, []
        for i, (e, a) in enumerate(zip(expected, actual)):
            ok, err, msg = compare(e, a, rtol, atol)
            worst = max(worst, err)
            if not ok:
                messages.append(f"item {i}: {msg}")
        return not messages, worst, "; ".join(messages)
    if isinstance(expected, torch.Tensor):
        if not isinstance(actual, torch.Tensor):
            return False, float("inf"), f"expected a torch.Tensor, got {_describe(actual)}"
        if actual.shape != expected.shape:
            return False, float("inf"), f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}"
        if actual.dtype != expected.dtype:
            return False, float("inf"), f"expected dtype {expected.dtype}, got {actual.dtype}"
        expected_np = expected.detach().cpu().double().numpy()
        actual_np = actual.detach().cpu().double().numpy()
    elif isinstance(expected, np.ndarray):
        if not isinstance(actual, np.ndarray):
            return False, float("inf"), f"expected a numpy array, got {_describe(actual)}"
        if actual.shape != expected.shape:
            return False, float("inf"), f"expected shape {expected.shape}, got {actual.shape}"
        if actual.dtype != expected.dtype:
            return False, float("inf"), f"expected dtype {expected.dtype}, got {actual.dtype}"
        expected_np, actual_np = expected.astype(np.float64), actual.astype(np.float64)
    elif isinstance(expected, (bool, np.bool_)):
        ok = bool(actual) == bool(expected) and isinstance(actual, (bool, np.bool_))
        return ok, 0.0 if ok else 1.0, "" if ok else f"expected {expected!r}, got {actual!r}"
    elif isinstance(expected, (int, float, np.number)):
        if isinstance(actual, (torch.Tensor, np.ndarray)) and isinstance(expected, (int, float)):
            return False, float("inf"), (f"expected a Python {type(expected).__name__}, got {_describe(actual)}; "
                                         "convert with float(...) or .item()")
        if isinstance(actual, (bool, np.bool_)) or not isinstance(actual, (int, float, np.number)):
            return False, float("inf"), f"expected a number, got {_describe(actual)}"
        expected_np, actual_np = np.float64(expected), np.float64(actual)
    else:
        ok = expected == actual
        return ok, 0.0 if ok else 1.0, "" if ok else f"expected {expected!r}, got {actual!r}"

    nan_mismatch = np.isnan(expected_np) != np.isnan(actual_np)
    if nan_mismatch.any():
        return False, float("inf"), "NaN where the reference has a number (or the other way round)"
    diff = np.abs(np.nan_to_num(expected_np) - np.nan_to_num(actual_np))
    worst = float(diff.max()) if diff.size else 0.0
    bad = diff > atol + rtol * np.abs(np.nan_to_num(expected_np))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        return False, worst, (
            f"{int(bad.sum())} of {bad.size} values differ; worst error {worst:.3g} "
            f"(first at index {where}: expected {expected_np[where]:.6g}, got {actual_np[where]:.6g})"
        )
    return True, worst, ""


# ----------------------------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------------------------


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return copy.deepcopy(value)


def call_case(fn: Callable[..., Any], case: Case) -> Any:
    """``fn`` on fresh copies of ``case``'s arguments (nothing ``fn`` does to them reaches the case)."""
    return fn(*_copy(case.args), **_copy(case.kwargs))


_call = call_case


_CASES: OrderedDict[tuple, list[Case]] = OrderedDict()  # the last few case lists (the grader reuses them)


def iter_cases(check: Check, seed: int, hidden: bool = False) -> Iterator[Case]:
    """The cases of ``check`` for ``seed`` (the same seed gives the same cases); ``hidden=True``: the hidden ones.

    A case is only ever used through copies (:func:`run_check` copies its inputs for every call), so the lists of
    the last 256 (check, seed) pairs are kept: grading a class builds each case once, not once per student."""
    generator = check.hidden_cases if hidden else check.cases
    if generator is None:
        return
    key = (check.id, generator, seed)
    cases = _CASES.get(key)
    if cases is None:
        torch_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(seed)
            cases = list(generator(np.random.default_rng(seed)))
        finally:
            torch.random.set_rng_state(torch_state)
        _CASES[key] = cases
        if len(_CASES) > 256:
            _CASES.popitem(last=False)
    yield from cases


def plain(value: Any) -> Any:
    """``value`` with tensor and array subclasses turned into plain ``torch.Tensor`` / ``numpy.ndarray`` copies, so
    that a comparison runs torch's and NumPy's own code, not methods a subclass overrides."""
    if isinstance(value, torch.Tensor) and type(value) is not torch.Tensor:
        with torch._C.DisableTorchFunctionSubclass():
            return torch.Tensor._make_subclass(torch.Tensor, value.detach()).clone()
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
        return np.array(value.view(np.ndarray), copy=True)
    if isinstance(value, tuple) and type(value) is not tuple:
        return value  # a namedtuple or a rigged tuple: compare() checks the type of what it reads
    if type(value) in (tuple, list):
        return type(value)(plain(v) for v in value)
    return value


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def gradients_of(fn: Callable[..., Any], case: Case, positions: tuple[int, ...],
                 grad: Callable[..., Any] | None = None) -> list[torch.Tensor | None] | str:
    """Gradients of ``Σ w · outputs`` (``w`` fixed random weights) w.r.t. the arguments at ``positions``, or a
    message saying why there are none. ``grad(loss, inputs)`` computes them (default: ``torch.autograd.grad`` with
    ``allow_unused=True``; the grader's child passes its own way to the autograd engine)."""
    args = list(_copy(case.args))
    inputs = []
    with torch.enable_grad():
        for i in positions:
            inputs.append(args[i].detach().clone().requires_grad_())
            args[i] = inputs[-1].clone()  # not a leaf: what fn does to it never touches the leaf
        outputs = [t for t in _tensors(fn(*args, **_copy(case.kwargs))) if t.is_floating_point()]
        connected = [t for t in outputs if t.requires_grad]
        if not connected:
            return ("no gradient reaches the inputs: the result is cut off from them (a .detach(), .item(), "
                    "NumPy or torch.tensor(...) on the way breaks the graph)")
        generator = torch.Generator().manual_seed(1234)
        loss = sum((t * torch.randn(t.shape, generator=generator, dtype=torch.float64).to(t)).sum()
                   for t in connected)
        if grad is None:
            return list(torch.autograd.grad(loss, inputs, allow_unused=True))
        return list(grad(loss, inputs))


_gradients = gradients_of


class Attempt:
    """How :func:`run_check` reaches the learner's function: here, a function of this process.

    The grader subclasses it to reach a function in a sandboxed process instead (same three questions, asked
    across a process boundary). ``call`` runs one case and returns what the function returned; ``gradients``
    returns the gradients of a fixed weighting of the outputs w.r.t. the arguments at ``positions`` (or a message
    saying why there are none); ``shortcut`` names a forbidden function the learner's calls, if any.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def shortcut(self, forbidden: tuple[str, ...]) -> str | None:
        return find_shortcut(self.fn, forbidden)

    def call(self, case: Case) -> Any:
        return _call(self.fn, case)

    def gradients(self, case: Case, positions: tuple[int, ...]) -> list[torch.Tensor | None] | str:
        return _gradients(self.fn, case, positions)


def compare_gradients(check: Check, attempt: Attempt | Callable[..., Any], case: Case) -> tuple[bool, float, str]:
    """The learner's gradients against the reference's for ``case`` (see :attr:`Check.grad_args`)."""
    attempt = attempt if isinstance(attempt, Attempt) else Attempt(attempt)
    expected = _gradients(check.reference, case, check.grad_args)
    actual = attempt.gradients(case, check.grad_args)
    if isinstance(expected, str):
        raise RuntimeError(f"{check.id}: the reference itself has no gradient ({expected})")
    if isinstance(actual, str):
        return False, float("inf"), actual
    if not isinstance(actual, (list, tuple)) or len(actual) != len(expected):
        return False, float("inf"), "the gradients could not be computed"
    worst = 0.0
    for position, e, a in zip(check.grad_args, expected, plain(list(actual))):
        e = torch.zeros_like(case.args[position]) if e is None else e
        if a is None:
            if e.abs().max() > 0:
                return False, float("inf"), f"no gradient reaches argument {position + 1}: it is not used, or detached"
            continue
        if not isinstance(a, torch.Tensor):
            return False, float("inf"), f"the gradient w.r.t. argument {position + 1} is not a tensor"
        if bool(torch.isfinite(e).all()) and not bool(torch.isfinite(a).all()):
            return False, float("inf"), (f"the gradient w.r.t. argument {position + 1} has NaN or inf where the "
                                         "reference's is finite")
        ok, err, msg = compare(e, a, max(check.rtol, 1e-6), max(check.atol, 1e-6))
        worst = max(worst, err)
        if not ok:
            return False, err, f"the gradient w.r.t. argument {position + 1} is wrong: {msg}"
    return True, worst, ""


def _raised(exc: BaseException) -> str:
    if isinstance(exc, LearnerError):
        message = exc.message.removeprefix(f"{exc.type_name}: ")
        return f"raised {exc.type_name}: {message}"
    if isinstance(exc, SystemExit):
        return f"raised SystemExit({exc.code!r}): a function must return its result, not end the program"
    return f"raised {type(exc).__name__}: {exc}"


def _compare_case(check: Check, expected: Any, actual: Any, case: Case) -> tuple[bool, float, str]:
    try:
        actual = plain(actual)
        if check.compare is not None:
            return check.compare(expected, actual, case)
        return compare(expected, actual, check.rtol, check.atol)
    except Exception as exc:  # noqa: BLE001 – an object that breaks the comparison is a wrong answer, not a crash
        return False, float("inf"), f"the result could not be compared ({type(exc).__name__}: {exc}); return " \
                                    "plain tensors, arrays or numbers"


def run_check(check: Check, fn: Callable[..., Any] | Attempt, seed: int = 0, stop_at_first_failure: bool = True,
              hidden: bool = False) -> CheckResult:
    """Run the learner's function on every case of ``check`` (the hidden ones with ``hidden=True``) and compare
    with the reference. ``fn`` is the function itself or an :class:`Attempt` (the grader's reaches another
    process). Never raises for a wrong function: whatever it does becomes a :class:`CaseResult` with a status."""
    attempt = fn if isinstance(fn, Attempt) else Attempt(fn)
    results: list[CaseResult] = []
    cases = list(iter_cases(check, seed, hidden))
    if check.forbidden:
        try:
            shortcut = attempt.shortcut(check.forbidden)
        except BannedCall as exc:
            shortcut = str(exc)
        if shortcut is not None:
            case = Case("reading your function's code before running it")
            return CheckResult(check, seed, [CaseResult(case, False, float("inf"), (
                f"your function uses {shortcut}, which is what this exercise asks you to write – write it with the "
                "lesson's building blocks instead"), BANNED)], len(cases))
    for case in cases:
        expected = _call(check.reference, case)
        try:
            try:
                actual = attempt.call(case)
            except Exception as exc:
                raise unwrap_kernel_error(exc) from None
        except NotImplementedError:
            results.append(CaseResult(case, False, float("inf"),
                                      "not implemented yet (the stub raises NotImplementedError)", MISSING))
            break
        except BannedCall as exc:
            results.append(CaseResult(case, False, float("inf"), (
                f"this exercise asks you to write it yourself: your function called {exc}"), BANNED))
            break
        except CallTimeout as exc:
            results.append(CaseResult(case, False, float("inf"), str(exc), TIMED_OUT))
            break
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 – the learner's code failed (SystemExit too): feedback, not a crash
            results.append(CaseResult(case, False, float("inf"), _raised(exc), ERROR))
        else:
            ok, err, msg = _compare_case(check, expected, actual, case)
            status = PASSED if ok else FAILED
            if ok and check.grad_args and case.compare_gradients:
                try:
                    ok, grad_err, msg = compare_gradients(check, attempt, case)
                    status = PASSED if ok else FAILED
                except (BannedCall, CallTimeout) as exc:
                    ok, grad_err, status = False, float("inf"), BANNED if isinstance(exc, BannedCall) else TIMED_OUT
                    msg = (f"this exercise asks you to write it yourself: your function called {exc}"
                           if status == BANNED else str(exc))
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # noqa: BLE001 – the learner's backward failed
                    ok, grad_err, msg, status = False, float("inf"), f"backward {_raised(exc)}", ERROR
                err = max(err, grad_err)
            results.append(CaseResult(case, ok, err, msg, status))
            if status in (BANNED, TIMED_OUT):
                break
        if stop_at_first_failure and not results[-1].passed:
            break
    return CheckResult(check, seed, results, len(cases))
