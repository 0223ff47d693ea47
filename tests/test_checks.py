"""The check registry itself: running, comparing, feedback, reproducibility, and that every check holds water.

Per-lesson mutation tests (known bugs must fail) live in tests/test_checks_lessonNN.py.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stn_course.checks.questions import AnswerCompare, Choice
from stn_course.checks import CheckFailed, all_checks, check, compare, format_result, get, run_check
from stn_course.checks.registry import iter_cases
from stn_course.checks.equivalents import OPS_MATCHING


def test_registry_has_the_lessons_and_unique_ids():
    ids = [c.id for c in all_checks()]
    assert len(ids) == len(set(ids))
    assert "02.bilinear_sample" in ids
    for c in all_checks():
        assert c.hint and c.recipe and c.points > 0 and c.id[:2].isdigit() and c.id[2] == "."


@pytest.mark.parametrize("spec", all_checks(), ids=lambda c: c.id)
def test_every_reference_passes_its_own_check(spec):
    result = run_check(dataclasses.replace(spec, forbidden=()), spec.reference, seed=123)
    assert result.passed, format_result(result)
    assert len(result.results) >= 1


@pytest.mark.parametrize("spec", all_checks(), ids=lambda c: c.id)
def test_cases_are_reproducible_from_the_seed(spec):
    def fingerprint(seed):
        out = []
        for case in iter_cases(spec, seed):
            for a in list(case.args) + list(case.kwargs.values()):
                if isinstance(a, torch.Tensor):
                    out.append(a.detach().double().sum().item())
                elif isinstance(a, np.ndarray):
                    out.append(float(np.asarray(a, dtype=np.float64).sum()))
            out.append(case.description)
        return out
    assert fingerprint(5) == fingerprint(5)


def torch_sampler(input, grid, padding_mode="zeros", align_corners=False):
    """An independent sampler for the tests of check() itself: torch's."""
    return F.grid_sample(input, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


@pytest.fixture
def allow_torch_sampler(monkeypatch):
    """02.bilinear_sample forbids torch's sampler (it is the exercise); the tests of check() itself use torch's as
    an independent sampler, so they run against the check without those names."""
    from stn_course.checks import registry

    spec = get("02.bilinear_sample")
    allowed = tuple(name for name in spec.forbidden if not name.startswith("torch"))
    monkeypatch.setitem(registry._REGISTRY, spec.id, dataclasses.replace(spec, forbidden=allowed))


def test_torch_own_sampler_is_refused_as_a_shortcut():
    with pytest.raises(CheckFailed, match="torch.nn.functional.grid_sample, which is what this exercise asks"):
        check("02.bilinear_sample", torch_sampler, seed=1)


def test_check_prints_pass_and_returns_the_function(capsys, allow_torch_sampler):
    from stn_course.checks import status
    bilinear_sample = torch_sampler
    assert check("02.bilinear_sample", bilinear_sample, seed=1) is bilinear_sample
    assert "✅" in capsys.readouterr().out and status("02.bilinear_sample") == "passed"


def test_an_unstarted_exercise_reports_not_implemented_and_stands_in_with_the_reference(capsys, allow_torch_sampler):
    """Run All on a fresh lesson: the stub does not stop the run; later cells get the registry's reference."""
    from stn_course.checks import status
    from stn_course.sampling import bilinear_sample

    def bilinear_sample_stub(input, grid, padding_mode="zeros", align_corners=False):
        raise NotImplementedError

    stand_in = check("02.bilinear_sample", bilinear_sample_stub, seed=3)
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "reference" in out and "❌" not in out and "Hint" not in out
    assert status("02.bilinear_sample") == "not implemented"
    assert stand_in is not bilinear_sample_stub and stand_in.__name__ == "bilinear_sample_stub"
    x, grid = torch.rand(2, 3, 5, 7), torch.rand(2, 4, 6, 2) * 2 - 1
    torch.testing.assert_close(stand_in(x, grid, "border", True), bilinear_sample(x, grid, "border", True))
    # a wrong answer still stops the run, and passing later replaces the stand-in
    with pytest.raises(CheckFailed):
        check("02.bilinear_sample", lambda *a, **k: torch.zeros(1), seed=3)
    assert check("02.bilinear_sample", torch_sampler, seed=3, quiet=True) is torch_sampler
    assert status("02.bilinear_sample") == "passed"


def test_torch_grid_sample_passes_the_sampler_check(allow_torch_sampler):
    """An independent implementation (torch's) passes too: the check tests semantics, not our code's quirks."""
    assert check("02.bilinear_sample", torch_sampler, seed=2, quiet=True) is torch_sampler


@pytest.fixture
def fresh_hints(monkeypatch):
    """A session in which no check has failed yet (the hint stage counts failures per check)."""
    import stn_course.checks as checks

    monkeypatch.setattr(checks, "_FAILURES", {})


def test_failure_message_names_case_error_hint_and_seed(fresh_hints, allow_torch_sampler):
    def wrong_convention(input, grid, padding_mode="zeros", align_corners=False):
        return F.grid_sample(input, grid, padding_mode=padding_mode, align_corners=not align_corners)
    with pytest.raises(CheckFailed) as info:
        check("02.bilinear_sample", wrong_convention, seed=9)
    message = str(info.value)
    assert "❌" in message and "worst error" in message and "Hint:" in message and "seed=9" in message


def test_hints_come_in_stages_the_hint_first_then_the_recipe(fresh_hints):
    """The first two failures give the hint and no formula (and say how to ask for the recipe); the recipe comes
    on request or from the third failure; the failure is in the exception only (IPython shows it once)."""
    spec = get("02.affine_grid")
    wrong = lambda theta, size, align_corners=False: torch.zeros(size[0], *size[2:], 2, dtype=theta.dtype)  # noqa: E731
    for seed in (1, 2):
        with pytest.raises(CheckFailed) as early:
            check("02.affine_grid", wrong, seed=seed)
        assert spec.hint in str(early.value) and spec.recipe not in str(early.value)
        assert "recipe=True" in str(early.value)
    with pytest.raises(CheckFailed) as asked:
        check("02.affine_grid", wrong, seed=3, recipe=True)
    assert f"Recipe: {spec.recipe}" in str(asked.value)
    with pytest.raises(CheckFailed) as third:
        check("02.affine_grid", wrong, seed=4)
    assert spec.hint in str(third.value) and f"Recipe: {spec.recipe}" in str(third.value)
    assert CheckFailed("x")._render_traceback_() == ["x"]  # no traceback around the feedback


def test_every_check_has_a_hint_without_the_recipe():
    for spec in all_checks():
        assert spec.hint and spec.hint != spec.recipe and len(spec.hint) < len(spec.recipe) + 80, spec.id


def test_a_failing_case_brings_its_own_hint(fresh_hints, allow_torch_sampler):
    """A reflection failure gets a reflection hint, not the zeros-padding one."""
    def no_reflection(input, grid, padding_mode="zeros", align_corners=False):
        mode = "border" if padding_mode == "reflection" else padding_mode
        return F.grid_sample(input, grid, padding_mode=mode, align_corners=align_corners)
    with pytest.raises(CheckFailed) as info:
        check("02.bilinear_sample", no_reflection, seed=4)
    message = str(info.value)
    assert "padding_mode='reflection'" in message and "Hint for this case: reflection mirrors" in message
    assert "zeros padding: a neighbour" not in message


def test_numpy_results_must_have_the_asked_dtype():
    from stn_course.sampling import bilinear_sample_np
    spec = get("02.bilinear_sample_np")
    float32 = lambda input, grid, align_corners=False: bilinear_sample_np(  # noqa: E731
        input, grid, "zeros", align_corners).astype(np.float32)
    failure = run_check(dataclasses.replace(spec, forbidden=()), float32).first_failure
    assert failure is not None and "expected dtype float64, got float32" in failure.message


def test_stub_and_crashing_functions_are_reported_not_raised():
    spec = get("02.bilinear_sample")
    def stub(*args, **kwargs):
        raise NotImplementedError
    def crash(*args, **kwargs):
        raise IndexError("index 7 is out of bounds")
    assert "not implemented" in run_check(spec, stub).first_failure.message
    assert "IndexError" in run_check(spec, crash).first_failure.message


def test_learner_cannot_corrupt_the_reference_inputs(allow_torch_sampler):
    """A function that scribbles over its inputs still gets compared with the reference on clean copies."""
    def scribbler(input, grid, **kwargs):
        out = torch_sampler(input, grid, **kwargs)
        input.zero_()
        grid.fill_(7.0)
        return out
    import dataclasses

    values_only = dataclasses.replace(get("02.bilinear_sample"), grad_args=(), forbidden=())
    assert run_check(values_only, scribbler, seed=4, stop_at_first_failure=False).passed
    # with gradients, overwriting a tensor that autograd saved is reported as the learner's backward failing
    assert "backward raised" in run_check(get("02.bilinear_sample"), scribbler, seed=4).first_failure.message


def test_compare_checks_type_shape_dtype_and_values():
    t = torch.ones(2, 3)
    assert compare(t, t.clone())[0]
    assert not compare(t, t.numpy())[0]
    assert "shape" in compare(t, torch.ones(3, 2))[2]
    assert "dtype" in compare(t, t.double())[2]
    ok, err, msg = compare(t, t + 1e-3)
    assert not ok and err == pytest.approx(1e-3, rel=1e-3) and "differ" in msg
    assert not compare(t, torch.full((2, 3), float("nan")))[0]
    assert compare((t, 1.0), (t, 1.0))[0] and not compare((t, 1.0), (t,))[0]
    assert compare(np.ones(3), np.ones(3))[0] and compare(2, 2.0)[0] and not compare(True, 1)[0]


@pytest.mark.parametrize("expected, actual, hidden", [
    (torch.tensor([[0.5403023, -0.8414709]]), torch.tensor([[0.5403023, 0.8414709]]), "-0.84"),  # a flipped sign
    (np.array([1.25, 2.5]), np.array([1.25, 7.0]), "2.5"),
    (-0.8414709, 0.8414709, "-0.84"), (True, False, "True"), ("bilinear", "nearest", "bilinear"),
])
def test_a_failure_message_never_prints_the_reference_value(expected, actual, hidden):
    """A message that says "expected -0.841, got 0.841" lets a learner flip a sign without finding out why: the
    message says where the result is wrong, what the learner returned and roughly how far off, not the answer."""
    ok, _, message = compare(expected, actual)
    assert not ok and message and hidden not in message, message
    if isinstance(expected, torch.Tensor):
        assert "index (0, 1)" in message and "you return 0.841471" in message, message


def test_unknown_and_hidden_ids_are_refused(monkeypatch):
    with pytest.raises(KeyError, match="unknown check id"):
        get("02.no_such_exercise")
    # a hidden check (the grader's) is registered like any other, but check() refuses to run it in a notebook
    import dataclasses

    from stn_course.checks import registry

    hidden = dataclasses.replace(get("02.bilinear_sample"), id="02.bilinear_sample_hidden_demo", hidden=True)
    monkeypatch.setitem(registry._REGISTRY, hidden.id, hidden)
    assert get(hidden.id) is hidden
    assert hidden in all_checks(include_hidden=True) and hidden not in all_checks(include_hidden=False)
    from stn_course.sampling import bilinear_sample
    with pytest.raises(KeyError, match="hidden check, run only by the grader"):
        check(hidden.id, bilinear_sample)


# ----------------------------------------------------------------------------------------------------------------
# Shortcuts: calling the package's own version of the exercise
# ----------------------------------------------------------------------------------------------------------------

import stn_course  # noqa: E402
from stn_course import affine, sampling  # noqa: E402
from stn_course.checks.shortcuts import find_shortcut, resolve  # noqa: E402


@pytest.mark.parametrize("spec", [c for c in all_checks() if c.forbidden], ids=lambda c: c.id)
def test_a_one_line_wrapper_around_the_package_fails(spec):
    """The planted bug of the issue: `def pixel_to_theta(*a): return affine.pixel_to_theta(*a)` used to pass."""
    target = resolve(spec.forbidden[0])
    wrapper = lambda *args, **kwargs: target(*args, **kwargs)  # noqa: E731
    result = run_check(spec, wrapper, seed=0)
    assert not result.passed and spec.forbidden[0] in result.first_failure.message
    assert not run_check(spec, target, seed=0).passed  # the function itself, assigned to the exercise's name


def test_shortcuts_are_found_through_modules_closures_and_helpers():
    names = ["stn_course.affine.pixel_to_theta"]
    def through_module(m, a, b, c):
        return affine.pixel_to_theta(m, a, b, c)
    def through_package(m, a, b, c):
        return stn_course.affine.pixel_to_theta(m, a, b, c)
    def make_closure():
        f = affine.pixel_to_theta
        return lambda *a: f(*a)
    def helper(*a):
        return affine.pixel_to_theta(*a)
    def through_helper(*a):
        return helper(*a)
    def nested(*a):
        inner = lambda: affine.pixel_to_theta(*a)  # noqa: E731
        return inner()
    for fn in (through_module, through_package, make_closure(), through_helper, nested):
        assert find_shortcut(fn, names) == names[0], fn
    # the learner's own helpers and unrelated package functions are fine
    def honest(m, a, b, c):
        return affine.normalization_matrix(a, c) @ m
    assert find_shortcut(honest, names) is None
    assert find_shortcut(sampling.unnormalize, ["stn_course.sampling.bilinear_sample"]) is None


def _lesson_imports(source: Path) -> list[tuple[str, str, object]]:
    """``(statement, bound name, object)`` for every import in a lesson's percent source (magics skipped)."""
    import ast
    import importlib
    import importlib.util

    text = "\n".join("" if line.lstrip().startswith("%") else line for line in source.read_text().splitlines())
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "triton" and importlib.util.find_spec("triton") is None:
                continue  # lesson 7's GPU-only cells (do_bench); triton is not installed here: no shortcut
            module = importlib.import_module(node.module)
            for alias in node.names:
                obj = getattr(module, alias.name, None)
                if obj is None:
                    obj = importlib.import_module(f"{node.module}.{alias.name}")
                found.append((f"from {node.module} import {alias.name}", alias.asname or alias.name, obj))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "triton" and importlib.util.find_spec("triton") is None:
                    continue  # lesson 7 imports it only where it is installed (macOS, Windows: not); no shortcut
                found.append((f"import {alias.name}", alias.asname or alias.name.split(".")[0],
                              importlib.import_module(alias.name)))
    return found


def test_lessons_import_only_what_the_learner_is_not_building():
    """A lesson does not hand the learner the package's version of its own exercises: neither the function nor a
    stn_course module holding it is imported (a Verify cell may import one for comparison, as ``package_...``)."""
    import re
    import types

    root = Path(__file__).resolve().parents[1]
    for source in sorted((root / "solutions" / "src").glob("*.py")):
        ids = re.findall(r'^\w+ = check\("([0-9]{2}\.\w+)", \w+\)', source.read_text(), re.M)
        forbidden = {}
        for check_id in ids:
            spec = get(check_id)
            # (a question's answer key is no shortcut to ban: any right answer has its bytecode; its hidden cases
            # ask other numbers)
            assert spec.forbidden or check_id in NO_PACKAGE_TWIN or isinstance(spec.compare, (Choice, AnswerCompare)), (
                f"{check_id}: which functions would be a shortcut?")
            for name in spec.forbidden:
                if name.startswith(OPS_MATCHING) or name in EXPERIMENTS.get(check_id, ()):
                    continue  # a pattern over dispatcher operators, not an importable name; a question's experiment
                try:
                    forbidden[id(resolve(name))] = name
                except (ImportError, AttributeError):  # torchvision's or SciPy's (no dependency), where not installed
                    assert name.startswith(("torchvision.", "torch.ops.torchvision.", "scipy.")), name
        for statement, bound, obj in _lesson_imports(source):
            if bound.startswith("package_"):
                continue
            assert id(obj) not in forbidden, f"{source.name}: {statement} hands out {forbidden[id(obj)]}"
            if isinstance(obj, types.ModuleType) and obj.__name__.startswith("stn_course"):
                held = [name for name in forbidden.values() if name.startswith("stn_course")
                        and id(getattr(obj, name.rsplit(".", 1)[-1], None)) in forbidden]
                assert not held, f"{source.name}: {statement} hands out {held}"


# exercises with no package function to ban: 07.kernel_address (int32 wrap-around of an address: NumPy's int32
# arithmetic is a fair way to get it, and the package computes addresses only inside its kernels)
NO_PACKAGE_TWIN: set[str] = {"07.kernel_address"}
# A question bans the experiment whose outcome it asks for (the learner must work it out, not run it inside the
# answer), where the lesson itself runs that experiment, or uses the tool for its figures.
EXPERIMENTS = {"02.blog_identity_error": {"stn_course.bug_hunt.blog_sampler", "stn_course.sampling.identity_error"},
               "02.truncation_counterexample": {"stn_course.bug_hunt.truncating_sampler"},
               "06.blocked_dilation": {"stn_course.deform.sampling_positions"},
               "06.fresh_offset_gradient": {"stn_course.deform.bilinear_sample_pixels"},
               "04.referee_blind_spot": {"stn_course.sampling.bilinear_sample"}}


def _float_outputs(value) -> list:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return [value] if value.dtype in (torch.float32, torch.float64, np.float32, np.float64) else []
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _float_outputs(item)]
    return []


