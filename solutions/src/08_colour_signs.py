# ---
# lesson:
#   checks: stn_course.checks.lesson08
#   figures: stn_course.plotting.lesson08
#   explorers: stn_course.widgets.lesson08
#   budget_s: 300
#   cell_budget_s: 120
#   dashboard:
#     intro: 'One procedurally generated colour sign: pick its class, its size, how far it may turn and how slanted the
#       view is, and see it rectified by the homography through its true corners. (The lesson''s own explorer also
#       shows what its trained ST-CNN makes of it.)'
#     code: |
#       widgets.sign_explorer()
#   claims:
#   - text: (≈ 1.2 px on a 40-pixel canvas)
#     why: 'the generator''s PERSPECTIVE = 0.06 normalized units: 0.06 × 40 / 2 = 1.2 px'
#   - text: 10 % of the training signs
#     holds: VALIDATION == 0.1
#   - text: two photographs of 640 × 480 pixels to a pixel or two
#     why: the check's noisy cases (stn_course/checks/lesson08.py, _photo_pairs) – signs 40 to 60 px wide in a 640×480
#       photograph, located to 1 or 2 px – and the measuring cell after the folds (the same setting, σ = 1 px)
#   - text: at most 1.25 × the package's on the typical
#     why: the check's NOISY_RATIO = 1.25 (stn_course/checks/lesson08.py), on the median map of each noisy case
#   - text: take ten points on a 50-pixel square somewhere in a 640 × 480 photograph
#     why: a suggested hand test in the setting of the check's noisy cases (10 points, signs 40 to 60 px wide)
#   - text: 200 signs 40 to 60 px wide in a 640 × 480 photograph
#     why: the measuring cell after the folds of Exercise 2 (side = 40 + 20 · rand, 200 signs, placed in 640 × 480)
#   - text: σ = 1 px per coordinate (an RMS distance of about √2 ≈ 1.4 px
#     why: that cell's noise is torch.randn per coordinate; it prints the noise's median RMS distance (≈ 1.39 px)
#   - text: a 16 × 16 one-channel ramp canvas
#     why: ramp_16 in the cell after the rectify check
#   - text: a fixed 28 × 28 crop
#     why: st_cnn(40, "projective") samples a 28-pixel view; the ramp cell prints its columns 6.000 and 33.000
#   exercises:
#     08.pins_down:
#       title: which point pairs pin a homography down (a checked prediction, before the solver)
#       points: 1
#       hint: >-
#         Count first: how many equations does one pair give, how many numbers must they pin down? Then ask whether
#         the count is the whole story: what does a homography do to the points of a straight line, and how many
#         numbers does it take to say where a line's points go?
#       recipe: >-
#         True exactly when some four of the points have no three on a line: points on one line fix only the image
#         line and the 1-D map along it (2 + 3 numbers), so all points but one on a line fix 5 + 2 < 8. Test every
#         four of the P points (itertools.combinations) for collinear triples (det of three rows (x, y, 1) = 0).
#     08.homography:
#       title: the homography through point pairs, exact or measured in pixels (you set up the system, fix the scale
#         and choose the coordinates it is solved in)
#       points: 3
#       hint: >-
#         Write the map for one pair with its division, then multiply the division away: what is left is linear in
#         H's entries – and which way of fixing H's scale works for every homography, not only for those near the
#         identity? For measured pairs: what does the smallest singular vector minimise, in which units – and is
#         that the error you care about in a picture?
#       recipe: >-
#         Normalise before the fit (Hartley): a fit should not change when every point is shifted or scaled, so move
#         each point set so that its centroid is the origin and its mean distance from it is √2 (similarities T_src,
#         T_dst) – centring alone is not enough. For each normalized pair (x, y) -> (u, v): h1 x + h2 y + h3 − u (h7 x + h8 y + h9) = 0 and
#         h4 x + h5 y + h6 − v (h7 x + h8 y + h9) = 0 – two homogeneous rows per pair, all P pairs stacked into A (N,
#         2P, 9), in float64. Do not set h9 = 1 (it is 0 for a map that sends (0, 0) to infinity): Ĥ is the null
#         vector of A, the last row of Vh in torch.linalg.svd(A), reshaped to (N, 3, 3); return T_dst⁻¹ Ĥ T_src in
#         src's dtype.
#     08.rectify:
#       title: cut the sign out, seen straight on, with a margin
#       points: 3
#       hint: >-
#         Two things decide the picture (the failure message names the slip when it recognises one). The sampler
#         reads backwards: for each pixel of the output it needs the canvas point to read – from where to where must
#         your homography go? And where, in the output's normalized coordinates, are the sign's corners when a border
#         of margin pixels surrounds it (which pixel convention does every grid and sampler of this lesson use)?
#       recipe: >-
#         with align_corners=False, output pixel edges sit at normalized −1 + 2k / out_size, so the square's
#         corners are at ±(1 − 2 margin / out_size) · SIGN_CORNERS in the output; H = homography(those, corners) –
#         from the output to the canvas, not the reverse – in images' dtype; grid = projective_grid(H, (N, C,
#         out_size, out_size), align_corners=False); F.grid_sample(images, grid, align_corners=False) (its default
#         zeros padding).
#       builds_on:
#       - 08.homography
#       rtol: 1.0e-05
#       atol: 1.0e-05
# ---

# %% [markdown]
# # Lesson 8 – A spatial transformer on colour signs
#
# ## Goal
#
# So far every transformer in this course looked at grey digits. The paper's most practical experiment is
# different: **traffic signs** (GTSRB) – colour photographs of flat signs, seen from a moving car, small, slanted and
# surrounded by clutter. This short lesson rebuilds that experiment with signs the package draws itself (no
# download):
#
# 1. meet the signs: ten classes that differ in shape, colour and symbol, under projective distortion and clutter;
# 2. derive the transform that undoes the distortion of a *planar* object – the homography through four point
#    pairs – and use it to cut a sign out, seen straight on;
# 3. predict what an untrained ST-CNN with a projective transformer shows its classifier, then train it against a
#    CNN **fairly** (learning rates chosen on a validation split, the same normalisation, mean ± spread over seeds);
# 4. look at the rectified signs beside the inputs, and explore the generator and the trained model.
#
# **Package modules:** `stn_course.data.signs` (the generator), `stn_course.training` (models, `fit`, `evaluate`),
# `stn_course.tuning` (validation split, mean ± spread), `stn_course.grids` (`projective_grid`, lesson 3).
# **Prerequisites:** lessons 3 (the projective transform) and 5 (training an ST-CNN, a fair comparison).

