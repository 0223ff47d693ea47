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
#       points: 2
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
#     01.turn_theta:
#       title: 'predict, then run: the theta of a quarter turn on a non-square image'
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
# and every image size; and you will **predict** the $\theta$ of a quarter turn before the explorer shows it.
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
# The fourth, the rotation $R(\alpha)$, is yours to write (Exercise 1). The course's convention for the angle is the
# one you *see*: a positive $\alpha$ turns the picture **clockwise on screen**, as `imshow` draws it.
#
# Below: the letter F (chosen because it has no symmetry, so every flip and turn is visible) under the other three
# building blocks. The cross marks the origin – note that rotation and scaling happen *about the origin*.

# %%
plotting.plot_shapes({
    "scale (1.5, 0.7)": scaling(1.5, 0.7),
    "shear k_x = 0.5": shear(0.5),
    "translate (2, 1)": translation(2.0, 1.0),
}, title="three building blocks, applied to the letter F");

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
# the $2\times3$ matrix $\theta$ (6 numbers). The formula above transforms one *column* vector; code stores many
# points as the *rows* of a `(P, 2)` tensor – Exercise 3 needs one product that moves all of them.
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
# * **Inverse mapping (pull):** for every *output* pixel $q$, ask where it comes from, $p = M^{-1} q$, and read the
#   input there (rounding to the nearest pixel, or interpolating – lesson 2). Every output pixel gets exactly one
#   value; points outside the input read a padding value (0 here).
#
# This is why Jaderberg et al. write the transform from the output (target, $t$) to the input (source, $s$):
#
# $$ \begin{pmatrix} x^s_i \\ y^s_i \end{pmatrix} = \mathcal{T}_\theta(G_i) = A_\theta
# \begin{pmatrix} x^t_i \\ y^t_i \\ 1 \end{pmatrix} \qquad \text{(eq. 1)} $$
#
# so **$\theta$ is the inverse of the motion you see**: to see the content rotate by $+30°$, hand the sampler the
# rotation by $-30°$. Below, the same enlarging rotation pushed forward and pulled back. **Red pixels are holes**
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
# those lines, both ways round, is part of Exercise 4. The picture shows a $3\times4$ image with the $[-1, 1]^2$ frame
# in red and the pixel centres in blue:

# %%
plotting.plot_align_corners(height=3, width=4, formulas=False);  # the formulas are Exercise 4's

# %% [markdown]
# **From a pixel matrix to $\theta$.** Suppose $A$ maps *output pixels* to *input pixels* (the backward map a
# sampler needs). $\theta$ must do the same job in normalized coordinates: a normalized output point in, the
# normalized input point it reads out. Building $\theta$ from $A$ (Exercise 4) is where an STN most often goes
# wrong: a conversion forgotten, or done in the wrong convention, "almost works" but is off by half a pixel or
# stretched for non-square images. Note also what normalization does to a rotation: on a non-square image, a
# rotation in pixels is *not* a rotation matrix in normalized coordinates, because $x$ and $y$ are scaled by
# different amounts.

# %% [markdown]
# ## Build
#
# Four exercises here, and one checked prediction in Verify. Write the body between the markers, run the cell, then
# run the `check(...)` cell below it: it calls your function on fresh random inputs (edge cases first – 1-pixel and
# non-square images, batches) and compares with `stn_course.affine`. Use plain `torch`/`math`; don't call
# `stn_course.affine` inside your answers. Each exercise states the goal and the conventions, never the formula:
# work on paper first, and test by hand where the text says how.
#
# ### Exercise 1 – rotation matrix
#
# Return the homogeneous $3\times3$ rotation about the origin by `angle` radians, $\begin{pmatrix} R(\alpha) & 0
# \\ 0 & 1 \end{pmatrix}$, as a float64 tensor – in the course's convention (§1): a positive angle turns the
# picture **clockwise on screen**, where $x$ points right and $y$ points down. Test it by hand before the check: at
# $\alpha = 90°$, where on screen must the point one pixel right of the origin end up, and what are its $(x, y)$?

# %%
def rotation_matrix(angle: float) -> torch.Tensor:
    """Homogeneous rotation about the origin by ``angle`` radians, clockwise on screen (y down).
    ``-> (3, 3)`` float64"""
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
# Return the homogeneous motion that turns the content of an image of `size = (H, W)` by `angle` radians (clockwise
# on screen, as `rotation_matrix`) about **the image's centre**, as a `(3, 3)` float64 tensor: the centre stays where
# it is, everything else turns about it. Work it out on paper; your `rotation_matrix` may help. **Test by hand
# before you run the check:** on a $4\times4$ image a quarter turn sends the top-left pixel $(0, 0)$ to another
# corner pixel – which one, as $(x, y)$? Does your matrix send it exactly there? The check asks the same
# on 1-pixel, one-row and non-square images.

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
# **The hand test.** On the $4\times4$ image $c = (1.5, 1.5)$; the corner sits at $(-1.5, -1.5)$ from it (up-left),
# a clockwise quarter turn sends up-left to up-right, $(1.5, -1.5)$, and adding $c$ back gives pixel $(3, 0)$ – the
# top-right corner. About $(2, 2)$ the same turn lands it at $(4, 0)$: outside the image, on no pixel at all.
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
# content right. The check tries batches, one-row and one-column images and random motions.

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
# Your warp on the photo, next to a forward (pushing) warp of the same motion – as in §4, red marks the holes (output
# pixels inside the moved picture that no input pixel reached); black is the zero padding outside it:

# %%
plotting.plot_forward_vs_inverse(image, motion, inverse=inverse_warp(image, motion),
                                 inverse_title="your inverse_warp: no holes");

# %% [markdown]
# ### Exercise 4 – from any pixel motion to `theta`
#
# `matrix` maps **output pixels to input pixels** (the backward map a sampler needs): `(3, 3)`, or a batch
# `(N, 3, 3)`. The input image has `in_size = (H, W)`, the output `out_size`. Return the $\theta$, `(2, 3)` or
# `(N, 2, 3)`, with which `F.affine_grid(theta, …, align_corners=align_corners)` reads exactly the input pixels that
# `matrix` names – for either convention and **every** size. You need the pixel ↔ normalized lines of §5, both ways
# round: derive them on paper from the two points each convention pins (check them on the $3\times4$ picture). Where
# a side has a single pixel, let what `F.grid_sample` does there (§5) decide.
#
# One choice is the check's, because it compares $\theta$ itself: with `align_corners=True`, an *input* side of one
# pixel is read whatever $\theta$'s row for that axis says – give that row as all zeros (every output point asks for
# $u = 0$, the pixel's centre). Test by hand before the check: the identity matrix with `in_size == out_size` must
# give the identity $\theta$ in both conventions, and for a $1\times1$ output $\theta$ must read the input exactly
# where `matrix` sends pixel $(0, 0)$.

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
# **4. The real thing.** The next figure draws the sampling grid of this $\theta$ on the input, with a red square
# where the first output pixel, `out[0, 0]`, reads. Before you run it, say where that is in input pixels – it needs
# no grid and no sampler, only which way the pixel matrix maps – and compare with the print and the figure.

# %%
theta = pixel_to_theta(torch.linalg.inv(motion.double()), (h, w), (h, w), False)
source = torch.linalg.inv(motion.double()) @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
print("out[0, 0] reads input pixel (x, y) = (%.2f, %.2f)" % tuple(source[:2].tolist()))
plotting.plot_warp(photo, theta, align_corners=False);

# %% [markdown]
# **5. Predict, then run: a quarter turn in $\theta$.** The explorer below can turn the picture by $90°$ about its
# centre. Before you touch it, predict the $\theta$ it will show: the $2\times3$ matrix that makes `F.affine_grid` +
# `F.grid_sample` show the content turned by $+90°$ (clockwise on screen, the course's convention)
# about the image centre, on an `height × width` image (output the same size, both sides $\ge 2$), in either
# convention. Work it out on paper from what you know – which way $\theta$ maps, where the centre sits in
# normalized coordinates, how long a pixel is along each axis – not from your functions; the check tries other
# sizes than this picture's (the Explore section prints its $H \times W$). Every entry counts.

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
# $\theta = N\, R(-90°)\, N^{-1}$ (`pixel_to_theta` of the *inverse* motion: $\theta$ maps output points to the
# points they read, so it turns the other way, $-90°$). The image centre $\left(\frac{W-1}{2}, \frac{H-1}{2}\right)$
# is the normalized origin in both conventions, so the turn about it has no translation in $\theta$. $R(-90°)$ sends
# $(x, y)$ to $(y, -x)$, and $N$ scales $x$ by $2/W'$ and $y$ by $2/H'$ – $W' = W, H' = H$ with
# `align_corners=False`, $W' = W - 1, H' = H - 1$ with `True`:
# $$\theta = \begin{pmatrix} 0 & H'/W' & 0 \\ -W'/H' & 0 & 0 \end{pmatrix}.$$
# Normalized output $u$ becomes $u W'/2$ pixels, then turns into a $y$ distance, which is $2/H'$ per pixel: the
# entries are ratios of the sides, $\pm 1$ only for a square image. A rotation matrix written directly in normalized
# coordinates stretches a non-square picture – and turns it the wrong way round.
# </details>

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
# **1.** Toggling `align_corners` changes $\theta$ but not the picture. Why?

# %% [markdown] tags=["answer"]
# $\theta$ is the same pixel motion written in two unit systems. `pixel_to_theta` normalizes with the convention the grid will then use, so the grid converts it back to the same pixel positions. Mixing the conventions (building $\theta$ with one and sampling with the other) is what moves the picture, by up to half a pixel.

# %% [markdown]
# <details><summary>Answer</summary>
#
# $\theta$ is the same pixel motion written in two unit systems. `pixel_to_theta` normalizes with the convention the grid will then use, so the grid converts it back to the same pixel positions. Mixing the conventions (building $\theta$ with one and sampling with the other) is what moves the picture, by up to half a pixel.
# </details>

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
#   transformer is therefore target → source, the inverse of the motion you see.
# * Normalized coordinates put the image in $[-1, 1]$. `align_corners=True` pins $\pm1$ to the border pixel
#   *centres*, `False` to their outer *edges*. Convert with $\theta = N_\text{in} A D_\text{out}$ ($D_\text{out}$
#   written directly: $N_\text{out}$ has no inverse for a 1-pixel side with `align_corners=True`) and sample with the
#   same convention.
# * Next: lesson 2 reads *between* pixels – the sampling grid and bilinear interpolation.
