# ---
# lesson:
#   checks: stn_course.checks.lesson02
#   figures: stn_course.plotting.lesson02
#   explorers: stn_course.widgets.lesson02
#   budget_s: 120
#   dashboard:
#     intro: Zoom and rotate a small photo and compare the samplers and the padding modes.
#     code: |
#       widgets.sampling_explorer()
#   claims:
#   - text: Magnifying a small crop 6×
#     why: the figure's magnification, chosen in the code
#   - text: zoom ≈ 3
#     why: 'an Explore instruction: the value to set the slider to'
#   - text: Zoom in by about 3
#     why: 'a question''s instruction: the value to try'
#   exercises:
#     02.lerp_1d:
#       title: 1-D linear interpolation with zeros outside
#       points: 1
#       hint: >-
#         A point between two samples mixes them in proportion to how close it is; mind negative x and neighbours outside
#         the signal.
#       recipe: >-
#         x0 = floor(x) (not int(x): that truncates towards 0 and is wrong for negative x), x1 = x0 + 1, t = x - x0, result
#         (1 - t) f[x0] + t f[x1], where a neighbour outside 0..L-1 reads 0 (don't clamp it).
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.unnormalize:
#       title: normalized [-1, 1] -> pixel coordinates (both align_corners)
#       points: 1
#       hint: >-
#         Write where -1 and +1 must land in pixels for each align_corners, then the line through those two points.
#       recipe: >-
#         align_corners=True: -1 -> 0 and +1 -> size - 1, so x = (u + 1) / 2 * (size - 1). align_corners=False: -1 ->
#         -0.5 and +1 -> size - 0.5 (the outer pixel edges), so x = ((u + 1) * size - 1) / 2. Check both ends on paper.
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.affine_grid:
#       title: affine sampling grid from scratch (F.affine_grid semantics)
#       points: 2
#       hint: >-
#         The grid is theta applied to the base grid of the output: one (x, y, 1) per output pixel, where x runs along
#         the width.
#       recipe: >-
#         x_t runs along the width (W points), y_t along the height; with align_corners=False scale the linspace by (n
#         - 1) / n, and a 1-pixel side sits at 0. Stack (x_t, y_t, 1), multiply by theta^T and return (N, H, W, 2) with
#         x first.
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.bilinear_sample_np:
#       title: bilinear sampler in NumPy (zeros padding)
#       points: 2
#       hint: >-
#         Every output point reads its four neighbouring pixels and weights each by the area of the opposite rectangle;
#         a neighbour outside reads 0.
#       recipe: >-
#         unnormalize x with W and y with H, x0 = np.floor(x) (not astype(int), which truncates towards 0), weights are
#         areas of opposite rectangles, and a neighbour outside the image reads 0 – mask it, don't clip it onto the border.
#         Index input[n, :, y, x] (rows are y).
#       builds_on:
#       - 02.unnormalize
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.bilinear_sample:
#       title: vectorized bilinear sampler (grid_sample semantics)
#       points: 3
#       hint: >-
#         Same recipe as the NumPy sampler, in torch: the padding mode acts on the coordinates, before you pick the neighbours.
#       recipe: >-
#         unnormalize with the right align_corners formula, apply the padding mode to the *coordinates*, and give neighbours
#         outside the image the value 0 (zeros mode) – don't clamp them onto the border.
#       builds_on:
#       - 02.unnormalize
#       rtol: 1.0e-09
#       atol: 1.0e-09
#       grad_args:
#       - 0
#       - 1
#     02.blog_identity_error:
#       title: 'predict, then run: the blog sampler''s identity error on a numbered image'
#       points: 1
#       hint: >-
#         Follow one output pixel through the blog code: where does column j land after its rescaling, and row i? On an
#         image whose values grow linearly, what does bilinear interpolation return there, and where is it worst?
#       recipe: >-
#         with max_x - 1 = W - 2, column j reads x = j (W - 2)/(W - 1), i.e. j/(W - 1) pixels short; row i reads i/(H - 1)
#         rows short, and one row is worth W. Bilinear reads a linear image exactly, so the error is W i/(H - 1) +
#         j/(W - 1): evaluate it at the last row and column.
#     02.zeros_fade_band:
#       title: 'a checked question: where the zeros padding fades, in normalized coordinates'
#       points: 1
#       hint: >-
#         Work in pixels first: from which position on does a neighbour outside the image get a weight, and where do
#         both neighbours lie outside? Then take both positions to normalized coordinates, in each convention.
#       recipe: >-
#         the fade runs from the first pixel centre x = 0 (full strength) to x = -1 (black); normalize both with lesson
#         1's line – u = 2x/(W - 1) - 1 (align_corners=True) or (2x + 1)/W - 1 (False) – and return (u(0), u(-1)).
# ---

# %% [markdown]
# # Lesson 2 – Sampling grids and bilinear interpolation
#
# ## Goal
#
# Lesson 1 turned a motion into a matrix $\theta$ that tells every output pixel where to read in the input. Those
# places almost never fall on a pixel centre. This lesson builds the two remaining pieces of a spatial transformer:
#
# 1. the **grid generator** – the sampling positions of all output pixels, `affine_grid`, and
# 2. the **sampler** – reading the input *between* pixels by bilinear interpolation, with a policy for points that
#    fall outside (`padding_mode`), exactly like `F.grid_sample`.
#
# **You will build** 1-D linear interpolation, `unnormalize` (by debugging a colleague's), `affine_grid` (deriving
# its pixel centres), a bilinear sampler in NumPy and then a vectorized, differentiable one in PyTorch with all
# three padding modes – and then hunt a bug that lives in popular STN code, predicting its damage before you see it.
#
# **Package modules:** `stn_course.grids` and `stn_course.sampling` (the tested references),
# `stn_course.plotting`, `stn_course.widgets`.
#
# **Prerequisites:** lesson 1 (homogeneous matrices, inverse mapping, `align_corners`).

