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
#   exercises:
#     02.affine_grid:
#       title: affine sampling grid from scratch (F.affine_grid semantics)
#       points: 2
#       hint: >-
#         On paper first: the x values of a 3-pixel-wide output in both conventions (where do its first and last centres
#         sit, how far apart are neighbours?), then of a 1-pixel-wide one. The grid is theta applied to one (x, y, 1) per
#         output pixel, x along the width.
#       recipe: >-
#         x_t runs along the width (W points), y_t along the height; with align_corners=False scale the linspace by (n
#         - 1) / n, and a 1-pixel side sits at 0. Stack (x_t, y_t, 1), multiply by theta^T and return (N, H, W, 2) with
#         x first.
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.bilinear_sample_np:
#       title: bilinear sampler in NumPy (zeros padding), from the normalized grid to the pixels
#       points: 3
#       hint: >-
#         Three things to derive, each on paper first: the line that sends u = -1 and u = +1 where §4 says (per axis, the
#         input's size), which pixels can be closer than 1 to the point (also left of or above the image), and what a
#         neighbour outside the image contributes.
#       recipe: >-
#         x = (u + 1) / 2 * (W - 1) (align_corners=True) or ((u + 1) W - 1) / 2 (False), y the same with H; x0 =
#         np.floor(x) (not astype(int), which truncates towards 0), x1 = x0 + 1, the weights are the areas of the
#         opposite rectangles, and a neighbour outside the image reads 0 – mask it, don't clip it onto the border. Index
#         input[n, :, y, x] (rows are y).
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     02.centre_slope:
#       title: 'predict: the slope F.grid_sample''s backward returns exactly on a pixel centre, per padding mode'
#       points: 1
#       hint: >-
#         Exactly at x = k the forward has picked two neighbours and weights; the backward differentiates that
#         formula, not the picture. Which two neighbours does floor pick at an integer, what do they read with this
#         padding, is the padded coordinate on a clamp bound, and how many pixels is one unit of u?
#       recipe: >-
#         The neighbours are k and k + 1 (floor(k) = k), so the slope is the forward difference v[k + 1] - v[k]
#         (v[W] reads 0 with zeros padding), times dx/du = (W - 1)/2 (True) or W/2 (False). With border and
#         reflection an end pixel's centre is a clamp bound: 0 there.
#     02.bilinear_sample:
#       title: vectorized, differentiable bilinear sampler with all three padding modes (grid_sample semantics)
#       points: 3
#       hint: >-
#         The padding mode acts on the coordinates, before you pick the neighbours; for reflection, draw the mirrored
#         coordinate as a function of x over a few periods – and for a 1-pixel side. For the gradients exactly on a
#         clamp bound or a mirror point, call your clamp and your mirror distance on a one-element tensor sitting
#         exactly there (requires_grad=True) and look at what backward gives.
#       recipe: >-
#         unnormalize, then border: clamp x to [0, W - 1]; reflection: with low = 0, high = W - 1 (True) or -1/2, W -
#         1/2 (False), d = |x - low|, flips = floor(d / (high - low)), r = d - flips (high - low), x = low + r for even
#         flips and high - r for odd ones (a zero-length interval: x = low), then clamp. Zeros: neighbours outside read 0.
#         Clamp with torch.where(x <= 0, 0, ...) – torch.clamp passes the gradient on its bounds – and take |x - low|
#         with abs, not a square root (NaN gradient at 0).
#       rtol: 1.0e-09
#       atol: 1.0e-09
#       grad_args:
#       - 0
#       - 1
#     02.blog_identity_error:
#       title: 'predict, then run: the identity error of the blog sampler and of its "fix", on a numbered image'
#       points: 1
#       hint: >-
#         Follow one output pixel through the blog code, for each version: where does column j land after its
#         rescaling, and row i? On an image whose values grow linearly, what does bilinear interpolation return there,
#         and where is it worst? Then the last column, x at its largest: which neighbours does floor pick, what does
#         the clipping make of them, and which weights follow?
#       recipe: >-
#         rescale_max=1: with max_x - 1 = W - 2, column j reads x = j (W - 2)/(W - 1), i.e. j/(W - 1) pixels short;
#         row i reads i/(H - 1) rows short, and one row is worth W. Bilinear reads a linear image exactly, so the error
#         is W i/(H - 1) + j/(W - 1): evaluate it at the last row and column. rescale_max=0: the last column has x =
#         W - 1, x1 = W is clipped to W - 1, so both x-weights are 0 and the last row and column read 0: the error is
#         the largest pixel there.
#     02.truncation_counterexample:
#       title: 'bug hunt: a point where the colleague''s sampler is wrong'
#       points: 2
#       hint: >-
#         Compare the colleague's code with yours line by line: where do its neighbours or weights differ from yours, for
#         which pixel coordinates – and which normalized (u, v) reads there, for this size and convention?
#       recipe: >-
#         x.long() truncates towards 0: for -2 < x < 0 (x not -1) it picks other neighbours than floor, and 1 - |x - cx|
#         is negative for the wrong one. Take x = -1.5 (pixel 0 gets weight -1/2, where zeros padding reads 0) on row y =
#         0, and normalize both with lesson 1's line: u = 2x/(W - 1) - 1 (True) or (2x + 1)/W - 1 (False). A 1-pixel
#         side with align_corners=True pins its coordinate at 0: use the other axis.
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
# **You will build** `affine_grid` (deriving its pixel centres), a bilinear sampler in NumPy – the way from the
# normalized grid to pixels, the neighbours and the zeros padding are yours to derive – and then a vectorized,
# differentiable one in PyTorch with all three padding modes (the reflection is yours too). Then you hunt two bugs
# of popular STN code: you predict the damage of one before you see it, and for the other – which passes every test
# its author wrote – you find an input that exposes it.
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
# Which numbers $x^t_j$ are, for $j = 0 \dots W_\text{out}-1$, follows from lesson 1's two conventions (Exercise 1
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
# $W - \frac12$. The line between those ends is yours to derive in Exercise 2.
#
# ### 5. Borders: `zeros`, `border`, `reflection`
#
# A grid may point outside the input (zooming out, translating, rotating corners out). `F.grid_sample` offers:
#
# * `zeros`: the image is surrounded by pixels of value 0 – a neighbour outside the image reads 0. (What that
#   does to a point near the edge is Exercise 2's question.)
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
# The exercises build the grid generator, then the sampler – NumPy first (as the classic STN tutorials do), then
# vectorized PyTorch – then hunt two bugs. After each, the
# `check(...)` cell runs your function on fresh random inputs – 1-pixel and non-square images, batches, points
# outside the image, both `align_corners` – against `stn_course.grids`/`stn_course.sampling` and tells you the worst
# error, the failing case and a hint.
#
# ### Exercise 1 – `affine_grid` from scratch
#
# Same signature, output and numbers as `F.affine_grid` (§3), for both conventions and every output size, without a
# loop over pixels; use the dtype and device of `theta`. The normalized centres $x^t_j$ of the output pixels are
# yours: lesson 1 fixed what $u = \pm1$ marks in each convention, and in both the normalized frame is centred on the
# image (its centre is 0). **Predict first, on paper:** what does `torch.linspace(-1, 1, 1)` return, and where must the
# one centre of a 1-pixel side sit in each convention? The cell after the check prints both, on a $1\times3$ output.
#
# **And commit to one more, from grid to pixels:** $\theta = \begin{pmatrix} 0.5 & 0.25 & 0.25 \\ 0 & -1 & 0
# \end{pmatrix}$, an output of $H_\text{out} \times W_\text{out} = 2 \times 4$, an input of $H \times W = 3 \times 6$
# pixels, `align_corners=False`: at which input pixel coordinate $(x, y)$ does output pixel $(i, j) = (1, 3)$ – row 1,
# column 3 – read? It takes the output centres you are about to write, $\theta$ (§3), and §4's ends for the input's
# pixels. Write it in the cell below; a cell after the check prints where torch reads.

