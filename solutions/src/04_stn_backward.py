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
# **You will build** the derivative of the coordinate transform, both halves of the sampler's backward, the grid
# generator's backward, a complete `autograd.Function`, and the chain rule end to end – then verify them with
# `torch.autograd.gradcheck` and against autograd through `F.grid_sample`, see which pixels receive gradient, and
# watch gradient descent on one parameter align an image.
#
# **Package modules:** `stn_course.autograd` (`BilinearSampleFunction`, `AffineGridFunction`, the tested
# references), `stn_course.plotting`, `stn_course.widgets`.
#
# **Prerequisites:** lessons 2 (bilinear sampling, padding modes) and 3 (the spatial transformer).

# %%
FAST = True  # small images (seconds on a laptop CPU); False: bigger images and longer experiments

%matplotlib inline
import math

import numpy as np
import torch
import torch.nn.functional as F

from stn_course import autograd as ag
from stn_course import grids, plotting, sampling, widgets
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
# ### 2. The gradient with respect to the input (eq. 6)
#
# $V^c_i$ is **linear** in $U$, so
#
# $$ \frac{\partial V^c_i}{\partial U^c_{nm}} = \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|)
# \quad\Longrightarrow\quad \frac{\partial L}{\partial U^c_{nm}} = \sum_i \frac{\partial L}{\partial V^c_i}\,
# \max(0, 1 - |x_i - m|)\, \max(0, 1 - |y_i - n|). \qquad (6) $$
#
# Only the four neighbours of $(x_i, y_i)$ have a non-zero weight: each output pixel **scatters** its gradient into
# four input pixels, with the forward pass's bilinear weights. Many output pixels can land in the same input pixel
# (zooming in), so contributions must be **added** (`index_add_`, `scatter_add_`) – assigning keeps only one of
# them, a classic bug. In matrix form, for one image, $V = S\,U$ with a sparse $P \times HW$ matrix $S$ of four
# weights per row, and eq. 6 is just $\partial L/\partial U = S^\top \partial L / \partial V$.
#
# ### 3. The gradient with respect to the sampling position (eq. 7)
#
# Write $x_0 = \lfloor x \rfloor$, $f_x = x - x_0$ (and the same for $y$). The four weights are
# $(1-f_x)(1-f_y)$, $f_x(1-f_y)$, $(1-f_x)f_y$, $f_x f_y$ for the neighbours $U_{y_0 x_0}, U_{y_0 x_1}, U_{y_1 x_0},
# U_{y_1 x_1}$. Differentiating in $x$ (only $f_x$ depends on it, $\partial f_x / \partial x = 1$):
#
# $$ \frac{\partial V^c_i}{\partial x_i} = (1 - f_y)\,(U^c_{y_0 x_1} - U^c_{y_0 x_0}) + f_y\,(U^c_{y_1 x_1} -
# U^c_{y_1 x_0}),\qquad \frac{\partial V^c_i}{\partial y_i} = (1 - f_x)\,(U^c_{y_1 x_0} - U^c_{y_0 x_0}) + f_x\,
# (U^c_{y_1 x_1} - U^c_{y_0 x_1}), $$
#
# which is the paper's eq. 7 written out, $\frac{\partial V^c_i}{\partial x_i} = \sum_{n,m} U^c_{nm} \max(0, 1-|y_i
# - n|) \cdot \{0 \text{ if } |m - x_i| \ge 1;\ 1 \text{ if } m \ge x_i;\ -1 \text{ if } m < x_i\}$: the *slope* of
# the image between the two neighbours, blended along $y$. Neighbours outside the image read 0 (also in the
# derivative). Summing over channels: $\partial L / \partial x_i = \sum_c \frac{\partial L}{\partial V^c_i}
# \frac{\partial V^c_i}{\partial x_i}$.
#
# **Kinks.** $\max(0, 1 - |x - m|)$ has a corner at every integer $x$: left and right slopes differ. At a pixel
# centre the function is only *sub-differentiable*; like PyTorch we take the **right** derivative (neighbours
# $\lfloor x \rfloor$ and $\lfloor x \rfloor + 1$). Random positions hit a kink with probability 0 – but the
# identity transform puts *every* sample exactly on one, so the gradient at a freshly initialised STN is the
# one-sided one. `gradcheck` compares with finite differences, which straddle a kink and disagree there, so we
# check at points away from them.