# %%
FAST = True  # small images so everything runs in seconds on a laptop CPU; False draws bigger pictures

%matplotlib inline
import math

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import plotting, widgets
from stn_course.sampling import GRID_SAMPLE_MODES, nearest_sample  # you write the rest of lesson 2's sampling
from stn_course.images import grid_image, sample_image
from stn_course.checks import check

torch.manual_seed(0)
np.random.seed(0)
SIZE = 48 if FAST else 128
image = sample_image("grace_hopper", size=SIZE)  # (1, 3, H, W) in [0, 1]
photo = image.double()
print("image:", tuple(image.shape))

# %% [markdown]
# ## Theory
#
# ### 1. From 1-D linear interpolation to 2-D bilinear
#
# A signal $f$ known at integer positions $0, \dots, L-1$ is read at a real position $x$ by joining neighbouring
# samples with straight lines. Written as a sum over *all* samples, every sample carries a "tent" kernel of
# half-width 1:
#
# $$ f(x) = \sum_m f[m]\, \max(0,\, 1 - |x - m|). $$
#
# **Outside** the signal we need a rule; the simplest (`zeros`) pretends $f[m] = 0$ there. The figure shows what
# that does near the ends; the grey bands mark the half pixel beyond the signal's edge ($\pm\frac12$ past the last
# sample).

# %%
plotting.plot_interpolation_1d([0.2, 0.9, 0.4, 0.6, 1.0, 0.3]);

# %% [markdown]
# In 2-D, interpolate along $x$ in the two rows $y_0$ and $y_1$, then along $y$ between the two results. Multiplying
# out, each of the four neighbours gets a product weight. Jaderberg et al. write the sampler for a general kernel
# $k$ (eq. 3), then for the integer (nearest) kernel (eq. 4) and the bilinear kernel (eq. 5). For output pixel $i$
# reading the input $U$ (height $H$, width $W$) of channel $c$ at $(x^s_i, y^s_i)$:
#
# $$ V^c_i = \sum_{n}^{H} \sum_{m}^{W} U^c_{nm}\, k(x^s_i - m; \Phi_x)\, k(y^s_i - n; \Phi_y) \qquad (3) $$
#
# $$ V^c_i = \sum_{n}^{H} \sum_{m}^{W} U^c_{nm}\, \delta(\lfloor x^s_i + 0.5 \rfloor - m)\,
# \delta(\lfloor y^s_i + 0.5 \rfloor - n) \qquad (4) $$
#
# $$ V^c_i = \sum_{n}^{H} \sum_{m}^{W} U^c_{nm}\, \max(0, 1 - |x^s_i - m|)\, \max(0, 1 - |y^s_i - n|) \qquad (5) $$
#
# Only four terms of (5) are non-zero, and their weights have a picture: the point splits the cell between the four
# neighbours into four rectangles, and **each neighbour's weight is the area of the rectangle opposite to it** – the
# closer the point, the bigger the opposite rectangle. The weights are non-negative and sum to 1.

# %%
plotting.plot_bilinear_weights(0.3, 0.65);

# %% [markdown]
# (Equation numbers are the paper's; its (6), the gradient with respect to $U$, comes in lesson 4.) Why does an STN
# use (5) rather than (4)? Training needs gradients of the output with respect to the sampling
# positions. Eq. (5) is piecewise linear in $x^s_i$:
#
# $$ \frac{\partial V^c_i}{\partial x^s_i} = \sum_n^H \sum_m^W U^c_{nm}\, \max(0, 1 - |y^s_i - n|)
# \begin{cases} 0 & |m - x^s_i| \ge 1 \\ 1 & m \ge x^s_i \\ -1 & m < x^s_i \end{cases} \qquad (7) $$
#
# while nearest-neighbour reads are piecewise *constant*: their gradient is 0 almost everywhere, so the localisation
# network would never learn where to look.
#
# ### 2. Nearest vs bilinear
#
# Magnifying a small crop 6× shows the difference: nearest copies whole pixels (blocks), bilinear blends them
# (smooth ramps). Both read *exactly* the pixel values at pixel centres.

# %%
zoom = torch.tensor([[[0.18, 0.0, -0.05], [0.0, 0.18, -0.35]]], dtype=torch.float64)  # a small window on the face
zoom_grid = F.affine_grid(zoom, (1, 3, 96, 96), align_corners=False)  # torch's, until you write your own
fig = plotting.show_images({
    "input and the window": photo,
    "nearest (eq. 4)": nearest_sample(photo, zoom_grid),
    "bilinear (eq. 5)": F.grid_sample(photo, zoom_grid, mode="bilinear", align_corners=False),
})
plotting.show_grid(photo, zoom_grid, ax=fig.axes[0], max_lines=6);

