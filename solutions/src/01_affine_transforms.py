# ---
# lesson:
#   checks: stn_course.checks.lesson01
#   figures: stn_course.plotting.lesson01
#   explorers: stn_course.widgets.lesson01
#   budget_s: 120
#   dashboard:
#     intro: Rotate, scale, shear and move the picture about its centre. The picture's left panel shows where each output
#       pixel reads in the input (the sampling grid; the square marks the first output pixel), the right one the result;
#       under the sliders, the motion **M** in pixels and the **θ** a spatial transformer uses.
#     code: |
#       widgets.affine_explorer(size=64)
#   exercises:
#     01.rotation_matrix:
#       title: homogeneous 3×3 rotation matrix
#       points: 1
#       hint: >-
#         Draw the axes the way the screen shows them, x to the right and y DOWN, and follow the point (1, 0) through
#         a small clockwise turn: does its y grow or shrink? A matrix's columns are where (1, 0) and (0, 1) go.
#       recipe: >-
#         With y down, clockwise takes +x towards +y: (1, 0) goes to (cos a, sin a) and (0, 1) to (-sin a, cos a), so
#         the matrix is [[cos a, -sin a, 0], [sin a, cos a, 0], [0, 0, 1]] (radians; math.cos/torch.cos) – the school
#         matrix, clockwise here because y points down.
#     01.rotate_about:
#       title: 'turn an image about its centre: the matrix from its fixed point'
#       points: 1
#       hint: >-
#         Two questions, each on its own. Where is the centre – which pixels of a W-pixel row does a half turn swap,
#         and what lies midway? And which part of the 3×3 matrix is rotation_matrix's whatever the centre, and what
#         does "the centre stays put" then say about the rest?
#       recipe: >-
#         the centre is midway between the first and last pixel centres, c = ((W - 1)/2, (H - 1)/2) (not W/2: pixel x
#         sits at x, so the row spans 0 … W - 1). The linear part is R(angle); the translation t solves R c + t = c,
#         t = c - R c – the same as T(c) @ R @ T(-c), the rightmost matrix acting first.
#       builds_on:
#       - 01.rotation_matrix
#     01.inverse_warp:
#       title: 'a warp the way a sampler does it: pull every output pixel'
#       points: 2
#       hint: >-
#         Work from the output: every output pixel asks where it comes from. Does the motion answer that question, or
#         does something else? Try a shift right by 2 pixels on paper – and make sure a shift moves anything at all.
#         Then take a source just outside the left border, say x = -0.6: which pixel is nearest, and what does your
#         code read there?
#       recipe: >-
#         for every OUTPUT pixel (x, y) – all at once, one (x, y, 1) per row from torch.meshgrid – compute its source
#         with the INVERSE motion (torch.linalg.inv): rows @ inv(motion)^T, keep the first two columns. Round to the nearest
#         pixel (torch.round; .long() alone truncates -0.7 to 0), read it if 0 <= x < W and 0 <= y < H, else write 0.
#         Index image[..., y, x] – rows are y.
#       rtol: 1.0e-12
#       atol: 1.0e-12
#     01.turn_theta:
#       title: 'predict a theta by thought alone: a quarter turn on a non-square image'
#       points: 2
#       hint: >-
#         Three things to get right, each on its own: which way theta must turn (it maps output points to the points
#         they read), where the image centre sits in normalized coordinates, and how long one pixel is along x and
#         along y in this convention – follow one output point through pixels and back.
#       recipe: >-
#         theta = N R(-90°) N^-1 with the centre at the normalized origin (no translation); R(-90°) sends (x, y)
#         to (y, -x); N scales x by 2/W' and y by 2/H' with W' = W, H' = H (align_corners=False) or W - 1, H - 1 (True):
#         theta = [[0, H'/W', 0], [-W'/H', 0, 0]].
#       function: quarter_turn_theta
#     01.chain_thetas:
#       title: 'predict a theta by thought alone: two warps in a row as one'
#       points: 1
#       hint: >-
#         Follow one output point of the SECOND warp back to the original image, one step at a time: which point of
#         the first warp's output does it read, and where did that point read the original? Then write the two steps
#         as one product of homogeneous matrices (§2) – the point you start from is on the right.
#       recipe: >-
#         each theta maps an output point to the point it reads, so the second warp's point q reads the first warp's
#         output at second(q), which read the original at first(second(q)): theta = (H(first) @ H(second))[..., :2, :],
#         H appending the row (0, 0, 1) – the reverse of the order of the motions you see, (M2 M1)^-1 = M1^-1 M2^-1.
#     01.pixel_to_theta:
#       title: 'from any pixel motion to theta, for both conventions and every size'
#       points: 3
#       hint: >-
#         theta speaks normalized coordinates on both sides: take a normalized output point to output pixels, move it
#         with the pixel matrix, normalize it for the input. Each step is one straight line per axis, pinned by two
#         points from §5 – and a 1-pixel side is pinned by what the sampler does there.
#       recipe: >-
#         normalize with u = (2x + 1)/W - 1 (align_corners=False) or u = 2x/(W - 1) - 1 (True; a 1-pixel side: u = 0 for
#         every x). Denormalize the output with the lines solved for x, written directly: x = ((u + 1)W - 1)/2 or
#         x = (u + 1)(W - 1)/2 – not an inverse of the normalization, which has none for a 1-pixel side with
#         align_corners=True. theta = (N_in @ A @ D_out)[..., :2, :]; x uses W = size[1], y uses H = size[0], and each
#         image its own size.
# ---

# %% [markdown]
# # Lesson 1 – Affine transforms
#
# ## Goal
#
# A spatial transformer (Jaderberg et al., 2015) warps an image with a small matrix $\theta$ that a network predicts.
# Before any network, we need to be fluent in that matrix: what each of its six numbers does, in which order
# transforms combine, why the matrix a sampler wants is the *inverse* of the motion you see, and how pixel
# coordinates turn into the normalized $[-1, 1]$ coordinates of `F.affine_grid`.
#
# **You will build** – deriving each formula yourself, from a goal and a constraint – a rotation matrix, the motion
# that turns an image about its centre, a warp that works the way every sampler works (inverse mapping), and the
# conversion of *any* pixel-space motion into the `theta` of `F.affine_grid`, for both `align_corners` conventions
# and every image size; and, before that conversion, you will **predict** two $\theta$s by thought alone: a quarter
# turn, and two warps in a row done as one.
#
# **Package modules:** `stn_course.affine` (the tested reference of everything you write here),
# `stn_course.plotting`, `stn_course.widgets`.
#
# **Prerequisites:** matrix–vector products, a little PyTorch (tensors, indexing, `@`).

