# ---
# lesson:
#   checks: stn_course.checks.lesson04
#   figures: stn_course.plotting.lesson04
#   explorers: stn_course.widgets.lesson04
#   budget_s: 180
#   dashboard:
#     intro: 'Align a shifted or rotated copy of a photo by gradient descent on one parameter, with the hand-derived backward
#       of lesson 4: the loss along the parameter and the steps descent takes.'
#     code: |
#       widgets.descent_explorer(size=40)
#   claims:
#   - text: θ reads 90 % of the image
#     holds: abs(theta_coarse[0, 0, 0].item() - 0.9) < 1e-12
#   - text: 'about 2.8: 36 pixels read onto 13'
#     holds: round(spacing, 1) == 2.8 and SIZE // 3 == 13 and round(0.9 * SIZE) == 36
#   - text: falls 100× for every 10× smaller
#     holds: all(70 < a / b < 130 for a, b in zip(demo_errors, demo_errors[1:]))
#   - text: until rounding takes over and it *grows* again
#     holds: 1e-7 <= best_eps <= 1e-3 and sweep[1e-12] > 100 * sweep[best_eps]
#   - text: content moved 5 pixels to the *left*
#     holds: SIZE == 40 and abs(0.25 * SIZE / 2 - 5) < 1e-12 and shift_lands_at == 15
#   - text: so the first step goes *right*
#     holds: descents["shift"][2][1] > 0 and descents["shift"][3][1] > descents["shift"][3][0]
#   - text: The rotation does not show it
#     holds: descents["rotation"][2][1] < 0 and descents["rotation"][3][1] < descents["rotation"][3][0]
#   exercises:
#     04.numerical_gradient:
#       title: 'a numerical-gradient checker, a bug hunt'
#       points: 1
#       hint: >-
#         Three broken promises, none visible on the colleague's own test. Expand f(x + eps) and f(x - eps) in Taylor
#         series: how fast does their error shrink, and which two evaluations do better? Call it on a transposed tensor
#         whose gradient you know. Look at the dtype of what comes back.
#       recipe: >-
#         work on a copy of x (never perturb the caller's tensor; reshape of a non-contiguous x is a copy, so the
#         colleague's step never reaches f); for every index i of the copy's flat view: x⁺ = copy with eps added to
#         entry i, x⁻ with eps subtracted, grad[i] = (f(x⁺) - f(x⁻)) / (2 eps); return it shaped like x, in x's dtype
#         (zeros_like of the flat copy; torch.zeros(x.shape) is float32).
#       rtol: 1.0e-06
#       atol: 1.0e-07
#     04.best_step:
#       title: 'predict: the best step of a difference quotient, as a function of its order'
#       points: 1
#       hint: >-
#         Write the total error as the sum of the two terms, truncation ~ eps**order and rounding ~ u/eps. Where is the
#         sum smallest (set its derivative to 0, or balance the two terms – the same up to constants)? And how big is
#         the error there – neither eps nor u.
#       recipe: >-
#         eps**order = u/eps gives eps = u**(1/(order + 1)), so a = 1/(order + 1); the error there is eps**order =
#         u**(order/(order + 1)), so b = order/(order + 1). Central (order 2): (1/3, 2/3); one-sided: (1/2, 1/2).
#       function: best_step_exponents
#       rtol: 0.0
#       atol: 1.0e-09
#     04.sampler_backward:
#       title: "the sampler's backward: ∂L/∂U and ∂L/∂G, derived"
#       points: 3
#       hint: >-
#         Two questions, one per gradient. Which input pixels did output pixel i read, with which weights – and so where
#         must its ∂L/∂V go back to? How does V_i change when x_i moves a little, with the four neighbours fixed? Then
#         chain: x = pad(unnormalize(g)). Test your padding derivative on single points you can work out by hand: just
#         inside and just outside the border, one and two mirrors away, exactly on a pixel centre.
#       recipe: >-
#         per sampling point: x = sampling.source_coordinates(g_x, W, ...), x0 = floor(x), fx = x - x0 (same for y);
#         the four corners (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1) with weights (1-fx)(1-fy), fx(1-fy),
#         (1-fx)fy, fx·fy, and an inside mask (outside neighbours read 0, get nothing). ∂L/∂U: scatter_add_
#         weight·∂L/∂V into each corner (never assign: points collide). ∂L/∂x: with s_k = Σ_c ∂L/∂V^c · U^c_k,
#         (1-fy)(s01 - s00) + fy(s11 - s10); ∂L/∂y likewise with x and y swapped. Chain by ∂x/∂g_x: the scale W/2
#         (align_corners=False) or (W-1)/2, times 0 for border or reflection where the padded x is at or beyond the
#         border (≤ 0 or ≥ W-1), times -1 for every mirror reflection crosses (and once more left of the low mirror
#         line); a 1-pixel axis with reflection: 0. x goes in grid[..., 0].
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     04.referee_blind_spot:
#       title: "where the referee is blind: how far from the middle central differences and the backward disagree"
#       points: 1
#       hint: >-
#         Where does the bilinear weight max(0, 1 - |x - m|) have a corner, in pixel coordinates, and which of them is
#         nearest the middle g = 0 for this width and convention (invert lesson 2's unnormalization)? Which one-sided
#         slope does the backward return near a corner, and what does a central difference return when its two
#         evaluations lie on both sides of it – how near must g be for that? And for a 1-pixel width with
#         align_corners=True: how far does x move when g moves?
#       recipe: >-
#         the kinks are the pixel centres; g = 0 reads x = (width - 1)/2: a pixel centre for an odd width (answer 0);
#         for an even width the nearest pixel centre is at |g| = 1/width (align_corners=False) or 1/(width - 1) (True).
#         The central difference steps g by eps: for g within eps of a kink its two evaluations straddle it and mix
#         the left and right slopes, while the backward returns one of them – they disagree on (g_k - eps, g_k + eps),
#         so the answer is |g_k| - eps. A 1-pixel width with align_corners=True reads x = 0 for every g: both
#         derivatives are 0 everywhere, return None.
#     04.stn_function:
#       title: 'the whole transformer as one autograd.Function: θ → grid → sample, backward by hand'
#       points: 2
#       hint: >-
#         Write one grid point's coordinates in terms of θ: which of the six entries does each depend on, and how? The
#         rows (x_t, y_t, 1) you need are a grid you already know how to make. Then the Function: which of forward's
#         arguments does backward need besides the tensors, and how does it get them? Test with gradcheck in a
#         setting other than the defaults, and on a 1-pixel output. For the second derivative: look for a decorator in
#         torch.autograd.function.
#       recipe: >-
#         forward: grid = package_grids.affine_grid(theta, size, align_corners); save input and grid with
#         ctx.save_for_backward, keep size, padding_mode and align_corners on ctx as attributes; return
#         sampling.bilinear_sample(input, grid, ...). backward (decorated @once_differentiable): (∂L/∂U, ∂L/∂G) from
#         your sampler_backward with the saved settings; B (H_out·W_out, 3) = the rows (x_t, y_t, 1): the grid of the
#         identity θ for the same size and convention (a 1-pixel side at 0), with a column of ones; ∂L/∂θ[n, k, l] = Σ_p ∂L/∂G[n, p, k] ·
#         B[p, l], one batched matrix product of ∂L/∂G reshaped (N, P, 2) and transposed with B; return (∂L/∂U,
#         ∂L/∂θ, None, None, None) – one entry per forward argument.
#       function: transformer_with_grads
#       builds_on:
#       - 04.sampler_backward
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     04.sign_at_identity:
#       title: 'predict: the sign of ∂L/∂θ₀₂ where descent starts'
#       points: 1
#       hint: >-
#         At the identity every sample sits exactly on a pixel centre. Which neighbours, and so which one-sided slope,
#         does the sampler's backward use there? The loss is not smooth at that point. What does the loss do between
#         two whole-pixel shifts – and how near must the minimum be for the slope just right of 0 to point at it?
#       recipe: >-
#         answer 'positive', 'negative' or 'zero'. At t = 0 the backward returns the right derivative, the slope of the
#         loss just to the right of 0 – not the direction of the minimum. Bilinear interpolation between pixel centres
#         blurs the image, and the blurred copy is closer to the template than the sharp one, so the loss falls on both
#         sides of a whole-pixel shift: 'negative' for shifts to the right (t_x < 0) and for shifts far to the left
#         (t_x ≥ 0.25, five pixels); 'positive' when 0 < t_x ≤ one pixel (2/40), where the minimum is that close to the
#         left. Farther left, up to a few pixels, the photo's texture decides (the lesson computes where; no check asks
#         between one and four pixels).
# ---