# %% [markdown]
# ### 3. The sampling grid
#
# For an output of `size = (N, C, H_out, W_out)`, the grid generator takes the normalized centre
# $(x^t_j, y^t_i)$ of every output pixel $(i, j)$ – in the same `align_corners` convention as lesson 1 – and maps it
# with $\theta$:
#
# $$ \begin{pmatrix} x^s \\ y^s \end{pmatrix} = \theta \begin{pmatrix} x^t_j \\ y^t_i \\ 1 \end{pmatrix}. $$
#
# Which numbers $x^t_j$ are, for $j = 0 \dots W_\text{out}-1$, follows from lesson 1's two conventions (Exercise 3
# asks you for them). The result has shape `(N, H_out, W_out, 2)` and – a classic trap – stores
# **$x$ first**: `grid[n, i, j] = (x, y)` for the output pixel in row $i$, column $j$.

# %% [markdown]
# Drawn on the input (in pixel coordinates), the grid of a rotating, zooming $\theta$ shows where each output
# pixel reads; the red square is where `out[0, 0]` reads:

# %%
theta = torch.tensor([[[0.75, -0.35, 0.1], [0.35, 0.75, 0.0]]], dtype=torch.float64)
plotting.plot_warp(photo, theta, out_size=(16, 16), align_corners=False,
                   titles=("input and a 16×16 sampling grid", "16×16 output"));

# %% [markdown]
# ### 4. From the grid to pixels
#
# The sampler first undoes the normalization of lesson 1, §5 – `unnormalize` – per axis, with the *input's* size:
# with `True`, $u = \pm1$ must land on the centres $0$ and $W-1$; with `False`, on the outer edges $-\frac12$ and
# $W - \frac12$. Exercise 2 makes you debug a version of it.
#
# ### 5. Borders: `zeros`, `border`, `reflection`
#
# A grid may point outside the input (zooming out, translating, rotating corners out). `F.grid_sample` offers:
#
# * `zeros`: neighbours outside the image read 0. The interpolation weights stay as they are, so the picture fades
#   to black near its edge instead of stopping dead – which is also what makes the sampler continuous. (Where
#   exactly the fade starts and ends is a checked question at the end of the lesson.)
# * `border`: clamp the **coordinates** to $[0, W-1]$ before interpolating, so outside points repeat the edge.
# * `reflection`: mirror the coordinates back into the image, as often as needed, about the pixel *centres*
#   $0$ and $W-1$ (`align_corners=True`) or the pixel *edges* $-\frac12$ and $W - \frac12$ (`False`); then clamp.
#
# Padding changes coordinates (`border`, `reflection`) or values (`zeros`) – never the weights formula.

# %%
zoom_out = torch.tensor([[[1.6, -0.5, 0.0], [0.5, 1.6, 0.0]]], dtype=torch.float64)
plotting.plot_padding_modes(photo, zoom_out, align_corners=False);

# %% [markdown]
# ## Build
#
# The exercises go NumPy first (as the classic STN tutorials do), then vectorized PyTorch, then a bug hunt with a
# prediction; Explore ends with one more checked question. After each, the
# `check(...)` cell runs your function on fresh random inputs – 1-pixel and non-square images, batches, points
# outside the image, both `align_corners` – against `stn_course.grids`/`stn_course.sampling` and tells you the worst
# error, the failing case and a hint.
#
# ### Exercise 1 – 1-D linear interpolation
#
# `signal` has shape `(L,)`, `x` holds `P` real positions in pixel units – anywhere, also left of 0 and beyond
# $L-1$. Return the $f(x)$ of §1's tent sum, with $f[m] = 0$ for every $m$ outside $0 \dots L-1$, for all positions
# at once (no Python loop) – and without summing over all $L$ samples: which samples can have a non-zero tent at
# $x$, and what are their weights? Your rule must agree with the tent sum *everywhere*, also where a two-neighbour
# formula is easiest to get wrong. Before you run the check, write down what the tent sum gives – and what your code
# gives – in three places: $x$ exactly on a sample (which two neighbours does your code pick there?), $x$ a little
# left of $0$ (compare with the figure), and a signal of a single sample ($L = 1$). The check tries all three.