# %%
FAST = True  # small images so everything runs in seconds on a laptop CPU; False draws bigger pictures

%matplotlib inline
import math

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import plotting, widgets
from stn_course.affine import compose, invert, scaling, shear, translation
# the package's rotation, for the figures before you write your own (Exercise 1); the lesson imports nothing
# else of what you build (Verify imports the package's versions to compare with)
from stn_course.affine import rotation as package_rotation
from stn_course.images import sample_image
from stn_course.checks import check

torch.manual_seed(0)
np.random.seed(0)
SIZE = 64 if FAST else 160
image = sample_image("grace_hopper", size=SIZE)  # (1, 3, H, W) in [0, 1]
print("image:", tuple(image.shape), image.dtype)

# %% [markdown]
# ## Theory
#
# ### 1. Pixels, points and which way is down
#
# An image is indexed `image[..., y, x]`: `x` runs along a row (the width $W$), `y` down the columns (the height
# $H$). We treat the pixel centre of `image[y, x]` as the point $(x, y)$, so $x \in \{0, \dots, W-1\}$ and
# $y \in \{0, \dots, H-1\}$, and **$y$ points down** – the convention of `imshow`, of `F.affine_grid` and of the
# whole course.
#
# An *affine* transform moves a point $p = (x, y)^\top$ to $p' = A p + t$: a linear part $A$ ($2\times 2$) and a
# translation $t$. Three of the four building blocks:
#
# $$
# S = \begin{pmatrix} s_x & 0 \\ 0 & s_y \end{pmatrix},\quad
# Sh = \begin{pmatrix} 1 & k_x \\ k_y & 1 \end{pmatrix},\quad
# t = \begin{pmatrix} t_x \\ t_y \end{pmatrix}.
# $$
#
# The fourth, the rotation $R(\alpha)$ about the origin, is yours to write (Exercise 1). The course's convention
# for its angle is not written here in words: it is the one the package's rotation by $+20°$ shows in the figure
# below, drawn as `imshow` draws an image. Read it off the picture – Exercise 1 needs it.
#
# Below: the letter F (chosen because it has no symmetry, so every flip and turn is visible) under the four
# building blocks. The cross marks the origin – note that rotation and scaling happen *about the origin*.

# %%
plotting.plot_shapes({
    "scale (1.5, 0.7)": scaling(1.5, 0.7),
    "shear k_x = 0.5": shear(0.5),
    "translate (2, 1)": translation(2.0, 1.0),
    "the package's rotation by +20°": package_rotation(20.0, degrees=True),
}, title="four building blocks, applied to the letter F");

# %% [markdown]
# ### 2. Homogeneous coordinates
#
# Translation is not linear ($t$ is added, not multiplied), so chaining transforms would mix products and sums.
# The trick: append a 1 to every point. Then
#
# $$
# \begin{pmatrix} x' \\ y' \\ 1 \end{pmatrix} =
# \underbrace{\begin{pmatrix} a_{11} & a_{12} & t_x \\ a_{21} & a_{22} & t_y \\ 0 & 0 & 1 \end{pmatrix}}_{M}
# \begin{pmatrix} x \\ y \\ 1 \end{pmatrix}
# $$
#
# and *every* affine transform, translation included, is one $3\times3$ matrix; doing $B$ first and then $A$ is the
# single matrix $A B$. The last row is always $(0, 0, 1)$, so a spatial transformer only predicts the top two rows:
# the $2\times3$ matrix $\theta$ (6 numbers).
#
# ### 3. Composition and its order
#
# Matrix products do not commute: $T R \neq R T$. With the product acting on the left, **the rightmost matrix is
# applied first**. "Scale, then translate" is $T S$; "translate, then scale" is $S T$, and the scaling then also
# stretches the translation:

# %%
S, T = scaling(1.5, 0.7), translation(4.0, 0.0)
plotting.plot_shapes({"T @ S: scale, then translate": T @ S, "S @ T: translate, then scale": S @ T},
                     title="same two matrices, different order");

# %% [markdown]
# $R(\alpha)$ turns about the **origin**. Turning an image about its own centre $c$ instead is a different map:
# one whose **fixed point** is $c$ (it stays where it is) and which turns everything else by $\alpha$ around it.
# Exercise 2 builds it.
#
# ### 4. Inverse mapping: why the sampler wants the inverse
#
# There are two ways to move an image by a motion $M$.
#
# * **Forward mapping (push):** for every *input* pixel $p$, write its value to the output at $M p$. $M p$ is
#   rarely an integer; rounding it, some output pixels receive two input pixels and others receive none – **holes**.
# * **Inverse mapping (pull):** for every *output* pixel $q$, ask where it comes from – which input point $p$ the
#   motion carries onto $q$ – and read the input there (at the nearest pixel, or interpolating – lesson 2). Every
#   output pixel gets exactly one value; points outside the input read a padding value (0 here).
#
# This is why Jaderberg et al. write the transform from the output (target, $t$) to the input (source, $s$):
#
# $$ \begin{pmatrix} x^s_i \\ y^s_i \end{pmatrix} = \mathcal{T}_\theta(G_i) = A_\theta
# \begin{pmatrix} x^t_i \\ y^t_i \\ 1 \end{pmatrix} \qquad \text{(eq. 1)} $$
#
# so **$\theta$ is not the motion you see**: it answers the pull's question, "where does this output pixel come
# from?" – which matrix that is, for a motion you want to see, is yours to work out (Exercise 3 needs it in pixels).
# Below, the same enlarging rotation pushed forward and pulled back. **Red pixels are holes**
# (inside the moved picture, nothing landed there); black is the zero padding outside it – the colours mean the
# same in every figure of this lesson.

# %%
h, w = image.shape[-2:]
pivot = (0.45 * w, 0.45 * h)  # a point near the middle of the photo
motion = compose(translation(*pivot), package_rotation(25.0, degrees=True),
                 scaling(1.3), translation(-pivot[0], -pivot[1]))