# %%
FAST = True  # small, CPU-friendly; False trains longer (more epochs)

%matplotlib inline
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset, TensorDataset

from stn_course import plotting, training, tuning
from stn_course.checks import check
from stn_course.course import benchmark_record
from stn_course.data.signs import CLASSES, SIGN_CORNERS, make_signs
from stn_course.grids import projective_grid
from stn_course.stn import num_params
from stn_course.widgets import sign_explorer

torch.set_num_threads(1)  # small models gain little from more threads; one keeps timings steady on a busy machine
torch.manual_seed(0)
START = time.perf_counter()
CANVAS = 40
N_TRAIN, N_TEST, VALIDATION = 3000, 1000, 0.1
EPOCHS = 6 if FAST else 20
SEEDS = (0, 1)

# %% [markdown]
# ## Theory
#
# ### Why a projective transformer for signs
#
# A sign is **flat**. A camera looking at a plane from any position sees it through a *homography*: a point
# $(x, y)$ of the sign's plane appears in the image at
#
# $$\begin{pmatrix} u' \\ v' \\ w' \end{pmatrix} = H \begin{pmatrix} x \\ y \\ 1 \end{pmatrix}, \qquad
# (u, v) = \left(\frac{u'}{w'}, \frac{v'}{w'}\right),$$
#
# with $H$ a $3\times 3$ matrix defined up to scale (lesson 3's `projective` transform fixes $h_9 = 1$). The
# division is what makes far parts of the sign look smaller. An affine $\theta$ can undo turning, scaling and
# shearing, but not the convergence of a slanted view; a homography undoes all of it *exactly* – so the ST-CNN here
# regresses the 8 numbers of $H$ and samples a sign that looks straight on.
#
# ### The signs
#
# `stn_course.data.signs` draws ten classes (shape × colour × symbol, `CLASSES`): to tell class 0 (red circle,
# horizontal bar) from class 2 (blue circle, horizontal bar) a model needs colour, from class 1 (red circle,
# vertical bar) the symbol's direction, from class 7 (red octagon, horizontal bar) the outline. Each sign's square
# is placed in a 40×40 canvas – turned by up to 20°, 10 to 22 pixels wide – and its four corners are moved by
# Gaussian noise (≈ 1.2 px on a 40-pixel canvas) for the slant; behind it: a colour gradient and random coloured
# blobs, some in the signs' own red and blue. The generator renders backwards, like every sampler: each canvas
# sub-pixel asks the inverse homography where it lies on the sign's plane.
#
# **Colour** changes nothing in the transformer's machinery – one grid samples all three channels – but the
# localisation net now sees RGB, and the clutter is made so that "find the red thing" is not enough.

# %%
clean = make_signs(200, seed=1, clutter=False, angle=0.0, perspective=0.0, scale=(0.8, 0.8))
seen = make_signs(200, seed=2)
first = lambda batch: torch.stack([batch[0][(batch[1] == k).nonzero()[0, 0]] for k in range(len(CLASSES))])
plotting.plot_sign_classes(first(clean), first(seen));

# %% [markdown]
# ## Build
#
# ### Exercise 1 – which point pairs pin a homography down
#
# To *find* a homography you need to know where some points of the plane went: **point pairs** "the point
# $(x, y)$ appears at $(u, v)$". The generator knows where the sign's corners `SIGN_CORNERS` – $(-1,-1), (1,-1),
# (1,1), (-1,1)$ in the sign's own coordinates – landed in the canvas; in general you may have more pairs (the
# corners, the centre, marks on the sign), and the maps you will meet are not only signs. Not every set of pairs
# is enough.
#
# Before you write the solver, predict when it can succeed. Write `pins_down(src)`: for each item of a batch of
# $P$ points `src[i]` of the source plane, `True` when exact pairs at these points pin the homography down – any
# two invertible homographies that send all $P$ points to the same places are equal up to scale – and `False` when
# they leave it free. It depends on the points alone, not on which invertible homography produced the pairs. Count
# on paper first (equations per pair, numbers to pin down) – then ask whether the count is the whole story; the
# check tries configurations you may not have thought of, with coordinates in which points on a line are exactly on
# it. You may experiment before you answer; the reasoning is folded below the check.

# %%
def pins_down(src: torch.Tensor) -> torch.Tensor:
    """Whether exact pairs at the points src pin an invertible homography down. src: (N, P, 2) -> (N,) bool"""
    ### BEGIN SOLUTION
    from itertools import combinations

    points = torch.cat([src.double(), torch.ones_like(src[..., :1]).double()], -1)  # (x, y, 1): det 0 = on a line
    general = torch.zeros(src.shape[0], dtype=torch.bool)
    for four in combinations(range(src.shape[1]), 4):  # some four with no three on a line
        dets = torch.stack([torch.linalg.det(points[:, list(three)]) for three in combinations(four, 3)], -1)
        general |= (dets.abs() > 1e-9).all(-1)
    return general
    ### END SOLUTION


# %%
pins_down = check("08.pins_down", pins_down)