# %%
def lerp_1d(signal: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``signal: (L,)`` at positions ``x: (P,)`` (pixel units), 0 outside. ``-> (P,)``"""
    ### BEGIN SOLUTION
    length = signal.shape[0]
    left = torch.floor(x)
    t = x - left

    def read(position: torch.Tensor) -> torch.Tensor:  # f[position], 0 outside 0..L-1
        index = position.long()
        inside = (index >= 0) & (index < length)
        return signal[index.clamp(0, length - 1)] * inside.to(signal.dtype)

    return (1 - t) * read(left) + t * read(left + 1)
    ### END SOLUTION

# %%
lerp_1d = check("02.lerp_1d", lerp_1d)

# %% [markdown]
# <details><summary>The two neighbours and the trap (open after the check passes)</summary>
#
# Only $x_0 = \lfloor x \rfloor$ and $x_1 = x_0 + 1$ are closer than 1; with $t = x - x_0$ their tents give
# $f(x) = (1 - t)\, f[x_0] + t\, f[x_1]$. For $x = -0.3$ the neighbours are $-1$ (outside: reads 0) and $0$, so
# $f(-0.3) = 0.7 f[0]$. `int(-0.3)`, `x.long()`, `tf.cast(x, 'int32')` give `0` – a truncating cast is *not* a floor
# for negative numbers, and it would read $f[0]$ and $f[1]$ there. Remember it for the bug hunt.
# </details>

# %% [markdown]
# ### Exercise 2 – debug `unnormalize`
#
# `unnormalize` turns normalized coordinates (any shape, tensor or NumPy array) into pixel coordinates along an
# axis of `size` pixels, for both conventions (§4); it must work for `size = 1` too. A colleague wrote the version
# below, and their sampler's pictures come out half a pixel off and slightly stretched. Find everything that is wrong
# – test it yourself against what §4 requires, not against what looks plausible – then write a correct version in
# the exercise cell.

# %%
def colleagues_unnormalize(coord, size: int, align_corners: bool):
    """A colleague's version: it is wrong. Where?"""
    if size == 1:
        return coord * 0  # a 1-pixel axis has only one pixel, pixel 0
    if align_corners:
        return (coord + 1) / 2 * size - 0.5
    return (size - 1) * (coord + 1) / 2


# %%
def unnormalize(coord, size: int, align_corners: bool):
    """Normalized [-1, 1] -> pixel coordinates along an axis of ``size`` pixels. Same shape as ``coord``."""
    ### BEGIN SOLUTION
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2
    ### END SOLUTION

# %%
unnormalize = check("02.unnormalize", unnormalize)

# %% [markdown]
# <details><summary>The bug and the derivation (open after the check passes)</summary>
#
# The colleague swapped the conventions: their `True` branch sends $\pm1$ to the *edges* $-\frac12, W-\frac12$ and their
# `False` branch to the *centres* $0, W-1$. The lines through the right ends:
# $$ x = \frac{(u + 1)(W - 1)}{2} \;\; \text{(align\_corners=True)}, \qquad
# x = \frac{(u + 1)\,W - 1}{2} \;\; \text{(align\_corners=False)} $$
# – the inverses of lesson 1's normalization. With `size = 1` the first gives 0 for every $u$ and the second
# $u/2$: the only pixel, at 0, spans $[-\frac12, \frac12]$, and $u = \pm1$ are its edges. The colleague's special
# case ("one pixel, so everything reads pixel 0") is right only for `align_corners=True`; with `False` it makes a
# 1-pixel axis ignore the grid – a half-pixel shift of a 1-pixel-wide image would not fade into the zero padding.
# No special case is needed: the general lines already handle `size = 1`.
# </details>

# %% [markdown]
# ### Exercise 3 – `affine_grid` from scratch
#
# Same signature, output and numbers as `F.affine_grid` (§3), for both conventions and 1-pixel sides, without a
# loop over pixels. The one thing §3 leaves to you is the normalized centres $x^t_j$ of the output pixels: derive
# them from lesson 1 (where do pixel centres $0$ and $W_\text{out}-1$ sit in each convention, and how far apart are
# neighbours?), write down on paper the $x$ values of a 3-pixel-wide output in both conventions, then apply
# $\theta$ to all pixels with one product (lesson 1's `apply_affine` trick). Use the dtype and device of `theta`.

# %%
def affine_grid(theta: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """Sampling grid of an affine map. ``theta: (N, 2, 3)``, ``size = (N, C, H_out, W_out)`` ``-> (N, H_out, W_out, 2)``"""
    ### BEGIN SOLUTION
    n, _, h, w = size

    def centres(steps: int) -> torch.Tensor:
        if steps == 1:
            return torch.zeros(1, dtype=theta.dtype, device=theta.device)
        ends = torch.linspace(-1, 1, steps, dtype=theta.dtype, device=theta.device)
        return ends if align_corners else ends * (steps - 1) / steps

    ys, xs = torch.meshgrid(centres(h), centres(w), indexing="ij")
    homogeneous = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, h * w, 3)
    return (homogeneous @ theta.transpose(1, 2)).reshape(n, h, w, 2)
    ### END SOLUTION

# %%
affine_grid = check("02.affine_grid", affine_grid)

# %% [markdown]
# Compare with what you wrote on paper: the identity $\theta$ on a $2\times3$ output, your grid next to PyTorch's.

# %%
identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
for align_corners in (False, True):
    g = affine_grid(identity, (1, 1, 2, 3), align_corners=align_corners)
    same = torch.allclose(g, F.affine_grid(identity, (1, 1, 2, 3), align_corners=align_corners))
    print(f"align_corners={align_corners}: shape {tuple(g.shape)}, same as F.affine_grid: {same}\n  x:",
          g[0, ..., 0].tolist(), "\n  y:", g[0, ..., 1].tolist())

# %% [markdown]
# <details><summary>The centres (open after the check passes)</summary>
#
# $$ x^t_j = \begin{cases} -1 + \frac{2j}{W_\text{out}-1} & \text{align\_corners=True} \\[2pt]
# \left(-1 + \frac{2j}{W_\text{out}-1}\right)\frac{W_\text{out}-1}{W_\text{out}} = \frac{2j+1}{W_\text{out}} - 1
# & \text{align\_corners=False} \end{cases} $$
#
# – `torch.linspace(-1, 1, n)`, shrunk by $\frac{n-1}{n}$ for `False` (the centres sit half a pixel inside the edges);
# a 1-pixel side sits at 0 in both.
# </details>

# %% [markdown]
# ### Exercise 4 – the sampler in NumPy (zeros padding)
#
# `input` is a NumPy array `(N, C, H, W)`, `grid` `(N, H_out, W_out, 2)`. Implement eq. 5 with zeros padding – but
# only its four non-zero terms per grid point: which four pixels are they (mind points left of or above the image,
# as in Exercise 1), what weight does each get, and what does a neighbour outside the image contribute? Which size
# unnormalizes $x$, which $y$? Fancy indexing `input[batch, :, ys, xs]` with `batch = np.arange(N)[:, None, None]`
# reads all points at once and returns `(N, H_out, W_out, C)`.

# %%
def bilinear_sample_np(input: np.ndarray, grid: np.ndarray, align_corners: bool = False) -> np.ndarray:
    """Bilinear sampling with zeros padding in NumPy. ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape
    x = unnormalize(grid[..., 0], w, align_corners)  # (N, H_out, W_out) pixel coordinates
    y = unnormalize(grid[..., 1], h, align_corners)
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    batch = np.arange(n)[:, None, None]
    out = np.zeros((n, c) + x.shape[1:], dtype=np.result_type(input, grid))
    for dx in (0, 1):
        for dy in (0, 1):
            xn, yn = x0 + dx, y0 + dy
            area = np.maximum(0, 1 - np.abs(x - xn)) * np.maximum(0, 1 - np.abs(y - yn))
            valid = (xn >= 0) & (xn < w) & (yn >= 0) & (yn < h)
            pixels = input[batch, :, np.clip(yn, 0, h - 1), np.clip(xn, 0, w - 1)]  # (N, H_out, W_out, C)
            out += np.moveaxis(pixels * (area * valid)[..., None], -1, 1)
    return out
    ### END SOLUTION

# %%
bilinear_sample_np = check("02.bilinear_sample_np", bilinear_sample_np)

# %% [markdown]
# ### Exercise 5 – the vectorized, differentiable sampler in PyTorch
#
# Now with `F.grid_sample`'s full signature and all three padding modes (§5). Work on flattened points,
# `(N, P)` with `P = H_out·W_out`, and read neighbours with `torch.gather` on the input flattened to `(N, C, H·W)`
# (flat index `y·W + x`). Keep it differentiable: the weights must be computed from the (padded) coordinates so that
# gradients reach the grid. For `reflection`, mirror the coordinates with the helper below – about
# $[0, W-1]$ for `align_corners=True`, about $[-\frac12, W-\frac12]$ for `False` – then clamp to $[0, W-1]$.

# %%
def reflect_coordinates(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Mirror pixel coordinates into ``[low, high]`` as many times as needed (a 1-pixel span collapses to ``low``)."""
    if high <= low:
        return torch.full_like(x, low)
    span = high - low
    distance = (x - low).abs()
    flips = torch.floor(distance / span)
    extra = distance - flips * span
    return torch.where(flips % 2 == 0, low + extra, high - extra)


print(reflect_coordinates(torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0, 3.5, 5.0]), -0.5, 3.5))