def _other_float(value):
    """``value`` with every float32 tensor/array made float64 and every float64 one float32."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float32 if value.dtype == torch.float64 else torch.float64)
    if isinstance(value, np.ndarray) and value.dtype in (np.float32, np.float64):
        return value.astype(np.float32 if value.dtype == np.float64 else np.float64)
    if isinstance(value, (tuple, list)):
        return type(value)(_other_float(v) for v in value)
    return value


def _lenient(spec) -> bool:
    """Lesson 1 compares its matrices in float64 whatever float dtype comes back (its module docstring says so) –
    pixel_to_theta by the pixels its theta reads, in float64 too."""
    from stn_course.checks.lesson01 import PixelToThetaCompare, _compare_any_float

    return spec.compare is _compare_any_float or isinstance(spec.compare, PixelToThetaCompare)
FLOAT_CHECKS = [c for c in all_checks() if any(_float_outputs(c.reference(*case.args, **case.kwargs))
                                               for case in iter_cases(c, 0))]


def test_the_dtype_audit_covers_the_checks_that_return_floats():
    assert len(FLOAT_CHECKS) >= 25


@pytest.mark.parametrize("spec", FLOAT_CHECKS, ids=lambda c: c.id)
def test_every_check_enforces_the_dtype_it_asks_for(spec):
    """The right values in the other float dtype (float32 where float64 is asked, or the reverse) fail every check
    but lesson 1's matrix checks, compared in float64 on purpose – in the visible and in the hidden cases."""
    reference = spec.reference

    def other_dtype(*args, **kwargs):
        return _other_float(reference(*args, **kwargs))

    lenient = _lenient(spec)
    relaxed = dataclasses.replace(spec, forbidden=(), grad_args=())
    for hidden in (False, True):
        result = run_check(relaxed, other_dtype, seed=3, hidden=hidden)
        if lenient:
            assert result.passed, format_result(result)
        else:
            assert not result.passed and "dtype" in result.first_failure.message, (spec.id, hidden)