# %% [markdown]
# <details><summary>Counting is not the whole story: the points on a line</summary>
#
# **Counting.** A pair says where one point goes – two numbers, $u$ and $v$: two equations. $H$ has 9 entries, but
# a common factor changes no point, so 8 numbers are to be pinned: **four pairs** at least. The same count works for
# any family: $k$ numbers up to scale need $\lceil (k-1)/2 \rceil$ pairs – an affine θ (6 numbers, *not* up to
# scale: θ and 2θ differ) needs 3, a camera's $3 \times 4$ projection matrix 6.
#
# **Lines.** A homography sends a line to a line: in homogeneous coordinates the line is $l^\top p = 0$, and
# $(H^{-\top} l)^\top (H p) = l^\top p = 0$. Along the line it acts as a 1-D homography, a $2 \times 2$ matrix up
# to scale: 3 numbers. So however many pairs sit on one line, they pin only the image line (2 numbers) and that
# 1-D map (3): **5** of the 8 – the equations of a fourth point on the line repeat those of the first three. Points
# all on one line leave 3 numbers free; all on one line but one pin $5 + 2 = 7$: one number is left free, and a
# whole family of homographies agrees at every point (the count "5 pairs ≥ 4" says nothing).
#
# **Enough.** If some four points $p_1 \dots p_4$ (homogeneous) have no three on a line, those four pairs alone pin
# $H$ down. A map $M$ with $M e_1 \sim p_1$, $M e_2 \sim p_2$, $M e_3 \sim p_3$ has columns $\lambda_i p_i$; it
# also sends $(1, 1, 1)$ to $p_4$ when $[p_1\,p_2\,p_3]\,\lambda \sim p_4$ – one $\lambda$ up to scale, all its
# entries nonzero exactly because no three of the points are on a line. So $M$ is unique up to scale, so is the
# same $M'$ for the four images, and $H = M' M^{-1}$; more pairs of the same map only add equations it satisfies. Any set of points either contains such four or has
# all its points but at most one on one line: the 3×3 grid, full of lines of three, pins $H$ down; four pairs at only
# three distinct points do not.
# </details>

# %% [markdown]
# ### Exercise 2 – the homography through point pairs
#
# Write `homography(src, dst)`: for each item of a batch of $P \ge 4$ point pairs of one homography, an $H$ that
# sends every `src[i, j]` to `dst[i, j]`. The rules:
#
# * $H$ is defined **up to scale** ($H$, $2H$ and $-H$ send every point to the same place): return any nonzero
#   multiple;
# * all $P$ pairs together pin $H$ down (`pins_down` is true for them). **Exact** pairs (in normalized coordinates,
#   like the sign's corners) must give the exact $H$ – the check compares up to a common factor. **Measured** pairs –
#   points located in two photographs of 640 × 480 pixels to a pixel or two, in pixel coordinates – fit no $H$
#   exactly; for them what counts in a picture is the **transfer error**, the RMS distance in pixels between where
#   your $H$ sends each `src` point and its `dst` point. The check accepts a fit whose transfer error is at most
#   1.25 × the package's on the typical (median) map of a case. The package's fit is no optimiser either;
# * no iterative fitting (no optimiser, no loop of updates): a fixed sequence of tensor operations, batched,
#   computed in float64 and returned in `src`'s dtype.
#
# Test by hand: the square to itself twice as large must give a multiple of $\mathrm{diag}(2, 2, 1)$; then write
# down a $3 \times 3$ matrix of your own **with $h_9 = 0$** (it sends the origin $(0, 0)$ to infinity), send a few
# points through it and see whether you get it back (up to scale) – and do the same with a matrix of your choice
# without zeros. Then measure: take ten points on a 50-pixel square somewhere in a 640 × 480 photograph, send them through
# a map of your own, add a pixel or two of Gaussian noise, and compare your fit's transfer error with the noise you
# added: is your fit as good as the pairs allow? The derivation is folded below the check.

# %%
def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """An H with H (x, y, 1) ~ (u, v, 1) for every pair, up to scale. src, dst: (N, P, 2), P >= 4 -> (N, 3, 3)"""
    ### BEGIN SOLUTION
    def normalising(points):  # Hartley: centroid to the origin, mean distance from it to √2 – a similarity T
        centre = points.mean(1)
        scale = 2 ** 0.5 / (points - centre[:, None]).norm(dim=-1).mean(1)
        t = torch.zeros(points.shape[0], 3, 3, dtype=points.dtype)
        t[:, 0, 0] = t[:, 1, 1] = scale
        t[:, :2, 2] = -scale[:, None] * centre
        t[:, 2, 2] = 1.0
        return t, points * scale[:, None, None] + t[:, None, :2, 2]

    t_src, src_n = normalising(src.double())
    t_dst, dst_n = normalising(dst.double())
    x, y = src_n[..., 0], src_n[..., 1]
    u, v = dst_n[..., 0], dst_n[..., 1]
    zero, one = torch.zeros_like(x), torch.ones_like(x)
    # u (h7 x + h8 y + h9) = h1 x + h2 y + h3, multiplied out: homogeneous in all 9 entries, one row for u, one for v
    rows_u = torch.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], -1)
    rows_v = torch.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], -1)
    # H is the null vector of the (2P, 9) system – no entry fixed to 1 (h9 is 0 where (0, 0) goes to infinity)
    h = torch.linalg.svd(torch.cat([rows_u, rows_v], 1)).Vh[:, -1].view(-1, 3, 3)
    return torch.linalg.solve(t_dst, h @ t_src).to(src.dtype)  # undo the normalisation: T_dst⁻¹ Ĥ T_src
    ### END SOLUTION


# %%
homography = check("08.homography", homography)

# %% [markdown]
# **Predict before you open the folds.** The cell after them fits measured pairs in pixels – 200 signs 40 to 60 px
# wide in a 640 × 480 photograph, 10 points each, every point located with Gaussian noise of σ = 1 px per
# coordinate (an RMS distance of about √2 ≈ 1.4 px from its true place) – three ways: the plain null vector in
# pixels, the plain null vector after moving each point set's origin to its centroid (centred, not scaled), and your
# `homography`. Commit the median transfer error (in pixels) you expect for each: which order, and how far from the
# noise – above it, equal to it, or below it?

# %%
PREDICTION_TRANSFER = {"plain DLT in pixels": None, "centred only": None, "your homography": None}  # px, your guess

