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
#         A rotation by a moves the x axis to (cos a, sin a): write where each axis goes as a column, and a homogeneous
#         matrix keeps 1 in its corner.
#       recipe: >-
#         [[cos a, -sin a, 0], [sin a, cos a, 0], [0, 0, 1]] (radians; math.cos/torch.cos); the -sin sits in the first
#         row. A flipped sign rotates the other way.
#     01.rotate_about:
#       title: 'rotation about a centre, from its fixed point'
#       points: 1
#       hint: >-
#         A turn about c turns every direction exactly as a turn about the origin does: which part of the 3×3 matrix
#         can that leave unknown? Then write down what the matrix must do to c, and solve for the unknown.
#       recipe: >-
#         move the centre to the origin first (T(-c)), rotate, move back (T(c)). The matrix applied first is the rightmost
#         one: T(c) @ R @ T(-c). The centre itself must stay where it is.
#       builds_on:
#       - 01.rotation_matrix
#     01.quarter_turn:
#       title: 'predict: where a quarter turn about the centre sends the corner pixel'
#       points: 1
#       hint: >-
#         Turning about c is turning the offset from c. Where is pixel (0, 0) seen from c, and where does a quarter turn
#         from +x towards +y send that offset? Draw the axes as the screen shows them (y down), then sketch a square
#         image.
#       recipe: >-
#         the offset of (0, 0) from c is (-cx, -cy); your rotation_matrix at 90° sends (x, y) to (-y, x), so the offset
#         becomes (cy, -cx); add c back: (cx + cy, cy - cx). For a square image the top-left corner lands top-right.
#       function: corner_after_quarter_turn
#     01.apply_affine:
#       title: apply a homogeneous matrix to points
#       points: 1
#       hint: >-
#         A 3×3 matrix acts on homogeneous points (x, y, 1). What happens to the translation column if the 1 is missing?
#       recipe: >-
#         append a 1 to every point (torch.cat with ones), multiply – points are rows, so use points_h @ M^T (transpose
#         the last two dims) – and keep the first two coordinates. Forgetting the 1 drops the translation.
#     01.normalization_matrix:
#       title: pixel -> normalized [-1, 1] coordinates as a 3×3 matrix
#       points: 1
#       hint: >-
#         Decide where the first and last pixel land for each align_corners setting (centres or edges at ±1), then write
#         the straight line through them.
#       recipe: >-
#         align_corners=False: u = (2x + 1)/W - 1 (pixel edges at ±1); align_corners=True: u = 2x/(W - 1) - 1 (pixel centres
#         at ±1), and a 1-pixel side maps to 0 (scale 0, offset 0). x uses W = size[1], y uses H = size[0].
#     01.pixel_to_theta:
#       title: pixel-space sampling matrix -> normalized theta (2×3)
#       points: 1
#       hint: >-
#         theta speaks normalized coordinates on both sides: take a normalized output point back to pixels, move it with
#         the pixel matrix, normalize it for the input. Mind a 1-pixel side, where the normalization is not invertible.
#       recipe: >-
#         theta maps normalized output coords to normalized input coords: first denormalize the output (a matrix D_out
#         written directly from x = (u + 1)(W - 1)/2 or ((u + 1)W - 1)/2 – not an inverse of N_out, which has none for
#         a 1-pixel side with align_corners=True), then apply the pixel matrix, then normalize for the input (N_in):
#         theta = (N_in @ A @ D_out)[..., :2, :]. Use each image's own size and the same align_corners.
#       builds_on:
#       - 01.normalization_matrix
#     01.inverse_warp:
#       title: inverse mapping with nearest-neighbour reads
#       points: 2
#       hint: >-
#         Work from the output: every output pixel asks where it comes from. Does the motion answer that question, or
#         does something else? Try a shift right by 2 pixels on paper.
#       recipe: >-
#         for every OUTPUT pixel (x, y), compute its source with the INVERSE motion (torch.linalg.inv), round to the nearest
#         pixel (torch.round), read it if 0 <= x < W and 0 <= y < H, else write 0. Index image[..., y, x] – rows are y.
#       builds_on:
#       - 01.apply_affine
#       rtol: 1.0e-12
#       atol: 1.0e-12
#     01.corner_source:
#       title: 'predict, then run: where does out[0, 0] read?'
#       points: 1
#       hint: >-
#         Follow the one point through the chain: which normalized coordinate does output pixel 0 have in this
#         convention, what does theta do to it, and how does a normalized coordinate go back to input pixels?
#       recipe: >-
#         u0 = -1 (align_corners=True) or 1/W - 1 (False), the same for y with H (0 for a 1-pixel side); (us, vs) = theta @
#         (u0, v0, 1); back to pixels with x = (us + 1)(W - 1)/2 (True) or ((us + 1)W - 1)/2 (False), y likewise with H.
#         Return (x, y) as two floats.
#     01.turn_theta:
#       title: 'predict, then run: the theta of a quarter turn on a non-square image'
#       points: 1
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
# **You will build** – deriving each formula yourself, from a goal and a constraint – a rotation matrix, a function
# that applies a homogeneous matrix to points, a rotation about a centre, an inverse warp (the way every sampler
# works), the pixel → normalized matrix for both `align_corners` conventions and the conversion of a pixel-space
# matrix to `theta`; and you will **predict** where a $\theta$ reads before a figure shows it.
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
# else of what you build
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
# The fourth, the rotation $R(\alpha)$, is yours to write (Exercise 1). A way to read any $2\times2$ matrix: its
# **first column is where the unit vector $(1, 0)$ goes, its second where $(0, 1)$ goes**. The course's convention
# for the angle: a positive $\alpha$ turns points from the $+x$ axis towards the $+y$ axis. Which way that looks on
# screen is for you to work out – a checked prediction before Exercise 3 asks it; remember that $y$ points down.
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
# points as the *rows* of a `(P, 2)` tensor – Exercise 2 makes one product do all of them.
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
# one whose **fixed point** is $c$ (it stays where it is) and which turns everything else by $\alpha$ around it –
# Exercise 3 derives it. For an image, the centre is $c = \left(\frac{W-1}{2},
# \frac{H-1}{2}\right)$ in pixel coordinates (the midpoint between the first and last pixel centres).
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
centre = ((w - 1) / 2, (h - 1) / 2)
motion = compose(translation(*centre), package_rotation(25.0, degrees=True),
                        scaling(1.3), translation(-centre[0], -centre[1]))
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
# (The same holds for $y$ with $H$.) Each rule fixes two points of a straight line $u = a x + b$, so each is a
# diagonal $3\times3$ matrix $N$ with scales $a_x, a_y$ and offsets $b_x, b_y$ – finding them is Exercise 5. The
# picture shows a $3\times4$ image with the $[-1, 1]^2$ frame in red and the pixel centres in blue:

# %%
plotting.plot_align_corners(height=3, width=4, formulas=False);  # the formulas are Exercise 5's

# %% [markdown]
# **From a pixel matrix to $\theta$.** Suppose $A$ maps *output pixels* to *input pixels* (the backward map a
# sampler needs). $\theta$ must do the same job in normalized coordinates: take a normalized output point,
# convert it to output pixels ($N_\text{out}^{-1}$), apply $A$, convert to normalized input coordinates
# ($N_\text{in}$):
#
# $$ \theta = \left[\, N_\text{in}\, A\, N_\text{out}^{-1} \,\right]_{\text{top two rows}}. $$
#
# Forgetting one of the $N$s, or using the wrong convention for one of them, is the most common reason an STN
# "almost works" but is off by half a pixel or stretched for non-square images. Note also what normalization does
# to a rotation: on a non-square image, a rotation in pixels is *not* a rotation matrix in normalized
# coordinates, because $x$ and $y$ are scaled by different amounts ($2/W$ vs $2/H$).

# %% [markdown]
# ## Build
#
# Six exercises here, and three checked questions: a prediction before Exercise 3 and two in Verify. Write the body between the markers, run the cell, then run the `check(...)` cell below it: it
# calls your function on fresh random inputs (edge cases first – 1-pixel and non-square images, batches) and
# compares with `stn_course.affine`. Use plain `torch`/`math`; don't call `stn_course.affine` inside your answers.
#
# ### Exercise 1 – rotation matrix
#
# Return the homogeneous $3\times3$ rotation by `angle` radians, $\begin{pmatrix} R(\alpha) & 0 \\ 0 & 1
# \end{pmatrix}$, as a float64 tensor – in the course's convention (§1: positive = from $+x$ towards $+y$).
# Derive $R(\alpha)$ rather than recalling it: where do $(1, 0)$ and $(0, 1)$ go? Sketch both axes with
# $y$ pointing down and check your signs at $\alpha = 90°$ before you run the check.