# %%
x_s = torch.linspace(0.0, 5.0, 201, dtype=torch.float64)
signal = torch.tensor([0.2, 0.9, 0.4, 0.6, 1.0, 0.3], dtype=torch.float64)
grid_1d = torch.stack([2 * x_s / 5 - 1, torch.zeros_like(x_s)], -1).view(1, 1, -1, 2)  # align_corners=True
g = grid_1d.clone().requires_grad_()
v = ag.bilinear_sample_analytic(signal.view(1, 1, 1, 6), g, "zeros", True)
(slope,) = torch.autograd.grad(v.sum(), g)
fig = plotting.plot_interpolation_1d(signal.tolist())
fig.axes[0].plot(x_s, slope[0, 0, :, 0] * 2 / 5, color="tab:red", lw=1.2, label="∂V/∂x (steps at integers)")
fig.axes[0].legend(fontsize=8);

# %% [markdown]
# ### 4. Through the padding mode and the unnormalization
#
# The grid stores normalized $g \in [-1, 1]$; the sampler reads at $x = \text{pad}(\text{unnormalize}(g))$, so
#
# $$ \frac{\partial L}{\partial g_x} = \frac{\partial L}{\partial x} \cdot \text{pad}'\cdot \begin{cases}
# \frac{W - 1}{2} & \text{align\_corners=True} \\ \frac{W}{2} & \text{align\_corners=False.} \end{cases} $$
#
# * `zeros`: $\text{pad}' = 1$ (outside, both neighbours are 0 and the slope vanishes by itself);
# * `border`: the clamp to $[0, W - 1]$ is flat outside: $\text{pad}' = 1$ strictly inside, $0$ at or beyond the
#   border (PyTorch counts the border itself as outside);
# * `reflection`: every mirror flips the direction: $\text{pad}' = \pm 1$, the sign changing with each reflection
#   (and $-1$ to the left of the low mirror line), then the border rule on the reflected coordinate.
#
# The gradient scale is a popular bug: forgetting the factor $W/2$ (or using $W$) makes $\theta$ learn at the
# wrong speed – silently, the training just behaves oddly.
#
# ### 5. Into $\theta$
#
# The affine grid generator is linear in $\theta$: $G_i = \theta\, b_i$ with $b_i = (x^t_i, y^t_i, 1)$. So
#
# $$ \frac{\partial L}{\partial \theta_{kl}} = \sum_i \frac{\partial L}{\partial G_{ik}}\, b_{il}
# \quad\Longleftrightarrow\quad \frac{\partial L}{\partial \theta} = \left(\frac{\partial L}{\partial G}
# \right)^{\!\top} B, \qquad B = \begin{bmatrix} b_1^\top \\ \vdots \\ b_P^\top \end{bmatrix} \in \mathbb{R}^{P
# \times 3}. $$
#
# All together, for one sample: $\frac{\partial L}{\partial \theta} = \sum_i \sum_c \frac{\partial L}{\partial
# V^c_i} \left(\frac{\partial V^c_i}{\partial x_i} \frac{\partial x_i}{\partial g_{x,i}},\ \frac{\partial
# V^c_i}{\partial y_i} \frac{\partial y_i}{\partial g_{y,i}} \right)^{\!\top} (x^t_i, y^t_i, 1)$.
#
# ### 6. Which pixels receive gradient?
#
# Only the four neighbours of each sampling point. A transformer that zooms in on a window sends gradient to the
# window only; one whose samples sit more than a pixel apart – its output is coarser than the region it reads –
# leaves the pixels in between without any gradient: the layers below learn nothing about them from this output.
# Below, θ reads 90 % of the image (a slight zoom *in*) onto an output a third of the image's size, so neighbouring
# samples are about 2.7 input pixels apart.