# %% [markdown]
# <details><summary>The derivation (the direct linear transform), and why not h₉ = 1</summary>
#
# $u = \dfrac{h_1 x + h_2 y + h_3}{h_7 x + h_8 y + h_9}$; multiply by the denominator and collect:
#
# $$h_1 x + h_2 y + h_3 - u\,(h_7 x + h_8 y + h_9) = 0, \qquad h_4 x + h_5 y + h_6 - v\,(h_7 x + h_8 y + h_9) = 0 .$$
#
# Each pair gives these two equations, linear and homogeneous in the nine entries – the count of the fold above.
#
# **Fixing the scale.** Stacking $P$ pairs gives $A h = 0$ with $A$ of shape $(2P, 9)$, and $h$ spans its null
# space: the right singular vector of the smallest singular value (0 for exact pairs; for noisy pairs the unit $h$
# that makes $|A h|$ smallest). The textbook shortcut sets $h_9 = 1$ and solves an $8 \times 8$ system – lesson 3's
# transformer does the same, and near the identity it is harmless. But $h_9$ is the $w$ of the source's origin
# $(0, 0, 1)$: it is **0** exactly when the origin goes to infinity – the road photograph with the horizon through
# its centre. Then no $H$ with $h_9 = 1$ exists: the $8 \times 8$ system is singular (`solve` refuses it, least
# squares returns a wrong map, and with rounding it may return a huge, nearly right one by luck). Any entry you fix
# has a map where it is 0 (a quarter turn has $h_1 = 0$); the null vector needs none.
#
# **More than four pairs** are stacked the same way (the first four alone may have three points on a line: then they
# leave a two-dimensional null space).
# </details>
#
# <details><summary>Measured pairs: what the null vector minimises, and Hartley's normalisation</summary>
#
# **Algebraic, not geometric.** With noise, $A h = 0$ has no solution and the smallest singular vector is the unit
# $h$ that makes $|A h|^2$ smallest. Pair $i$'s two rows give $h_1 x + h_2 y + h_3 - u\,w_i = w_i(\hat u_i - u_i)$
# with $w_i = h_7 x + h_8 y + h_9$ and $\hat u_i$ where $H$ sends the point: $|A h|^2 = \sum_i w_i^2\,
# |\hat p_i - p_i|^2$ – the transfer error, but weighted by $w_i^2$ and minimised under the constraint $|h| = 1$,
# which treats all nine entries alike. Neither is a property of the picture: both change when you move the origin
# of the coordinates or change their unit, so the plain null vector gives a different map – a different fit of the
# same pairs – in every frame.
#
# **Why pixels far from the origin hurt.** For a sign around pixel (300, 200) the columns of $A$ hold numbers of
# size 1 ($h_3$'s), hundreds ($x$, $y$) and $10^4$–$10^5$ ($u x$, $v y$): $A$ is badly conditioned – its 8th
# singular value, the gap that sets the null vector apart, is tiny next to its largest – and the same pixel of noise – multiplied
# by $x \approx 300$ in the $u x$ column – tilts the null vector far more than in coordinates of order 1. The
# result still satisfies the multiplied-out equations as well as it can; it just does not fit the *points* well.
#
# **The fix (Hartley, 1997).** Choose coordinates in which the fit behaves: move each point set so that its
# centroid is the origin and scale it so that the mean distance from it is $\sqrt 2$ (a typical point is then
# $(\pm 1, \pm 1)$) – a similarity $T_{src}$ for the sources, $T_{dst}$ for the destinations. Solve for $\hat H$
# with $\hat H\,T_{src}\,p \sim T_{dst}\,q$, then undo: $H = T_{dst}^{-1} \hat H\, T_{src}$. Exact pairs give the
# same $H$ (up to scale) either way; measured pairs now give the same fit whatever frame they came in – the
# normalisation is fixed by the points themselves. Centring alone does much of it, but the coordinates are then
# still tens of pixels and the columns still differ by $10^3$: on the check's noisy pairs (two pixels of noise) it
# fails, and the cell below (one pixel) shows it still short of the normalised fit. The scale $\sqrt 2$ is a
# convention; any scale that makes the coordinates of order 1 does as well. The cell below measures it on measured pairs of 200 signs.
# </details>

# %%
from stn_course.data.signs import homography as package_homography  # the package's fit (normalised), for the truth


def plain_dlt(src, dst):  # the null vector of the raw system, no normalisation; and the system's singular values
    x, y, u, v = src[..., 0], src[..., 1], dst[..., 0], dst[..., 1]
    o, z = torch.ones_like(x), torch.zeros_like(x)
    a = torch.cat([torch.stack([x, y, o, z, z, z, -x * u, -y * u, -u], -1),
                   torch.stack([z, z, z, x, y, o, -x * v, -y * v, -v], -1)], 1)
    return torch.linalg.svd(a).Vh[:, -1].view(-1, 3, 3), torch.linalg.svdvals(a)


def mapped(h, points):  # where H sends the points, after the division
    uvw = torch.cat([points, torch.ones_like(points[..., :1])], -1) @ h.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:]


def transfer(h, src, dst):  # the RMS distance in pixels between where H sends src and dst, per map
    return (mapped(h.double(), src) - dst).norm(dim=-1).pow(2).mean(1).sqrt()


g = torch.Generator().manual_seed(0)
rand = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)
side, where = 40 + 20 * rand(200, 1, 1), 60 + torch.tensor([460.0, 300.0]) * rand(200, 1, 2)  # 200 signs, 640 × 480
square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
true_h = package_homography(where + side * square,  # a second, slanted view of each sign
                            where + side * (square + 0.4 * rand(200, 4, 2) - 0.2) + 120 * rand(200, 1, 2) - 60)
src = where + side * rand(200, 10, 2)  # 10 points on each sign
noise = torch.randn(200, 10, 2, generator=g, dtype=torch.float64)  # each located to about a pixel
dst = mapped(true_h, src) + noise
(h_pixels, sv_pixels), centroids = plain_dlt(src, dst), (src.mean(1, keepdim=True), dst.mean(1, keepdim=True))
h_moved, sv_moved = plain_dlt(src - centroids[0], dst - centroids[1])  # the same pairs, the origin moved
median = lambda errors: f"{errors.median().item():.2f} px"
print(f"median over 200 signs of the transfer error (the noise itself: {median(noise.norm(dim=-1).pow(2).mean(1).sqrt())})")
guess = lambda name: f"   (your prediction: {PREDICTION_TRANSFER[name]})"
print(f"  plain DLT in pixels:                           {median(transfer(h_pixels, src, dst))}"
      + guess("plain DLT in pixels"))