# %% [markdown]
# # Lesson 4 – The backward pass
#
# ## Goal
#
# A spatial transformer learns $\theta$ without ever being told what $\theta$ should be: the loss of the network
# behind it flows back through the sampler into the grid, through the grid into $\theta$, and from $\theta$ into the
# localisation network. This lesson derives that backward pass **by hand** and implements it as
# `torch.autograd.Function`s that use no autograd inside:
#
# 1. $\partial V / \partial U$ – how the output depends on the input pixels (eq. 6 of Jaderberg et al.);
# 2. $\partial V / \partial x^s, \partial V / \partial y^s$ – how it depends on the sampling positions (eq. 7),
#    including the kinks, the padding modes and the `align_corners` scale;
# 3. $\partial L / \partial \theta$ through the affine grid generator.
#
# **You will build** a numerical-gradient checker first (the referee of everything after it – by finding what is
# wrong with a colleague's; you predict, and a sweep shows, which step makes it most accurate), then the sampler's whole
# backward – both gradients, through the padding modes and both `align_corners` conventions, *derived* by you, not
# copied – where your referee is blind (you map it), and the whole transformer, $\theta \to$ grid $\to$
# sample, as one `autograd.Function` with the chain rule into $\theta$ derived by you; then verify them with your checker, `torch.autograd.gradcheck` and autograd through
# `F.grid_sample`, see which pixels receive gradient, predict which way the first step of gradient descent goes, and
# watch descent on one parameter – through *your* backward – align an image.
#
# **Package modules:** `stn_course.grids` and `stn_course.sampling` (lesson 2's forward pass), `stn_course.plotting`,
# `stn_course.widgets`. The package's own backward (`stn_course.autograd`) is what the checks compare with; the
# lesson uses it only as a stand-in, in the experiments after the exercises – you are writing it.
#
# **Prerequisites:** lessons 2 (bilinear sampling, padding modes) and 3 (the spatial transformer).

# %%
FAST = True  # small images (seconds on a laptop CPU); False: bigger images and longer experiments

%matplotlib inline
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import grids as package_grids  # lesson 2's grid generator
from stn_course import plotting, sampling, widgets
from stn_course.checks import check, status
from stn_course.images import sample_image

torch.manual_seed(0)
np.random.seed(0)
SIZE = 40 if FAST else 96
photo = sample_image("grace_hopper", size=(SIZE, SIZE), gray=True).double()  # (1, 1, H, W) in [0, 1]
print("photo:", tuple(photo.shape))

# %% [markdown]
# ## Theory
#
# ### 1. What backward must return
#
# The transformer computes $V = \text{sample}(U, G)$ with $G = \mathcal{T}_\theta(G_\text{out})$. Given
# $\partial L / \partial V$ (from the layers above) it must return
#
# * $\partial L / \partial U$ – so the layers *before* the transformer train, and
# * $\partial L / \partial \theta$ – so the localisation network trains, via $\partial L / \partial G$.
#
# For output pixel $i$ and channel $c$, with $(x_i, y_i)$ the *pixel* coordinates the sampler reads (after
# unnormalizing and the padding mode, lesson 2), bilinear sampling is (eq. 5)
#
# $$ V^c_i = \sum_{n=0}^{H-1} \sum_{m=0}^{W-1} U^c_{nm}\, \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|). $$
#
# ### 2. What you will derive
#
# Two gradients, for every padding mode and both `align_corners` conventions – the formulas are yours to find
# (Exercise 1); the paper calls them eq. 6 and eq. 7, and the fold after the exercise shows them.
#
# * $\partial L / \partial U$: look at eq. 5 as a function of $U$ with the grid fixed. What kind of function is it,
#   and which input pixels does one output pixel depend on?
# * $\partial L / \partial G$: write $x_0 = \lfloor x \rfloor$, $f_x = x - x_0$ (the same for $y$). The four weights
#   are $(1-f_x)(1-f_y)$, $f_x(1-f_y)$, $(1-f_x)f_y$, $f_x f_y$ for the neighbours $U_{y_0 x_0}, U_{y_0 x_1},
#   U_{y_1 x_0}, U_{y_1 x_1}$ ($x_1 = x_0 + 1$). Between two pixel centres the neighbours do not change. What
#   does $\partial V / \partial x$ measure in the image?
#
# **The conventions** (not derivable; PyTorch's, which the checks follow):
#
# * Neighbours outside the image read 0 – in the derivative too.
# * **Kinks.** $\max(0, 1 - |x - m|)$ has a corner at every integer $x$: left and right slopes differ. At a pixel
#   centre the function is only *sub-differentiable*; like PyTorch we take the **right** derivative (neighbours
#   $\lfloor x \rfloor$ and $\lfloor x \rfloor + 1$). Random positions hit a kink with probability 0 – but the
#   identity transform puts *every* sample exactly on one, so the gradient at a freshly initialised STN is the
#   one-sided one. `gradcheck` compares with finite differences, which straddle a kink and disagree there, so we
#   check at points away from them.
# * **The chain.** The grid stores normalized $g \in [-1, 1]$; the sampler reads at $x = \text{pad}(\text{unnormalize}
#   (g))$ (`sampling.unnormalize`, then the padding mode: together `sampling.source_coordinates`, the package's name
#   for these two steps of lesson 2's sampler), so $\partial L / \partial g_x$ carries the derivative of both. The
#   `border` clamp to $[0, W - 1]$: a point exactly *on* the border counts as clamped (derivative 0 there).
#   `reflection` mirrors about the pixel centres $0$ and $W - 1$ with `align_corners=True`, about the edges
#   $-\frac12$ and $W - \frac12$ otherwise (lesson 2), as often as needed, and then clamps to $[0, W - 1]$ like
#   `border` (the same rule on the border); a 1-pixel axis with `reflection` reads its one pixel wherever the point
#   is. `sampling.source_coordinates` does exactly this forward: probe it.
#
# ### 3. Into $\theta$
#
# The affine grid generator is the last step: lesson 2's `affine_grid` maps every point of the *output's* regular
# grid through $\theta$ (eq. 1 of the paper). Exercise 3 asks you for $\partial L / \partial \theta$ – how each
# grid coordinate depends on the six entries, and what that makes of $\partial L / \partial G$, is yours to work
# out – and for the whole chain, $\theta \to G \to V$, as one `autograd.Function`.
#
# ### 4. Which pixels receive gradient?
#
# Only the four neighbours of each sampling point. A transformer that zooms in on a window sends gradient to the
# window only; one whose samples sit more than a pixel apart – its output is coarser than the region it reads –
# leaves the pixels in between without any gradient: the layers below learn nothing about them from this output.
# Below, θ reads 90 % of the image (a slight zoom *in*) onto an output a third of the image's size, so neighbouring
# samples are more than two input pixels apart (with FAST's 40-pixel photo about 2.8: 36 pixels read onto 13).