# %%
predicted_pixel = None  # (x, y) in input pixels, where output pixel (row 1, column 3) reads: worked out by hand

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
# A one-step `linspace`, and the identity $\theta$ on a $1\times3$ output (one row: its $y$ is a 1-pixel side), your grid
# next to PyTorch's. PyTorch prints a `UserWarning` about unit-size grids with `align_corners=True`: it is expected
# (the fold below says why), not an error.

# %%
identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
print("torch.linspace(-1, 1, 1):", torch.linspace(-1, 1, 1).tolist())
for align_corners in (False, True):
    g = affine_grid(identity, (1, 1, 1, 3), align_corners=align_corners)
    same = torch.allclose(g, F.affine_grid(identity, (1, 1, 1, 3), align_corners=align_corners))
    print(f"align_corners={align_corners}: shape {tuple(g.shape)}, same as F.affine_grid: {same}\n  x:",
          g[0, ..., 0].tolist(), "\n  y:", g[0, ..., 1].tolist())

# %% [markdown]
# Your prediction against torch: where output pixel $(1, 3)$ reads, measured by sampling two images whose pixels hold
# their own column and their own row index (bilinear sampling reproduces such a ramp exactly inside the image).

# %%
theta_read = torch.tensor([[[0.5, 0.25, 0.25], [0.0, -1.0, 0.0]]], dtype=torch.float64)
torch_grid = F.affine_grid(theta_read, (1, 1, 2, 4), align_corners=False)
column_index = torch.arange(6, dtype=torch.float64).expand(1, 1, 3, 6)
row_index = torch.arange(3, dtype=torch.float64).view(3, 1).expand(1, 1, 3, 6)
read_at = [F.grid_sample(image, torch_grid, align_corners=False)[0, 0, 1, 3].item() for image in (column_index, row_index)]
print("your prediction:", predicted_pixel)
print("output pixel (1, 3) reads input pixel (x, y) = (%.3f, %.3f)" % tuple(read_at),
      "| your grid holds (u, v) =", affine_grid(theta_read, (1, 1, 2, 4), align_corners=False)[0, 1, 3].tolist())