print(f"  plain DLT, each origin moved to the centroid:  {median(transfer(h_moved, src - centroids[0], dst - centroids[1]))}"
      + guess("centred only"))
print(f"  your homography:                               {median(transfer(homography(src, dst), src, dst))}"
      + guess("your homography"))
print(f"what the best fit of 8 numbers to 20 noisy ones leaves of the noise: √(12/20) × it = "
      f"{median(noise.norm(dim=-1).pow(2).mean(1).sqrt() * (12 / 20) ** 0.5)}")
print(f"the plain system's 8th singular value / its 1st (median): {(sv_pixels[:, 7] / sv_pixels[:, 0]).median():.1e}"
      f" in pixels, {(sv_moved[:, 7] / sv_moved[:, 0]).median():.1e} centred")

# %% [markdown]
# <details><summary>Why the best fit lands below the noise</summary>
#
# Ten pairs are 20 measured numbers; the fit chooses 8 (H up to scale) to come as close to them as it can. Near the
# true map the transfer is nearly linear in those 8 numbers, so a least-squares fit removes the part of the noise that
# lies in an 8-dimensional subspace of the 20 – on average 8/20 of its square – and leaves $\sqrt{12/20} \approx
# 0.77$ of it: the residual is *below* the noise even though the fitted map is not the true one. A transfer error
# equal to the noise is a fit that is off by about as much again as it could be; the plain fit in pixels is further
# off still.
# </details>

# %% [markdown]
# ### Exercise 3 – the sign, seen straight on
#
# Now cut each sign out of its canvas as an `out_size × out_size` image in which the sign is upright and square and
# fills the frame **but for a border `margin` output pixels wide** on every side – a little of what surrounds it, so
# that its outline stays whole; inside that border the sign's square fills the output's pixels exactly (with
# `margin = 0` the sign fills the frame).
# Where the output reaches past the canvas (a sign near the edge, a large margin), it shows **zeros**.
#
# You have your `homography`, lesson 3's `projective_grid(H, size, align_corners)` and `F.grid_sample`; the pixel
# convention is the lesson's, `align_corners=False`, throughout (lesson 2). `corners` says where `SIGN_CORNERS`
# landed (normalized canvas coordinates); `images` may be float32 or float64, and the result has their dtype.
# Write `rectify(images, corners, out_size, margin)`.
#
# **Predict first.** Take a 16 × 16 one-channel ramp canvas whose pixels in column $j$ all hold $j + 1$ (1 … 16, so
# that the zeros outside the canvas differ from its first column), and a "sign" that fills the whole canvas
# (`corners` = `SIGN_CORNERS`). Rectified with `out_size = 12` and `margin = 2`, what are the 12 values of row 5 of
# the output? Commit them in the cell below before you write `rectify`; after the check, the cell below it prints
# your rectification and the package's next to them. (One more hand test worth doing: mirror the corners, or use a
# sign in one corner of the canvas – would the picture come out differently if your homography went the other way
# round?)

# %%
PREDICTION_ROW = [None] * 12  # your prediction: row 5 of rectify(ramp 1 … 16, SIGN_CORNERS, 12, margin=2)

