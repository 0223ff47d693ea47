"""The tests collect and pass where ``triton`` is not installed (macOS and Windows, which have no Triton wheels, or a
Linux set-up without the ``gpu``/``test`` extra):

* the package's Triton kernel modules (those that import ``triton`` at module level) stay out of
  ``--doctest-modules`` collection, since importing them fails;
* the tests that need Triton carry the ``triton`` marker – ``pytestmark = pytest.mark.triton`` in a module, a
  ``@pytest.mark.triton`` on a test, and automatically every test parametrized with ``impl="triton"`` – and are
  skipped with the reason "needs triton".

Where ``triton`` is installed (Linux with the ``test`` extra, and so CI) nothing is left out and nothing is skipped;
``-m "not triton"`` deselects the (slow, interpreted on a CPU) Triton tests by choice. ``.ci/run`` runs the fast loop
in a venv without Triton to prove the other half.

``triton`` is looked up here, never imported: ``tests/conftest.py`` sets ``TRITON_INTERPRET=1`` first on a machine
without CUDA, and Triton reads it when it is imported. The lookup is :func:`stn_course.gpu.triton_available`'s,
repeated so that collection imports nothing from the course before pytest does.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

TRITON = importlib.util.find_spec("triton") is not None
PACKAGE = Path(__file__).resolve().parent / "stn_course"
TESTS = Path(__file__).resolve().parent / "tests"
_IMPORTS_TRITON = re.compile(r"^(?:import|from)\s+triton\b", re.MULTILINE)  # unindented: at module level


def imports_triton_at_module_level(path: Path) -> bool:
    """Whether importing the module at ``path`` imports ``triton``: the kernel modules do (``import triton`` at the
    top), the rest of the package imports them – and so ``triton`` – on first use."""
    return bool(_IMPORTS_TRITON.search(path.read_text(encoding="utf-8")))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without triton, leave the package's kernel modules and the tests' kernel helpers (a module that is not a
    ``test_*.py``, e.g. ``tests/lesson07_kernels.py``) out of doctest collection; otherwise no opinion."""
    if TRITON or collection_path.suffix != ".py":
        return None
    path = collection_path.resolve()
    helper = TESTS in path.parents and not path.name.startswith(("test_", "conftest"))
    if PACKAGE not in path.parents and not helper:
        return None
    return True if imports_triton_at_module_level(collection_path) else None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects, so that ``-m "not triton"`` sees the automatic marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests parametrized with ``impl="triton"`` ``triton``; without triton, skip every ``triton`` test."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("impl") == "triton":
            item.add_marker(pytest.mark.triton)
        if not TRITON and item.get_closest_marker("triton") is not None:
            item.add_marker(pytest.mark.skip(reason="needs triton"))
    # The browser tests last (a stable sort: their own order kept): CI runs its Python-3.10 step beside the main
    # run's first minutes, and the grader's tests, budgeted in CPU seconds, take that load as they are built to,
    # where the dashboards' wall-clock waits would not.
    browser = Path(__file__).resolve().parent / "tests" / "browser"
    items.sort(key=lambda item: browser in Path(str(item.fspath)).parents)
