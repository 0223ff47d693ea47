"""PyTorch's own 2-D ``grid_sample`` / ``affine_grid`` tests, adapted to the package's API, run on every impl.

Source: ``test/test_nn.py`` of pytorch/pytorch (read at commit ``74f2fa66``): ``test_grid_sample`` (the known
values, the *explicit gradient edge cases* with their hard-coded ground truth, the gradcheck, and ``test_shape``'s
comparison on non-contiguous grids, larger / smaller / 1×1 inputs, empty grid, channel and batch),
``test_grid_sample_error_checking``, ``test_affine_grid_error_checking``, ``test_affine_grid`` (known values,
gradcheck with ``check_forward_ad=True``). ``test_grid_sample_nan_inf`` (a device test) is reconstructed from its
intent: ``mode="nearest"`` with a NaN / infinite grid reads 0 in every padding mode. The ground truth is torch's,
copied as numbers; torch runs these tests in float64 (``@set_default_dtype(torch.double)``) and also checks its
float32 kernel against the same numbers, so both dtypes run here.

The impls (torch's ``F.grid_sample`` / ``F.affine_grid`` are the reference, never the thing tested):

* ``sampling.grid_sample`` – the readable sampler (autograd differentiates it), bilinear and nearest;
* ``autograd.bilinear_sample_analytic(impl="reference" | "fast")`` – lesson 4's hand-derived backward (bilinear);
* ``grids.affine_grid`` and ``autograd.affine_grid_analytic`` – the grid generators;
* ``gpu.affine.affine_sample`` – lesson 7's fused Triton kernel (``affine_grid`` + ``grid_sample`` in one): it takes
  θ, not a grid, so its edge cases are θ's gradient at exact kinks (identity, whole-pixel shifts, points exactly on
  the border), against torch's two passes. Marked ``triton``; on a machine without CUDA it runs under
  ``TRITON_INTERPRET=1`` (``tests/conftest.py``), so its shapes are tiny.

Adapted: torch's regexes match torch's wording; ours keep the package's messages (which name what was expected),
so the error tests assert torch's exception *type* and that the message names the offending value. Random sizes
(``random.randint``) are fixed, seeded choices.

Not supported, so not adapted (documented in the package): ``mode="bicubic"`` (``grid_sample`` refuses it with a
``ValueError`` naming the modes – tested below), 3-D / volumetric inputs and ``Nx3x4`` θ (``affine_grid`` refuses a
5-D size with ``NotImplementedError``, as torch does for sizes it lacks – tested below), TorchScript, FX leaf
tracing, the CUDA-only comparisons (CPU against CUDA, cuDNN on/off) and ``torch._grid_sampler_2d_cpu_fallback``
(an ATen internal).
"""
from __future__ import annotations

import math
import warnings
import zlib

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

from stn_course import grids, sampling
from stn_course.autograd import affine_grid_analytic, bilinear_sample_analytic