# %%
def bilinear_sample(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                    align_corners: bool = False) -> torch.Tensor:
    """Bilinear sampling like ``F.grid_sample``. ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x = unnormalize(grid[..., 0], w, align_corners).reshape(n, -1)  # (N, P)
    y = unnormalize(grid[..., 1], h, align_corners).reshape(n, -1)

    def clamp(v, size):  # into [0, size - 1]; flat *on* the border too, as torch's gradient is there
        return torch.where(v <= 0, 0.0, torch.where(v >= size - 1, size - 1.0, v))

    if padding_mode == "border":
        x, y = clamp(x, w), clamp(y, h)
    elif padding_mode == "reflection":
        edge = 0.0 if align_corners else 0.5  # mirror about pixel centres (True) or pixel edges (False)
        x = clamp(reflect_coordinates(x, -edge, w - 1 + edge), w)
        y = clamp(reflect_coordinates(y, -edge, h - 1 + edge), h)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0  # weights from the fractions: at a pixel centre the slope is U[x0 + 1] - U[x0]
    flat = input.reshape(n, c, h * w)
    out = torch.zeros(n, c, x.shape[1], dtype=input.dtype, device=input.device)
    for xn, yn, weight in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                           (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):  # the opposite area, (N, P)
        valid = (xn >= 0) & (xn <= w - 1) & (yn >= 0) & (yn <= h - 1)
        index = (yn.clamp(0, h - 1) * w + xn.clamp(0, w - 1)).long()
        values = torch.gather(flat, 2, index.unsqueeze(1).expand(n, c, -1))  # (N, C, P)
        out = out + values * (weight * valid).unsqueeze(1)
    return out.reshape(n, c, h_out, w_out)
    ### END SOLUTION

# %%
bilinear_sample = check("02.bilinear_sample", bilinear_sample)

# %% [markdown]
# ## Verify
#
# **1. Side by side with `F.grid_sample`** on the photo, for a $\theta$ that rotates, zooms out and so reads
# outside the input – every padding mode, both conventions, float64:

# %%
theta = torch.tensor([[[1.3, -0.45, 0.15], [0.45, 1.3, -0.1]]], dtype=torch.float64)
print(f"{'padding_mode':>12} | align_corners | max |yours - F.grid_sample| | max |NumPy - torch|")
for padding_mode in GRID_SAMPLE_MODES:  # torch's padding modes, which you wrote
    for align_corners in (False, True):
        grid = affine_grid(theta, photo.shape, align_corners)
        yours = bilinear_sample(photo, grid, padding_mode, align_corners)
        torchs = F.grid_sample(photo, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)
        numpy_error = "" if padding_mode != "zeros" else \
            f"{np.abs(bilinear_sample_np(photo.numpy(), grid.numpy(), align_corners) - yours.numpy()).max():.1e}"
        print(f"{padding_mode:>12} | {align_corners!s:>13} | {(yours - torchs).abs().max():26.1e} | {numpy_error:>18}")

# %%
grid = affine_grid(theta, photo.shape, align_corners=False)
reference = F.grid_sample(photo, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
plotting.plot_differences(reference, {"F.grid_sample": reference,
                                      "your bilinear_sample": bilinear_sample(photo, grid, "reflection")});

# %% [markdown]
# **2. The gradients agree too.** Autograd differentiates your sampler – through the weights – with respect to both
# the input and the grid; `F.grid_sample` has a hand-written backward. (Eq. 6–7 of the paper; lesson 4 writes that
# backward by hand.)

# %%
for padding_mode in ("zeros", "border"):
    inp = photo.clone().requires_grad_()
    grd = affine_grid(theta, photo.shape, align_corners=False).requires_grad_()
    upstream = torch.randn(1, 3, *photo.shape[-2:], dtype=torch.float64)
    ours = torch.autograd.grad((bilinear_sample(inp, grd, padding_mode) * upstream).sum(), (inp, grd))
    theirs = torch.autograd.grad((F.grid_sample(inp, grd, padding_mode=padding_mode, align_corners=False)
                                  * upstream).sum(), (inp, grd))
    print(f"{padding_mode:>6}: max gradient error  d/dinput {(ours[0] - theirs[0]).abs().max():.1e}"
          f"   d/dgrid {(ours[1] - theirs[1]).abs().max():.1e}")

# %% [markdown]
# ## Bug hunt: the identity test
#
# The simplest test of a sampler: the identity $\theta$ must reproduce the input **exactly** – every pixel centre
# maps onto itself, so every read hits a pixel centre with weight 1. A popular TensorFlow spatial-transformer
# tutorial even says so in its docstring ("To test if the function works properly, output image should be
# identical to input image when theta is initialized to identity transform"). Here is its sampler, ported line for
# line to PyTorch (its grid generator is `linspace(-1, 1)`, i.e. `align_corners=True`; the sampler ignores the
# options):

# %%
import ast
import inspect

from stn_course.bug_hunt import blog_sampler  # the tutorial's sampler, kept in the package for the bug hunt's check
from stn_course.sampling import identity_error  # the identity test: max |sampler(image, identity grid) - image|

source = inspect.getsource(blog_sampler)
docstring = ast.parse(source).body[0].body[0]  # the package's docstring names the bug: left out, that's your hunt
lines = source.splitlines()
print("\n".join(lines[:docstring.lineno - 1] + lines[docstring.end_lineno:]))

# %% [markdown]
# ### Exercise 6 – predict, then run: how wrong is it?
#
# We will run it with the identity $\theta$ (`align_corners=True`, the tutorial's convention) on a small image whose
# pixels are numbered $1, 2, 3, \dots$ row by row: pixel $(i, j)$ of an $H\times W$ image holds $W i + j + 1$.
# **Before you run it**, read the code above and predict the largest error, $\max |\text{blog}(\text{image}) -
# \text{image}|$, for any $H, W \ge 2$. Which position does output column $j$ read, which does row $i$ read, and what
# does bilinear interpolation give on an image whose values grow linearly? The check asks other sizes than the one
# printed next, and the blog sampler itself is off limits in your answer.

# %%
def blog_identity_error(height: int, width: int) -> float:
    """Predicted ``max |blog_sampler(numbered, identity grid) - numbered|`` for the numbered ``height × width`` image."""
    ### BEGIN SOLUTION
    # Column j reads x = j (W - 2)/(W - 1), j/(W - 1) pixels short of j; row i reads i/(H - 1) rows short. The image
    # is linear (W y + x + 1), so bilinear reads it exactly: the error W i/(H - 1) + j/(W - 1) peaks at the last pixel.
    return float(width + 1)
    ### END SOLUTION

# %%
blog_identity_error = check("02.blog_identity_error", blog_identity_error)

# %% [markdown]
# Now run it:

# %%
numbered = torch.arange(1.0, 21.0, dtype=torch.float64).view(1, 1, 4, 5)
identity_grid = F.affine_grid(identity, (1, 1, 4, 5), align_corners=True)
print("input:\n", numbered[0, 0])
print("blog sampler, identity theta:\n", blog_sampler(numbered, identity_grid)[0, 0])
print("your sampler, identity theta:\n", bilinear_sample(numbered, identity_grid, align_corners=True)[0, 0])
print(f"largest error: {(blog_sampler(numbered, identity_grid) - numbered).abs().max():.0f}, "
      f"you predicted {blog_identity_error(4, 5):.0f}")

# %% [markdown]
# The identity test as a tool you can point at any sampler is the package's `identity_error(sampler, image,
# align_corners)`: the identity grid of the image's size, the sampler, the largest difference. The table – including a "fix" you will find in forks of that tutorial: use `max_x` instead of `max_x - 1`
# (`rescale_max=0`):

# %%
candidates = {
    "your bilinear_sample": bilinear_sample,
    "F.grid_sample": lambda i, g, align_corners=False: F.grid_sample(i, g, align_corners=align_corners),
    "blog sampler (W - 2)": blog_sampler,
    "blog sampler 'fixed' (W - 1)": lambda i, g, align_corners=False: blog_sampler(i, g, rescale_max=0),
}
print(f"{'sampler':>30} | identity error, align_corners=False | True")
for name, sampler in candidates.items():
    errors = [identity_error(sampler, photo, ac) for ac in (False, True)]
    print(f"{name:>30} | {errors[0]:35.2e} | {errors[1]:.2e}")

# %% [markdown]
# "Exactly" means *to floating-point rounding*: your sampler's error above is of the order of $10^{-15}$ in
# float64 – a few units in the last place, because a normalized pixel centre $(2i + 1)/W - 1$ is not a binary
# fraction and unnormalizing it lands a rounding error away from the integer $i$ – while the blog sampler's errors
# are a sizeable fraction of the pixel values themselves. (`stn_course.sampling` snaps points within rounding of a
# pixel centre onto it, which makes its identity exact to the last bit; your version need not.)

# %%
ours = max(identity_error(bilinear_sample, photo, ac) for ac in (False, True))
blog = identity_error(blog_sampler, photo, True)
print(f"your sampler: {ours:.1e} (float64 rounding); blog sampler: {blog:.2f} (a wrong pixel)")
assert ours < 1e-12 and blog > 0.01  # what the text says

# %%
grid_true = affine_grid(identity, photo.shape, align_corners=True)
plotting.plot_differences(photo, {
    "blog sampler (W - 2)": blog_sampler(photo, grid_true),
    "blog 'fixed' (W - 1)": blog_sampler(photo, grid_true, rescale_max=0),
    "your bilinear_sample": bilinear_sample(photo, grid_true, align_corners=True),
});

# %% [markdown]
# Graph paper makes it obvious: its first and last rows and columns are all lines.

# %%
paper = grid_image(20, 28, spacing=4).double()
paper_grid = affine_grid(identity, paper.shape, align_corners=True)
plotting.show_images({"graph paper": paper, "blog sampler (W - 2)": blog_sampler(paper, paper_grid),
                      "blog 'fixed' (W - 1)": blog_sampler(paper, paper_grid, rescale_max=0),
                      "your bilinear_sample": bilinear_sample(paper, paper_grid, align_corners=True)}, size=2.6);

# %% [markdown]
# **Your turn: explain both failures before opening the answer.** Hints: work out where the identity grid's last
# column $u = +1$ lands in each version; then, for the "fixed" version, evaluate the weights `x1 - x` and `x - x0`
# at $x = W - 1$ *after* the clipping.
#
# <details><summary>Answer</summary>
#
# 1. **The rescaling.** `max_x - 1 = W - 2`, so $x = \frac{(u+1)(W-2)}{2}$ sends $u = +1$ to column $W-2$, not
#    $W-1$. Output column $j$ reads position $j\,\frac{W-2}{W-1}$: the image is stretched, the last row and column
#    are **never read** (look for 5, 10, 15, 20 and 16–19 in the numbered output: they are gone), and the
#    bottom-right output pixel shows input pixel $(H-2, W-2)$.
# 2. **Clipping before the weights.** With the correct $W-1$, the last column has $x = W-1$, so $x_0 = W-1$ and
#    $x_1 = W$, which is clipped to $W-1$. The weights are then computed from the *clipped* indices:
#    $x_1 - x = 0$ and $x - x_0 = 0$, so all four weights vanish and the last row and column come out **black**.
#    Clipping is the wrong tool: compute the weights from the true neighbours and let neighbours outside the image
#    read 0 (or clamp the *coordinate*, for `border` padding) – as your `bilinear_sample` does.
#
# </details>

# %% [markdown]
# ### The truncating cast
#
# Another common slip: `x0 = x.long()` (or `int(x)`, `tf.cast(x, 'int32')`) instead of `floor`. A cast truncates
# towards zero, so for $-1 < x < 0$ it gives $x_0 = 0$ instead of $-1$. The identity test **cannot see it** – the
# identity grid never reads a negative coordinate. A second test can: shift the content right by half a pixel; the
# first column must then be half the first input column blended with half of the zero padding.

# %%
def truncating_sampler(input, grid, padding_mode="zeros", align_corners=False):
    """A sampler identical to yours except for one cast: x0 = x.long() (truncation) instead of floor."""
    n, c, h, w = input.shape
    x, y = unnormalize(grid[..., 0], w, align_corners), unnormalize(grid[..., 1], h, align_corners)
    x0, y0 = x.long().to(x.dtype), y.long().to(y.dtype)  # <- the bug
    result = 0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = x0 + dx, y0 + dy
        w_xy = (1 - (x - cx).abs()) * (1 - (y - cy).abs())
        ok = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        flat_index = (cy.clamp(0, h - 1) * w + cx.clamp(0, w - 1)).long().view(n, 1, -1).expand(n, c, -1)
        result = result + input.reshape(n, c, -1).gather(2, flat_index).view(n, c, *x.shape[1:]) * (w_xy * ok)[:, None]
    return result


half_pixel_right = torch.tensor([[[1.0, 0.0, -1.0 / photo.shape[-1]], [0.0, 1.0, 0.0]]], dtype=torch.float64)
shift_grid = affine_grid(half_pixel_right, photo.shape, align_corners=False)
expected = F.grid_sample(photo, shift_grid, align_corners=False)
for name, sampler in {"your bilinear_sample": bilinear_sample, "truncating sampler": truncating_sampler}.items():
    print(f"{name:>22}: identity error {identity_error(sampler, photo, False):.1e}, half-pixel shift error "
          f"{(sampler(photo, shift_grid) - expected).abs().max():.2f}")

# %% [markdown]
# The moral: the identity test is necessary but not sufficient. The exercise checks therefore also use random grids
# that reach outside the image on every side, both conventions and 1-pixel images.
#
# ## Explore
#
# The explorer zooms and rotates a small grayscale photo. When the grid reaches outside the image, the input panel
# grows a grey margin so the whole grid shows; the dark frame is the image's edge. Try:
#
# * zoom < 1 (reading outside): switch `padding_mode` and watch the frame; toggle `align_corners` with
#   `reflection` – the mirror moves by half a pixel;
# * zoom ≈ 3: `nearest` shows blocks, `bilinear` ramps;
# * rotation 90°: this input is not square, so a rotation in normalized coordinates also stretches the picture
#   (lesson 1, §5) – convert a pixel rotation with `pixel_to_theta` to avoid it.

# %% tags=["skip-when-grading"]
widgets.sampling_explorer()

# %% [markdown]
# ### Questions
#
# The first one is checked; answer the others in a sentence or two before you open the fold.

# %% [markdown]
# **A checked question.** Zoom out in the explorer (zoom < 1) with `zeros` padding: the left border of the picture
# darkens over a band. Where exactly, in **normalized** coordinates $u$ (the grid's units), does the fade start –
# the last $u$ that reads the edge pixel at full strength – and where is it fully black? Answer for a `width`-pixel
# input in both conventions, as the pair `(u_start, u_black)`; the check tries other widths. Then compare with
# `border` and `reflection` in the explorer: what do they do in that band instead?

# %%
def zeros_fade_band(width: int, align_corners: bool) -> tuple[float, float]:
    """``(u_start, u_black)``: the left border's fade with zeros padding, normalized, for ``width >= 2`` pixels."""
    ### BEGIN SOLUTION
    def normalize(x: float) -> float:  # lesson 1's line, pixels -> normalized
        return 2 * x / (width - 1) - 1 if align_corners else (2 * x + 1) / width - 1

    return normalize(0.0), normalize(-1.0)  # full strength at the first centre, black one pixel beyond it
    ### END SOLUTION