# %%
def rotation_matrix(angle: float) -> torch.Tensor:
    """Homogeneous rotation by ``angle`` radians, from +x towards +y. ``-> (3, 3)`` float64"""
    ### BEGIN SOLUTION
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ### END SOLUTION

# %%
rotation_matrix = check("01.rotation_matrix", rotation_matrix)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# Turning by $\alpha$ from $+x$ towards $+y$ sends $(1, 0)$ to $(\cos\alpha, \sin\alpha)$, and $(0, 1)$ – a quarter
# turn further on – to $(\cos(\alpha + 90°), \sin(\alpha + 90°)) = (-\sin\alpha, \cos\alpha)$. Those are the columns:
# $R(\alpha) = \begin{pmatrix} \cos\alpha & -\sin\alpha \\ \sin\alpha & \cos\alpha \end{pmatrix}$ – the rotation you
# know from school. At $90°$: $(1, 0) \mapsto (0, 1)$ and $(0, 1) \mapsto (-1, 0)$. (What that looks like on
# screen is the next question.)
# </details>

# %% [markdown]
# ### Exercise 2 – apply a homogeneous matrix to points
#
# `points` holds one point per row, shape `(P, 2)`; `matrix` is `(3, 3)`. For a batch, `matrix` is `(N, 3, 3)` and
# `points` `(N, P, 2)`. One product must move every point – no loop over points – and the same code must serve
# both shapes. §2 writes the product for one *column* vector; your points are *rows*, and they are not homogeneous
# yet. (Check on paper: a pure translation must move every point.)

