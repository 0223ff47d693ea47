"""Helpers for the per-lesson mutation tests: a correct solution passes a check on every seed, and a known bug
fails it on every seed (a check that catches a bug only for lucky inputs would let students through)."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from stn_course.checks import Check, format_result, run_check
from stn_course.checks import get as _get

SEEDS = (0, 1, 2, 17)


def get(check_id: str) -> Check:
    """The check with its cases and comparison only: the mutants below are built on the package's own functions,
    so the scan for calls of those (tested in tests/test_checks.py) would fail them for the wrong reason."""
    return dataclasses.replace(_get(check_id), forbidden=())


def passes(check_id: str, fn: Callable, seeds: Iterable[int] = SEEDS) -> bool:
    """True if ``fn`` passes ``check_id`` for every seed."""
    return all(run_check(get(check_id), fn, seed).passed for seed in seeds)


def fails(check_id: str, fn: Callable, seeds: Iterable[int] = SEEDS) -> bool:
    """True if ``fn`` fails ``check_id`` for every seed."""
    return all(not run_check(get(check_id), fn, seed).passed for seed in seeds)


def assert_passes(check_id: str, fn: Callable, seeds: Iterable[int] = SEEDS) -> None:
    for seed in seeds:
        result = run_check(get(check_id), fn, seed)
        assert result.passed, format_result(result)


def assert_fails(check_id: str, fn: Callable, seeds: Iterable[int] = SEEDS) -> None:
    lucky = [seed for seed in seeds if run_check(get(check_id), fn, seed).passed]
    assert not lucky, f"{check_id} let a known bug pass for seeds {lucky}"