# %%
theta_coarse = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64) * 0.9
theta_coarse[0, 0, 2], theta_coarse[0, 1, 2] = 0.05, -0.05
grid_small = grids.affine_grid(theta_coarse, (1, 1, SIZE // 3, SIZE // 3))
u = photo.clone().requires_grad_()
out = ag.bilinear_sample_analytic(u, grid_small)
(grad_u,) = torch.autograd.grad(out.sum(), u)  # dL/dV = 1 everywhere
spacing = (grid_small[0, 0, 1, 0] - grid_small[0, 0, 0, 0]).item() * photo.shape[-1] / 2  # in input pixels
print(f"samples {spacing:.1f} input pixels apart; {(grad_u != 0).float().mean() * 100:.0f}% of the input pixels "
      "receive gradient")
assert 2.5 < spacing < 3 and theta_coarse[0, 0, 0] < 1  # what the text says: a zoom in, samples ≈ 2.7 px apart
plotting.plot_gradient_footprint(photo, grad_u, grid_small);

# %% [markdown]
# ## Build
#
# ### Exercise 1 – $\partial x / \partial g$ through unnormalize and the padding mode
#
# Elementwise derivative of lesson 2's `source_coordinates(coord, size, padding_mode, align_corners)`. Follow §4;
# for `reflection` mirror the way `sampling.source_coordinates` does (about the pixel centres $0$ and $W-1$ with
# `align_corners=True`, the edges $-\frac12$ and $W - \frac12$ otherwise) and track the sign. A 1-pixel axis with
# `reflection` is constant: derivative 0.

# %%
def source_coordinates_grad(coord: torch.Tensor, size: int, padding_mode: str = "zeros",
                            align_corners: bool = False) -> torch.Tensor:
    """``∂x/∂g`` for normalized coordinates ``coord (...)`` along an axis of ``size`` pixels. ``-> (...)``"""
    ### BEGIN SOLUTION
    scale = (size - 1) / 2 if align_corners else size / 2
    x = sampling.unnormalize(coord, size, align_corners)
    if padding_mode == "zeros":
        return torch.full_like(coord, scale)
    sign = torch.ones_like(x)
    if padding_mode == "reflection":
        low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
        if high == low:
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
    ### END SOLUTION


# %%
source_coordinates_grad = check("04.source_coordinates_grad", source_coordinates_grad)

# %% [markdown]
# A helper for the next exercises (not graded): the four neighbours of every sampling point, their bilinear weights
# and whether they are inside the image – exactly lesson 2's forward pass, kept apart so that both halves of the
# backward can use it.

# %%
def neighbours(input, grid, padding_mode, align_corners):
    """Per sampling point (flattened to ``(N, P)``): ``fx, fy`` and, for the corners (y0x0, y0x1, y1x0, y1x1),
    flat indices ``(4, N, P)`` into ``H * W`` (clamped) and ``inside`` masks ``(4, N, P)``."""
    n, c, h, w = input.shape
    x = sampling.source_coordinates(grid[..., 0], w, padding_mode, align_corners).reshape(n, -1)
    y = sampling.source_coordinates(grid[..., 1], h, padding_mode, align_corners).reshape(n, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    index, inside = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0.long() + dx, y0.long() + dy
            inside.append((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))
            index.append(yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1))
    return fx, fy, torch.stack(index), torch.stack(inside).to(input.dtype)


# %% [markdown]
# ### Exercise 2 – $\partial L / \partial U$ (eq. 6)
#
# Scatter `grad_output (N, C, H_out, W_out)` into the input's shape with the four weights; neighbours outside the
# image receive nothing. Add, never assign.

# %%
def grad_input(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """``∂L/∂U``: ``grad_output (N, C, H_out, W_out)``, ``input (N, C, H, W)``, ``grid (N, H_out, W_out, 2)``
    ``-> (N, C, H, W)``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape
    fx, fy, index, inside = neighbours(input, grid, padding_mode, align_corners)
    weights = torch.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]) * inside  # (4, N, P)
    g = grad_output.reshape(n, c, -1)
    result = torch.zeros(n, c, h * w, dtype=input.dtype)
    for k in range(4):
        result.scatter_add_(2, index[k].unsqueeze(1).expand(n, c, -1), g * weights[k].unsqueeze(1))
    return result.view(n, c, h, w)
    ### END SOLUTION


# %%
grad_input = check("04.grad_input", grad_input)

# %% [markdown]
# ### Exercise 3 – $\partial L / \partial G$ (eq. 7, chained)
#
# For each corner $k$, $s_k = \sum_c \frac{\partial L}{\partial V^c} U^c_k$ (0 for neighbours outside); combine them
# with the derivatives of the weights (§3) and multiply by $\partial x / \partial g_x$ (Exercise 1). The result is
# `(N, H_out, W_out, 2)` with $x$ in `[..., 0]`.

# %%
def grad_grid(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """``∂L/∂G``: same arguments as ``grad_input`` ``-> (N, H_out, W_out, 2)``"""
    ### BEGIN SOLUTION
    n, c, h, w = input.shape
    fx, fy, index, inside = neighbours(input, grid, padding_mode, align_corners)
    g = grad_output.reshape(n, c, -1)
    flat = input.reshape(n, c, h * w)
    s = [(torch.gather(flat, 2, index[k].unsqueeze(1).expand(n, c, -1)) * g).sum(1) * inside[k] for k in range(4)]
    s00, s01, s10, s11 = s  # neighbours (y0, x0), (y0, x1), (y1, x0), (y1, x1)
    dv_dx = (1 - fy) * (s01 - s00) + fy * (s11 - s10)
    dv_dy = (1 - fx) * (s10 - s00) + fx * (s11 - s01)
    dx = source_coordinates_grad(grid[..., 0], w, padding_mode, align_corners).reshape(n, -1)
    dy = source_coordinates_grad(grid[..., 1], h, padding_mode, align_corners).reshape(n, -1)
    return torch.stack([dv_dx * dx, dv_dy * dy], dim=-1).view(grid.shape)
    ### END SOLUTION


# %%
grad_grid = check("04.grad_grid", grad_grid)

# %% [markdown]
# ### Exercise 4 – $\partial L / \partial \theta$ from $\partial L / \partial G$
#
# One batched matrix product with the base grid $B$ (`grids.base_grid(H_out, W_out, align_corners, dtype)` gives
# `(H_out, W_out, 3)`).

# %%
def affine_grid_backward(grad_grid: torch.Tensor, size, align_corners: bool = False) -> torch.Tensor:
    """``grad_grid (N, H_out, W_out, 2)``, ``size = (N, C, H_out, W_out)`` -> ``∂L/∂θ (N, 2, 3)``"""
    ### BEGIN SOLUTION
    n, _, h_out, w_out = size
    B = grids.base_grid(h_out, w_out, align_corners, grad_grid.dtype).reshape(h_out * w_out, 3)
    return grad_grid.reshape(n, h_out * w_out, 2).transpose(1, 2) @ B
    ### END SOLUTION


# %%
affine_grid_backward = check("04.affine_grid_backward", affine_grid_backward)

# %% [markdown]
# ### Exercise 5 – a complete `autograd.Function`
#
# `forward` computes the sample (use lesson 2's `sampling.bilinear_sample`) and saves what backward needs;
# `backward` returns one gradient per forward argument – `None` for the two settings. `@once_differentiable` makes
# PyTorch refuse to differentiate this backward a second time instead of silently returning wrong numbers. The
# check calls `sampler_with_grads`, which runs your Function forward and backward.

# %%
from torch.autograd.function import once_differentiable


class MyBilinearSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid, padding_mode="zeros", align_corners=False):
        ### BEGIN SOLUTION
        ctx.save_for_backward(input, grid)
        ctx.padding_mode, ctx.align_corners = padding_mode, align_corners
        return sampling.bilinear_sample(input, grid, padding_mode, align_corners)
        ### END SOLUTION

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        ### BEGIN SOLUTION
        input, grid = ctx.saved_tensors
        settings = (ctx.padding_mode, ctx.align_corners)
        return grad_input(grad_output, input, grid, *settings), grad_grid(grad_output, input, grid, *settings), None, None
        ### END SOLUTION


def sampler_with_grads(grad_output, input, grid, padding_mode="zeros", align_corners=False):
    """Forward + backward through ``MyBilinearSample`` -> ``(output, ∂L/∂input, ∂L/∂grid)``."""
    x, g = input.clone().requires_grad_(), grid.clone().requires_grad_()
    out = MyBilinearSample.apply(x, g, padding_mode, align_corners)
    return (out.detach(), *torch.autograd.grad(out, (x, g), grad_output))


# %%
sampler_with_grads = check("04.sampler_function", sampler_with_grads)

# %% [markdown]
# ### Exercise 6 – the chain rule end to end
#
# For `L = <grad_output, sample(input, affine_grid(theta))>` return $\partial L / \partial \theta$, using only your
# functions (the grid comes from `grids.affine_grid` for an output of `grad_output`'s size).

# %%
def theta_gradient(grad_output, input, theta, padding_mode="zeros", align_corners=False):
    """``grad_output (N, C, H_out, W_out)``, ``input (N, C, H, W)``, ``theta (N, 2, 3)`` -> ``∂L/∂θ (N, 2, 3)``"""
    ### BEGIN SOLUTION
    size = tuple(grad_output.shape)
    grid = grids.affine_grid(theta, size, align_corners)
    dgrid = grad_grid(grad_output, input, grid, padding_mode, align_corners)
    return affine_grid_backward(dgrid, size, align_corners)
    ### END SOLUTION


# %%
theta_gradient = check("04.theta_gradient", theta_gradient)

# %% [markdown]
# ## Verify
#
# **`gradcheck`** compares a backward with finite differences $\frac{f(x + \epsilon) - f(x - \epsilon)}{2\epsilon}$ in
# float64. Random points avoid the kinks; all three padding modes, both conventions:

# %%
generator = torch.Generator().manual_seed(0)
yours_ready = status("04.sampler_function") == "passed"  # exercise 5 done? Until then only the package's is checked
if not yours_ready:
    print("(MyBilinearSample is not implemented yet: gradcheck runs on the package's Function only)")
for padding_mode in sampling.PADDING_MODES:
    for align_corners in (False, True):
        inp = torch.randn(2, 3, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
        grd = ((torch.rand(2, 4, 3, 2, dtype=torch.float64, generator=generator) * 2 - 1) * 1.4).requires_grad_()
        mine = torch.autograd.gradcheck(lambda a, b: MyBilinearSample.apply(a, b, padding_mode, align_corners),
                                         (inp, grd)) if yours_ready else "not implemented yet"
        package = torch.autograd.gradcheck(
            lambda a, b: ag.BilinearSampleFunction.apply(a, b, padding_mode, align_corners), (inp, grd))
        print(f"{padding_mode:10s} align_corners={align_corners!s:5s}  gradcheck: yours {mine}, package {package}")

theta = (torch.eye(2, 3, dtype=torch.float64) + 0.2 * torch.randn(2, 2, 3, dtype=torch.float64,
                                                                   generator=generator)).requires_grad_()
print("AffineGridFunction gradcheck:",
      torch.autograd.gradcheck(lambda t: ag.AffineGridFunction.apply(t, (2, 1, 4, 5), False), (theta,)))

# %% [markdown]
# **Against autograd through `F.grid_sample`** in float32, on a larger random problem: the hand-derived gradients
# and PyTorch's agree to float32 rounding (relative to the size of the gradients; the grid gradient carries the
# factor $W/2$).

# %%
x32 = torch.randn(4, 3, 28, 28, generator=generator)
theta32 = torch.eye(2, 3) + 0.3 * torch.randn(4, 2, 3, generator=generator)
go = torch.randn(4, 3, 20, 24, generator=generator)


def gradients(sample, make_grid):
    xx, tt = x32.clone().requires_grad_(), theta32.clone().requires_grad_()
    return torch.autograd.grad(sample(xx, make_grid(tt)), (xx, tt), go)


for padding_mode in sampling.PADDING_MODES:
    ours = gradients(lambda a, g: ag.bilinear_sample_analytic(a, g, padding_mode),
                     lambda t: ag.affine_grid_analytic(t, go.shape))
    torchs = gradients(lambda a, g: F.grid_sample(a, g, padding_mode=padding_mode, align_corners=False),
                       lambda t: F.affine_grid(t, go.shape, align_corners=False))
    errors = [((a - b).abs().max() / b.abs().max()).item() for a, b in zip(ours, torchs)]
    print(f"{padding_mode:10s} relative error: dL/dU {errors[0]:.1e}, dL/dθ {errors[1]:.1e}")

# %% [markdown]
# **Double backward** is refused with a clear error rather than answered wrongly:

# %%
xx = torch.randn(1, 1, 4, 4, requires_grad=True)
gg = torch.rand(1, 3, 3, 2, requires_grad=True)
try:
    torch.autograd.grad(ag.bilinear_sample_analytic(xx, gg).pow(2).sum(), xx, create_graph=True)
except RuntimeError as error:
    print("RuntimeError:", str(error)[:110], "…")

# %% [markdown]
# ### Gradient descent on one parameter
#
# The whole point of eq. 7: a *gradient with respect to where we look*. Take a template, shift it (or rotate it),
# and let gradient descent on a single parameter of $\theta$ undo the motion, minimising
# $L(t) = \lVert \text{sample}(U_\text{moved}, \mathcal{T}_t) - U_\text{template} \rVert^2$ with our analytic
# backward. The curve is the loss for every value of the parameter; the dots are the iterates.

# %%
def one_parameter_theta(kind, value):
    zero, one = torch.zeros_like(value), torch.ones_like(value)
    if kind == "shift":
        return torch.stack([one, zero, value, zero, one, zero]).view(1, 2, 3)
    c, s = torch.cos(value), torch.sin(value)
    return torch.stack([c, -s, zero, s, c, zero]).view(1, 2, 3)


def warp(image, kind, value):
    return ag.bilinear_sample_analytic(image, ag.affine_grid_analytic(one_parameter_theta(kind, value), image.shape))


def descend(kind, truth, start, lr, steps):
    moved = warp(photo, kind, torch.tensor(truth, dtype=torch.float64))
    loss_of = lambda t: (warp(moved, kind, t) - photo).pow(2).mean()  # noqa: E731
    with torch.no_grad():
        values = torch.linspace(-1, 1, 81, dtype=torch.float64)
        curve = [loss_of(t).item() for t in values]
    t, path, losses = torch.tensor(start, dtype=torch.float64), [], []
    for _ in range(steps + 1):
        t = t.detach().requires_grad_()
        loss = loss_of(t)
        (grad,) = torch.autograd.grad(loss, t)  # through AffineGridFunction and BilinearSampleFunction
        path.append(t.item())
        losses.append(loss.item())
        t = t - lr * grad
    return values, curve, path, losses


for kind, truth, lr in (("shift", 0.25, 0.4), ("rotation", 0.5, 0.3)):
    values, curve, path, losses = descend(kind, truth, start=0.0, lr=lr, steps=30 if FAST else 80)
    print(f"{kind}: truth {-truth:+.3f}, found {path[-1]:+.3f} after {len(path) - 1} steps")
    plotting.plot_descent(values.tolist(), curve, path, losses, xlabel=kind, truth=-truth)

# %% [markdown]
# The gradient is **local**: eq. 7 only sees the slope of the image between neighbouring pixels. Started far from
# the answer on a flat or bumpy part of the loss, descent stalls in a local minimum – try it below. This is why
# localisation networks are trained with the rest of the network from the identity, why blurring (a coarse
# image) widens the basin, and why a transformer that has zoomed its window entirely into the padding never comes
# back.
#
# ## Explore
#
# Choose the parameter, the distortion, where descent starts, the step size and the number of steps.

# %%
widgets.descent_explorer(photo.float())

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