# %%
def apply_affine(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Transform points by a homogeneous matrix. ``matrix: (…, 3, 3)``, ``points: (…, P, 2)`` ``-> (…, P, 2)``"""
    ### BEGIN SOLUTION
    ones = torch.ones(*points.shape[:-1], 1, dtype=points.dtype, device=points.device)
    homogeneous = torch.cat([points, ones], dim=-1)  # (…, P, 3)
    return (homogeneous @ matrix.to(points.dtype).transpose(-1, -2))[..., :2]
    ### END SOLUTION

# %%
apply_affine = check("01.apply_affine", apply_affine)

# %% [markdown]
# <details><summary>How it works (open after the check passes)</summary>
#
# Appending a 1 to every row gives $\tilde P$, `(…, P, 3)`. Transposing $M\tilde p$ for one point gives
# $\tilde p^\top M^\top$, and stacking the rows: $\tilde P M^\top$ – `matrix.transpose(-1, -2)`, which `@` broadcasts
# over a batch. Keep the first two columns (the third stays 1 for an affine $M$). Without the 1, the translation
# column multiplies 0 and vanishes.
# </details>

# %% [markdown]
# **Predict, then build.** Before you write the rotation about a centre: turn an image by a quarter turn,
# $90°$ from $+x$ towards $+y$, about its centre $c = (c_x, c_y)$. Where does the corner pixel $(0, 0)$ land?
# Answer as a function of the centre, on paper first – no matrices needed, only where the corner sits as seen from
# $c$. (For a square image you can check yourself with a sketch: which corner does the top-left one become?)

# %%
def corner_after_quarter_turn(cx: float, cy: float) -> tuple[float, float]:
    """Pixel ``(x, y)`` where a quarter turn (+x towards +y) about ``(cx, cy)`` sends pixel ``(0, 0)``."""
    ### BEGIN SOLUTION
    return (cx + cy, cy - cx)
    ### END SOLUTION


# %%
corner_after_quarter_turn = check("01.quarter_turn", corner_after_quarter_turn)

# %% [markdown]
# <details><summary>Which way is positive on screen (open after the check passes)</summary>
#
# $+x$ points right and $+y$ points **down**, so turning from $+x$ towards $+y$ is **clockwise on screen** – the
# school rotation, seen in a $y$-down image. Seen from $c$, the corner sits at $(-c_x, -c_y)$ (up-left); a clockwise
# quarter turn sends up-left to up-right, $(c_y, -c_x)$; adding $c$ back gives $(c_x + c_y,\; c_y - c_x)$ – for a
# square image, the top-right corner. Most people first answer the bottom-left corner: the counter-clockwise turn of
# a $y$-up maths diagram.
# </details>

# %% [markdown]
# ### Exercise 3 – rotation about a centre
#
# Return the homogeneous matrix that turns by `angle` about the centre $c = (c_x, c_y)$ (§3). Two facts pin it
# down: it turns every *direction* (the difference of two points) exactly as `rotation_matrix(angle)` does, and
# $c$ is its **fixed point**. Work out on paper which entries of the $3\times3$ matrix the first fact fixes, then
# use the second to solve for the rest, and build the matrix with `torch` (your `rotation_matrix` may help).
# Before you run the check, apply your matrix to $c$ – and to the corner, where your prediction says it goes.

# %%
def rotate_about(angle: float, cx: float, cy: float) -> torch.Tensor:
    """Rotation by ``angle`` radians about the point ``(cx, cy)``. ``-> (3, 3)`` float64"""
    ### BEGIN SOLUTION
    def translation_matrix(tx: float, ty: float) -> torch.Tensor:
        return torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]], dtype=torch.float64)

    return translation_matrix(cx, cy) @ rotation_matrix(angle) @ translation_matrix(-cx, -cy)
    ### END SOLUTION

# %%
rotate_about = check("01.rotate_about", rotate_about)

# %% [markdown]
# <details><summary>The composition (open after the check passes)</summary>
#
# Directions are differences of points, and a translation cancels in a difference, so the linear part is
# $R(\alpha)$ and only the translation column $t$ is unknown. The fixed point gives it: $R c + t = c$, so
# $t = c - R c = (I - R)\,c$. The same matrix, read as three moves: shift $c$ to the origin, turn, shift back,
# $R_c(\alpha) = T(c)\, R(\alpha)\, T(-c)$ (the rightmost acts first) – multiply it out and its last column is
# $c - Rc$. The other order, $T(-c)\, R\, T(c)$, turns about $-c$. Your prediction is the same three steps on one
# point.
# </details>

# %% [markdown]
# The centre must be a fixed point, and the order matters – your matrix, applied with your `apply_affine`:

# %%
c = torch.tensor([[0.5, 2.5]], dtype=torch.float64)  # a point of the F's stem
print("centre after the rotation:", apply_affine(rotate_about(1.0, 0.5, 2.5), c).tolist())
plotting.plot_shapes({"rotate_about(60°, c=(0.5, 2.5))": rotate_about(math.radians(60), 0.5, 2.5),
                      "rotation_matrix(60°), about the origin: clockwise": rotation_matrix(math.radians(60))},
                     title="rotating about a centre keeps the centre in place", mark=(0.5, 2.5))
from matplotlib.path import Path  # noqa: E402
assert Path(plotting.letter_f().numpy()).contains_point((0.5, 2.5))  # the fixed point lies on the shape

# %% [markdown]
# ### Exercise 4 – inverse warp (nearest neighbour)
#
# Move the content of `image` by the pixel-space `motion` (the motion you want to *see*) the way a sampler does
# (§4): every output pixel gets exactly one value, read from the input at the nearest pixel; a pixel whose source
# lies outside the image reads 0. One `motion` is shared by all images in the batch. Decide for yourself which
# matrix maps what, and test your idea on a motion you can check by eye – a shift right by 2 pixels must move the
# content right. No Python loops over pixels: all output coordinates at once (`torch.meshgrid`), your
# `apply_affine`, and indexing with integer tensors – mind which index is the row.

# %%
def inverse_warp(image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """Warp by inverse mapping with nearest-neighbour reads and zeros outside.

    ``image: (N, C, H, W)``, ``motion: (3, 3)`` pixel-space forward motion ``-> (N, C, H, W)``
    """
    ### BEGIN SOLUTION
    n, c, h, w = image.shape
    back = torch.linalg.inv(motion.to(torch.float64))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    targets = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)  # (H*W, 2) output pixel centres
    sources = torch.round(apply_affine(back, targets)).long()
    sx, sy = sources[:, 0], sources[:, 1]
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    values = image[..., sy.clamp(0, h - 1), sx.clamp(0, w - 1)]  # (N, C, H*W)
    return (values * inside.to(image.dtype)).reshape(n, c, h, w)
    ### END SOLUTION

# %%
inverse_warp = check("01.inverse_warp", inverse_warp)

# %% [markdown]
# Your warp on the photo, next to a forward (pushing) warp of the same motion – as in §4, red marks the holes (output
# pixels inside the moved picture that no input pixel reached); black is the zero padding outside it:

# %%
plotting.plot_forward_vs_inverse(image, motion, inverse=inverse_warp(image, motion),
                                 inverse_title="your inverse_warp: no holes");

# %% [markdown]
# ### Exercise 5 – the normalization matrix
#
# Return the $3\times3$ matrix $N$ that maps pixel coordinates $(x, y, 1)$ of an image of `size = (H, W)` to
# normalized coordinates, for either convention. Theory §5 gives you only the constraints – two pixel positions
# per axis and where they must land. Derive each scale and offset on paper first (two equations, two unknowns), then
# test your line on the $3\times4$ picture above. Careful: `size` is `(H, W)`; and with `align_corners=True` a
# 1-pixel side has no line through two points. There, make $N$ agree with how `F.grid_sample` reads such a side
# (§5): it collapses the whole axis, so $N$ must do the same the other way round – *every* $x$ along that side, not
# only its pixel $x = 0$, lands on the one normalized coordinate that pixel has. (Only one line does that.)

# %%
def normalization_matrix(size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """Pixel -> normalized [-1, 1] coordinates for an image of ``size = (H, W)``. ``-> (3, 3)`` float64"""
    ### BEGIN SOLUTION
    height, width = size

    def scale_and_offset(n: int) -> tuple[float, float]:
        if align_corners:
            return (2.0 / (n - 1), -1.0) if n > 1 else (0.0, 0.0)
        return 2.0 / n, 1.0 / n - 1.0

    (ax, bx), (ay, by) = scale_and_offset(width), scale_and_offset(height)
    return torch.tensor([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]], dtype=torch.float64)
    ### END SOLUTION

# %%
normalization_matrix = check("01.normalization_matrix", normalization_matrix)

# %% [markdown]
# <details><summary>The derivation (open after the check passes)</summary>
#
# `align_corners=True`: $a\cdot 0 + b = -1$ and $a (W-1) + b = 1$ give $b = -1$, $a = \frac{2}{W-1}$:
# $$u = \frac{2x}{W-1} - 1,$$
# and a 1-pixel side gets $a = b = 0$. `align_corners=False`: $a(-\tfrac12) + b = -1$ and $a(W - \tfrac12) + b = 1$
# give $a = \frac{2}{W}$, $b = \frac1W - 1$:
# $$u = \frac{2x + 1}{W} - 1.$$
# The $y$ row is the same with $H$.
# </details>

# %% [markdown]
# ### Exercise 6 – from a pixel matrix to `theta`
#
# `matrix` maps **output pixels to input pixels** (`(3, 3)`, or a batch `(N, 3, 3)`). Return $\theta =
# [N_\text{in} A D_\text{out}]_{:2}$, shape `(2, 3)` (or `(N, 2, 3)`), where $N_\text{in}$ is your
# `normalization_matrix` and $D_\text{out}$ maps normalized output coordinates back to output pixels. Usually
# $D_\text{out} = N_\text{out}^{-1}$ – but with `align_corners=True` a 1-pixel output side has scale 0, $N_\text{out}$
# is singular and has no inverse. Build $D$ yourself: solve each of Exercise 5's lines $u = a x + b$ for $x$ on
# paper, and decide what a 1-pixel side must do (its only pixel is pixel 0, whatever $u$ the grid asks about).
# Test on a $1\times1$ output: $\theta$ must then read the input where the pixel matrix sends pixel $(0, 0)$.

# %%
def pixel_to_theta(matrix: torch.Tensor, in_size: tuple[int, int], out_size: tuple[int, int],
                   align_corners: bool) -> torch.Tensor:
    """Pixel-space sampling matrix (output pixel -> input pixel) to normalized theta.

    ``matrix: (…, 3, 3)``, sizes ``(H, W)`` ``-> (…, 2, 3)``
    """
    ### BEGIN SOLUTION
    def denormalization(size):
        def scale_and_offset(n: int) -> tuple[float, float]:
            return ((n - 1) / 2, (n - 1) / 2) if align_corners else (n / 2, (n - 1) / 2)

        (ax, bx), (ay, by) = scale_and_offset(size[1]), scale_and_offset(size[0])
        return torch.tensor([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]], dtype=torch.float64)

    n_in = normalization_matrix(in_size, align_corners)
    return (n_in @ matrix.to(torch.float64) @ denormalization(out_size))[..., :2, :]
    ### END SOLUTION

# %%
pixel_to_theta = check("01.pixel_to_theta", pixel_to_theta)

# %% [markdown]
# <details><summary>The inverted lines (open after the check passes)</summary>
#
# Solving Exercise 5's lines for $x$:
# $$x = \frac{(u+1)(W-1)}{2} \quad(\texttt{align\_corners=True}), \qquad x = \frac{(u+1)W - 1}{2}
# \quad(\texttt{align\_corners=False}).$$
# With `align_corners=True` and $W = 1$ the first gives $x = 0$ for every $u$: scale 0, offset 0 – exactly what
# $D_\text{out}$ needs where $N_\text{out}^{-1}$ does not exist.
# </details>

# %% [markdown]
# ## Verify
#
# Your functions against the package and against PyTorch's own `F.affine_grid`/`F.grid_sample`, on the photo.
#
# **1. The matrices agree with `stn_course.affine`.**

# %%
from stn_course.affine import pixel_to_theta as package_pixel_to_theta  # the package's, to compare with

angle = math.radians(30)
print("rotation:     ", torch.allclose(rotation_matrix(angle), package_rotation(torch.tensor(angle, dtype=torch.float64))))
print("rotate_about: ", torch.allclose(rotate_about(angle, *centre), compose(
    translation(*centre), package_rotation(angle), translation(-centre[0], -centre[1])).double()))
for align_corners in (False, True):
    ours = pixel_to_theta(invert(motion.double()), (h, w), (h, w), align_corners)
    ref = package_pixel_to_theta(invert(motion.double()), (h, w), align_corners=align_corners)
    print(f"pixel_to_theta, align_corners={align_corners}: max |ours - package| = {(ours - ref).abs().max():.2e}")

# %% [markdown]
# **2. PyTorch reads exactly where your matrix says.** Build $\theta$ for the backward map $M^{-1}$, let
# `F.affine_grid` make the grid, convert the grid to input pixels (Theory §5) and compare with
# `apply_affine(M⁻¹, output pixel centres)`:

# %%
def grid_to_pixels(grid: torch.Tensor, size: tuple[int, int], align_corners: bool) -> torch.Tensor:
    """Normalised (x, y) ``(1, H, W, 2)`` -> input pixels (x, y) ``(1, H, W, 2)``: the inverse of your
    ``normalization_matrix`` (invertible here, both sides have more than one pixel), applied with your ``apply_affine``."""
    to_pixels = torch.linalg.inv(normalization_matrix(size, align_corners))
    return apply_affine(to_pixels, grid.reshape(1, -1, 2).double()).reshape(grid.shape)


pixel_y, pixel_x = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
centres = torch.stack([pixel_x, pixel_y], dim=-1).reshape(-1, 2)
expected_sources = apply_affine(torch.linalg.inv(motion.double()), centres).reshape(h, w, 2)
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
# **4. The real thing – predict, then run.** The next figure draws the sampling grid of this $\theta$ on the input,
# with a red square where the first output pixel, `out[0, 0]`, reads. Before you see it, predict that point: write
# a function that says, in **input pixels** $(x, y)$, where `out[0, 0]` reads for any $\theta$ (`(2, 3)`), image
# `size = (H, W)` (input and output) and convention. Only what you derived in Exercises 5–6 is needed – no
# grid, no sampler. Then run the figure and compare.

# %%
def corner_source(theta: torch.Tensor, size: tuple[int, int], align_corners: bool) -> tuple[float, float]:
    """Input pixel ``(x, y)`` where output pixel ``out[0, 0]`` reads. ``theta: (2, 3)``, ``size = (H, W)``."""
    ### BEGIN SOLUTION
    height, width = size

    def first_centre(n: int) -> float:  # normalized coordinate of pixel 0 along an n-pixel side
        return 0.0 if n == 1 else (-1.0 if align_corners else 1.0 / n - 1.0)

    def to_pixels(u: float, n: int) -> float:  # the inverted line of Exercise 5
        return (u + 1) * (n - 1) / 2 if align_corners else ((u + 1) * n - 1) / 2

    (a, b, tx), (c, d, ty) = theta.double().reshape(2, 3).tolist()
    u, v = first_centre(width), first_centre(height)
    return to_pixels(a * u + b * v + tx, width), to_pixels(c * u + d * v + ty, height)
    ### END SOLUTION

# %%
corner_source = check("01.corner_source", corner_source)

# %%
theta = pixel_to_theta(torch.linalg.inv(motion.double()), (h, w), (h, w), False)
print("your prediction: out[0, 0] reads input pixel (x, y) = (%.2f, %.2f)" % corner_source(theta, (h, w), False))
plotting.plot_warp(photo, theta, align_corners=False);

# %% [markdown]
# **5. Predict, then run: a quarter turn in $\theta$.** The explorer below can turn the picture by $90°$ about its
# centre. Before you touch it, predict the $\theta$ it will show: the $2\times3$ matrix that makes `F.affine_grid` +
# `F.grid_sample` show the content turned by $+90°$ (from $+x$ towards $+y$, as in your prediction before Exercise 3)
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
#   matrix acts first, so rotate-about-centre is $T(c)\,R\,T(-c)$.
# * With $y$ down, $R(\alpha)$ turns points clockwise on screen.
# * Samplers pull: each output pixel reads the input at $M^{-1} q$. Pushing leaves holes. The $\theta$ of a spatial
#   transformer is therefore target → source, the inverse of the motion you see.
# * Normalized coordinates put the image in $[-1, 1]$. `align_corners=True` pins $\pm1$ to the border pixel
#   *centres*, `False` to their outer *edges*. Convert with $\theta = N_\text{in} A N_\text{out}^{-1}$ and sample
#   with the same convention.
# * Next: lesson 2 reads *between* pixels – the sampling grid and bilinear interpolation.