# %% [markdown]
# <details><summary>The centres (open after the check passes)</summary>
#
# $$ x^t_j = \begin{cases} -1 + \frac{2j}{W_\text{out}-1} & \text{align\_corners=True} \\[2pt]
# \left(-1 + \frac{2j}{W_\text{out}-1}\right)\frac{W_\text{out}-1}{W_\text{out}} = \frac{2j+1}{W_\text{out}} - 1
# & \text{align\_corners=False} \end{cases} $$
#
# – `torch.linspace(-1, 1, n)`, shrunk by $\frac{n-1}{n}$ for `False` (the centres sit half a pixel inside the edges);
# a 1-pixel side sits at 0 in both: its one centre is the image's centre. (The centres formula for `False` gives 0
# there by itself; for `True` it is $0/0$, and a one-step `linspace(-1, 1, 1)` returns $-1$ – the end of the frame, not its
# middle. `F.affine_grid` special-cases it, and warns.)
#
# **Output pixel $(1, 3)$.** Column $j = 3$ of 4 gives $x^t = \frac74 - 1 = 0.75$, row $i = 1$ of 2 gives
# $y^t = \frac32 - 1 = 0.5$ – $x$ from the column, $y$ from the row. $\theta$ maps them to
# $(0.5 \cdot 0.75 + 0.25 \cdot 0.5 + 0.25,\; -0.5) = (0.75, -0.5)$, and the input's ends $u = \pm1 \mapsto -\frac12,
# W - \frac12$ put that at $x = -\frac12 + \frac{0.75 + 1}{2} \cdot 6 = 4.75$, $y = -\frac12 + \frac{-0.5 + 1}{2}
# \cdot 3 = 0.25$.
# </details>

# %% [markdown]
# ### Exercise 2 – the sampler in NumPy: from the grid to the pixels
#
# `input` is a NumPy array `(N, C, H, W)`, `grid` `(N, H_out, W_out, 2)` in normalized coordinates (x first), and
# `align_corners` either convention. Return `(N, C, H_out, W_out)`: exactly what `F.grid_sample(input, grid,
# padding_mode="zeros", align_corners=align_corners)` returns, for every size and every point, however far outside.
# §4 says where $u = \pm1$ land in each convention; the pixel positions in between, which terms of eq. 5 are non-zero
# (compute only those, no sum over all pixels) and what the zeros padding does are yours to derive.
#
# **Predict first, on paper.** A single row of four pixels holds $1, 3, 7, 15$ (`row`, below the check). What does
# `F.grid_sample(row, grid, padding_mode="zeros")` return at $u = +1$, $u = 1 + \frac14$ and $u = -1$ ($v = 0$), for
# `align_corners=False` and for `True`? Write your six numbers down before you write the sampler, and build it so that it
# returns them: the check's first case after the identity is this row at these points (and the grader asks other
# sizes, 1-pixel ones included); a wrong value there is named by its point and the kind of slip. The cell after the
# check prints torch's answers next to yours. (Fancy indexing `input[batch, :, ys, xs]` with
# `batch = np.arange(N)[:, None, None]` reads all points at once and returns `(N, H_out, W_out, C)`.)

# %%
def bilinear_sample_np(input: np.ndarray, grid: np.ndarray, align_corners: bool = False) -> np.ndarray:
    """Bilinear sampling with zeros padding in NumPy. ``(N, C, H, W), (N, H_out, W_out, 2) -> (N, C, H_out, W_out)``"""
    ### BEGIN SOLUTION
    def to_pixels(coord: np.ndarray, size: int) -> np.ndarray:  # normalized -> pixel coordinates along one axis
        if align_corners:
            return (coord + 1) / 2 * (size - 1)
        return ((coord + 1) * size - 1) / 2

    n, c, h, w = input.shape
    x = to_pixels(grid[..., 0], w)  # (N, H_out, W_out) pixel coordinates
    y = to_pixels(grid[..., 1], h)
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
# Your predictions against torch's – and your sampler's – answers:

# %%
row = torch.tensor([1.0, 3.0, 7.0, 15.0], dtype=torch.float64).view(1, 1, 1, 4)
edge_points = torch.tensor([[1.0, 0.0], [1.25, 0.0], [-1.0, 0.0]], dtype=torch.float64).view(1, 1, 3, 2)
for align_corners in (False, True):
    torchs = F.grid_sample(row, edge_points, padding_mode="zeros", align_corners=align_corners).flatten().tolist()
    yours = bilinear_sample_np(row.numpy(), edge_points.numpy(), align_corners).flatten().tolist()
    print(f"align_corners={align_corners!s:>5}: u = +1, 1.25, -1 -> F.grid_sample {torchs}, yours {yours}")

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# **Pixels.** The lines through the ends of §4:
# $$ x = \frac{(u + 1)(W - 1)}{2} \;\; \text{(align\_corners=True)}, \qquad
# x = \frac{(u + 1)\,W - 1}{2} \;\; \text{(align\_corners=False)} $$
# – the inverses of lesson 1's normalization. A 1-pixel side needs no special case: the first gives 0 for every $u$,
# the second $u/2$ (the only pixel, at 0, spans $[-\frac12, \frac12]$, and $u = \pm1$ are its edges), so with
# `False` a point can still fade into the zero padding of a 1-pixel image.
#
# **Neighbours.** Only $x_0 = \lfloor x \rfloor$ and $x_0 + 1$ (and the same in $y$) are closer than 1, with weights
# $1 - |x - x_n|$ – the areas of the opposite rectangles. `np.floor` rounds down for negative $x$ too: at
# $x = -0.3$ the neighbours are $-1$ (outside, reads 0) and $0$. On the border a point exactly on the last centre
# has $x_0 = W - 1$ (weight 1, inside) and $x_0 + 1 = W$ (weight 0, outside): the test for inside is
# $0 \le x_n \le W - 1$. **Outside** a neighbour reads 0 – masked, not clipped onto the border (that would be
# `border` padding's value with zeros' weights).
#
# **The edge.** With `False`, $u = +1$ is $x = W - \frac12$, the outer edge of the last pixel, half a pixel beyond its
# centre: the neighbours $W-1$ (inside) and $W$ (outside, reads 0) get weight $\frac12$ each, so torch returns
# **half the edge pixel** ($7.5$ for the row) – not the edge value (the pixel's area ends there, its value does not
# carry on) and not 0 (the point is not a whole pixel out). At $u = 1 + \frac1W$, $x = W$: a whole pixel beyond the
# last centre, both neighbours outside, 0. Between the last centre and there the picture fades linearly to black
# instead of stopping dead – which is what makes the sampler continuous (where exactly the fade starts and ends
# matters in the bug hunt). With `True`, $u = \pm1$ are the end pixels' centres (weight 1: $15$ and $1$), and
# $u = 1 + \frac14$ is $x = 3.375$: $\frac58 \cdot 15$.
# </details>

