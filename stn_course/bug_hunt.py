"""Samplers, grids and tiles with the bugs of popular spatial-transformer code: the lessons' bug hunts.

Lesson 2 shows :func:`blog_sampler` and measures it with the identity test (:func:`stn_course.sampling.
identity_error`); its check ``02.truncation_counterexample`` asks for a point where :func:`truncating_sampler`, which
passes that test, is wrong. Every function here takes ``grid_sample``'s arguments,
``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``, and is wrong on purpose.

Lesson 3's hunt is :func:`colleague_projective_grid` (a black box the lesson imports; :func:`judge_counterexamples`
says whether the learner's counterexamples expose its failures, without naming them); lesson 7's is
:func:`colleague_pixels`, a program's tile. Every function here is wrong on purpose, and none is a check's reference.
"""
from __future__ import annotations

import torch

from .grids import base_grid, projective_grid
from .sampling import _flat_index, bilinear_sample, gather_corners, unnormalize

__all__ = ["blog_sampler", "swapped_xy_sampler", "clamping_sampler", "truncating_sampler",
           "colleague_projective_grid", "judge_counterexamples", "colleague_pixels"]


def blog_sampler(img: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros", align_corners: bool = False,
                 rescale_max: int = 1) -> torch.Tensor:
    """The bilinear sampler of a popular TensorFlow STN tutorial, ported line for line (``B, H, W, C`` there,
    ``N, C, H, W`` here) with its bugs; it ignores ``padding_mode`` and ``align_corners``.

    ``x = 0.5 * ((x + 1) * (max_x - rescale_max))``: ``rescale_max=1`` is the original code (``W - 2``), ``0`` the
    "fix" found in its forks (``W - 1``); either way the neighbour indices are clipped to the image *before* the
    weights are computed from them.

    >>> image = torch.arange(1.0, 7.0).view(1, 1, 2, 3)
    >>> blog_sampler(image, torch.tensor([[[[1.0, 1.0]]]]))  # the bottom-right corner reads pixel (0, 1)
    tensor([[[[2.]]]])
    """
    H, W = img.shape[-2:]
    max_y, max_x = H - 1, W - 1
    # rescale x and y to [0, W-1/H-1]
    x = 0.5 * ((grid[..., 0] + 1.0) * (max_x - rescale_max))
    y = 0.5 * ((grid[..., 1] + 1.0) * (max_y - rescale_max))
    # grab 4 nearest corner points for each (x_i, y_i)
    x0, y0 = torch.floor(x).long(), torch.floor(y).long()
    x1, y1 = x0 + 1, y0 + 1
    # clip to range [0, H-1/W-1] to not violate img boundaries
    x0, x1, y0, y1 = x0.clamp(0, max_x), x1.clamp(0, max_x), y0.clamp(0, max_y), y1.clamp(0, max_y)
    b = torch.arange(img.shape[0], device=img.device).view(-1, 1, 1)
    Ia, Ib = img[b, :, y0, x0], img[b, :, y1, x0]  # (N, H_out, W_out, C)
    Ic, Id = img[b, :, y0, x1], img[b, :, y1, x1]
    # recast as float for delta calculation
    x0, x1, y0, y1 = x0.to(x.dtype), x1.to(x.dtype), y0.to(x.dtype), y1.to(x.dtype)
    wa, wb = ((x1 - x) * (y1 - y))[..., None], ((x1 - x) * (y - y0))[..., None]
    wc, wd = ((x - x0) * (y1 - y))[..., None], ((x - x0) * (y - y0))[..., None]
    return (wa * Ia + wb * Ib + wc * Ic + wd * Id).permute(0, 3, 1, 2)


def swapped_xy_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                       align_corners: bool = False) -> torch.Tensor:
    """A sampler that reads ``(y, x)`` from the grid as if it were ``(x, y)``."""
    return bilinear_sample(input, grid.flip(-1), padding_mode, align_corners)


def clamping_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                     align_corners: bool = False) -> torch.Tensor:
    """A sampler that clamps out-of-range neighbours onto the border instead of reading zeros."""
    return bilinear_sample(input, grid, "border", align_corners)


def truncating_sampler(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                       align_corners: bool = False) -> torch.Tensor:
    """A colleague's zeros-padding sampler (it ignores ``padding_mode``): right but for one cast, ``x.long()``.

    A cast truncates towards zero, so left of (or above) the image it picks the neighbours ``x0 = 0, 1`` where
    floor gives ``-1, 0`` (or ``-2, -1``), and ``1 - |x - x0|`` is then a *negative* weight. The identity grid and
    any grid inside ``[-1, 1]`` with ``align_corners=True`` never read a negative coordinate, so both pass.

    >>> image = torch.tensor([[[[1.0, 2.0]]]])
    >>> truncating_sampler(image, torch.tensor([[[[-1.0, 0.0]]]]), align_corners=False)  # x = -0.5: 0.5 expected
    tensor([[[[-0.5000]]]])
    """
    n, c, h, w = input.shape
    x = unnormalize(grid[..., 0], w, align_corners).reshape(n, 1, -1)
    y = unnormalize(grid[..., 1], h, align_corners).reshape(n, 1, -1)
    x0, y0 = x.long().to(x.dtype), y.long().to(y.dtype)  # the top-left neighbour
    xs = torch.cat([x0, x0 + 1, x0, x0 + 1], 1)  # (N, 4, P), corners y0x0, y0x1, y1x0, y1x1
    ys = torch.cat([y0, y0, y0 + 1, y0 + 1], 1)
    index, inside = _flat_index(xs, ys, h, w)
    weights = (1 - (x - xs).abs()) * (1 - (y - ys).abs())
    return (gather_corners(input, index, inside) * weights[:, None]).sum(2).view(n, c, *grid.shape[1:3])