# %%
zeros_fade_band = check("02.zeros_fade_band", zeros_fade_band)

# %% [markdown]
# <details><summary>Why (open after the check passes)</summary>
#
# A point between the first centre ($x = 0$) and one pixel beyond it ($x = -1$) mixes the edge pixel with a
# neighbour outside, which reads 0; from $x = -1$ on both neighbours are outside. Normalized with lesson 1's line:
# $(-1, -1 - \frac{2}{W-1})$ with `align_corners=True`, $(\frac1W - 1, -\frac1W - 1)$ with `False` – the band
# straddles the image's edge $u = -1$ there. `border` clamps the *coordinate*, so the band reads the edge pixel;
# `reflection` mirrors it back inside. Neither invents a value.
# </details>

# %% [markdown]
# **1.** Your sampler reproduces the identity to about $10^{-15}$ in float64, not to 0. Where does the error come from, and how large would it be in float32?

# %% [markdown] tags=["answer"]
# From rounding: the grid's normalized coordinates and `unnormalize` round, so the read position is a pixel centre only up to the last bits, and a tiny weight goes to a neighbour. The error is a few units of the dtype's precision times the pixel values: about $10^{-7}$ in float32.

# %% [markdown]
# <details><summary>Answer</summary>
#
# From rounding: the grid's normalized coordinates and `unnormalize` round, so the read position is a pixel centre only up to the last bits, and a tiny weight goes to a neighbour. The error is a few units of the dtype's precision times the pixel values: about $10^{-7}$ in float32.
# </details>