# %% [markdown]
# From here on, the line you derived is the package's `unnormalize` (imported as `package_unnormalize`).

# %%
from stn_course.sampling import unnormalize as package_unnormalize  # the pixel line of Exercise 2

# %% [markdown]
# ### Exercise 3 – the vectorized, differentiable sampler in PyTorch
#
# Now with `F.grid_sample`'s full signature and all three padding modes (§5), for every size – 1-pixel sides
# included – and for points any distance outside the image. Work on flattened points, `(N, P)` with
# `P = H_out·W_out`, and read neighbours with `torch.gather` on the input flattened to `(N, C, H·W)` (flat index
# `y·W + x`). Keep it differentiable: the weights must be computed from the (padded) coordinates so that gradients
# reach the grid. The reflection is yours to write: §5 says about which points it mirrors; a point can lie several
# image widths away, so it bounces back and forth – sketch the reflected coordinate as a function of $x$ first.
#
# **Gradients at the corners.** The padded coordinate has corners: where `border` clamps (exactly on the end pixels'
# centres) and where `reflection` mirrors. `F.grid_sample`'s backward counts a point *exactly* on a clamp bound as
# clamped: the padded coordinate's derivative is 0 there (and every mirror point of `reflection` ends on a clamp
# bound). A spatial transformer at the identity sits on such points, so the check evaluates your gradient exactly
# there, for both modes and conventions. Autograd gives whatever the backward of *your* operations gives at that
# exact point – before you run the check, find out what that is for each operation of your padding.
#
# **Predict first: the slope exactly on a pixel centre.** At the identity every point sits exactly on a pixel centre,
# where eq. 5 has a kink: its slope left of the centre differs from its slope right of it. `F.grid_sample`'s backward
# returns one number there anyway: the derivative, at that exact point, of the formula its forward evaluated there
# (Exercise 2's sampler, under the padding), with the rule above for a clamp bound. `centre_slope(values, x, padding_mode, align_corners)` returns $\partial\,\text{out} / \partial u$
# ($u$ the grid's normalized $x$, $v = 0$) of `F.grid_sample` on the one-row image `values`, at the $u$ of pixel $x$'s
# centre. The check asks the row $2, 7, 8, 17$ at several pixels, modes and conventions; the grader asks other rows –
# 1- and 2-pixel ones too – at their first, middle and last pixel, every mode. Samplers are off limits in your
# answer: work it out, don't measure it.

# %%
def centre_slope(values: list[float], x: int, padding_mode: str, align_corners: bool) -> float:
    """Predicted d F.grid_sample(row, (u, 0)) / du at the u of pixel ``x``'s centre, ``row`` holding ``values``."""
    ### BEGIN SOLUTION
    width = len(values)
    if padding_mode != "zeros" and x in (0, width - 1):  # an end pixel's centre is a clamp bound: flat there
        return 0.0
    right = values[x + 1] if x + 1 < width else 0.0  # floor(x) = x: the neighbours are x and x + 1 (zeros outside)
    per_unit = (width - 1) / 2 if align_corners else width / 2  # pixels per unit of u: Exercise 2's line
    return per_unit * (right - values[x])
    ### END SOLUTION

# %%
centre_slope = check("02.centre_slope", centre_slope)

# %% [markdown]
# <details><summary>The slope at a pixel centre (open after the check passes)</summary>
#
# At $x = k$, floor gives $x_0 = k$: the forward reads $(1 - f)\,v[k] + f\,v[k+1]$ with $f = x - x_0 = 0$, and
# differentiating *that* gives the **forward difference** $v[k+1] - v[k]$ – not the central difference (the
# backward never looks left of the point) and not eq. 7 taken literally (at an integer it keeps only $m = k$, a
# value instead of a slope). Per unit of $u$ it is multiplied by $dx/du = \frac{W-1}{2}$ (`True`) or $\frac W2$
# (`False`); a 1-pixel side with `True` has $dx/du = 0$. At the last pixel with `zeros`, $v[W]$ is the padding's 0:
# the slope is $-v[W-1]$, the fall into the black. With `border` and `reflection` the end pixels' centres are clamp
# bounds, where the padded coordinate counts as flat: 0 – while one step inside they are forward differences again.
# So an STN at the identity gets, at every pixel, the slope towards its right (and lower) neighbour, and none at all
# from the end pixels under `border`: a one-sided choice made by the `floor` – which is what your sampler's gradient
# must reproduce.
# </details>
#
# Now the sampler itself. **Predict first: the slope beyond a mirror.** On the row $2, 7, 8, 17$ with
# `padding_mode="reflection"` and `align_corners=False`, what is the sign ($-1$, $0$ or $+1$) of
# $\partial\,\text{out} / \partial u$ at the pixel coordinate $x = -1.3$, and at $x = -0.3$ ($v = 0$)? Sketch the padded
# coordinate as a function of $x$ near the left end first (§5). Write both in the cell below; after the check, a cell
# prints torch's gradient there next to your sampler's.

