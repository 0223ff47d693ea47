"""The instructor's secret: making a strong one, and warning about a weak one (classroom grading).

Every case's seed is an HMAC of the secret (:func:`~stn_course.grading.grader.derive_seed`), so the visible seeds
that feedback prints cannot be turned back into the secret – but a *guessable* secret can still be found by trying
guesses offline against one printed seed. ``stn-course grade --new-seed FILE`` writes 32 random bytes (hex) to a
file only its owner can read; a secret that is short or drawn from few symbols gets a warning.
"""
from __future__ import annotations

import math
import os
import secrets
from collections import Counter
from pathlib import Path

__all__ = ["new_seed", "weakness", "MIN_BITS"]

MIN_BITS = 80.0  # below this an offline guess is within reach


def new_seed(path: Path) -> str:
    """Write a fresh random secret to ``path`` (mode 600, refusing to overwrite) and return it."""
    path = Path(path)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def weakness(secret: str) -> str | None:
    """Why ``secret`` is guessable (an upper bound on its entropy below :data:`MIN_BITS`), or None.

    >>> weakness("spring2026") is not None
    True
    >>> weakness(secrets.token_hex(32)) is None
    True
    """
    if not secret:
        return "it is empty"
    counts = Counter(secret)
    per_symbol = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    bits = per_symbol * len(secret)
    if len(secret) < 16 or bits < MIN_BITS:
        return (f"it has {len(secret)} characters and at most about {bits:.0f} bits of entropy (want "
                f"{MIN_BITS:.0f}+): a student could guess it offline from a visible case's seed; make one with "
                "stn-course grade --new-seed FILE")
    return None
