"""The grader's suites run notebooks in the sandbox: they carry the ``grading`` marker (``-m "not grading"`` skips
them in the fast loop; CI runs them)."""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.grading)