# %%
predicted_signs = None  # (sign at x = -1.3, sign at x = -0.3): each -1, 0 or +1, worked out by hand

# %%
def bilinear_sample(input: torch.Tensor, grid: torch.Tensor, padding_mode: str = "zeros",
                    align_corners: bool = False) -> torch.Tensor:
    """Bilinear sampling like ``F.grid_sample``. ``input: (N, C, H, W)``, ``grid: (N, H_out, W_out, 2)`` ``-> (N, C, H_out, W_out)``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape
    _, h_out, w_out, _ = grid.shape
    x = package_unnormalize(grid[..., 0], w, align_corners).reshape(n, -1)  # (N, P)
    y = package_unnormalize(grid[..., 1], h, align_corners).reshape(n, -1)

    def clamp(v, size):  # into [0, size - 1]; flat *on* the border too, as torch's gradient is there
        return torch.where(v <= 0, 0.0, torch.where(v >= size - 1, size - 1.0, v))

    def reflect(v, low, high):  # mirror into [low, high], as often as needed: a triangle wave of period 2 (high - low)
        if high <= low:  # a 1-pixel side with align_corners=True: the interval is a point
            return torch.full_like(v, low)
        span = high - low
        distance = (v - low).abs()
        flips = torch.floor(distance / span)
        extra = distance - flips * span
        return torch.where(flips % 2 == 0, low + extra, high - extra)

    if padding_mode == "border":
        x, y = clamp(x, w), clamp(y, h)
    elif padding_mode == "reflection":
        edge = 0.0 if align_corners else 0.5  # mirror about pixel centres (True) or pixel edges (False)
        x = clamp(reflect(x, -edge, w - 1 + edge), w)
        y = clamp(reflect(y, -edge, h - 1 + edge), h)
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

# %%
slope_row = torch.tensor([2.0, 7.0, 8.0, 17.0], dtype=torch.float64).view(1, 1, 1, 4)


def slope_at(sampler, x: float) -> float:
    """d sampler(slope_row, (u, 0)) / du with reflection and align_corners=False, at pixel coordinate x."""
    u = torch.tensor([(2 * x + 1) / 4 - 1], dtype=torch.float64, requires_grad=True)  # lesson 1's normalization
    grid = torch.stack([u, torch.zeros_like(u)], dim=-1).view(1, 1, 1, 2)
    sampler(slope_row, grid, padding_mode="reflection", align_corners=False).sum().backward()
    return u.grad.item()


print("your prediction (signs at x = -1.3, -0.3):", predicted_signs)
for x in (-1.3, -0.3):
    print(f"x = {x}: F.grid_sample's d out/du = {slope_at(F.grid_sample, x):+.2f}, "
          f"your sampler's {slope_at(bilinear_sample, x):+.2f}")

# %% [markdown]
# <details><summary>The reflection (open after the check passes)</summary>
#
# With $\ell, h$ the mirror points ($0, W-1$ or $-\frac12, W-\frac12$) and $s = h - \ell$, the reflected
# coordinate is a triangle wave of period $2s$: with $d = |x - \ell|$ and $k = \lfloor d / s \rfloor$ flips,
# $x' = \ell + (d - ks)$ for even $k$ and $h - (d - ks)$ for odd $k$; then clamp to $[0, W-1]$ (with `False` the
# wave reaches half a pixel beyond the centres). A 1-pixel side with `align_corners=True` has $s = 0$: the interval
# is a single point and every coordinate reflects onto it – dividing by $s$ there gives NaN.
#
# **At the corners.** `torch.clamp(x, 0, W - 1)` has the right values but passes the gradient *on* its bounds (its
# backward keeps $0 \le x \le W-1$), where `F.grid_sample` counts the point as clamped – hence
# `torch.where(x <= 0, 0, …)`, whose selected branch is a constant there. The mirror distance $|x - \ell|$ must not
# be written $\sqrt{(x - \ell)^2}$: its derivative at $x = \ell$ is $0/0$, and a `torch.where` that discards the
# value there does not help – the discarded branch receives a gradient of 0, which the square root's backward
# divides by $2\sqrt{0}$: NaN. Random points never land on a corner; an STN at the identity does, at every border
# pixel.
#
# **Beyond the mirror.** With `False` the mirror point is $\ell = -\frac12$. At $x = -1.3$ the point is $0.8$ beyond
# it and reflects to $x' = -1 - x = 0.3$: the image is read left to right while $u$ moves right to left, so the slope
# flips – $-(7 - 2) \cdot \frac W2 = -10$. At $x = -0.3$ the point is still inside the mirror interval (the wave
# leaves it alone) but left of the first centre: the clamp flattens it, and the slope is 0 – the image's first half
# pixel under `reflection` is as flat as under `border`.
# </details>

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



def print_code(function) -> None:
    """Print ``function``'s source without its docstring (the package's docstring names the bug: that's your hunt)."""
    source = inspect.getsource(function)
    docstring = ast.parse(source).body[0].body[0]
    lines = source.splitlines()
    print("\n".join(lines[:docstring.lineno - 1] + lines[docstring.end_lineno:]))