plotting.plot_forward_vs_inverse(image, motion);

# %% [markdown]
# ### 5. Pixel coordinates vs normalized coordinates, and `align_corners`
#
# `F.affine_grid` and `F.grid_sample` do not speak pixels. They use **normalized** coordinates in which the image
# spans $[-1, 1]$ along each axis, whatever its size – so one $\theta$ works for a $28\times28$ digit and for a
# $600\times512$ photo, and the identity $\theta = \begin{pmatrix}1&0&0\\0&1&0\end{pmatrix}$ means "copy". There are
# two ways to decide *where exactly* $\pm1$ sits, chosen by `align_corners`:
#
# * `align_corners=True`: $-1$ and $+1$ are the **centres** of the first and last pixels, $x = 0$ and $x = W-1$.
#   A 1-pixel side has only one centre: it sits at $u = 0$. And it has no length: `F.grid_sample` reads its only
#   pixel whatever $u$ the grid asks about – the whole of $[-1, 1]$ collapses onto that one pixel.
# * `align_corners=False` (PyTorch's default since 1.3): $-1$ and $+1$ are the **outer edges** of those pixels –
#   pixel $x$ covers $[x - \tfrac12, x + \tfrac12]$, so the edges are $x = -\tfrac12$ and $x = W - \tfrac12$.
#
# (The same holds for $y$ with $H$.) Each rule fixes two points of a straight line $u = a x + b$ per axis – finding
# those lines, both ways round, is part of Exercise 6. The picture shows a $3\times4$ image with the $[-1, 1]^2$ frame
# in red and the pixel centres in blue:

# %%
plotting.plot_align_corners(height=3, width=4, formulas=False);  # the formulas are Exercise 6's

# %% [markdown]
# **From a pixel matrix to $\theta$.** Suppose $A$ maps *output pixels* to *input pixels* (the backward map a
# sampler needs). $\theta$ must do the same job in normalized coordinates: a normalized output point in, the
# normalized input point it reads out. Building $\theta$ from $A$ (Exercise 6) is where an STN most often goes
# wrong: a conversion forgotten, or done in the wrong convention, "almost works" but is off by half a pixel or
# stretched for non-square images. Note also what normalization does to a rotation: on a non-square image, a
# rotation in pixels is *not* a rotation matrix in normalized coordinates, because $x$ and $y$ are scaled by
# different amounts.

# %% [markdown]
# ## Build
#
# Six exercises here, the fourth and fifth checked predictions. Write the body between the markers, run the cell, then
# run the `check(...)` cell below it: it calls your function on fresh random inputs (edge cases first – 1-pixel and
# non-square images, batches) and compares with `stn_course.affine`. Use plain `torch`/`math`; don't call
# `stn_course.affine` inside your answers. Each exercise states the goal and the conventions, never the formula:
# work on paper first, and test by hand where the text says how.
#
# ### Exercise 1 – rotation matrix
#
# Return the homogeneous $3\times3$ rotation about the origin by `angle` radians, $\begin{pmatrix} R(\alpha) & 0
# \\ 0 & 1 \end{pmatrix}$, as a float64 tensor – turning the same way for a positive angle as the package's
# rotation by $+20°$ in the figure of §1 ($x$ points right, $y$ points down there, as in every image). Which way
# did the F turn on screen? Decide the matrix from the picture, not from a habit. Test it by hand before the check:
# at $\alpha = 90°$, where on screen must the point one pixel right of the origin end up, and what are its $(x, y)$?
# And the end of the F's top arm, at $(3, 0)$ – where does $+60°$ put it? (The figure shows only $+20°$: your point
# must lie on the same side, three times as far round.)

# %%
def rotation_matrix(angle: float) -> torch.Tensor:
    """Homogeneous rotation about the origin by ``angle`` radians, in the sense of the package's rotation in the
    figure of §1 (x right, y down). ``-> (3, 3)`` float64"""
    ### BEGIN SOLUTION
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ### END SOLUTION

# %%
rotation_matrix = check("01.rotation_matrix", rotation_matrix)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# **Which way is clockwise.** $+x$ points right and $+y$ points **down**, so a clockwise turn on screen takes the
# $+x$ axis (right) towards the $+y$ axis (down): at $90°$ the point $(1, 0)$ lands straight below the origin, at
# $(0, 1)$. A matrix's columns are where $(1, 0)$ and $(0, 1)$ go: turning by $\alpha$ from $+x$ towards $+y$ sends
# $(1, 0)$ to $(\cos\alpha, \sin\alpha)$, and $(0, 1)$ – a quarter turn further on – to
# $(\cos(\alpha + 90°), \sin(\alpha + 90°)) = (-\sin\alpha, \cos\alpha)$:
# $R(\alpha) = \begin{pmatrix} \cos\alpha & -\sin\alpha \\ \sin\alpha & \cos\alpha \end{pmatrix}$ – the rotation you
# know from school, which turns counter-clockwise in a $y$-up maths diagram and clockwise in a $y$-down image: flipping
# one axis flips the sense of every turn. Most people first write $R(-\alpha)$ ("clockwise is negative"), which
# is the school's habit in a $y$-up world and turns the picture the wrong way here.
# </details>

# %% [markdown]
# ### Exercise 2 – turn an image about its centre
#
# Return the homogeneous motion that turns the content of an image of `size = (H, W)` by `angle` radians (in the
# sense of `rotation_matrix`) about **the image's centre**, as a `(3, 3)` float64 tensor: the centre stays where it
# is, everything else turns about it. Where that centre is, is yours to find from §1 – no formula for it is given.
# Work it out on paper, then **test it by hand before the check**: draw an image small enough to draw, pick a turn
# whose result you know pixel for pixel, and see whether your matrix sends a pixel exactly onto the pixel it must.
# The check tries 1-pixel, one-row and non-square images.

# %%
def rotate_about(angle: float, size: tuple[int, int]) -> torch.Tensor:
    """Motion turning the content of an image of ``size = (H, W)`` by ``angle`` radians about its centre.
    ``-> (3, 3)`` float64"""
    ### BEGIN SOLUTION
    height, width = size
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)  # midway, end pixels
    turn = rotation_matrix(angle).clone()
    turn[:2, 2] = centre - turn[:2, :2] @ centre  # the fixed point: R c + t = c
    return turn
    ### END SOLUTION