class _RiggedArray(np.ndarray):
    """An ndarray whose arithmetic always says 'no difference'."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(np.broadcast_shapes(*(np.shape(i) for i in inputs)))


class _RiggedTensor(torch.Tensor):
    """A tensor whose every operation returns zeros (and whose .numpy() lies)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        return torch.zeros_like(out.as_subclass(torch.Tensor)) if isinstance(out, torch.Tensor) else out

    def numpy(self, *args, **kwargs):
        return np.zeros(tuple(self.shape))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, on purpose
def test_check_never_raises_and_is_not_fooled_by_rigged_results():
    """The in-notebook check() runs the learner's code in the learner's process, but it still never crashes, and
    its comparison runs torch's and NumPy's own code on plain copies of what came back."""
    np_spec = dataclasses.replace(get("02.bilinear_sample_np"), forbidden=())
    t_spec = dataclasses.replace(get("02.affine_grid"), forbidden=())

    def exits(*args, **kwargs):
        raise SystemExit(0)

    def matrix_result(input, grid, align_corners=False):
        return np.matrix(np.zeros((2, 2)))

    def rigged_array(input, grid, align_corners=False):
        shape = (input.shape[0], input.shape[1]) + grid.shape[1:3]
        return np.zeros(shape).view(_RiggedArray)

    def rigged_tensor(theta, size, align_corners=False):
        return torch.zeros(size[0], *size[2:], 2, dtype=theta.dtype).as_subclass(_RiggedTensor)

    result = run_check(np_spec, exits)
    assert not result.passed and "SystemExit" in result.first_failure.message and result.status == "error"
    result = run_check(np_spec, matrix_result)
    assert not result.passed and "shape" in result.first_failure.message
    assert not run_check(np_spec, rigged_array).passed
    assert not run_check(t_spec, rigged_tensor).passed