# %%
theta_coarse = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64) * 0.9
theta_coarse[0, 0, 2], theta_coarse[0, 1, 2] = 0.05, -0.05
grid_small = package_grids.affine_grid(theta_coarse, (1, 1, SIZE // 3, SIZE // 3))
u = photo.clone().requires_grad_()
out = F.grid_sample(u, grid_small, mode="bilinear", align_corners=False)  # torch's backward, for now
(grad_u,) = torch.autograd.grad(out.sum(), u)  # dL/dV = 1 everywhere
spacing = (grid_small[0, 0, 1, 0] - grid_small[0, 0, 0, 0]).item() * photo.shape[-1] / 2  # in input pixels
print(f"samples {spacing:.1f} input pixels apart; {(grad_u != 0).float().mean() * 100:.0f}% of the input pixels "
      "receive gradient")
assert spacing > 2 and theta_coarse[0, 0, 0] < 1  # what the text says: a zoom in, samples over 2 px apart
plotting.plot_gradient_footprint(photo, grad_u, grid_small);

# %% [markdown]
# ## Build
#
# ### Exercise 0 – a numerical-gradient checker, a bug hunt
#
# Every hand-derived gradient below needs a referee that cannot share its mistakes: a numerical gradient, straight
# from the definition $\frac{\partial f}{\partial x_i} = \lim_{\epsilon \to 0} \frac{f(x + \epsilon e_i) -
# f(x)}{\epsilon}$ with a small finite $\epsilon$ (CS231n's gradient check; `torch.autograd.gradcheck` does the
# same). A colleague wrote one. Its docstring makes three promises – the error shrinks like $\epsilon^2$ (still
# with two evaluations of $f$ per entry), it works for **any** tensor $x$ (a transposed weight, a slice) and leaves
# it unchanged, and the result has $x$'s dtype – and their test below passes to six digits. Do not trust the
# docstring: find out which promises the code keeps – probe it on cases you can work out by hand, and check the error
# law on paper – then write a `numerical_gradient` below it that keeps them all. Ask yourself why their test could
# not tell.

# %%
def colleague_numerical_gradient(f, x, eps=1e-6):
    """Gradient of the scalar function ``f`` at ``x``: error O(eps²), two evaluations of f per entry; any ``x``,
    which comes back unchanged; the result has x's dtype. ``x: (...) -> (...)``"""
    grad = torch.zeros(x.shape)
    flat = x.reshape(-1)
    for i in range(x.numel()):
        base = float(f(x))
        flat[i] += eps
        grad.view(-1)[i] = (float(f(x)) - base) / eps
        flat[i] -= eps  # put it back
    return grad


x_test = torch.tensor([0.5, -1.2, 2.0], dtype=torch.float64)
their = colleague_numerical_gradient(lambda v: (v ** 2).sum(), x_test.clone())
print("their test, f = Σ x² at", x_test.tolist(), "– max |error| vs 2x:", f"{(their - 2 * x_test).abs().max():.1e}")

# %%
def numerical_gradient(f, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Gradient of the scalar function ``f`` at ``x``: error O(eps²), two evaluations of f per entry; any ``x``,
    which comes back unchanged; the result has x's dtype. ``x: (...) -> (...)``"""
    ### BEGIN SOLUTION
    flat = x.detach().clone().reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = eps
        grad[i] = (float(f((flat + step).view_as(x))) - float(f((flat - step).view_as(x)))) / (2 * eps)
    return grad.view_as(x)
    ### END SOLUTION


# %%
numerical_gradient = check("04.numerical_gradient", numerical_gradient)

# %% [markdown]
# <details><summary>The three bugs (open after your fix passes)</summary>
#
# * **One-sided.** Taylor: $f(x \pm \epsilon e_i) = f \pm \epsilon f' + \tfrac{\epsilon^2}{2} f'' \pm
#   \tfrac{\epsilon^3}{6} f''' + \dots$, so $\frac{f(x + \epsilon e_i) - f(x)}{\epsilon} = f' + \tfrac{\epsilon}{2}
#   f'' + \dots$ is off by $O(\epsilon)$, while the **central** difference $\frac{f(x + \epsilon e_i) - f(x -
#   \epsilon e_i)}{2 \epsilon} = f' + \tfrac{\epsilon^2}{6} f''' + \dots$ cancels the even terms – with the same two
#   evaluations. Their test hid it: for $\sum x^2$ the error $\tfrac{\epsilon}{2} f''$ is $\epsilon = 10^{-6}$.
# * **`reshape` is a view only when it can be.** For a contiguous $x$, `x.reshape(-1)` shares $x$'s memory and the
#   step reaches $f(x)$; for a transposed or sliced $x$ it is a *copy*: the step never reaches $f$, and every entry
#   comes out 0. (Perturbing the caller's tensor in place is fragile anyway: in float32, $x + \epsilon - \epsilon$
#   is not always $x$.) Work on a copy, and hand $f$ the copy.
# * **`torch.zeros(x.shape)` is float32**, whatever $x$ is: a float64 referee that rounds to 7 digits.
# </details>

# %% [markdown]
# **Predict, then run: which $\epsilon$?** Smaller is not always better. A difference quotient has two errors: the
# truncation error of the Taylor expansion, which shrinks with $\epsilon$, and rounding – each value of $f$ is stored
# with a relative error of about the *unit roundoff* $u$ ($2^{-53} \approx 1.1 \cdot 10^{-16}$ in float64,
# $2^{-24} \approx 6 \cdot 10^{-8}$ in float32), and the difference of two nearly equal numbers is divided by
# $\epsilon$. Before the sweep below shows it for your central difference, predict it for any quotient: take one
# whose truncation error shrinks like $\epsilon^p$ (the *order* $p$; you worked out the one-sided and the central
# difference's above), for a function whose values and derivatives are of order 1. At about which $\epsilon \approx
# u^a$ is the total error smallest, and about how small is it there, $\approx u^b$? Return `(a, b)` as a function of
# `order` – constants aside; the check asks about orders 1 and 2, the grader about higher ones (stencils with more
# evaluations cancel more Taylor terms).

# %%
def best_step_exponents(order: int) -> tuple[float, float]:
    """For a difference quotient whose truncation error shrinks like eps**order (values of f rounded to a relative
    u): ``(a, b)`` with the best step eps ≈ u**a and the smallest total error ≈ u**b."""
    ### BEGIN SOLUTION
    a = 1 / (order + 1)  # eps**order = u/eps: the two errors balance (the sum is smallest within a factor 2 there)
    return a, order * a  # the error there: eps**order = u**(order/(order + 1))
    ### END SOLUTION


# %%
best_step_exponents = check("04.best_step", best_step_exponents)

# %%
x_demo = torch.tensor([0.5, -1.2, 2.0], dtype=torch.float64)
sweep = {}
for exponent in range(1, 13):
    eps = 10.0 ** -exponent
    central = numerical_gradient(lambda v: (v ** 3).sum(), x_demo, eps)
    sweep[eps] = ((central - 3 * x_demo ** 2).abs().max() / (3 * x_demo ** 2).abs().max()).item()
    print(f"eps = {eps:.0e}: relative error of the central difference {sweep[eps]:.1e}")
demo_errors = [sweep[eps] for eps in (1e-2, 1e-3, 1e-4)]
best_eps = min(sweep, key=sweep.get)
print(f"smallest error at eps = {best_eps:.0e}")

# %% [markdown]
# The sweep above ran on a function whose gradient you know, $f(x) = \sum_i x_i^3$ with $\nabla f = 3x^2$, in float64:
# from $\epsilon = 10^{-2}$ to $10^{-4}$ the relative error falls 100× for every 10× smaller $\epsilon$ – the
# $\epsilon^2$ law – until rounding takes over and it *grows* again, as $u / \epsilon$. The two errors balance
# where $\epsilon^2 \sim u / \epsilon$.
#
# <details><summary>The balance (open after your prediction passes)</summary>
#
# The total error is about $C \epsilon^p + u / \epsilon$; its derivative $p C \epsilon^{p-1} - u / \epsilon^2$ vanishes
# at $\epsilon^{p+1} = u / (pC)$, so $\epsilon \approx u^{1/(p+1)}$, and the error there is $\approx \epsilon^p \approx
# u / \epsilon \approx u^{p/(p+1)}$. Central ($p = 2$) in float64: $\epsilon \approx u^{1/3} \approx 5 \cdot 10^{-6}$,
# error $\approx u^{2/3} \approx 2 \cdot 10^{-11}$ – the sweep's minimum above; one-sided ($p = 1$): $u^{1/2} \approx
# 10^{-8}$, error $\approx 10^{-8}$, a thousand times worse at its best. In float32 the central difference's best is
# only $\approx u^{2/3} \approx 2 \cdot 10^{-5}$ at $\epsilon \approx 4 \cdot 10^{-3}$: why `gradcheck` wants float64.
# </details>

# %% [markdown]
# ### Exercise 1 – the sampler's backward, derived
#
# Write the backward pass of lesson 2's bilinear sampler. Given $\partial L / \partial V$ as `grad_output (N, C,
# H_out, W_out)`, and the `input (N, C, H, W)` and `grid (N, H_out, W_out, 2)` the forward pass read, return
# **both** gradients: $\partial L / \partial U$ with the input's shape, and $\partial L / \partial G$ with the grid's
# ($x$ in `[..., 0]`), for every padding mode and both `align_corners` conventions. The formulas are yours to derive
# (§2 asks the questions and states every convention you need; eq. 5 is all the sampler there is). How you split the
# work is your choice; `sampling.unnormalize` and `sampling.source_coordinates` are there to use. The constraint: no
# autograd, no `F.grid_sample` (the check refuses both), and no Python loop over the sampling points.
#
# **Test it by hand before you ask the check.** The cell below gives you `compare_with_referee(sampler_backward,
# padding_mode, align_corners)`: your two gradients against your Exercise 0 referee on a tiny random problem – away
# from the kinks. The kinks are yours to reason out on single points you can follow by hand (a point exactly on a
# pixel centre, just inside and exactly on the border, one and two mirrors away): the check tests them exactly, and
# a spatial transformer starts on them.

# %%
def compare_with_referee(backward, padding_mode="zeros", align_corners=False, seed=4):
    """Relative errors of ``backward``'s ``(∂L/∂U, ∂L/∂G)`` against ``numerical_gradient`` for
    ``L(U, G) = <W, sample(U, G)>`` on a tiny random problem (U (1, 2, 4, 5), G (1, 3, 2, 2) in [-1.2, 1.2]: no
    point on a kink). ``-> (error of ∂L/∂U, error of ∂L/∂G)``"""
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(1, 2, 4, 5, dtype=torch.float64, generator=gen)
    g = torch.rand(1, 3, 2, 2, dtype=torch.float64, generator=gen) * 2.4 - 1.2
    w = torch.randn(1, 2, 3, 2, dtype=torch.float64, generator=gen)
    loss = lambda u_, g_: (sampling.bilinear_sample(u_, g_, padding_mode, align_corners) * w).sum()  # noqa: E731
    numeric = (numerical_gradient(lambda u_: loss(u_, g), u), numerical_gradient(lambda g_: loss(u, g_), g))
    analytic = backward(w, u, g, padding_mode, align_corners)
    return tuple(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(analytic, numeric))


# %%
def sampler_backward(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """The sampler's backward by hand: ``grad_output (N, C, H_out, W_out)``, ``input (N, C, H, W)``,
    ``grid (N, H_out, W_out, 2)`` -> ``(∂L/∂U (N, C, H, W), ∂L/∂G (N, H_out, W_out, 2))``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape

    def coordinate_slope(coord, size):
        """∂x/∂g, elementwise: the unnormalization's scale times the padding mode's slope."""
        scale = (size - 1) / 2 if align_corners else size / 2
        x = sampling.unnormalize(coord, size, align_corners)
        if padding_mode == "zeros":
            return torch.full_like(coord, scale)
        sign = torch.ones_like(x)
        if padding_mode == "reflection":
            low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
            if high == low:  # a 1-pixel axis reads its one pixel wherever the point is
                return torch.zeros_like(x)
            span = high - low
            sign = torch.where(x < low, -sign, sign)  # mirrored once about low
            distance = (x - low).abs()
            odd = torch.floor(distance / span) % 2 == 1  # an odd number of further mirrors flips again
            sign = torch.where(odd, -sign, sign)
            extra = torch.fmod(distance, span)
            x = torch.where(odd, high - extra, low + extra)
        inside = (x > 0) & (x < size - 1)  # the clamp is flat at and beyond the border
        return sign * inside * scale

    # the four neighbours of every point, (y0, x0), (y0, x1), (y1, x0), (y1, x1): flat indices and inside masks
    x = sampling.source_coordinates(grid[..., 0], w, padding_mode, align_corners).reshape(n, -1)
    y = sampling.source_coordinates(grid[..., 1], h, padding_mode, align_corners).reshape(n, -1)
    x0, y0 = torch.floor(x), torch.floor(y)  # at an integer: the right derivative's neighbours
    fx, fy = x - x0, y - y0
    index, inside = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0.long() + dx, y0.long() + dy
            inside.append(((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)).to(input.dtype))
            index.append((yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).unsqueeze(1).expand(n, c, -1))
    g = grad_output.reshape(n, c, -1)

    # ∂L/∂U (eq. 6): every point gives its gradient back to its four neighbours, with the forward weights – added
    weights = ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)
    grad_input = torch.zeros(n, c, h * w, dtype=input.dtype)
    for k in range(4):
        grad_input.scatter_add_(2, index[k], g * (weights[k] * inside[k]).unsqueeze(1))

    # ∂L/∂G (eq. 7): the image's slope between the neighbours, blended along the other axis, chained to the grid
    flat = input.reshape(n, c, h * w)
    s00, s01, s10, s11 = [(torch.gather(flat, 2, index[k]) * g).sum(1) * inside[k] for k in range(4)]
    dv_dx = (1 - fy) * (s01 - s00) + fy * (s11 - s10)
    dv_dy = (1 - fx) * (s10 - s00) + fx * (s11 - s01)
    dx = coordinate_slope(grid[..., 0], w).reshape(n, -1)
    dy = coordinate_slope(grid[..., 1], h).reshape(n, -1)
    grad_grid = torch.stack([dv_dx * dx, dv_dy * dy], dim=-1).view(grid.shape)
    return grad_input.view(n, c, h, w), grad_grid
    ### END SOLUTION


# %%
sampler_backward = check("04.sampler_backward", sampler_backward)

# %% [markdown]
# <details><summary>The derivation (open after your check passes)</summary>
#
# **$\partial L / \partial U$ (eq. 6).** $V^c_i$ is **linear** in $U$, so
#
# $$ \frac{\partial V^c_i}{\partial U^c_{nm}} = \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|)
# \quad\Longrightarrow\quad \frac{\partial L}{\partial U^c_{nm}} = \sum_i \frac{\partial L}{\partial V^c_i}\,
# \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|). $$
#
# Only the four neighbours of $(x_i, y_i)$ have a non-zero weight: each output pixel **scatters** its gradient into
# four input pixels, with the forward pass's bilinear weights. Many output pixels can land in the same input pixel
# (zooming in), so contributions must be **added** (`index_add_`, `scatter_add_`) – assigning keeps only one of
# them. In matrix form, for one image, $V = S\,U$ with a sparse $P \times HW$ matrix $S$ of four weights per row,
# and eq. 6 is $\partial L/\partial U = S^\top \partial L / \partial V$.
#
# **$\partial L / \partial G$ (eq. 7).** Only $f_x$ depends on $x$, with $\partial f_x / \partial x = 1$:
#
# $$ \frac{\partial V^c_i}{\partial x_i} = (1 - f_y)\,(U^c_{y_0 x_1} - U^c_{y_0 x_0}) + f_y\,(U^c_{y_1 x_1} -
# U^c_{y_1 x_0}),\qquad \frac{\partial V^c_i}{\partial y_i} = (1 - f_x)\,(U^c_{y_1 x_0} - U^c_{y_0 x_0}) + f_x\,
# (U^c_{y_1 x_1} - U^c_{y_0 x_1}), $$
#
# the *slope* of the image between the two neighbours, blended along $y$; summed over channels with
# $\partial L / \partial V^c_i$. Between pixel centres this is the paper's eq. 7 written out. **At an integer $x_i$
# the two differ**: taken literally, eq. 7 keeps only $m = x_i$ (sign $+1$) and drops $m = x_i + 1$ (there
# $|m - x_i| = 1$), so it returns $U_{x_i}$ alone – no slope at all. The `floor`-based corners give the right
# derivative $U_{x_i + 1} - U_{x_i}$: what ATen's backward computes, and the checks.
#
# **The chain.** $\frac{\partial L}{\partial g_x} = \frac{\partial L}{\partial x} \cdot \text{pad}' \cdot
# \frac{W - 1}{2}$ (`align_corners=True`) or $\cdot \frac{W}{2}$ (`False`), with
#
# * `zeros`: $\text{pad}' = 1$ (outside, both neighbours are 0 and the slope vanishes by itself);
# * `border`: $\text{pad}' = 1$ strictly inside $(0, W - 1)$, $0$ at or beyond the border;
# * `reflection`: $\text{pad}' = \pm 1$, the sign changing with every mirror the point crosses (and $-1$ to the left of
#   the low mirror line), then the border rule on the reflected coordinate; a 1-pixel axis: 0.
#
# The scale is a popular bug: forgetting the factor $W/2$ (or using $W$) makes $\theta$ learn at the wrong speed –
# silently, the training just behaves oddly.
# </details>
#
# What you derived, in one dimension: torch's backward of a 6-pixel signal, $\partial V / \partial x$ – flat between
# the pixel centres, a step at each (the right derivative), zero a pixel beyond the ends. Then your gradients against
# your referee, in every padding mode.

# %%
x_s = torch.linspace(0.0, 5.0, 201, dtype=torch.float64)
signal = torch.tensor([0.2, 0.9, 0.4, 0.6, 1.0, 0.3], dtype=torch.float64)
grid_1d = torch.stack([2 * x_s / 5 - 1, torch.zeros_like(x_s)], -1).view(1, 1, -1, 2)  # align_corners=True
g = grid_1d.clone().requires_grad_()
v = F.grid_sample(signal.view(1, 1, 1, 6), g, mode="bilinear", padding_mode="zeros", align_corners=True)
(slope,) = torch.autograd.grad(v.sum(), g)  # torch's backward: the one you derived
fig = plotting.plot_interpolation_1d(signal.tolist())
fig.axes[0].plot(x_s, slope[0, 0, :, 0] * 2 / 5, color="tab:red", lw=1.2, label="∂V/∂x (steps at integers)")
fig.axes[0].legend(fontsize=8);

# %%
for padding_mode in sampling.GRID_SAMPLE_MODES:
    for align_corners in (False, True):
        errors = compare_with_referee(sampler_backward, padding_mode, align_corners)
        print(f"{padding_mode:10s} align_corners={align_corners!s:5s} relative error vs your referee: "
              f"∂L/∂U {errors[0]:.1e}, ∂L/∂G {errors[1]:.1e}")
        assert max(errors) < 1e-6

# %% [markdown]
# ### Exercise 2 – where your referee is blind
#
# `compare_with_referee` stays away from the kinks, and §2 says why. Now map where your referee is blind. Take an
# image one pixel high and `width` pixels wide whose slope changes at every pixel (the check uses one you do not
# see), zeros padding, and a single grid point $(g, 0)$; the referee is your `numerical_gradient` of the sample with
# respect to $g$ with step `eps`, and it is compared with the sampler's backward. Starting from the image's middle,
# $g = 0$: **how far from it is the nearest point where the two disagree?** Return that distance – the smallest
# $|g|$ over all such points (an infimum: the points themselves need not include it), in exact arithmetic, rounding
# aside; 0 if they disagree at $g = 0$ or arbitrarily close to it; `None` if for this width and convention they
# disagree nowhere. As a function of `width`, `align_corners` and `eps`: the check tries other widths, even and odd,
# both conventions and other steps (always smaller than half the distance between neighbouring pixel centres).
# `referee_vs_backward(g, width, align_corners, eps)` below prints both on a random image – probe your answer with
# it, but reason it out first; the check refuses the sampler inside your answer.

# %%
def referee_vs_backward(g, width, align_corners, eps=1e-6, seed=0):
    """``∂V/∂g`` at the grid point ``(g, 0)`` on a random ``(1, 1, 1, width)`` image, zeros padding: ``(your
    numerical_gradient with step eps, your sampler_backward)``."""
    image = torch.rand(1, 1, 1, width, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    point = torch.tensor([float(g)], dtype=torch.float64)
    grid_of = lambda x: torch.stack([x, torch.zeros_like(x)], -1).view(1, 1, 1, 2)  # noqa: E731
    numeric = numerical_gradient(lambda x: sampling.bilinear_sample(image, grid_of(x), "zeros", align_corners).sum(),
                                 point, eps)
    analytic = sampler_backward(torch.ones(1, 1, 1, 1, dtype=torch.float64), image, grid_of(point), "zeros",
                                align_corners)[1][..., 0]
    return numeric.item(), analytic.item()


print("width 6, align_corners=False, g = 0.3: (referee, backward) =", referee_vs_backward(0.3, 6, False))

# %%
def referee_blind_spot(width: int, align_corners: bool, eps: float = 1e-6):
    """The distance from g = 0 to the nearest point where the central difference (step ``eps``) and the backward of
    ∂V/∂g disagree on a 1-pixel-high image ``width`` pixels wide, zeros padding (a float) – or None if they disagree
    nowhere."""
    ### BEGIN SOLUTION
    if width == 1 and align_corners:
        return None  # x = (g + 1)/2 · 0 = 0 for every g: nothing moves, both derivatives are 0 everywhere
    if width % 2 == 1:
        return 0.0  # g = 0 reads the middle pixel's centre: a kink, and they disagree right there
    kink = 1 / (width - 1) if align_corners else 1 / width  # pixel centre W/2, half a pixel right of the middle
    return kink - eps  # from g = kink - eps on, the two evaluations straddle the kink and mix its two slopes
    ### END SOLUTION


# %%
referee_blind_spot = check("04.referee_blind_spot", referee_blind_spot)

# %% [markdown]
# <details><summary>Why, and where (open after yours passes)</summary>
#
# The weight $\max(0, 1 - |x - m|)$ has a corner at every integer $x$, so $V$ as a function of $x$ is piecewise
# linear with a corner at every pixel centre where the image's slope changes – from $x = -1$ to $x = W$ with zeros
# padding, since beyond the ends it reads 0. In normalized coordinates the pixel centre $m$ is
# $g_m = \frac{2m + 1}{W} - 1$ (`align_corners=False`) or $g_m = \frac{2m}{W - 1} - 1$ (`True`).
#
# **On a kink** the backward returns the **right** slope $s_R$, while the central difference
# $\frac{V(g + \epsilon) - V(g - \epsilon)}{2\epsilon}$ straddles it and returns the mean of $s_L$ and $s_R$.
# **Near one** – $g_m - \epsilon < g < g_m + \epsilon$ – the two evaluations still lie on both sides, and the
# central difference is a *mix*, $\frac{(g_m - g + \epsilon)\, s_L + (g + \epsilon - g_m)\, s_R}{2\epsilon}$,
# while the backward returns one slope ($s_L$ left of $g_m$, $s_R$ from it on): they differ by a non-zero fraction of
# $s_R - s_L$. At $|g - g_m| \ge \epsilon$ both evaluations lie on one piece and the two agree. So the referee is blind
# on the open intervals $(g_m - \epsilon, g_m + \epsilon)$ – of width $2\epsilon$ *in g*, the variable it steps, not
# in pixels – and the distance from the middle is $|g_{m^*}| - \epsilon$ for the kink $m^*$ nearest it.
#
# The middle $g = 0$ reads $x = \frac{W - 1}{2}$ in both conventions: a pixel centre for an odd width (distance 0),
# halfway between two for an even one, whose nearest kink is half a pixel away: $g = \frac{1}{W}$ (`False`) or
# $\frac{1}{W - 1}$ (`True`), so the distance is $\frac1W - \epsilon$ or $\frac{1}{W - 1} - \epsilon$. With
# `align_corners=True` a 1-pixel axis reads $x = 0$ for **every** $g$ (the scale $\frac{W - 1}{2}$ is 0): $V$ does
# not depend on $g$, both derivatives are 0, and they disagree nowhere – `None`. The identity grid of lesson 3 sits
# on such kinks everywhere: this is why the checks compare the backward with the one-sided slope there and leave
# `gradcheck` to random points, at least $\epsilon$ away from every kink.
# </details>

# %% [markdown]
# ### A worked `autograd.Function`
#
# Before you write one: the smallest complete example. $y = a \odot x$ with a learnable scalar $a$; by hand,
# $\partial L/\partial x = a\, \partial L/\partial y$ and $\partial L/\partial a = \sum \partial L/\partial y \odot x$.
# `forward` receives a context `ctx` and keeps what `backward` will need with `ctx.save_for_backward` (tensors;
# plain settings go on `ctx` as attributes); `backward` receives $\partial L/\partial y$ and returns one gradient per
# input of `forward`, in order (`None` for an input that is not a tensor).

# %%
class Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, a):
        ctx.save_for_backward(x, a)
        return a * x

    @staticmethod
    def backward(ctx, grad_y):
        x, a = ctx.saved_tensors
        return grad_y * a, (grad_y * x).sum().reshape(a.shape)


x_demo = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
a_demo = torch.tensor([1.5], dtype=torch.float64, requires_grad=True)
print("gradcheck of Scale:", torch.autograd.gradcheck(Scale.apply, (x_demo, a_demo)))
weights = torch.randn(3, 4, dtype=torch.float64)
(grad_a,) = torch.autograd.grad((Scale.apply(x_demo, a_demo) * weights).sum(), a_demo)
print("∂L/∂a: backward", grad_a.item(), "– numerical",
      numerical_gradient(lambda a: (a * x_demo.detach() * weights).sum(), a_demo.detach()).item())

# %% [markdown]
# ### Exercise 3 – the whole transformer as one `autograd.Function`
#
# A spatial transformer's localisation network learns through $\partial L / \partial \theta$. Write the transformer
# – $\theta \to$ grid $\to$ sample – as **one** `Function`, `MySpatialTransformer.apply(input, theta, size,
# padding_mode, align_corners)`. Its forward builds the grid for an output of `size = (N, C, H_out, W_out)` from
# `theta (N, 2, 3)` as lesson 2 does (`package_grids.affine_grid(theta, size, align_corners)` is there to call for
# this forward) and samples `input` on it (`sampling.bilinear_sample`). Its backward receives $\partial L / \partial V$ and returns
# $\partial L / \partial U$ and $\partial L / \partial \theta$ – by hand, through both links of the chain: your
# `sampler_backward` for $V \to G$, and $G \to \theta$ (§3) yours to derive – for every padding mode, both
# `align_corners` and any output size (a 1-pixel side included). As for `Scale`: one gradient per forward argument,
# in order. And:
#
# * no autograd inside backward, no `F.grid_sample` (the check refuses both);
# * your backward is not written in differentiable operations (`floor`, masks, gathers): a second derivative through
#   it would be numbers nobody derived. So the gradients your backward returns under `create_graph=True` must carry
#   no graph of its operations: either no graph at all, or one whose differentiation raises an error – never numbers.
#   The check asks with an incoming gradient that itself requires grad (as a second derivative's does) and looks at
#   the gradients' graphs. `torch.autograd.function`'s documentation has what you need.
#
# The check calls `transformer_with_grads` below, which runs your Function forward and backward. Before you ask it,
# test by hand: `torch.autograd.gradcheck` of your Function on a random float64 `input` and `theta` (as in the
# worked example), in more than one setting – and on a 1-pixel output.

# %%
class MySpatialTransformer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, theta, size, padding_mode="zeros", align_corners=False):
        ### BEGIN SOLUTION
        grid = package_grids.affine_grid(theta, size, align_corners)  # lesson 2's generator: G_p = θ b_p
        ctx.save_for_backward(input, grid)  # tensors only
        ctx.size, ctx.padding_mode, ctx.align_corners = tuple(size), padding_mode, align_corners  # settings: on ctx
        return sampling.bilinear_sample(input, grid, padding_mode, align_corners)  # lesson 2's forward
        ### END SOLUTION

    @staticmethod
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        from torch.autograd.function import once_differentiable

        # (the simplest way puts @once_differentiable under @staticmethod above; inside the body, it wraps a helper)
        @once_differentiable
        def hand_derived(ctx, grad_output):
            input, grid = ctx.saved_tensors
            grad_input, grad_grid = sampler_backward(grad_output, input, grid, ctx.padding_mode, ctx.align_corners)
            n, _, h_out, w_out = ctx.size

            def centres(count):  # lesson 2's pixel centres, normalized; a 1-pixel side sits at 0 in both conventions
                if count == 1:
                    return torch.zeros(1, dtype=grid.dtype)  # (torch.linspace(-1, 1, 1) is -1)
                ends = torch.linspace(-1, 1, count, dtype=grid.dtype)
                return ends if ctx.align_corners else ends * (count - 1) / count

            # G is linear in θ, G_p = θ b_p with b_p = (x_t, y_t, 1): the output's base grid, plus a 1
            y_t, x_t = torch.meshgrid(centres(h_out), centres(w_out), indexing="ij")
            B = torch.stack([x_t.reshape(-1), y_t.reshape(-1), torch.ones(h_out * w_out, dtype=grid.dtype)], 1)  # (P, 3)
            grad_theta = grad_grid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B  # Σ_p ∂L/∂G[n, p, k] · B[p, l]
            return grad_input, grad_theta

        return *hand_derived(ctx, grad_output), None, None, None
        ### END SOLUTION


def transformer_with_grads(grad_output, input, theta, padding_mode="zeros", align_corners=False):
    """Forward + backward through ``MySpatialTransformer`` for an output of ``grad_output``'s size
    -> ``(output, ∂L/∂input, ∂L/∂θ)``."""
    x, t = input.clone().requires_grad_(), theta.clone().requires_grad_()
    with warnings.catch_warnings():  # a 1-pixel side with align_corners=True warns, as F.affine_grid does
        warnings.simplefilter("ignore", UserWarning)
        out = MySpatialTransformer.apply(x, t, tuple(grad_output.shape), padding_mode, align_corners)
        return (out.detach(), *torch.autograd.grad(out, (x, t), grad_output))


# %%
transformer_with_grads = check("04.stn_function", transformer_with_grads)

# %% [markdown]
# <details><summary>The derivation and the Function's rules (open after yours passes)</summary>
#
# **Into $\theta$.** With $b_i = (x^t_i, y^t_i, 1)$, $G_{ik} = \sum_l \theta_{kl}\, b_{il}$, so $\partial G_{ik} /
# \partial \theta_{kl} = b_{il}$ and $\theta_{kl}$ reaches no other coordinate:
#
# $$ \frac{\partial L}{\partial \theta_{kl}} = \sum_i \frac{\partial L}{\partial G_{ik}}\, b_{il}
# \quad\Longleftrightarrow\quad \frac{\partial L}{\partial \theta} = \left(\frac{\partial L}{\partial G}
# \right)^{\!\top} B, \qquad B = \begin{bmatrix} b_1^\top \\ \vdots \\ b_P^\top \end{bmatrix} \in \mathbb{R}^{P
# \times 3}. $$
#
# $B$'s first two columns are the grid of the identity $\theta$ – lesson 2's pixel centres, so its conventions come
# with it: $\frac{2j + 1}{W} - 1$ (`align_corners=False`) or `linspace(-1, 1, W)` (`True`), and a 1-pixel side at 0 in
# both (`torch.linspace(-1, 1, 1)` is $-1$: the 1-pixel outputs of the check catch it; `affine_grid` of the identity
# gets all of this right by construction). All together, for one
# sample: $\frac{\partial L}{\partial \theta} = \sum_i \sum_c \frac{\partial L}{\partial V^c_i}
# \left(\frac{\partial V^c_i}{\partial x_i} \frac{\partial x_i}{\partial g_{x,i}},\ \frac{\partial V^c_i}{\partial
# y_i} \frac{\partial y_i}{\partial g_{y,i}} \right)^{\!\top} (x^t_i, y^t_i, 1)$. The third column,
# $\partial L / \partial (t_x, t_y)$, is the plain sum of $\partial L / \partial G$ over the grid: a shift moves every
# sample alike.
#
# **The Function's rules.**
#
# * **Settings reach backward only through `ctx`.** A backward that calls `sampler_backward` with its defaults is
#   right for `zeros` with `align_corners=False` – wrong for the others (the scale $W/2$ vs $(W-1)/2$, the clamp's and
#   the mirror's derivative), and a `gradcheck` in that one setting cannot tell. `save_for_backward` takes tensors
#   only: settings and the size go on `ctx` as attributes.
# * **`@once_differentiable`.** Without it, PyTorch records the backward's own operations when asked for a second
#   derivative and differentiates them: `floor` has derivative 0, the masks and gathers are constants, so the
#   "second derivative" comes out as numbers that nobody derived or tested (the kinks alone make it questionable),
#   with no error to say so. With the decorator it refuses: when the incoming gradient requires grad, the gradients
#   carry a node that raises when differentiated; when it does not, they come back with no graph at all (`grad_fn`
#   is `None`), and differentiating them fails too. (Running the backward under `torch.no_grad()` also leaves no
#   graph, and passes the check – but says less clearly why.)
# </details>

# %% [markdown]
# ## Verify
#
# **`gradcheck`** compares a backward with finite differences $\frac{f(x + \epsilon) - f(x - \epsilon)}{2\epsilon}$ in
# float64. Random points avoid the kinks; all three padding modes, both conventions:

# %%
generator = torch.Generator().manual_seed(0)
yours_ready = status("04.stn_function") == "passed"  # Exercise 3 done? Until then there is nothing to check
if not yours_ready:
    print("MySpatialTransformer is not implemented yet: write Exercise 3, then run this cell again")
for padding_mode in sampling.GRID_SAMPLE_MODES:
    for align_corners in (False, True):
        inp = torch.randn(2, 3, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
        tht = (torch.eye(2, 3, dtype=torch.float64) + 0.4 * torch.randn(2, 2, 3, dtype=torch.float64,
                                                                      generator=generator)).requires_grad_()
        if yours_ready:
            ok = torch.autograd.gradcheck(
                lambda a, b: MySpatialTransformer.apply(a, b, (2, 3, 4, 3), padding_mode, align_corners), (inp, tht))
            print(f"{padding_mode:10s} align_corners={align_corners!s:5s}  gradcheck of your Function: {ok}")

# %% [markdown]
# **Against autograd through `F.grid_sample`** in float32, on a larger random problem: your hand-derived gradients
# (`MySpatialTransformer`'s $\partial L / \partial U$ and $\partial L / \partial \theta$) and PyTorch's agree to float32 rounding (relative to the size of the
# gradients; the grid gradient carries the factor $W/2$).

# %%
x32 = torch.randn(4, 3, 28, 28, generator=generator)
theta32 = torch.eye(2, 3) + 0.3 * torch.randn(4, 2, 3, generator=generator)
go = torch.randn(4, 3, 20, 24, generator=generator)


def torch_gradients(padding_mode):
    xx, tt = x32.clone().requires_grad_(), theta32.clone().requires_grad_()
    grid = F.affine_grid(tt, go.shape, align_corners=False)
    out = F.grid_sample(xx, grid, padding_mode=padding_mode, align_corners=False)
    return torch.autograd.grad(out, (xx, tt), go)


if not yours_ready:
    print("MySpatialTransformer is not implemented yet")
for padding_mode in sampling.GRID_SAMPLE_MODES if yours_ready else ():
    yours = transformer_with_grads(go, x32, theta32, padding_mode)[1:]
    errors = [((a - b).abs().max() / b.abs().max()).item() for a, b in zip(yours, torch_gradients(padding_mode))]
    print(f"{padding_mode:10s} relative error, yours vs torch: dL/dU {errors[0]:.1e}, dL/dθ {errors[1]:.1e}")
    assert max(errors) < 1e-4  # float32 rounding

# %% [markdown]
# **Double backward** through your Function is refused with a clear error rather than answered with numbers nobody
# checked (`@once_differentiable` does that): your backward is not itself written as differentiable operations.

# %%
xx = torch.randn(1, 1, 4, 4, requires_grad=True)
tt = (torch.eye(2, 3) + 0.1 * torch.rand(1, 2, 3)).requires_grad_()
if yours_ready:
    try:
        out = MySpatialTransformer.apply(xx, tt, (1, 1, 3, 3), "zeros", False)
        (first,) = torch.autograd.grad(out.pow(2).sum(), xx, create_graph=True)
        first.sum().backward()
        print("double backward ran – is @once_differentiable on your backward?")
    except RuntimeError as error:
        print("RuntimeError:", str(error)[:110], "…")
else:
    print("MySpatialTransformer is not implemented yet")

# %% [markdown]
# ### Gradient descent on one parameter
#
# The whole point of eq. 7: a *gradient with respect to where we look*. Take a template, shift it (or rotate it),
# and let gradient descent on a single parameter of $\theta$ undo the motion, minimising
# $L(t) = \lVert \text{sample}(U_\text{moved}, \mathcal{T}_t) - U_\text{template} \rVert^2$ with **your** sampler
# backward (`MySpatialTransformer`; the package's stands in until Exercise 3 passes). The curve is the loss for every
# value of the parameter; the dots are the iterates. The step size shrinks geometrically over the run, as training
# schedules do: the loss has small dips between the whole-pixel shifts – each whole-pixel shift is a little peak
# (below) – and with a fixed step the iterates keep bouncing between the dips around the answer – try a fixed step in the explorer at the end. The cell asserts that
# descent ends within 0.01 of the answer (a fifth of a pixel of the 40-pixel photo).

# %% [markdown]
# **Predict, then run.** The photo warped with $t_x = 0.25$ has its content moved 5 pixels to the *left*: the
# output at $x$ reads the input at $x + 5$ ($t_x = 0.25$ is a quarter of the half-width, and $W/2 = 20$), so a bright
# pixel at $x = 20$ lands at $x = 15$ – lesson 1's sign rule. It is undone by $t = -0.25$, and the loss is smallest
# there. Descent starts at the identity, $t = 0$, and takes its first step against the gradient
# $\partial L / \partial \theta_{02} = \partial L / \partial t$ that your backward returns at $t = 0$. Which sign does
# that gradient have: `"positive"`, `"negative"` or `"zero"`? Reason it out from what you derived – the descent
# helpers come after the check – before you run anything.
#
# Answer it as a function of the shift the photo was moved by, `shift` $= t_x$ (here 0.25; one pixel is
# $2/40 = 0.05$): the check asks about the same photo moved by 0.25 and by other shifts – the other way, and by less
# than a pixel – and the grader about more of them; never about `shift = 0` (no motion at all).
#
# **The setting, exactly.** The moved photo is `photo` (40×40, grey, float64) sampled on lesson 2's grid of
# $\theta = \begin{bmatrix} 1 & 0 & \text{shift} \\ 0 & 1 & 0 \end{bmatrix}$ for the same 40×40 size – bilinear,
# `padding_mode="zeros"`, `align_corners=False`, i.e. `MySpatialTransformer.apply(photo, θ, photo.shape, "zeros",
# False)`; the loss is $L(t) = $ the **mean** over pixels of $(\text{sample}(\text{moved}, \mathcal{T}_t) -
# \text{photo})^2$, with the same settings, and the gradient is your backward's at $t = 0$. For some shifts the sign
# is decided by the shape of the loss, which you can reason out: every shift to the right ($t_x < 0$), a shift to the
# left by at most one pixel ($0 < t_x \le 0.05$), and a shift far to the left, by five pixels or more ($t_x \ge
# 0.25$, the lesson's). In between, one to five pixels to the left, the sign depends on the texture of this
# particular photo, and only computing it tells – the check and the grader ask only about the first kind. You could
# compute every answer with your own Function; the exercise is worth something only if you predict first and then
# compare.

# %%
def sign_at_identity(shift: float) -> str:
    """The sign of ∂L/∂θ₀₂ at t = 0 for the 40×40 photo moved by ``t_x = shift`` (never 0): "positive", "negative"
    or "zero"."""
    ### BEGIN SOLUTION
    one_pixel = 2 / 40
    if 0 < shift <= one_pixel:  # the valley is within a pixel to the left: the right-hand slope climbs out of it
        return "positive"
    return "negative"  # far away or to the right: the loss falls just right of the blur peak (1-4 pixels: it depends)
    ### END SOLUTION


# %%
sign_at_identity = check("04.sign_at_identity", sign_at_identity)

# %%
def one_parameter_theta(kind, value):
    zero, one = torch.zeros_like(value), torch.ones_like(value)
    if kind == "shift":
        return torch.stack([one, zero, value, zero, one, zero]).view(1, 2, 3)
    c, s = torch.cos(value), torch.sin(value)
    return torch.stack([c, -s, zero, s, c, zero]).view(1, 2, 3)


if yours_ready:
    def transform_with_backward(image, theta):
        return MySpatialTransformer.apply(image, theta, image.shape, "zeros", False)  # θ → grid → sample: yours
else:  # the package's analytic Functions, until yours passes
    from stn_course.autograd import affine_grid_analytic as package_affine_grid
    from stn_course.autograd import bilinear_sample_analytic as package_bilinear_sample

    def transform_with_backward(image, theta):
        return package_bilinear_sample(image, package_affine_grid(theta, image.shape))


def warp(image, kind, value):
    return transform_with_backward(image, one_parameter_theta(kind, value))


def descend(kind, truth, start, lr, steps, shrink=1.0):
    """Gradient descent on one parameter; the step size shrinks geometrically to ``shrink`` times ``lr`` over the run."""
    moved = warp(photo, kind, torch.tensor(truth, dtype=torch.float64))
    loss_of = lambda t: (warp(moved, kind, t) - photo).pow(2).mean()  # noqa: E731
    with torch.no_grad():
        values = torch.linspace(-1, 1, 81, dtype=torch.float64)
        curve = [loss_of(t).item() for t in values]
    t, path, losses = torch.tensor(start, dtype=torch.float64), [], []
    for _ in range(steps + 1):
        t = t.detach().requires_grad_()
        loss = loss_of(t)
        (grad,) = torch.autograd.grad(loss, t)  # through your backward of the sampler
        path.append(t.item())
        losses.append(loss.item())
        t = t - lr * shrink ** ((len(path) - 1) / steps) * grad
    return values, curve, path, losses


# %%
dot = torch.zeros(1, 1, SIZE, SIZE, dtype=torch.float64)
dot[..., SIZE // 2, 20] = 1.0  # one bright pixel at x = 20
shift_lands_at = warp(dot, "shift", torch.tensor(0.25, dtype=torch.float64))[0, 0, SIZE // 2].argmax().item()
print(f"t_x = +0.25 moves the bright pixel from x = 20 to x = {shift_lands_at}")
descents = {}
steps, shrink = (30, 0.2) if FAST else (80, 0.1)  # the step ends at a fifth (a tenth) of its first size
for kind, truth, lr in (("shift", 0.25, 0.4 if FAST else 0.3), ("rotation", 0.5, 0.4)):
    values, curve, path, losses = descents[kind] = descend(kind, truth, 0.0, lr, steps, shrink)
    print(f"{kind}: truth {-truth:+.3f}, found {path[-1]:+.3f} after {len(path) - 1} steps; at t = 0: loss "
          f"{losses[0]:.4f}, first step to {path[1]:+.3f} (loss {losses[1]:.4f})")
    plotting.plot_descent(values.tolist(), curve, path, losses, xlabel=kind, truth=-truth)
    assert abs(path[-1] + truth) < 0.01  # what the text says: descent undoes the motion

# %% [markdown]
# <details><summary>Why the shift's first step goes uphill (open after the check passes)</summary>
#
# At $t = 0$ every sample sits exactly on a pixel centre – a kink of
# every bilinear weight – and the backward returns the **right** derivative (§2). Between whole-pixel shifts, bilinear
# interpolation *averages* neighbouring pixels, a blur; the blurred moved photo is closer to the template than the
# sharp one, so the loss dips on both sides of every whole-pixel shift, and $t = 0$ is a little peak. The right
# derivative is the slope of the right-hand side of that peak: negative, so the first step goes *right*, away from
# $-0.25$, and up the far side of the dip. From there the gradient is the slope of the big valley, and descent turns
# back. (The rotation does not show it: its samples leave the pixel centres at once, except the centre of rotation.)
# The blur peak is only a pixel wide: when the photo was moved a little to the left, the valley's minimum lies close
# to the left of $t = 0$, and the right-hand slope climbs out of it: positive. Moved to the right, both effects point
# right: negative. How little is "a little" depends on the photo's texture – the cell below computes the sign for
# shifts a quarter pixel apart.
# </details>

# %%
def slope_at_identity(shift: float) -> float:
    """∂L/∂t at t = 0 for the photo moved by ``t_x = shift``, through the backward the descent above used."""
    moved = warp(photo, "shift", torch.tensor(shift, dtype=torch.float64))
    t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad((warp(moved, "shift", t) - photo).pow(2).mean(), t)
    return slope.item()


quarter_pixel = 2 / SIZE / 4
slopes = {k * quarter_pixel: slope_at_identity(k * quarter_pixel) for k in range(-16, 17) if k}
surely_positive = max(s for s in slopes if s > 0 and all(slopes[q] > 0 for q in slopes if 0 < q <= s))
surely_negative = min(s for s in slopes if all(slopes[q] < 0 for q in slopes if q >= s))
print(f"∂L/∂t at t = 0 is positive for every shift in (0, {surely_positive:.4f}] "
      f"({surely_positive / (2 / SIZE):.2f} pixels), negative for every shift < 0 and ≥ {surely_negative:.4f} "
      f"({surely_negative / (2 / SIZE):.2f} pixels); in between:",
      ", ".join(f"{s:.4f} {'+' if v > 0 else '-'}" for s, v in slopes.items() if surely_positive < s < surely_negative))
assert all(v < 0 for s, v in slopes.items() if s < 0)  # what the text says: moved to the right, negative

# %% [markdown]
# A spatial transformer starts exactly there, at the identity: its first updates are one-sided, and a small learning
# rate keeps such a step harmless.
#
# The gradient is **local**: eq. 7 only sees the slope of the image between neighbouring pixels. Started far from
# the answer on a flat or bumpy part of the loss, descent stalls in a local minimum – try it below. This is why
# localisation networks are trained with the rest of the network from the identity, why blurring (a coarse
# image) widens the basin, and why a transformer that has zoomed its window entirely into the padding never comes
# back.
#
# ## Explore
#
# Choose the parameter, the distortion, where descent starts, the step size and the number of steps. Try this:
#
# * `shift`, step size 0.3: twenty steps from 0 take the parameter most of the way to the answer, $-0.3$;
# * step size 3: the steps overshoot, and the loss ends higher than it started;
# * `rotation` with a distortion of 0.8, started at 0: descent stops far from the answer $-0.8$, in a local minimum
#   of the loss – start it at $-0.9$ and it finds the answer. A spatial transformer's loss has such minima too,
#   which is one reason it starts at the identity.

# %% tags=["skip-when-grading"]
widgets.descent_explorer(photo.float())

# %% [markdown]
# ### Questions
#
# Answer in a sentence or two before you open the fold – these are the ideas the exercises cannot check.

# %% [markdown]
# **1.** At the identity, every sample sits exactly on a pixel centre. Which derivative does the sampler return there, and why can `gradcheck` not confirm it?

# %% [markdown] tags=["answer"]
# The right derivative: the neighbours are $\lfloor x \rfloor$ and $\lfloor x \rfloor + 1$, so the slope is $U_{x+1} - U_x$. Central differences straddle the kink and average the left and right slopes, which differ: they disagree with *any* one-sided answer. That is why, at a kink, the checks compare the backward with the one-sided slope the sampler defines, and leave finite differences (`gradcheck`) to points away from kinks.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The right derivative: the neighbours are $\lfloor x \rfloor$ and $\lfloor x \rfloor + 1$, so the slope is $U_{x+1} - U_x$. Central differences straddle the kink and average the left and right slopes, which differ: they disagree with *any* one-sided answer. That is why, at a kink, the checks compare the backward with the one-sided slope the sampler defines, and leave finite differences (`gradcheck`) to points away from kinks.
# </details>

# %% [markdown]
# **2.** In the descent explorer, start the shift far from the answer. Why does descent stall, and what would help?

# %% [markdown] tags=["answer"]
# The gradient only sees the image slope between neighbouring pixels (eq. 7). Far from the answer, the loss is flat or bumpy, with local minima. Blurring the image (a coarser scale) widens the basin; so does starting near the identity and training the transformer together with the rest of the network.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The gradient only sees the image slope between neighbouring pixels (eq. 7). Far from the answer, the loss is flat or bumpy, with local minima. Blurring the image (a coarser scale) widens the basin; so does starting near the identity and training the transformer together with the rest of the network.
# </details>

# %% [markdown]
# ## Takeaways
#
# * $\partial L/\partial U$ (eq. 6) scatters each output gradient into the four neighbours with the forward
#   weights – it is $S^\top \partial L/\partial V$; **add** collisions.
# * $\partial L/\partial(x^s, y^s)$ (eq. 7) is the local image slope between neighbours, blended along the other axis;
#   it has kinks at pixel centres (PyTorch and we take the right derivative) – the identity sits on them.
# * Chain through the padding mode (clamp: 0 at/after the border; reflection: $\pm1$) and the unnormalization
#   ($W/2$ or $(W-1)/2$), then into $\theta$ with one matrix product with the base grid.
# * Verify with `gradcheck` in float64 away from kinks, and against autograd through `F.grid_sample`; refuse double
#   backward rather than return wrong numbers.
# * Only sampled neighbourhoods receive gradient, and the gradient w.r.t. $\theta$ is local: start at the identity.