# %%
rotate_about = check("01.rotate_about", rotate_about)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# **The centre.** Pixel $x$ sits at $x$, so a row spans $0 \dots W-1$, and a half turn must swap pixel $0$ with
# pixel $W-1$: the centre is midway, $c = \left(\frac{W-1}{2}, \frac{H-1}{2}\right)$. The habit $c = (W/2, H/2)$ is
# half a pixel off: a quarter turn about it sends a $4\times4$ image's corner pixels between the pixels, to $x = 4$.
#
# **The matrix.** Directions are differences of points, and a translation cancels in a difference, so the linear part
# is $R(\alpha)$ and only the translation column $t$ is unknown. The fixed point gives it: $R c + t = c$, so
# $t = c - R c = (I - R)\,c$. The same matrix, read as three moves: shift $c$ to the origin, turn, shift back,
# $R_c(\alpha) = T(c)\, R(\alpha)\, T(-c)$ (the rightmost acts first) – multiply it out and its last column is
# $c - Rc$. The other order, $T(-c)\, R\, T(c)$, turns about $-c$.
#
# **A hand test.** A quarter turn of a $4\times4$ image must send its corner pixels onto corner pixels. Here
# $c = (1.5, 1.5)$; the top-left pixel sits at $(-1.5, -1.5)$ from it (up-left), a clockwise quarter turn sends
# up-left to up-right, $(1.5, -1.5)$, and adding $c$ back gives pixel $(3, 0)$ – the top-right corner. About $(2, 2)$
# the same turn lands it at $(4, 0)$: outside the image, on no pixel at all.
# </details>

# %% [markdown]
# The centre must be a fixed point, and the order matters. A box of $W\times H = 2\times6$ pixels has its centre on
# the stem of the letter F; your matrix turns the F about it (red cross), `rotation_matrix` about the origin:

# %%
box = (6, 2)  # (H, W)
stem = torch.tensor([0.5, 2.5, 1.0], dtype=torch.float64)  # the box's centre, homogeneous
print("the centre after the turn:", (rotate_about(1.0, box) @ stem)[:2].tolist())
plotting.plot_shapes({"rotate_about(60°, (H, W) = (6, 2))": rotate_about(math.radians(60), box),
                      "rotation_matrix(60°), about the origin: clockwise": rotation_matrix(math.radians(60))},
                     title="rotating about a centre keeps the centre in place", mark=(0.5, 2.5))
from matplotlib.path import Path  # noqa: E402
assert Path(plotting.letter_f().numpy()).contains_point((0.5, 2.5))  # the fixed point lies on the shape

# %% [markdown]
# ### Exercise 3 – a warp the way a sampler does it
#
# Move the content of `image` by the pixel-space `motion` (a `(3, 3)` homogeneous matrix: the motion you want to
# *see*, shared by all images in the batch) the way a sampler does (§4): every output pixel gets exactly one value,
# read from the input at the nearest pixel; an output pixel whose nearest source pixel lies outside the image reads
# 0. No Python loops over pixels. Test it on motions you can check by eye – a shift right by 2 pixels must move the
# content right – and on one you can check by hand: a shift by less than a pixel. The check tries batches, one-row and
# one-column images, sub-pixel shifts and random motions, and never a source exactly halfway between two pixels.
#
# **Before you write it, commit to a prediction** in the cell below. A row of 3 pixels is shifted right by 0.6 of a
# pixel. Output pixel 0 then reads from a source at $x = -0.6$: which pixel of the input is nearest to that point, so
# what must output pixel 0 show? And the rounding found in much sampler code, `(x + 0.5).long()`: which index does it
# give for $x = -0.6$ – what would output pixel 0 show with it? After the check, a cell puts your answers next to what
# your `inverse_warp` does.

# %%
# your prediction, before you write inverse_warp: an input column index (0, 1, 2), or "zero" for the padding
predicted_read = None           # what output pixel 0 must show for a source at x = -0.6
predicted_add_half_read = None  # what it shows when the source is rounded with (x + 0.5).long()