print_code(blog_sampler)

# %% [markdown]
# ### Exercise 4 – predict, then run: how wrong is it?
#
# We will run it with the identity $\theta$ (`align_corners=True`, the tutorial's convention) on a small image whose
# pixels are numbered $1, 2, 3, \dots$ row by row: pixel $(i, j)$ of an $H\times W$ image holds $W i + j + 1$ – and
# with a "fix" you will find in forks of that tutorial: rescale with `max_x` instead of `max_x - 1` (`rescale_max=0`
# above; the tutorial's code is `rescale_max=1`).
# **Before you run either**, read the code above and predict the largest error, $\max |\text{blog}(\text{image}) -
# \text{image}|$, of each version, for any $H, W \ge 2$. Which position does output column $j$ read, which does row
# $i$ read, what does bilinear interpolation give on an image whose values grow linearly – and what do the
# neighbours and weights come to at the last row and column? The check asks both versions at other sizes than the
# one printed next, and the blog sampler itself is off limits in your answer.

# %%
def blog_identity_error(height: int, width: int, rescale_max: int) -> float:
    """Predicted ``max |blog_sampler(numbered, identity grid, rescale_max=rescale_max) - numbered|`` for the numbered
    ``height × width`` image; ``rescale_max`` is 1 (the tutorial) or 0 (the "fix")."""
    ### BEGIN SOLUTION
    if rescale_max == 0:
        # Every centre lands on x = j, but at the last column floor gives x0 = W - 1 and x1 = W, clipped to W - 1:
        # both x-weights x1 - x and x - x0 are 0, so the last row and column read 0 – the error is their largest pixel.
        return float(height * width)
    # Column j reads x = j (W - 2)/(W - 1), j/(W - 1) pixels short of j; row i reads i/(H - 1) rows short. The image
    # is linear (W y + x + 1), so bilinear reads it exactly: the error W i/(H - 1) + j/(W - 1) peaks at the last pixel.
    return float(width + 1)
    ### END SOLUTION

# %%
blog_identity_error = check("02.blog_identity_error", blog_identity_error)

# %% [markdown]
# <details><summary>Both failures (open after the check passes)</summary>
#
# 1. **The rescaling.** `max_x - 1 = W - 2`, so $x = \frac{(u+1)(W-2)}{2}$ sends $u = +1$ to column $W-2$, not
#    $W-1$. Output column $j$ reads position $j\,\frac{W-2}{W-1}$, $\frac{j}{W-1}$ pixels short; row $i$ reads
#    $\frac{i}{H-1}$ rows short, and a row is worth $W$. Bilinear interpolation reads a linear image exactly, so the
#    error is $W\frac{i}{H-1} + \frac{j}{W-1}$, largest at the last pixel: $W + 1$. The image is stretched, the last
#    row and column are **never read** (look for 5, 10, 15, 20 and 16–19 in the numbered output below: they are
#    gone), and the bottom-right output pixel shows input pixel $(H-2, W-2)$.
# 2. **Clipping before the weights.** With the correct $W-1$ every centre lands on its pixel – the natural
#    prediction is "0" – but the last column has $x = W-1$, so $x_0 = W-1$ and $x_1 = W$, which is clipped to $W-1$.
#    The weights are then computed from the *clipped* indices: $x_1 - x = 0$ and $x - x_0 = 0$, so all four weights
#    vanish and the last row and column come out **black**: the error is their largest pixel, $H W$.
#    Clipping is the wrong tool: compute the weights from the true neighbours and let neighbours outside the image
#    read 0 (or clamp the *coordinate*, for `border` padding) – as your `bilinear_sample` does.
#
# </details>

# %% [markdown]
# Now run both:

# %%
predicted = [blog_identity_error(4, 5, rescale_max) for rescale_max in (1, 0)]
numbered = torch.arange(1.0, 21.0, dtype=torch.float64).view(1, 1, 4, 5)
identity_grid = F.affine_grid(identity, (1, 1, 4, 5), align_corners=True)
print("input:\n", numbered[0, 0])
print("your sampler, identity theta:\n", bilinear_sample(numbered, identity_grid, align_corners=True)[0, 0])
for rescale_max, guess in zip((1, 0), predicted):
    out = blog_sampler(numbered, identity_grid, rescale_max=rescale_max)
    print(f"blog sampler, rescale_max={rescale_max}, identity theta:\n", out[0, 0])
    print(f"largest error: {(out - numbered).abs().max():.0f}, you predicted {guess:.0f}")