# %% [markdown]
# **2.** Zoom in by about 3: `nearest` shows blocks and `bilinear` shows ramps. Which of the two can a spatial transformer learn through, and why?

# %% [markdown] tags=["answer"]
# Only bilinear. Nearest sampling is piecewise constant in the sampling position: its derivative with respect to the grid is 0 almost everywhere, so no gradient reaches $\theta$. Bilinear sampling is piecewise linear, with a slope (lesson 4).

# %% [markdown]
# <details><summary>Answer</summary>
#
# Only bilinear. Nearest sampling is piecewise constant in the sampling position: its derivative with respect to the grid is 0 almost everywhere, so no gradient reaches $\theta$. Bilinear sampling is piecewise linear, with a slope (lesson 4).
# </details>

# %% [markdown]
# ## Takeaways
#
# * A grid `(N, H_out, W_out, 2)` holds, **x first**, the normalized input position each output pixel reads:
#   $\theta$ times the normalized output pixel centres.
# * Bilinear sampling weights the four neighbours by the areas of the opposite rectangles (eq. 5); it is
#   differentiable in the sampling positions, nearest is not.
# * Padding modes act on coordinates (`border`, `reflection`) or on values (`zeros`), never on the weights.
# * The identity $\theta$ must reproduce the input exactly. The `W - 2` rescaling and clipping the neighbours
#   before computing the weights both fail it; a truncating cast passes it and fails a half-pixel shift. Test with
#   grids that reach outside the image.
# * Next: lesson 3 puts a localisation network in front of the grid generator and sampler – a spatial transformer.