# %%
def inverse_warp(image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """Warp by inverse mapping with nearest-neighbour reads and zeros outside.

    ``image: (N, C, H, W)``, ``motion: (3, 3)`` pixel-space forward motion ``-> (N, C, H, W)``
    """
    ### BEGIN SOLUTION
    n, c, h, w = image.shape
    back = torch.linalg.inv(motion.to(torch.float64))  # output pixel -> the input point it reads
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    ones = torch.ones(h * w, dtype=torch.float64)
    targets = torch.stack([xs.reshape(-1), ys.reshape(-1), ones], dim=-1)  # (H*W, 3): output pixels, homogeneous rows
    sources = torch.round(targets @ back.T)[:, :2].long()
    sx, sy = sources[:, 0], sources[:, 1]
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    values = image[..., sy.clamp(0, h - 1), sx.clamp(0, w - 1)]  # (N, C, H*W)
    return (values * inside.to(image.dtype)).reshape(n, c, h, w)
    ### END SOLUTION

# %%
inverse_warp = check("01.inverse_warp", inverse_warp)

# %% [markdown]
# <details><summary>How it works (open after the check passes)</summary>
#
# The motion says where an input point *goes*; a sampler needs, for every output pixel $q$, where it *comes from*:
# $M^{-1} q$. Appending a 1 to every output position gives the rows $\tilde Q$, `(H·W, 3)`; transposing
# $M^{-1}\tilde q$ for one point gives $\tilde q^\top M^{-\top}$, so all of them are $\tilde Q\, M^{-\top}$ (keep the
# first two columns). Without the 1 the translation column multiplies 0 and a shift moves nothing. Rounding picks
# the nearest pixel: `.long()` alone truncates towards 0 (2.7 becomes 2), and the old trick `(x + 0.5).long()` is
# right everywhere inside the image but turns a source at $-0.6$ into $-0.1$ and truncates that to pixel 0 – its
# nearest pixel is $-1$, outside, so it must read 0. The image is indexed `image[..., y, x]`.
# </details>

# %% [markdown]
# Your prediction against your warp, on a row of 3 pixels holding 10, 20, 30, shifted right by 0.6:

# %%
row = torch.tensor([[[[10.0, 20.0, 30.0]]]], dtype=torch.float64)
source = torch.tensor(-0.6, dtype=torch.float64)  # where output pixel 0 reads
add_half = int((source + 0.5).long())
print("your prediction for output pixel 0:", predicted_read, "| with (x + 0.5).long():", predicted_add_half_read)
print("your inverse_warp shows:           ", inverse_warp(row, translation(0.6, 0.0).double())[0, 0, 0].tolist())
print(f"(x + 0.5).long() at x = -0.6 gives index {add_half}: it would show column {add_half}, "
      f"{row[0, 0, 0, add_half].item():g}, where the nearest pixel, -1, lies outside and reads 0")

# %% [markdown]
# Your warp on the photo, next to a forward (pushing) warp of the same motion – as in §4, red marks the holes (output
# pixels inside the moved picture that no input pixel reached); black is the zero padding outside it:

# %%
plotting.plot_forward_vs_inverse(image, motion, inverse=inverse_warp(image, motion),
                                 inverse_title="your inverse_warp: no holes");

# %% [markdown]
# ### Exercise 4 – predict a $\theta$: a quarter turn on a non-square image
#
# Before you write the general conversion (Exercise 6), one $\theta$ by thought alone. Return the $2\times3$
# matrix that makes `F.affine_grid` + `F.grid_sample` show the content of a `height × width` image turned by $+90°$
# (the course's sense, as `rotation_matrix`) about the image centre – output the same size, both sides $\ge 2$, in
# the convention `align_corners` names. What you need is in §4 and §5: which question $\theta$ answers, where the
# image centre sits in normalized coordinates, and how many pixels one unit of $u$ is along $x$ and along $y$ in
# each convention. Every entry counts, and the check tries tall, wide and square images in both conventions.
# **Test by hand before the check**, on a $3\times5$ image ($H \times W$), in both conventions: after the turn, the
# output pixel just right of the centre pixel shows what the input had at which pixel? Write both pixels in
# normalized coordinates – does your $\theta$ send the one to the other?

# %%
def quarter_turn_theta(height: int, width: int, align_corners: bool) -> torch.Tensor:
    """``theta`` ``(2, 3)`` float64 showing the content turned by +90° about the centre of a ``height × width``
    image."""
    ### BEGIN SOLUTION
    hp, wp = (height - 1, width - 1) if align_corners else (height, width)  # the pixel lengths that span [-1, 1]
    # theta = N R(-90°) N^-1: the centre is the normalized origin, R(-90°) sends (x, y) to (y, -x), N rescales
    return torch.tensor([[0.0, hp / wp, 0.0], [-wp / hp, 0.0, 0.0]], dtype=torch.float64)
    ### END SOLUTION

# %%
quarter_turn_theta = check("01.turn_theta", quarter_turn_theta)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# $\theta = N\, R(-90°)\, N^{-1}$, with $N$ the pixel → normalized map (the *inverse* of the motion you see,
# written in normalized coordinates: $\theta$ maps output points to the points they read, so it turns the other way,
# $-90°$ – the content at the right of the output came from the top of the input). The image centre $\left(\frac{W-1}{2}, \frac{H-1}{2}\right)$
# is the normalized origin in both conventions, so the turn about it has no translation in $\theta$. $R(-90°)$ sends
# $(x, y)$ to $(y, -x)$, and $N$ scales $x$ by $2/W'$ and $y$ by $2/H'$ – $W' = W, H' = H$ with
# `align_corners=False`, $W' = W - 1, H' = H - 1$ with `True`:
# $$\theta = \begin{pmatrix} 0 & H'/W' & 0 \\ -W'/H' & 0 & 0 \end{pmatrix}.$$
# Normalized output $u$ becomes $u W'/2$ pixels, then turns into a $y$ distance, which is $2/H'$ per pixel: the
# entries are ratios of the sides, $\pm 1$ only for a square image. A rotation matrix written directly in normalized
# coordinates stretches a non-square picture – and turns it the wrong way round.
# </details>

# %% [markdown]
# ### Exercise 5 – predict a $\theta$: two warps in a row as one
#
# Spatial transformers are often stacked: one warps the image with the $\theta$ `first`, a second one warps *that
# result* with the $\theta$ `second` (each an `F.affine_grid` + `F.grid_sample`, the same `align_corners` in every
# call). Every output pixel of the second warp then shows some point of the original image. Return the single
# $\theta$ with which **one** `F.affine_grid` + `F.grid_sample` reads the original at exactly those points.
# `first` and `second` are `(2, 3)`, or batches `(N, 2, 3)` whose $i$-th thetas belong together; the answer has
# their shape and dtype. It is one product of two matrices – which one is the question, and §2 to §4 hold what you
# need. No sampler is needed for the answer. **Test by hand before the check**, with two $\theta$s whose effect
# you can say in words – a zoom and a shift, say: follow the centre of the final output back to the original image
# through both warps, and see whether your $\theta$ sends it there. The check tries random pairs, batches and both
# float dtypes.

# %%
def chain_thetas(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The one ``theta`` of warping by ``first`` and then warping the result by ``second``.

    ``first, second: (2, 3)`` or ``(N, 2, 3)`` ``-> `` the same shape and dtype
    """
    ### BEGIN SOLUTION
    last = torch.zeros(*first.shape[:-2], 1, 3, dtype=first.dtype)
    last[..., 0, 2] = 1.0  # the row (0, 0, 1) that makes a theta a homogeneous 3×3 matrix
    one, two = torch.cat([first, last], dim=-2), torch.cat([second, last], dim=-2)
    # the second's output point q reads the first's output at two @ q, which read the original at one @ (two @ q)
    return (one @ two)[..., :2, :]
    ### END SOLUTION

# %%
chain_thetas = check("01.chain_thetas", chain_thetas)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# Each $\theta$ pulls: it sends an output point to the point it reads. Write $\Theta_1$, $\Theta_2$ for `first`
# and `second` with the row $(0, 0, 1)$ appended (§2). The second warp's output point $q$ shows the first warp's
# output at $\Theta_2 q$, and that point showed the original at $\Theta_1 (\Theta_2 q)$:
# $$\theta = [\Theta_1 \Theta_2]_{\text{top two rows}},$$
# `first` on the **left**, although it was applied first. In the language of motions: the warps show the motions
# $M_1 = \Theta_1^{-1}$, then $M_2 = \Theta_2^{-1}$, together $M_2 M_1$ (§3: the rightmost acts first), and the
# $\theta$ that shows a motion is its inverse (§4): $(M_2 M_1)^{-1} = M_1^{-1} M_2^{-1} = \Theta_1 \Theta_2$.
# Inverting a product reverses its order – socks go on before shoes and come off after them. The natural first
# answer, $\Theta_2 \Theta_1$, composes the $\theta$s as if they were the motions you see. And the product must be
# homogeneous: the shift of `second` is itself turned and scaled by the linear part of `first`,
# $t = A_1 t_2 + t_1$.
# </details>

# %% [markdown]
# Why one $\theta$ rather than two warps? Every `F.grid_sample` pass between pixel centres mixes neighbouring pixels
# (bilinear reads, lesson 2), and whatever the first pass moved out of the frame is gone for the second. Below, a
# $\theta$ and its inverse (a turn by 20° in normalized coordinates, and back), once as two bilinear passes and once
# as the single $\theta$ of your `chain_thetas`:

# %%
turn = math.radians(20)
there = torch.tensor([[math.cos(turn), -math.sin(turn), 0.0], [math.sin(turn), math.cos(turn), 0.0]],
                     dtype=torch.float64)
back = invert(there)  # the theta that undoes it


def bilinear_warp(picture: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """One F.affine_grid + F.grid_sample pass: bilinear reads, zeros outside."""
    grid = F.affine_grid(theta[None], list(picture.shape), align_corners=False)
    return F.grid_sample(picture, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


photo = image.double()
two_passes = bilinear_warp(bilinear_warp(photo, there), back)
one_pass = bilinear_warp(photo, chain_thetas(there, back))
middle = (..., slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))  # in the frame after either pass
for name, result in (("two bilinear passes", two_passes), ("one pass with chain_thetas", one_pass)):
    print(f"{name:27s}: mean |result - photo| in the middle = {(result - photo)[middle].abs().mean():.1e}")
plotting.show_images({"the photo": photo, "two bilinear passes": two_passes,
                      "one pass: chain_thetas": one_pass}, size=2.5);

# %% [markdown]
# ### Exercise 6 – from any pixel motion to `theta`
#
# `matrix` maps **output pixels to input pixels** (the backward map a sampler needs): `(3, 3)`, or a batch
# `(N, 3, 3)`. The input image has `in_size = (H, W)`, the output `out_size`. Return the $\theta$, `(2, 3)` or
# `(N, 2, 3)`, with which `F.affine_grid(theta, …, align_corners=align_corners)` reads exactly the input pixels that
# `matrix` names – for either convention and **every** size. You need the pixel ↔ normalized lines of §5, both ways
# round: derive them on paper from the two points each convention pins (check them on the $3\times4$ picture). Where
# a side has a single pixel, let what `F.grid_sample` does there (§5) decide – input and output sides alike.
#
# The check compares what matters, not $\theta$'s numbers: where `F.affine_grid` + `F.grid_sample` read with your
# $\theta$, in input pixels, at every output pixel centre, against where `matrix` says they must read. Test by hand
# before the check: the identity matrix with `in_size == out_size` must give the identity $\theta$ in both
# conventions; for a $1\times1$ output $\theta$ must read the input exactly where `matrix` sends pixel $(0, 0)$; and
# an input of height 1 with `align_corners=True` must give a $\theta$ whose grid `F.grid_sample` can use. If you try
# a 1-pixel *output* side with `align_corners=True` in `F.affine_grid` yourself, PyTorch warns about "unit-size grids
# when align_corners=True": since version 1.3 such a side's grid holds the single point $u = 0$ (before, $-1$), and
# its documentation calls pinned corners on a 1-pixel side ill-defined, "not an intended use case". It tells you of
# that change; here it is expected, not a sign of a mistake.

# %%
def pixel_to_theta(matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int],
                   align_corners: bool) -> torch.Tensor:
    """Pixel-space sampling matrix (output pixel -> input pixel) to normalized theta.

    ``matrix: (…, 3, 3)``, sizes ``(H, W)`` ``-> (…, 2, 3)``
    """
    ### BEGIN SOLUTION
    def axis_map(size: tuple[int, int], line) -> torch.Tensor:  # diagonal (3, 3): one line (scale, offset) per axis
        (ax, bx), (ay, by) = line(size[1]), line(size[0])
        return torch.tensor([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def normalize(n: int) -> tuple[float, float]:  # pixel -> normalized along an n-pixel side: u = a x + b
        if align_corners:
            return (2.0 / (n - 1), -1.0) if n > 1 else (0.0, 0.0)
        return 2.0 / n, 1.0 / n - 1.0

    def denormalize(n: int) -> tuple[float, float]:  # the same line solved for x (1 pixel: pixel 0 for every u)
        return ((n - 1) / 2, (n - 1) / 2) if align_corners else (n / 2, (n - 1) / 2)

    return (axis_map(in_size, normalize) @ matrix.to(torch.float64) @ axis_map(out_size, denormalize))[..., :2, :]
    ### END SOLUTION

# %%
pixel_to_theta = check("01.pixel_to_theta", pixel_to_theta)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# **Pixel → normalized.** `align_corners=True`: $a\cdot 0 + b = -1$ and $a (W-1) + b = 1$ give
# $u = \frac{2x}{W-1} - 1$. `align_corners=False`: $a(-\tfrac12) + b = -1$ and $a(W - \tfrac12) + b = 1$ give
# $u = \frac{2x + 1}{W} - 1$. The $y$ line is the same with $H$.
#
# **Normalized → pixel**, the same lines solved for $x$:
# $$x = \frac{(u+1)(W-1)}{2} \quad(\texttt{align\_corners=True}), \qquad x = \frac{(u+1)W - 1}{2}
# \quad(\texttt{align\_corners=False}).$$
#
# **The chain**, rightmost first: normalized output → output pixels ($D_\text{out}$), the pixel matrix $A$, input
# pixels → normalized ($N_\text{in}$): $\theta = [N_\text{in}\, A\, D_\text{out}]_{\text{top two rows}}$. Usually
# $D_\text{out} = N_\text{out}^{-1}$ – but with `align_corners=True` a 1-pixel side has no two points to pin a line:
# `F.grid_sample` reads its only pixel whatever $u$ the grid asks, so $N$ sends every $x$ to $u = 0$ (scale 0,
# singular) while the denormalization above gives $x = 0$ for every $u$. Inverting $N_\text{out}$ fails exactly
# there; the line written directly does not. (The pseudo-inverse `torch.linalg.pinv` happens to get it right: it
# inverts the non-zero scales and leaves a zero scale at zero, which is the same line. Writing the line says why.)
#
# **A 1-pixel input side** with `align_corners=True`: the natural $2/(W-1)$ divides by zero there (an error in
# Python, `inf` and then `nan` in torch), yet nothing needs to be divided: `F.grid_sample` reads pixel 0 whatever
# $u$ the grid asks for, so $\theta$'s row for that axis may say anything finite. The package writes it as zeros
# ($N$ sends every $x$ to $u = 0$, the pixel's centre); any other finite row reads the same pixels, and the check,
# which compares reads, accepts it. Where a sampler cannot tell two $\theta$s apart, neither can a check that asks
# the sampler – which is why it compares reads and not numbers.
# </details>

# %% [markdown]
# ## Verify
#
# Your functions against the package and against PyTorch's own `F.affine_grid`/`F.grid_sample`, on the photo.
#
# **1. The matrices agree with `stn_course.affine`.**

# %%
from stn_course import affine as package_affine  # the package's versions, to compare with

angle = math.radians(30)
centre = ((w - 1) / 2, (h - 1) / 2)
print("rotation:     ", torch.allclose(rotation_matrix(angle), package_rotation(torch.tensor(angle, dtype=torch.float64))))
print("rotate_about: ", torch.allclose(rotate_about(angle, (h, w)), compose(
    translation(*centre), package_rotation(angle), translation(-centre[0], -centre[1])).double()))
for align_corners in (False, True):
    ours = pixel_to_theta(invert(motion.double()), (h, w), (h, w), align_corners)
    ref = package_affine.pixel_to_theta(invert(motion.double()), (h, w), align_corners=align_corners)
    print(f"pixel_to_theta, align_corners={align_corners}: max |ours - package| = {(ours - ref).abs().max():.2e}")

# %% [markdown]
# **2. PyTorch reads exactly where your matrix says.** Build $\theta$ for the backward map $M^{-1}$, let
# `F.affine_grid` make the grid, convert the grid to input pixels (Theory §5) and compare with $M^{-1}$ applied to
# the output pixel centres (the package's `normalization_matrix` and `apply`):

# %%
def grid_to_pixels(grid: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """Normalized (x, y) ``(1, H, W, 2)`` -> input pixels (x, y) ``(1, H, W, 2)``: the inverse of the package's
    ``normalization_matrix`` (invertible here, both sides have more than one pixel)."""
    to_pixels = torch.linalg.inv(package_affine.normalization_matrix(size, align_corners, torch.float64))
    return package_affine.apply(to_pixels, grid.reshape(1, -1, 2).double()).reshape(grid.shape)


pixel_y, pixel_x = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
centres = torch.stack([pixel_x, pixel_y], dim=-1).reshape(-1, 2)
expected_sources = package_affine.apply(torch.linalg.inv(motion.double()), centres).reshape(h, w, 2)
for align_corners in (False, True):
    theta = pixel_to_theta(torch.linalg.inv(motion.double()), (h, w), (h, w), align_corners)[None]
    grid = F.affine_grid(theta, (1, 3, h, w), align_corners=align_corners)
    sources = grid_to_pixels(grid, (h, w), align_corners)[0]
    print(f"align_corners={align_corners}: max |F.affine_grid source - your source| = "
          f"{(sources - expected_sources).abs().max():.2e} pixels")

# %% [markdown]
# **3. Same picture as `F.grid_sample`.** With nearest-neighbour reads and zero padding, `F.grid_sample` on that
# grid must reproduce your `inverse_warp` pixel for pixel, in both conventions – `align_corners` is only a choice
# of coordinates, as long as $\theta$ is converted with the same one. Using the wrong one shifts and stretches the
# result by a fraction of a pixel:

# %%
photo = image.double()
mine = inverse_warp(photo, motion)
for align_corners in (False, True):
    theta = pixel_to_theta(torch.linalg.inv(motion.double()), (h, w), (h, w), align_corners)[None]
    grid = F.affine_grid(theta, (1, 3, h, w), align_corners=align_corners)
    torch_nearest = F.grid_sample(photo, grid, mode="nearest", padding_mode="zeros", align_corners=align_corners)
    wrong = F.grid_sample(photo, grid, mode="nearest", padding_mode="zeros", align_corners=not align_corners)
    print(f"align_corners={align_corners}: max |F.grid_sample - inverse_warp| = {(torch_nearest - mine).abs().max():.1e}"
          f"   (with the other convention: {(wrong - mine).abs().max():.2f}, "
          f"{(wrong != mine).any(1).float().mean():.0%} of pixels differ)")

# %% [markdown]
# **4. The real thing.** The figure after the next cell draws the sampling grid of this $\theta$ on the input, with
# a red square where the first output pixel, `out[0, 0]`, reads. Before you run it, write down where that is in
# input pixels – it needs no grid and no sampler, only `motion` (§4's cell) and which way the pixel matrix maps.

# %%
predicted_source = None  # (x, y) in input pixels, where out[0, 0] reads: your number, worked out by hand

# %%
theta = pixel_to_theta(torch.linalg.inv(motion.double()), (h, w), (h, w), False)
plotting.plot_warp(photo, theta, align_corners=False);

# %% [markdown]
# Is the red square where you said? The number:

# %%
source = torch.linalg.inv(motion.double()) @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
print("your prediction:", predicted_source)
print("out[0, 0] reads input pixel (x, y) = (%.2f, %.2f)" % tuple(source[:2].tolist()))

# %% [markdown]
# ## Explore
#
# The explorer builds the motion $M = T(c)\,T(t)\,R\,Sh\,S\,T(-c)$ about the image centre from the sliders and
# shows $M$ and $\theta = $ `pixel_to_theta(invert(M))`. Things to try:
#
# * Rotate by 90° and look at $\theta$: on this non-square image it is not a rotation matrix (§5) – compare it with
#   your `quarter_turn_theta(h, w, False)` for this picture's size, printed below.
# * Scale by 2: the grid shrinks (the output reads a smaller region) – $\theta$'s scale is $1/2$.
# * Translate right by 10 pixels: which sign does $\theta$'s translation get, and why?
# * Toggle `align_corners` with a translation: $\theta$ changes, the picture does not.

# %%
print(f"this picture: H × W = {h} × {w}; your quarter_turn_theta({h}, {w}, False) =")
print(quarter_turn_theta(h, w, False))

# %% tags=["skip-when-grading"]
widgets.affine_explorer(size=SIZE)

# %% [markdown]
# ### Questions
#
# Answer in a sentence or two before you open the fold.

# %% [markdown]
# **1.** A $4\times4$ image and the identity $\theta$: you build the grid with `align_corners=True` and sample it
# with `align_corners=False` (the mix-up Verify 3 warned about). At which input point, in pixels, does each output
# pixel of a row read? By how much, in pixels, is the content shifted – at the border, and at the centre?

# %% [markdown] tags=["answer"]
# Output pixel $x$ sits at $u = 2x/3 - 1$ on the `align_corners=True` grid ($W - 1 = 3$), and the sampler, reading with `False`, takes $u$ to $x' = \frac{(u + 1)\,4 - 1}{2} = \frac{4x}{3} - \frac12$: pixels 0, 1, 2, 3 read at $-0.5$, $0.83$, $2.17$, $3.5$. Nothing moves at the centre, $x = 1.5$; every read is pushed away from it by a third of its distance, so the border pixels read half a pixel outside the row, on the outer edges of the end pixels. The content is not shifted but shrunk, by $(W-1)/W = 3/4$ about the centre, and the border columns read half of the zero padding once lesson 2 interpolates. The other way round ($\theta$ built with `False`, sampled with `True`) the reads move towards the centre, $x' = \frac34 x + \frac38$: the content is enlarged by $4/3$ and the ends are $3/8$ of a pixel in. The error is never a constant shift: it is zero at the centre and largest at the borders, which is why it hides in a test that only looks at the middle.

# %% [markdown]
# <details><summary>Answer</summary>
#
# Output pixel $x$ sits at $u = 2x/3 - 1$ on the `align_corners=True` grid ($W - 1 = 3$), and the sampler, reading with `False`, takes $u$ to $x' = \frac{(u + 1)\,4 - 1}{2} = \frac{4x}{3} - \frac12$: pixels 0, 1, 2, 3 read at $-0.5$, $0.83$, $2.17$, $3.5$. Nothing moves at the centre, $x = 1.5$; every read is pushed away from it by a third of its distance, so the border pixels read half a pixel outside the row, on the outer edges of the end pixels. The content is not shifted but shrunk, by $(W-1)/W = 3/4$ about the centre, and the border columns read half of the zero padding once lesson 2 interpolates. The other way round ($\theta$ built with `False`, sampled with `True`) the reads move towards the centre, $x' = \frac34 x + \frac38$: the content is enlarged by $4/3$ and the ends are $3/8$ of a pixel in. The error is never a constant shift: it is zero at the centre and largest at the borders, which is why it hides in a test that only looks at the middle.
# </details>

# %%
from stn_course.sampling import unnormalize  # noqa: E402 – grid_sample's first step: normalized -> pixels

identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
for built, sampled in ((True, False), (False, True)):
    u = F.affine_grid(identity, [1, 1, 4, 4], align_corners=built)[0, 0, :, 0]  # one row's x
    reads = unnormalize(u, 4, align_corners=sampled)
    print(f"built with {built!s:5}, sampled with {sampled!s:5}: output pixels 0..3 read x =",
          [round(x, 3) for x in reads.tolist()], "  shift:", [round(x, 3) for x in (reads - torch.arange(4)).tolist()])

# %% [markdown]
# **2.** A forward (push) warp leaves holes when it enlarges the picture. Does it leave holes when it shrinks it, say
# by half? What goes wrong instead – and does your `inverse_warp` escape that problem?

# %% [markdown] tags=["answer"]
# A forward warp that shrinks leaves no holes: now several input pixels land on the same output pixel, and each write replaces the one before, so the result depends on the order of the loop and most input pixels are simply lost. The inverse warp with nearest reads loses them too – it reads every second pixel and skips the rest (aliasing) – but each output pixel gets exactly one, well-defined value; averaging what is skipped (a blur before shrinking) is the usual cure.

# %% [markdown]
# <details><summary>Answer</summary>
#
# A forward warp that shrinks leaves no holes: now several input pixels land on the same output pixel, and each write replaces the one before, so the result depends on the order of the loop and most input pixels are simply lost. The inverse warp with nearest reads loses them too – it reads every second pixel and skips the rest (aliasing) – but each output pixel gets exactly one, well-defined value; averaging what is skipped (a blur before shrinking) is the usual cure.
# </details>

# %% [markdown]
# ## Takeaways
#
# * Homogeneous $3\times3$ matrices make every affine map – translation included – one product; the rightmost
#   matrix acts first, so rotate-about-centre is $T(c)\,R\,T(-c)$ – and an image's centre is
#   $\left(\frac{W-1}{2}, \frac{H-1}{2}\right)$, midway between its end pixels, not $(W/2, H/2)$.
# * With $y$ down, $R(\alpha)$ turns points clockwise on screen.
# * Samplers pull: each output pixel reads the input at $M^{-1} q$. Pushing leaves holes. The $\theta$ of a spatial
#   transformer is therefore target → source, the inverse of the motion you see – and two warps in a row are the one
#   $\theta$ `first @ second` (homogeneous), the reverse of the motions' order; one pass also spares a second blur.
# * Normalized coordinates put the image in $[-1, 1]$. `align_corners=True` pins $\pm1$ to the border pixel
#   *centres*, `False` to their outer *edges*. Convert with $\theta = N_\text{in} A D_\text{out}$ ($D_\text{out}$
#   written directly: $N_\text{out}$ has no inverse for a 1-pixel side with `align_corners=True`) and sample with the
#   same convention.
# * Next: lesson 2 reads *between* pixels – the sampling grid and bilinear interpolation.