PADDING = ("zeros", "border", "reflection")
DTYPES = (torch.float64, torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# The samplers under test: (input, grid, mode, padding_mode, align_corners) -> output
# ---------------------------------------------------------------------------------------------------------------


def _readable(input, grid, mode, padding_mode, align_corners):
    return sampling.grid_sample(input, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners)


def _analytic(impl):
    def sample(input, grid, mode, padding_mode, align_corners):
        assert mode == "bilinear"
        return bilinear_sample_analytic(input, grid, padding_mode, align_corners, impl=impl)
    return sample


SAMPLERS = {"sampling.grid_sample": _readable, "autograd.reference": _analytic("reference"),
            "autograd.fast": _analytic("fast")}
#: (sampler, mode): the readable sampler does both modes, the hand-derived backward is bilinear only.
SAMPLER_MODES = [pytest.param(name, mode, id=f"{name}-{mode}") for name in SAMPLERS
                 for mode in (("bilinear", "nearest") if name == "sampling.grid_sample" else ("bilinear",))]


# ---------------------------------------------------------------------------------------------------------------
# test_grid_sample: known values
# ---------------------------------------------------------------------------------------------------------------

KNOWN_GRID = [[[-0.9, -4.1], [0, 0.2000], [1, -1], [-0.333, 1e-6], [0.5, 1.0]],
              [[-1.0, -0.5], [0, 0.3333], [1, -1], [-0.200, 1e-6], [1.5, 0.5]]]

KNOWN_VALUES = {  # (mode, padding_mode, align_corners) -> torch's ground truth, (1, 1, 2, 5)
    ("bilinear", "zeros", True): [[0.0000, 6.0000000000, 5.0000, 4.8340, 9.0000],
                                  [2.2500, 6.3332500450, 5.0000, 5.1000, 0.0000]],
    ("bilinear", "zeros", False): [[0.0000, 6.5000000000, 1.2500, 4.6675000191, 4.6250],
                                   [0.5000, 7.1665000916, 1.2500, 5.0000000000, 0.0000]],
    ("bilinear", "border", True): [[1.2000, 6.0000000000, 5.0000, 4.8340, 9.0000],
                                   [2.2500, 6.3332500450, 5.0000, 5.1000, 8.7500]],
    ("bilinear", "border", False): [[1.0000, 6.5000000000, 5.0000, 4.6675000191, 9.2500],
                                    [1.0000, 7.1665000916, 5.0000, 5.0000000000, 10.0000]],
    ("bilinear", "reflection", True): [[3.4500, 6.0000000000, 5.0000, 4.8340, 9.0000],
                                       [2.2500, 6.3332500450, 5.0000, 5.1000, 7.7500]],
    ("bilinear", "reflection", False): [[3.0000004768, 6.5000000000, 5.0000, 4.6675000191, 9.2500],
                                        [1.0000000000, 7.1665000916, 5.0000, 5.0000000000, 9.2500]],
    ("nearest", "zeros", True): [[0., 8., 5., 7., 9.], [1., 8., 5., 8., 0.]],
    ("nearest", "zeros", False): [[0., 8., 5., 7., 0.], [1., 8., 5., 8., 0.]],
    ("nearest", "border", True): [[1., 8., 5., 7., 9.], [1., 8., 5., 8., 10.]],
    ("nearest", "border", False): [[1., 8., 5., 7., 9.], [1., 8., 5., 8., 10.]],
    ("nearest", "reflection", True): [[1., 8., 5., 7., 9.], [1., 8., 5., 8., 9.]],
    ("nearest", "reflection", False): [[1., 8., 5., 7., 9.], [1., 8., 5., 8., 9.]],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampler, mode", SAMPLER_MODES)
def test_grid_sample_known_values(sampler, mode, padding_mode, align_corners, dtype):
    """torch's "test known input on CPU": an arange image, points inside, outside, on the border and the corners."""
    input = torch.arange(1., 11, dtype=dtype).view(1, 1, 2, 5)
    grid = torch.tensor(KNOWN_GRID, dtype=dtype).view(1, 2, 5, 2)
    expected = torch.tensor(KNOWN_VALUES[mode, padding_mode, align_corners], dtype=dtype).view(1, 1, 2, 5)
    output = SAMPLERS[sampler](input, grid, mode, padding_mode, align_corners)
    torch.testing.assert_close(output, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# test_grid_sample: "explicit check for gradient edge cases" – grid points at ±1 and ±0.8 on a 5×5 ramp
# ---------------------------------------------------------------------------------------------------------------

EDGE_GRID = [[[1.0, 1.0], [1.0, -1.0], [0.8, 0.8], [0.8, -0.8]],
             [[-1.0, -1.0], [-1.0, 1.0], [-0.8, -0.8], [-0.8, 0.8]]]

_ZERO_GRAD = [[[-0., -0.], [-0., 0.], [-0., -0.], [-0., 0.]], [[0., 0.], [0., 0.], [0., 0.], [0., 0.]]]
EDGE_GRADIENTS = {  # (mode, padding_mode, align_corners) -> torch's ground truth of grid.grad, (1, 2, 4, 2)
    ("bilinear", "zeros", True): [[[-8., -8.], [-8., 0.], [2., 0.], [2., 0.]],
                                  [[2., 0.], [2., 0.], [2., 0.], [2., 0.]]],
    ("bilinear", "zeros", False): [[[-5., -5.], [-5., 5.], [-10., -10.], [-10., 10.]],
                                   [[0., 0.], [0., 0.], [0., 0.], [0., 0.]]],
    ("bilinear", "border", True): [[[-0., -0.], [-0., 0.], [2., 0.], [2., 0.]],
                                   [[0., 0.], [0., 0.], [2., 0.], [2., 0.]]],
    ("bilinear", "border", False): _ZERO_GRAD,
    ("bilinear", "reflection", True): [[[-0., -0.], [-0., 0.], [2., 0.], [2., 0.]],
                                       [[0., 0.], [0., 0.], [2., 0.], [2., 0.]]],
    ("bilinear", "reflection", False): _ZERO_GRAD,
    **{("nearest", p, a): _ZERO_GRAD for p in PADDING for a in (True, False)},
}


@pytest.mark.parametrize("input_requires_grad", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampler, mode", SAMPLER_MODES)
def test_grid_sample_gradient_edge_cases(sampler, mode, padding_mode, align_corners, dtype, input_requires_grad):
    """The grid's gradient where the sampling function has kinks: the image border (clamp, reflection) and the
    corners, in torch's convention (ATen's: zero at the clamp boundary, the right derivative at pixel centres);
    ``mode="nearest"`` gives the grid a zero gradient, whether or not the input requires one."""
    input = torch.arange(0., 5, dtype=dtype).expand((1, 1, 5, 5)).requires_grad_(input_requires_grad)
    grid = torch.tensor(EDGE_GRID, dtype=dtype).view(1, 2, 4, 2).requires_grad_()
    expected = torch.tensor(EDGE_GRADIENTS[mode, padding_mode, align_corners], dtype=dtype).view(1, 2, 4, 2)
    SAMPLERS[sampler](input, grid, mode, padding_mode, align_corners).sum().backward()
    assert grid.grad is not None, "the grid got no gradient (torch gives it one, zeros for nearest)"
    torch.testing.assert_close(grid.grad, expected, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------------------
# test_grid_sample: gradcheck and test_shape (forward and backward against F.grid_sample)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("input_requires_grad", [False, True])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sampler, mode", SAMPLER_MODES)
def test_grid_sample_gradcheck(sampler, mode, padding_mode, align_corners, input_requires_grad):
    """torch's gradcheck on random points (away from the kinks with probability 1), float64."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{sampler} {mode} {padding_mode} {align_corners}".encode()))
    n, c, h, w = 2, 2, 4, 3
    input = torch.randn(n, c, h, w, dtype=torch.float64, generator=gen).requires_grad_(input_requires_grad)
    grid = torch.randn(n, h, w, 2, dtype=torch.float64, generator=gen).requires_grad_()
    fn = SAMPLERS[sampler]
    assert gradcheck(lambda inp, grd: fn(inp, grd, mode, padding_mode, align_corners), (input, grid))


#: torch's test_shape sizes with its random choices fixed: (N, C, IH, IW, H, W).
SHAPES = {
    "same size": (3, 2, 4, 5, 4, 5),
    "larger output": (2, 3, 3, 4, 6, 7),
    "smaller output": (4, 2, 6, 5, 3, 2),
    "1x1 input": (2, 3, 1, 1, 3, 4),
    "empty grid": (2, 3, 4, 4, 0, 5),
    "empty channel": (2, 0, 4, 3, 5, 4),
    "empty batch": (0, 2, 4, 3, 5, 4),
}
#: torch's grid_dim_contig_order: grid.permute(order) is contiguous (the grid is a non-contiguous view).
CONTIG_ORDERS = [(0, 1, 2, 3), (0, 3, 1, 2), (3, 0, 1, 2), (0, 2, 1, 3)]


def _permuted_grid(shape, order, gen, dtype):
    data = torch.randn([shape[d] for d in order], dtype=dtype, generator=gen)
    inverse = [order.index(d) for d in range(4)]
    grid = data.permute(inverse)
    assert grid.permute(order).is_contiguous()
    return grid


@pytest.mark.parametrize("input_requires_grad", [False, True])
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
@pytest.mark.parametrize("sampler, mode", SAMPLER_MODES)
def test_grid_sample_shapes(sampler, mode, shape, padding_mode, align_corners, input_requires_grad):
    """torch's test_shape: output size, values and both gradients equal ``F.grid_sample``'s for every layout of
    the grid, a transposed (non-contiguous) input, and empty grids, channels and batches."""
    n, c, ih, iw, h, w = SHAPES[shape]
    gen = torch.Generator().manual_seed(sum(SHAPES[shape]) + 7 * PADDING.index(padding_mode) + align_corners)
    for order in CONTIG_ORDERS:
        base = torch.randn(c, n, ih, iw, dtype=torch.float64, generator=gen).transpose(0, 1)
        grid = _permuted_grid([n, h, w, 2], order, gen, torch.float64)
        ours_in, torch_in = (base.clone().requires_grad_(input_requires_grad) for _ in range(2))
        ours_grid, torch_grid = grid.detach().requires_grad_(), grid.detach().clone().requires_grad_()
        out = SAMPLERS[sampler](ours_in, ours_grid, mode, padding_mode, align_corners)
        expected = F.grid_sample(torch_in, torch_grid, mode=mode, padding_mode=padding_mode,
                                 align_corners=align_corners)
        assert out.shape == (n, c, h, w)
        torch.testing.assert_close(out, expected)
        gradients = torch.randn(out.shape, dtype=torch.float64, generator=gen)
        out.backward(gradients)
        expected.backward(gradients)
        if input_requires_grad:
            torch.testing.assert_close(ours_in.grad, torch_in.grad)
        assert ours_grid.grad is not None, "the grid got no gradient"
        torch.testing.assert_close(ours_grid.grad, torch_grid.grad)


# ---------------------------------------------------------------------------------------------------------------
# test_grid_sample_nan_inf (reconstructed: nearest mode reads 0 at NaN / ±inf in every padding mode)
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("padding_mode", PADDING)
def test_grid_sample_nan_inf(padding_mode, dtype):
    input = torch.zeros(1, 1, 3, 3, dtype=dtype)
    grid = torch.tensor([[[[math.nan, 0.0], [0.0, math.inf]]]], dtype=dtype)
    out = sampling.grid_sample(input, grid, mode="nearest", padding_mode=padding_mode, align_corners=False)
    torch.testing.assert_close(out, torch.zeros(1, 1, 1, 2, dtype=dtype))
    torch.testing.assert_close(out, F.grid_sample(input, grid, mode="nearest", padding_mode=padding_mode,
                                                  align_corners=False))


# ---------------------------------------------------------------------------------------------------------------
# test_grid_sample_error_checking
# ---------------------------------------------------------------------------------------------------------------

GRID_SAMPLERS = {"sampling.grid_sample": lambda i, g, **kw: sampling.grid_sample(i, g, **kw),
                 "autograd.bilinear_sample_analytic": lambda i, g, **kw: bilinear_sample_analytic(
                     i, g, kw.get("padding_mode", "zeros"), kw.get("align_corners", False))}


@pytest.mark.parametrize("name", list(GRID_SAMPLERS))
def test_grid_sample_error_checking(name):
    """torch's error types for the same bad input: ValueError for a mode's name, RuntimeError for shapes and
    sizes (ours are ValueError too, with the package's messages)."""
    fn = GRID_SAMPLERS[name]
    input, grid = torch.empty(1, 1, 2, 2), torch.empty(1, 1, 1, 2)
    fn(input, grid, align_corners=False)  # no error
    if name == "sampling.grid_sample":
        with pytest.raises(ValueError, match="'garbage'"):
            fn(input, grid, mode="garbage", align_corners=False)
    with pytest.raises(ValueError, match="'garbage'"):
        fn(input, grid, padding_mode="garbage", align_corners=False)
    with pytest.raises(RuntimeError, match=r"input: expected a 4-D tensor"):
        fn(input[0], grid, align_corners=False)
    with pytest.raises(RuntimeError, match=r"grid: expected a 4-D tensor"):
        fn(input, torch.empty(1, 1, 1, 1, 3), align_corners=False)
    with pytest.raises(RuntimeError, match="same batch size"):
        fn(input, torch.empty(2, 1, 1, 2), align_corners=False)
    with pytest.raises(RuntimeError, match=r"grid: expected shape \(N, H_out, W_out, 2\)"):
        fn(input, torch.empty(1, 1, 1, 3), align_corners=False)
    with pytest.raises(RuntimeError, match="non-empty spatial dimensions"):
        fn(torch.empty(1, 1, 0, 2), grid, align_corners=False)
    with pytest.raises(RuntimeError, match="same dtype"):  # torch: "expected input and grid to have same dtype"
        fn(input, grid.double(), align_corners=False)
    for err in (ValueError, RuntimeError):  # the two types at once, the package's and torch's
        with pytest.raises(err):
            fn(input, torch.empty(1, 1, 1, 3), align_corners=False)


def test_grid_sample_refuses_bicubic():
    """Bicubic is not supported (torch's "bicubic interpolation only supports 4D input" case has no counterpart)."""
    with pytest.raises(ValueError, match="'bicubic'"):
        sampling.grid_sample(torch.empty(1, 1, 2, 2), torch.empty(1, 1, 1, 2), mode="bicubic")


@pytest.mark.parametrize("name", list(GRID_SAMPLERS))
def test_grid_sample_error_checking_devices(name):
    """torch's RuntimeError for tensors on two devices (its test uses CUDA; the meta device is a second one
    everywhere)."""
    with pytest.raises(RuntimeError, match="same device"):
        GRID_SAMPLERS[name](torch.empty(1, 1, 2, 2, device="meta"), torch.empty(1, 1, 1, 2), align_corners=False)


# ---------------------------------------------------------------------------------------------------------------
# test_affine_grid_error_checking and test_affine_grid
# ---------------------------------------------------------------------------------------------------------------

AFFINE_GRIDS = {"grids.affine_grid": grids.affine_grid, "autograd.affine_grid_analytic": affine_grid_analytic}


def _warning_texts(record) -> str:
    return " ".join(str(w.message) for w in record)


@pytest.mark.parametrize("name", list(AFFINE_GRIDS))
def test_affine_grid_error_checking(name):
    fn = AFFINE_GRIDS[name]
    theta, size = torch.empty(1, 2, 3, dtype=torch.double), torch.Size([1, 1, 2, 2])
    fn(theta, size, align_corners=False)  # no error
    with warnings.catch_warnings(record=True) as record:  # the warning for an empty span along a dimension
        warnings.simplefilter("always")
        fn(theta, torch.Size([1, 1, 2, 1]), align_corners=False)
        assert "See the documentation of affine_grid for details." not in _warning_texts(record)
        fn(theta, torch.Size([1, 1, 2, 1]), align_corners=True)
        assert "See the documentation of affine_grid for details." in _warning_texts(record)
    with warnings.catch_warnings(record=True) as record:  # word for word torch's, category included
        warnings.simplefilter("always")
        F.affine_grid(theta, torch.Size([1, 1, 1, 3]), align_corners=True)
        fn(theta, torch.Size([1, 1, 1, 3]), align_corners=True)
        assert len(record) == 2 and str(record[0].message) == str(record[1].message)
        assert record[0].category is record[1].category
    with pytest.raises(ValueError, match="floating-point"):  # torch: "Expected theta to have floating point type"
        fn(theta.int(), size, align_corners=False)
    for bad in (theta[0], theta.unsqueeze(0), theta.repeat(1, 2, 1), theta.repeat(1, 1, 2)):
        with pytest.raises(ValueError, match=r"theta: expected .*\(N, 2, 3\)"):  # torch: "... of shape Nx2x3"
            fn(bad, size, align_corners=False)
    # 2-D only: 5-D sizes (volumetric grids, Nx3x4 theta) and other lengths are NotImplementedError, as torch
    # raises for the sizes it lacks ("affine_grid only supports 4D and 5D sizes").
    for bad_size in (torch.Size([1, 2, 2]), torch.Size([1, 1, 2, 2, 2, 2]), torch.Size([1, 1, 2, 2, 2])):
        with pytest.raises(NotImplementedError, match="size"):
            fn(theta, bad_size, align_corners=False)
    with pytest.raises(NotImplementedError):
        fn(torch.empty(1, 3, 4, dtype=torch.double), torch.Size([1, 1, 2, 2, 2]), align_corners=False)


@pytest.mark.parametrize("name", list(AFFINE_GRIDS))
def test_affine_grid_known_values(name):
    fn = AFFINE_GRIDS[name]
    theta = torch.arange(1., 7, dtype=torch.float64).view(1, 2, 3)
    expected = torch.tensor([[[0., -3.], [2., 5.]], [[4., 7.], [6., 15.]]], dtype=torch.float64).view(1, 2, 2, 2)
    torch.testing.assert_close(fn(theta, torch.Size([1, 1, 2, 2]), align_corners=True), expected)
    expected = torch.tensor([[[1.5, 1.5], [2.5, 5.5]], [[3.5, 6.5], [4.5, 10.5]]],
                            dtype=torch.float64).view(1, 2, 2, 2)
    torch.testing.assert_close(fn(theta, torch.Size([1, 1, 2, 2]), align_corners=False), expected)


@pytest.mark.parametrize("size", [(3, 2, 5, 4), (1, 1, 1, 6), (2, 3, 7, 1)], ids=str)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("name", list(AFFINE_GRIDS))
def test_affine_grid_gradcheck(name, align_corners, size):
    """torch's gradcheck, forward-mode AD included (``check_forward_ad=True``), size-1 sides included."""
    theta = torch.randn(size[0], 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(sum(size)),
                        requires_grad=True)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert gradcheck(lambda t: AFFINE_GRIDS[name](t, size, align_corners=align_corners), (theta,),
                         check_forward_ad=True)


# ---------------------------------------------------------------------------------------------------------------
# θ's gradient at exact kinks, every sampler including lesson 7's fused Triton kernel
# ---------------------------------------------------------------------------------------------------------------


def _kink_thetas(h: int, w: int, align_corners: bool, dtype) -> dict[str, torch.Tensor]:
    """θs whose sampling points sit exactly on kinks: the identity (every point a pixel centre, the outermost ones
    exactly where ``border`` clamps and ``reflection`` mirrors), a shift by one whole pixel (centres again, a column
    outside), a flip, and a half-size zoom (every other point a centre; ``h``, ``w`` odd)."""
    step_x = 2.0 / (w - 1) if align_corners else 2.0 / w
    thetas = {"identity": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
              "whole-pixel shift": [[1.0, 0.0, step_x], [0.0, 1.0, 0.0]],
              "flip": [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
              "half size": [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]}
    return {k: torch.tensor([v], dtype=dtype) for k, v in thetas.items()}


def _theta_gradients(sample, input, theta, size, padding_mode, align_corners, grad_out):
    x, t = input.clone().requires_grad_(), theta.clone().requires_grad_()
    out = sample(x, t, size, padding_mode, align_corners)
    out.backward(grad_out)
    return out.detach(), x.grad, t.grad


def _torch_affine_sample(x, t, size, padding_mode, align_corners):
    grid = F.affine_grid(t, size, align_corners=align_corners)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


def _via_grid(sampler):
    def sample(x, t, size, padding_mode, align_corners):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            grid = grids.affine_grid(t, size, align_corners=align_corners)
        return SAMPLERS[sampler](x, grid, "bilinear", padding_mode, align_corners)
    return sample


def _triton(x, t, size, padding_mode, align_corners):
    from stn_course.gpu.affine import affine_sample

    return affine_sample(x, t, size, padding_mode=padding_mode, align_corners=align_corners)


THETA_SAMPLERS = [*(pytest.param(_via_grid(name), id=name) for name in SAMPLERS),
                  pytest.param(_triton, id="gpu.affine_sample", marks=pytest.mark.triton)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("padding_mode", PADDING)
@pytest.mark.parametrize("sample", THETA_SAMPLERS)
def test_theta_gradient_at_kinks(sample, padding_mode, align_corners, dtype):
    """Where an STN starts: output, input gradient and θ's gradient equal torch's ``affine_grid`` +
    ``grid_sample`` at exact kinks, in float32 and float64 (5 × 5 ramp-plus-noise image, 5 × 5 output)."""
    h = w = 5
    gen = torch.Generator().manual_seed(3)
    input = (torch.arange(h * w, dtype=dtype).view(1, 1, h, w) / 4
             + torch.rand(1, 1, h, w, dtype=dtype, generator=gen))
    size = (1, 1, h, w)
    grad_out = torch.rand(size, dtype=dtype, generator=gen)
    tol = {"atol": 1e-9, "rtol": 1e-9} if dtype == torch.float64 else {"atol": 2e-4, "rtol": 1e-5}
    for name, theta in _kink_thetas(h, w, align_corners, dtype).items():
        expected = _theta_gradients(_torch_affine_sample, input, theta, size, padding_mode, align_corners, grad_out)
        got = _theta_gradients(sample, input, theta, size, padding_mode, align_corners, grad_out)
        for what, a, b in zip(("output", "input gradient", "theta gradient"), got, expected):
            torch.testing.assert_close(a, b, **tol, msg=lambda m: f"{name}: {what}: {m}")