# %%
def rectify(images: torch.Tensor, corners: torch.Tensor, out_size: int, margin: int = 0) -> torch.Tensor:
    """The signs seen straight on, with a border of ``margin`` output pixels. images: (N, C, S, S); corners:
    (N, 4, 2) where SIGN_CORNERS landed (normalized canvas coordinates) -> (N, C, out_size, out_size)"""
    ### BEGIN SOLUTION
    inside = 1 - 2 * margin / out_size  # pixel edges sit 2 / out_size apart: the square's corners, margin pixels in
    square = inside * torch.tensor(SIGN_CORNERS, dtype=corners.dtype).expand_as(corners)
    h = homography(square, corners).to(images.dtype)  # output -> canvas: what the sampler reads
    grid = projective_grid(h, (images.shape[0], images.shape[1], out_size, out_size), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    ### END SOLUTION


# %%
rectify = check("08.rectify", rectify)

# %%
from stn_course.data.signs import rectify as package_rectify  # the package's rectification, for the comparison

ramp_16 = (torch.arange(16, dtype=torch.float64) + 1).expand(1, 1, 16, 16)  # column j holds j + 1
whole = torch.tensor([SIGN_CORNERS], dtype=torch.float64)  # the sign fills the canvas
row = lambda out: " ".join(f"{value:5.2f}" for value in out[0, 0, 5].tolist())
print(f"your prediction: {PREDICTION_ROW}")
print(f"your rectify:    {row(rectify(ramp_16, whole, 12, 2))}")
print(f"the package's:   {row(package_rectify(ramp_16, whole, 12, 2))}")

# %% [markdown]
# <details><summary>Which way, and where the edges are</summary>
#
# **The direction.** It is tempting to take "the transform that undoes the distortion" – canvas corners to the
# square – and hand it to the grid. But a grid is a list of *where to read*: for each output pixel, a canvas point.
# So the grid's $H$ must take output coordinates to canvas coordinates, `homography(square_in_output, corners)` –
# the distortion itself, not its inverse. (The other direction reads the canvas at the points where the sign would
# go through the inverse of the distortion: a sign that is small in the canvas comes out smaller still.)
#
# **The edges.** With `align_corners=False` the normalized range $[-1, 1]$ spans the output's outer pixel *edges*:
# pixel $k$ covers $[-1 + 2k/s,\; -1 + 2(k+1)/s]$ for an output of $s$ pixels, so pixels are $2/s$ wide. The square's
# left edge, `margin` pixels in, is at $-1 + 2\,\text{margin}/s$: its corners are $\pm(1 - 2\,\text{margin}/s)$
# times `SIGN_CORNERS`. Two near misses: corners on the *centres* of the first pixels inside (at
# $\pm(1 - (2\,\text{margin} + 1)/s)$) move each edge half a pixel in – the sign comes out a pixel smaller; and
# counting pixels in the `align_corners=True` unit $2/(s-1)$ instead of $2/s$ moves each edge in by
# $\text{margin}/(s-1)$ of a pixel too many – invisible with `margin = 0`, which is why a hand test with a margin
# is worth doing.
#
# **The ramp row.** With `margin = 2` the 8 inner output pixels span the 16 canvas pixels: each output pixel is two
# canvas pixels wide, so its centre falls on the edge *between* two canvas pixels, and the bilinear sampler returns
# their mean – 1.5, 3.5, …, 15.5, not whole numbers. The margin pixels' centres lie 1.5 and 3.5 canvas pixels outside
# the canvas, more than a pixel out: both neighbours are outside, so they read exactly 0 (no fade). With the corners on
# the first inner pixel *centres*, that pixel's centre reads the canvas's outer edge – half of 0 and half of 1.
#
# **Outside the canvas.** `F.grid_sample`'s default `padding_mode="zeros"` makes every point that falls outside the
# canvas read 0 (bilinearly faded over the last half pixel); `"border"` would smear the canvas's edge pixels
# outwards – a sign near the edge would seem to continue in stripes.
# </details>

# %% [markdown]
# The inputs (top) and your rectification by their true corners (middle; bottom with a 4-pixel margin), one sign of
# each class: the first of its class whose top edge is at least 16 canvas pixels long (a smaller one has few
# pixels to enlarge and comes out blurred). A sign that is turned or slanted in the canvas comes out upright and
# filling its square. This is the *oracle*:
# the ST-CNN below never sees the corners – its localisation net must find the 8 numbers of $H$ from the pixels
# alone, learning only from the classification loss.

# %%
images, labels, corners = seen
top_edge = (corners[:, 1] - corners[:, 0]).norm(dim=-1) * CANVAS / 2  # in canvas pixels (normalized width 2)
pick = torch.stack([((labels == k) & (top_edge >= 16)).nonzero()[0, 0] for k in range(len(CLASSES))])
plotting.plot_rectified({"input": images[pick], "rectified\n(true corners)": rectify(images[pick], corners[pick], 28),
                         "margin 4": rectify(images[pick], corners[pick], 28, 4)},
                        titles=[plotting.class_name(k) for k in labels[pick]]);

# %% [markdown]
# ## Verify – a CNN and an ST-CNN, compared fairly
#
# ### Predict, then run
#
# The ST-CNN is lesson 5's, with a projective transformer and colour input: `st_cnn(40, "projective")` samples a
# 28×28 view of the 40×40 canvas, then classifies it. Its transformer starts as lesson 5's did: the regression head's
# weights are zero, and its bias is the **identity in pixels** (`start="pixels"`) – the transform under which
# neighbouring output pixels read canvas points exactly one canvas pixel apart, the output's centre at the canvas's
# centre (`F.grid_sample`, `align_corners=False`).
#
# Before the cell below shows it, write down your prediction (no check): which canvas x coordinates (pixel centres
# at 0, 1, …, 39) do output columns 0 and 27 of the untrained transformer read? And for a 27-pixel view of the same
# canvas, output columns 0 and 26? Commit the second in the cell below; the cell after it measures both with a ramp
# canvas and prints the 27-pixel truth next to your numbers; the fold after it has the general answer.

# %%
PREDICTION_27 = (None, None)  # your prediction: the canvas x that columns 0 and 26 of a 27-pixel view read

# %% [markdown]
# The data and the two models. The fair-comparison rules of lesson 5: the learning rates (the CNN's, the ST-CNN's
# and its transformer's) were chosen on a **validation set** – 10 % of the training signs, held out – by
# `benchmarks/sign_quality.py` under the same budget (4 settings each, the same epochs and seeds); both models have
# the same batch-norm layers in their classifier and about the same number of parameters; the **test set** is used
# once, at the end.

# %% tags=["skip-when-grading"]
started = time.perf_counter()
print(f"drawing {N_TRAIN} training and {N_TEST} test signs ...", end=" ", flush=True)
train_images, train_labels, _ = make_signs(N_TRAIN, seed=0)  # = sign_datasets(N_TRAIN, N_TEST, seed=0), the sweep's
test_images, test_labels, test_corners = make_signs(N_TEST, seed=1)
train_set, test_set = TensorDataset(train_images, train_labels), TensorDataset(test_images, test_labels)
fit_idx, val_idx = tuning.validation_split(len(train_set), VALIDATION, seed=0)
val_loader = DataLoader(Subset(train_set, val_idx.tolist()), batch_size=500)
test_loader = DataLoader(test_set, batch_size=500)
print(f"done in {time.perf_counter() - started:.0f} s")


def train_loader(seed: int) -> DataLoader:
    return DataLoader(Subset(train_set, fit_idx.tolist()), batch_size=64, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def build(model: str, seed: int) -> torch.nn.Module:
    """Lesson 8's models: the same trunk with batch norm, colour input."""
    if model == "cnn":
        return training.colour_input(training.baseline_cnn(CANVAS, seed=seed, batch_norm=True))
    return training.colour_input(training.st_cnn(CANVAS, "projective", seed=seed, batch_norm=True))


untrained = build("stcnn", 0)
view, _, _ = untrained.transform(images[:10])
print(f"parameters: CNN {training.count_parameters(build('cnn', 0)):,}, "
      f"ST-CNN {training.count_parameters(untrained):,}")
plotting.plot_rectified({"input": images[:10], "untrained\nST-CNN view": view});
ramp = torch.arange(CANVAS, dtype=torch.float32).expand(1, 3, CANVAS, CANVAS)  # each pixel's value: its column
read, _, _ = untrained.transform(ramp)  # bilinear sampling of a ramp returns the x coordinate it reads
print(f"the untrained view of a ramp canvas: output column 0 reads x = {read[0, 0, 0, 0].item():.3f}, column "
      f"{read.shape[-1] - 1} reads x = {read[0, 0, 0, -1].item():.3f} – the same window for every image")
view_27 = training.colour_input(training.st_cnn(CANVAS, "projective", out_size=27, seed=0, batch_norm=True))
read_27, _, _ = view_27.transform(ramp)
print(f"a 27-pixel view: column 0 reads x = {read_27[0, 0, 0, 0].item():.3f}, column 26 reads x = "
      f"{read_27[0, 0, 0, -1].item():.3f} (your prediction: {PREDICTION_27})")

# %% [markdown]
# The same window for every sign: with zero weights the head's output is its bias, whatever the image – the
# classifier sees the middle of the canvas, at the canvas's own resolution, and the localisation net must learn to
# move it.
#
# <details><summary>Why the centre is at (S − 1) / 2, and what an odd difference does</summary>
#
# With pixel centres at $0 \dots S-1$, the canvas's centre is $(S-1)/2$ – 19.5 for 40 pixels, between two
# pixels, not 20. The view's $s$ columns, one pixel apart and centred there, run from $(S-1)/2 - (s-1)/2 = (S-s)/2$
# to $(S+s)/2 - 1$: 6 … 33 for 40 and 28 (not 6 … 34: "centre ± 14" counts the centre as a pixel). When $S - s$
# is odd – 40 and 27 – the first column reads 6.5: every output pixel falls half-way between two canvas pixels and
# the bilinear sampler blends them, a slightly blurred start. In normalized units the same transform is
# $\theta = (s/S)\,I$: output column $j$ sits at $x_t = (2j + 1)/s - 1$, θ scales it by $s/S$, and lesson 2's
# unnormalization $x = ((x_s + 1) S - 1)/2$ gives $j + (S - s)/2$.
# </details>

# %% [markdown]
# Now the training: each model on each seed, `EPOCHS` epochs at its chosen learning rates, the validation error
# after every epoch; the test error once, after the last. One cell per model and seed, so that none runs long.

# %% tags=["skip-when-grading"]
# the learning rates chosen on the validation signs by benchmarks/sign_quality.py (its table: benchmarks/README.md)
SWEEP = benchmark_record("sign_quality")  # benchmarks/sign_quality.json (an installed package carries a copy)
LR = {model: (c["lr"], c["fraction"]) for model, c in SWEEP["chosen"].items()}
print("chosen on validation (learning rate, transformer's fraction of it):", LR,
      f"– sweep of {SWEEP['epochs']} epochs, seeds {SWEEP['seeds']}, {SWEEP['date']}")
histories = {"cnn": [], "stcnn": []}  # per model: one validation history per seed
tests = {"cnn": [], "stcnn": []}  # per model: one test error per seed
models = {}  # per model: the last seed's trained model


def train(model_name: str, seed: int) -> None:
    """Train ``model_name`` on ``seed`` at its chosen learning rates; record its history and its test error."""
    model = build(model_name, seed)
    lr, fraction = LR[model_name]
    histories[model_name].append(training.fit(model, train_loader(seed), val_loader, epochs=EPOCHS, lr=lr, seed=seed,
                                              transformer_lr=None if fraction is None else lr * fraction,
                                              desc=f"{model_name}, seed {seed}"))
    tests[model_name].append(training.evaluate(model, test_loader)["error"])
    models[model_name] = model


# %% tags=["skip-when-grading"]
train("cnn", SEEDS[0])

# %% tags=["skip-when-grading"]
train("cnn", SEEDS[1])

# %% tags=["skip-when-grading"]
train("stcnn", SEEDS[0])

# %% tags=["skip-when-grading"]
train("stcnn", SEEDS[1])
cnn_histories, cnn_test, cnn = histories["cnn"], tests["cnn"], models["cnn"]
st_histories, st_test, stcnn = histories["stcnn"], tests["stcnn"], models["stcnn"]

# %% tags=["skip-when-grading"]
(cnn_mean, cnn_sd), (st_mean, st_sd) = tuning.mean_spread(cnn_test), tuning.mean_spread(st_test)
margin, spread = cnn_mean - st_mean, max(cnn_sd, st_sd)  # from the unrounded means: may differ from the
# difference of the printed (rounded) ones in the last digit
print(f"test error after {EPOCHS} epochs, {len(SEEDS)} seeds (mean ± sd): "
      f"CNN {tuning.format_mean_spread(cnn_test)} %, "
      f"ST-CNN {tuning.format_mean_spread(st_test)} %")
if margin > spread:
    print(f"the ST-CNN beats the CNN by {margin:.2f} points, more than the seed spread ({spread:.1f})")
else:
    print(f"the ST-CNN does NOT beat the CNN by more than the seed spread: margin {margin:+.2f} points, "
          f"spread {spread:.1f} – at this budget the comparison is not decided")
plotting.plot_learning_curves({f"{name}, seed {s}": h for name, hs in (("CNN", cnn_histories), ("ST-CNN", st_histories))
                               for s, h in zip(SEEDS, hs)}, held_out="validation");

# %% [markdown]
# Read the verdict the cell prints, not the one you hoped for: with two seeds, a spread is a rough estimate, and a
# margin smaller than it decides nothing. `benchmarks/sign_quality.py` and its table in `benchmarks/README.md` show
# the same comparison for the whole sweep (validation errors of every setting, the test error of the chosen one).
#
# ### The rectified signs, beside the inputs
#
# What the trained transformer shows its classifier (the last seed's model), next to the oracle's rectification by
# the true corners. Whether it learned to zoom in on the sign is measured first, over all test signs: the area of
# the canvas its view covers, relative to the untrained window (below 1: the sign comes out larger), how far the
# view's centre is from the sign's centre, beside the same distance for the untrained window, and the share of view
# pixels read past the canvas (zeros: black strips in the view). Read the numbers the cell prints, not the ones you
# hoped for – after a short training the window may have moved little – then look at the pictures for views turned
# into a canonical pose that is not upright: nothing asks the transformer to make signs upright.

# %% tags=["skip-when-grading"]
def window(grid):  # the view's quadrilateral in the canvas: its area (pixels²) and centre (pixels), per image
    quad = torch.stack([grid[:, 0, 0], grid[:, 0, -1], grid[:, -1, -1], grid[:, -1, 0]], 1) * CANVAS / 2
    area = 0.5 * (quad[..., 0] * quad.roll(-1, 1)[..., 1] - quad.roll(-1, 1)[..., 0] * quad[..., 1]).sum(1).abs()
    return area, grid.mean((1, 2)) * CANVAS / 2


with torch.no_grad():
    _, _, trained_grid = stcnn.transform(test_images)
    (area, centre), (start_area, start_centre) = window(trained_grid), window(untrained.transform(test_images)[2])
sign_centre = test_corners.mean(1) * CANVAS / 2
print(f"over {len(test_images)} test signs (median): the view covers {(area / start_area).median():.2f} × the "
      f"untrained window's area; its centre is {(centre - sign_centre).norm(dim=-1).median():.1f} px from the sign's "
      f"centre (the untrained window's: {(start_centre - sign_centre).norm(dim=-1).median():.1f} px); "
      f"{100 * (trained_grid.abs() > 1).any(-1).float().mean():.1f} % of the view's pixels read past the canvas")
view, params, _ = stcnn.transform(test_images[:10])
with torch.no_grad():
    predicted = stcnn.eval()(test_images[:10]).argmax(1)
plotting.plot_rectified({"input": test_images[:10], "ST-CNN view": view,
                         "true corners": rectify(test_images[:10], test_corners[:10], 28)},
                        titles=[f"{k} -> {p}" for k, p in zip(test_labels[:10].tolist(), predicted.tolist())]);

# %% [markdown]
# ## Explore
#
# The sign explorer with the trained ST-CNN: choose a class, the sign's size, how far it may turn and how slanted the
# view is; the picture shows the input with the transformer's sampling grid, the rectification by the true corners,
# and the ST-CNN's own view and prediction. Try this:
#
# * turn clutter off and set the slant to 0.12: the sign is badly slanted, yet its rectification by the true
#   corners is upright and square (at 0.2 a corner can leave the canvas: what does the rectification show then?);
# * raise max turn to 90° and step through the draws of class 0: some horizontal bars end up closer to vertical
#   than to horizontal – class 1's bar. Which prediction does the ST-CNN give them?

# %% tags=["skip-when-grading"]
sign_explorer(stcnn)

# %% tags=["skip-when-grading"]
print(f"notebook ran in {time.perf_counter() - START:.0f} s")

# %% [markdown]
# ### Questions
#
# Answer in a sentence or two before you open the fold.

# %% [markdown]
# **1.** Classes 0 and 1 differ only in the direction of the bar. Why does the generator turn signs by at most 20°,
# and what would happen to these two classes at 90°?

# %% [markdown] tags=["answer"]
# Turned by 90°, a horizontal bar is a vertical one: the two classes become the same set of images and no model can tell them apart. Up to 20°, the direction still says which class it is. A transformer that learned to rotate freely could even make things worse; the class definition, not the model, sets how much invariance is allowed.

# %% [markdown]
# <details><summary>Answer</summary>
#
# Turned by 90°, a horizontal bar is a vertical one: the two classes become the same set of images and no model can tell them apart. Up to 20°, the direction still says which class it is. A transformer that learned to rotate freely could even make things worse; the class definition, not the model, sets how much invariance is allowed.
# </details>

# %% [markdown]
# **2.** The oracle rectification uses the true corners. Why would training the localisation net to *regress* those
# corners (a supervised loss) be a different experiment from the paper's?

# %% [markdown] tags=["answer"]
# The paper's transformer learns only from the classification loss: nobody tells it where the sign is, and it may find any view that makes classification easy. Regressing the corners needs labelled corners – extra supervision that real photographs rarely have – and it fixes the canonical pose to "upright", which is a choice, not a requirement.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The paper's transformer learns only from the classification loss: nobody tells it where the sign is, and it may find any view that makes classification easy. Regressing the corners needs labelled corners – extra supervision that real photographs rarely have – and it fixes the canonical pose to "upright", which is a choice, not a requirement.
# </details>

# %% [markdown]
# **3.** The cell after the training printed how the trained view compares with the untrained window: its area
# (relative) and how far its centre is from the signs' centres. If the area came out above 1 – the view zoomed
# *out*, the sign smaller in it – while its centre moved toward the signs, how can such a view still help the
# classifier? (Where in the canvas may a sign be, and what does the untrained window see of one near the edge?)

# %% [markdown] tags=["answer"]
# The untrained window is a fixed 28 × 28 crop of the canvas's middle (columns 6 … 33), and a sign 10 to 22 px wide may sit anywhere in the 40-pixel canvas: near an edge, part of its outline – the shape that tells a circle from an octagon – falls outside that crop. A larger window, its centre moved toward the sign, shows the whole sign; it comes out a little smaller (the width grows only as the square root of the area), which costs little resolution for a sign of that size. Nothing in the loss asks for a zoom: the view the transformer learns is whatever makes classification easier.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The untrained window is a fixed 28 × 28 crop of the canvas's middle (columns 6 … 33), and a sign 10 to 22 px wide may sit anywhere in the 40-pixel canvas: near an edge, part of its outline – the shape that tells a circle from an octagon – falls outside that crop. A larger window, its centre moved toward the sign, shows the whole sign; it comes out a little smaller (the width grows only as the square root of the area), which costs little resolution for a sign of that size. Nothing in the loss asks for a zoom: the view the transformer learns is whatever makes classification easier.
# </details>

# %% [markdown]
# ## Takeaways
#
# * A **flat object** seen by a camera is related to its straight-on view by a homography; enough point pairs pin
#   it down – not every set of them, whatever their count (Exercise 1 and its fold say which) – and it is the null
#   vector of the multiplied-out system (the direct linear transform) – fixing $h_9 = 1$ fails for maps that send the origin to
#   infinity – and the sampler needs it in the direction output → input.
# * A projective transformer regresses the 8 numbers of $H$; colour changes nothing in its machinery (one grid for
#   all channels) but gives the localisation net more to look at – and the clutter more ways to mislead it.
# * An untrained ST-CNN shows the same view for every image; what it learns to show is whatever makes the
#   classification easy, not necessarily the upright sign.
# * Report the comparison honestly: chosen on validation, tested once, mean ± spread over seeds, "after N epochs" –
#   and say when the margin is not larger than the spread.