# %% [markdown]
# The identity test as a tool you can point at any sampler is the package's `identity_error(sampler, image,
# align_corners)`: the identity grid of the image's size, the sampler, the largest difference. The table, on the
# photo:

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
# are a sizeable fraction of the pixel values themselves. With `align_corners=False` both blog versions are wrong
# everywhere, not only at the last row and column: they ignore the option and unnormalize the grid's centres, which
# now sit half a pixel inside $\pm1$, with their own `True`-style line – so the reads fall between pixels: the
# "fixed" version reads a copy magnified by $\frac{W}{W-1}$ about the centre, and its last column no longer reaches
# $x = W-1$ (no black border).
# (`stn_course.sampling` snaps points within rounding of a pixel centre onto it, which makes its identity exact to
# the last bit; your version need not.)

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
# ### Exercise 5 – a sampler that passes every test its author wrote
#
# A colleague wrote the sampler below, without either of the blog's bugs (zeros padding only: it ignores
# `padding_mode`). It passes the identity test in both conventions, and the colleague's own test – random grids
# inside $[-1, 1]$ against `F.grid_sample`, with `align_corners=True` as in their STN – passes too:

# %%
from stn_course.bug_hunt import truncating_sampler  # the colleague's sampler (the check bans it in your answer)

print_code(truncating_sampler)
random_grid = torch.rand(2, 8, 8, 2, dtype=torch.float64) * 2 - 1  # inside [-1, 1]
two_photos = photo.expand(2, -1, -1, -1)
colleague_error = (truncating_sampler(two_photos, random_grid, align_corners=True)
                   - F.grid_sample(two_photos, random_grid, align_corners=True)).abs().max()
print(f"identity test: {identity_error(truncating_sampler, photo, False):.1e} (align_corners=False), "
      f"{identity_error(truncating_sampler, photo, True):.1e} (True)")
print(f"random grids in [-1, 1], align_corners=True: max error {colleague_error:.1e}")

# %% [markdown]
# It is still wrong. Find where, from its code: `truncation_counterexample(height, width, align_corners)` returns one
# point `(u, v)` – normalized, $x$ first, like one entry of a grid – at which the colleague's sampler and
# `F.grid_sample` (zeros padding) give different values on the numbered `height × width` image of Exercise 4 (pixel
# values $1, 2, 3, \dots$, none of them 0), read with that `align_corners`. Any size, 1-pixel sides included – except
# a 1×1 image with `align_corners=True`, where every point lands on the one pixel's centre. The check asks other
# sizes than the ones printed next, and the colleague's sampler is off limits in your answer: reason, don't search.

# %%
def truncation_counterexample(height: int, width: int, align_corners: bool) -> tuple[float, float]:
    """A normalized point ``(u, v)`` where ``truncating_sampler`` is wrong on the numbered ``height × width`` image."""
    ### BEGIN SOLUTION
    def normalized(pixel: float, size: int) -> float:  # lesson 1's line, pixels -> normalized
        return 2 * pixel / (size - 1) - 1 if align_corners else (2 * pixel + 1) / size - 1

    # x = -1.5: the cast takes x0 = -1 (floor: -2), so pixel 0 gets the weight 1 - 1.5 = -1/2 where zeros padding
    # reads 0. It works for any size – except along a 1-pixel side with align_corners=True, pinned at pixel 0.
    if width == 1 and align_corners:
        return 0.0, normalized(-1.5, height)
    return normalized(-1.5, width), (0.0 if height == 1 else normalized(0.0, height))
    ### END SOLUTION

# %%
truncation_counterexample = check("02.truncation_counterexample", truncation_counterexample)

# %% [markdown]
# Your point, read by both samplers:

# %%
for height, width, align_corners in ((4, 5, False), (4, 5, True), (1, 5, True)):
    point = torch.tensor(truncation_counterexample(height, width, align_corners), dtype=torch.float64).view(1, 1, 1, 2)
    numbered_hw = torch.arange(1.0, height * width + 1.0, dtype=torch.float64).view(1, 1, height, width)
    print(f"{height}×{width}, align_corners={align_corners!s:>5}: (u, v) = {tuple(point.flatten().tolist())}  "
          f"colleague {truncating_sampler(numbered_hw, point, align_corners=align_corners).item():+.3f}   "
          f"F.grid_sample {F.grid_sample(numbered_hw, point, align_corners=align_corners).item():+.3f}")

# %% [markdown]
# <details><summary>Where and why (open after the check passes)</summary>
#
# The cast `x.long()` **truncates towards zero**: for $-1 < x < 0$ it gives $x_0 = 0$ where floor gives $-1$, for
# $-2 < x < -1$ it gives $-1$ where floor gives $-2$. The code then weights its two neighbours with $1 - |x - c_x|$,
# which is *negative* for a pixel further than 1 away: at $x = -0.5$ it reads $0.5\,U_0 - 0.5\,U_1$ instead of
# $0.5\,U_0$, at $x = -1.5$ it reads $-0.5\,U_0$ instead of 0. On the right and bottom (and at whole-pixel
# positions) truncation and floor agree, so the bug lives only in a two-pixel band left of and above the image:
# the zeros padding's fade band, $-1 < x < 0$ – from $u = -1$ to $-1 - \frac{2}{W-1}$ with `align_corners=True`,
# from $\frac1W - 1$ to $-\frac1W - 1$ with `False` – and the pixel beyond it.
#
# Why the colleague's tests missed it: the identity grid reads only pixel centres $x \ge 0$, and with
# `align_corners=True` a grid inside $[-1, 1]$ never reads left of $x = 0$ (with `False` it would: $u = -1$ is
# $x = -\frac12$). The kinks of your answer: with one pixel, the wrong neighbour of the near band ($x_0 + 1 = 1$) is
# outside anyway, so only the band beyond, $-2 < x < -1$, shows the bug; along a 1-pixel side with
# `align_corners=True` every $u$ lands on pixel 0, so the other axis has to do it. A point far outside reads two
# neighbours outside either way: zeros, right by accident.
#
# The moral: the identity test is necessary but not sufficient, and so is a random test that never leaves the
# image. The exercise checks use random grids that reach outside the image on every side, both conventions and
# 1-pixel images.
# </details>

