"""The check registry's public API in one place (every lesson): every exercise check is data, run the same way by
the notebooks' ``check()``, the classroom grader and the mutation tests.

The machinery lives in one module per concern, re-exported here:

* :mod:`.model` – what a check is: :class:`Case`, :class:`Check`, :class:`CaseResult`, :class:`CheckResult`, the
  statuses (:data:`STATUSES`) and the exceptions a run turns into statuses;
* :mod:`.catalog` – :func:`register`, :func:`get`, :func:`all_checks`, and the one function that imports the
  lessons' check modules (``stn_course.checks.lessonNN``) on first use, so adding a lesson needs no edit here;
* :mod:`.comparison` – :func:`compare` and :func:`plain`;
* :mod:`.calls` – :func:`iter_cases` (seeded case lists), :func:`call_case` (calls on fresh copies),
  :func:`gradients_of`;
* :mod:`.running` – :func:`run_check`, :class:`Attempt` (how a run reaches the learner's function, here or in the
  grader's sandboxed process), :func:`compare_gradients`, :func:`unwrap_kernel_error`.
"""
from __future__ import annotations

from .calls import call_case, gradients_of, iter_cases
from .catalog import _REGISTRY, all_checks, get, register  # noqa: F401 – _REGISTRY: the tests add checks to it
from .comparison import compare, plain
from .model import (BANNED, ERROR, FAILED, MISSING, PASSED, STATUSES, TIMED_OUT, BannedCall, CallTimeout, Case,
                    CaseResult, Check, CheckResult, LearnerError)
from .running import Attempt, compare_gradients, run_check, unwrap_kernel_error

__all__ = ["Case", "Check", "CaseResult", "CheckResult", "Attempt", "BannedCall", "CallTimeout", "LearnerError",
           "STATUSES", "PASSED", "FAILED", "ERROR", "TIMED_OUT", "MISSING", "BANNED", "register", "call_case",
           "gradients_of", "get", "all_checks", "run_check", "compare", "compare_gradients", "iter_cases", "plain",
           "unwrap_kernel_error"]
