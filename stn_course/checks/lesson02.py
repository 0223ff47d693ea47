"""Checks for lesson 2 – sampling grids and bilinear interpolation."""
from __future__ import annotations

import numpy as np

from ..sampling import PADDING_MODES, bilinear_sample
from .cases import SAMPLING_SHAPES, random_grid, tensor
from .registry import Case, Check, register


def _bilinear_cases(rng: np.random.Generator):
    for i, (n, c, h, w, h_out, w_out) in enumerate(SAMPLING_SHAPES):
        for align_corners in (False, True):
            padding_mode = PADDING_MODES[i % len(PADDING_MODES)]
            yield Case(
                f"input (N={n}, C={c}, H={h}, W={w}), grid ({n}, {h_out}, {w_out}, 2) with points outside [-1, 1], "
                f"padding_mode={padding_mode!r}, align_corners={align_corners}",
                (tensor(rng, n, c, h, w), random_grid(rng, n, h_out, w_out)),
                {"padding_mode": padding_mode, "align_corners": align_corners},
            )


register(Check(
    id="02.bilinear_sample",
    title="vectorized bilinear sampler (grid_sample semantics)",
    reference=bilinear_sample,
    cases=_bilinear_cases,
    hint="unnormalize with the right align_corners formula, apply the padding mode to the *coordinates*, "
         "and give neighbours outside the image the value 0 (zeros mode) – don't clamp them onto the border.",
    rtol=1e-9, atol=1e-9, points=3,
))