# %% [markdown]
# ## Explore
#
# The explorer zooms and rotates a small grayscale photo. When the grid reaches outside the image, the input panel
# grows a grey margin so the whole grid shows; the dark frame is the image's edge. Try:
#
# * zoom < 1 (reading outside): switch `padding_mode` and watch the frame; toggle `align_corners` with
#   `reflection` – the mirror moves by half a pixel;
# * zoom ≈ 3: `nearest` shows blocks, `bilinear` ramps;
# * rotation 90°: this input is not square, so a rotation in normalized coordinates also stretches the picture
#   (lesson 1, §5) – in your own code, convert a pixel rotation with lesson 1's `pixel_to_theta`
#   (`from stn_course.affine import pixel_to_theta`) to avoid it; the explorer's slider rotates in normalized
#   coordinates.

# %% tags=["skip-when-grading"]
widgets.sampling_explorer()

# %% [markdown]
# ### Questions
#
# Answer them in a sentence or two before you open the fold.

# %% [markdown]
# **1.** Your sampler reproduces the identity to about $10^{-15}$ in float64, not to 0. Where does the error come from, and how large is it in float32 for `F.grid_sample` (which, like your sampler, does not snap) on the photo, pixel values in $[0, 1]$? Write a number down; the cell after the answer measures it.

# %% [markdown] tags=["answer"]
# From rounding: the grid's normalized coordinates and `unnormalize` round, so the read position is a pixel centre only up to the last bits, and a tiny weight goes to a neighbour. The read position is off by a few units of the dtype's precision *relative to the pixel coordinate* ($2^{-24} \approx 6\cdot10^{-8}$ in float32) – and the coordinate runs up to $W - 1$, so the position error is tens of times that – and the value error is that times the image's slope between neighbours: of the order of $10^{-6}$ for the photo in float32 (measured below), not the $10^{-7}$ of one rounding of a pixel value; it grows with the image's size.

# %% [markdown]
# <details><summary>Answer</summary>
#
# From rounding: the grid's normalized coordinates and `unnormalize` round, so the read position is a pixel centre only up to the last bits, and a tiny weight goes to a neighbour. The read position is off by a few units of the dtype's precision *relative to the pixel coordinate* ($2^{-24} \approx 6\cdot10^{-8}$ in float32) – and the coordinate runs up to $W - 1$, so the position error is tens of times that – and the value error is that times the image's slope between neighbours: of the order of $10^{-6}$ for the photo in float32 (measured below), not the $10^{-7}$ of one rounding of a pixel value; it grows with the image's size.
# </details>

# %%
photo32 = photo.float()
errors32 = [identity_error(lambda i, g, align_corners: F.grid_sample(i, g, align_corners=align_corners), photo32, ac)
            for ac in (False, True)]
centres32 = package_unnormalize(affine_grid(identity.float(), photo32.shape, False)[0, 0, :, 0], photo32.shape[-1], False)
below = int((centres32 < torch.arange(photo32.shape[-1], dtype=torch.float32)).sum())
print(f"float32 identity error of F.grid_sample: {errors32[0]:.1e} (align_corners=False), {errors32[1]:.1e} (True)")
print(f"float32, align_corners=False: {below} of {photo32.shape[-1]} column centres land a rounding error below their pixel")
assert 2e-7 < max(errors32) < 1e-5 and below > 0  # what the answers say

# %% [markdown]
# **2.** As the cell shows, in float32 some identity centres land a rounding error *below* their pixel $j$. Which slope does `F.grid_sample`'s backward return at such a point (compare `02.centre_slope`), and what does that mean for the gradient an STN receives at the identity?

# %% [markdown] tags=["answer"]
# Floor now picks $j - 1$ and $j$: the slope is the backward difference $v[j] - v[j-1]$ (times $dx/du$), not the forward one. At the identity the gradient is a pixel-by-pixel mix of left and right one-sided slopes, chosen by rounding – both are slopes of the same kinked function, so neither is wrong, but which one a pixel gets depends on how its centre rounds, not on the image.

# %% [markdown]
# <details><summary>Answer</summary>
#
# Floor now picks $j - 1$ and $j$: the slope is the backward difference $v[j] - v[j-1]$ (times $dx/du$), not the forward one. At the identity the gradient is a pixel-by-pixel mix of left and right one-sided slopes, chosen by rounding – both are slopes of the same kinked function, so neither is wrong, but which one a pixel gets depends on how its centre rounds, not on the image.
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
#   before computing the weights both fail it; a truncating cast passes it – and random grids inside $[-1, 1]$ with
#   `align_corners=True` – yet breaks bilinear sampling for points outside the image (your counterexample showed
#   where). Test with grids that reach outside the image, at the kinks: borders, 1-pixel sides, both conventions.
# * Next: lesson 3 puts a localisation network in front of the grid generator and sampler – a spatial transformer.