# -- lesson 3: a projective grid ------------------------------------------------------------------------------

def colleague_projective_grid(H: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """Lesson 3's black box: a colleague's projective grid with two bugs (Π applied to row vectors, i.e. Πᵀ to the
    columns; the output's height and width swapped) that its identity test hides. Not a reference of any check;
    the lesson's fold names the bugs. ``H (N, 3, 3)``, ``size = (N, C, H_out, W_out)``."""
    n, _, w_out, h_out = size
    pixels = base_grid(h_out, w_out, align_corners, H.dtype).reshape(1, -1, 3)  # rows (x_t, y_t, 1)
    mapped = pixels @ H  # (N, P, 3)
    return (mapped[..., :2] / mapped[..., 2:]).reshape(n, h_out, w_out, 2)


def _colleague_variant(H: torch.Tensor, size, align_corners: bool, transposed: bool, swapped: bool) -> torch.Tensor:
    """The colleague's grid with only some of its bugs (for :func:`judge_counterexamples`, never shown)."""
    n, _, h_out, w_out = size
    if swapped:
        h_out, w_out = w_out, h_out
    pixels = base_grid(h_out, w_out, align_corners, H.dtype).reshape(1, -1, 3)
    mapped = pixels @ (H if transposed else H.transpose(1, 2))
    return (mapped[..., :2] / mapped[..., 2:]).reshape(n, h_out, w_out, 2)


def _differs(grid: torch.Tensor, expected: torch.Tensor) -> bool:
    return grid.shape != expected.shape or not torch.allclose(grid, expected, rtol=1e-9, atol=1e-9, equal_nan=True)


# the fewest output pixels that expose each kind of failure of colleague_projective_grid
_SMALLEST = {"transposed": 1, "swapped": 2}


def judge_counterexamples(counterexamples) -> list[str]:
    """Lesson 3's hunt, judged without naming the bugs: for each ``(H, size, align_corners)`` of the learner, whether
    ``colleague_projective_grid`` fails on it (wrong shape or wrong points, against the package's
    ``projective_grid``) and whether a smaller output would show the same; then whether the list exposes every kind
    of failure the colleague's grid has. Returns the lines to print."""
    if not counterexamples:
        return ["no counterexamples yet: put your hunt's smallest counterexample for each kind of failure into "
                "`counterexamples` as (H (N, 3, 3), size (N, C, H_out, W_out), align_corners) and rerun"]
    lines, found = [], set()
    for i, entry in enumerate(counterexamples, 1):
        try:
            H, size, align_corners = entry
            H = torch.as_tensor(H, dtype=torch.float64)
            H = H[None] if H.dim() == 2 else H
            size = tuple(int(v) for v in size)
            expected = projective_grid(H, size, align_corners=align_corners)
            theirs = colleague_projective_grid(H, size, align_corners)
        except Exception as error:  # a malformed entry: say so, judge the others
            lines.append(f"#{i}: cannot run it ({type(error).__name__}: {error}); the form is (H (N, 3, 3), "
                         "(N, C, H_out, W_out), align_corners)")
            continue
        if not _differs(theirs, expected):
            lines.append(f"#{i}: the colleague's grid is right here – not a counterexample")
            continue
        kinds = {kind for kind, flags in (("transposed", (True, False)), ("swapped", (False, True)))
                 if _differs(_colleague_variant(H, size, align_corners, *flags), expected)}
        found |= kinds
        what = "the wrong shape" if theirs.shape != expected.shape else "wrong points"
        pixels = size[2] * size[3]
        smaller = pixels > min(_SMALLEST[kind] for kind in kinds) if kinds else False
        lines.append(f"#{i}: exposes a failure ({what}, {size[2]}×{size[3]} output)"
                     + ("; a smaller output shows it too" if smaller else "; no smaller output shows it"))
    lines.append("your list exposes every kind of failure of the colleague's grid" if found == set(_SMALLEST) else
                 "there is a kind of failure that none of your counterexamples exposes: hunt on")
    return lines


# -- lesson 7: a program's tile --------------------------------------------------------------------------------

def colleague_pixels(pid: int, block: int, h_out: int, w_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Lesson 7's black box: a colleague's tile ``-> (rows, cols, live)``, each ``(block,)``, with two bugs that his
    tests (square outputs, blocks that divide them) hide: rows counted ``H_out`` long, and ``live`` letting the lane
    numbered exactly ``H_out·W_out`` through. Not a reference of any check; the lesson's fold names the bugs."""
    offsets = block * pid + torch.arange(block)
    rows, cols = offsets // h_out, offsets % h_out
    live = offsets <= h_out * w_out
    return rows, cols, live
