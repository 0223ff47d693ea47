"""The package's one contract, kept everywhere: bad input raises a clear error, NaN and infinity behave exactly as in
torch, empty batches work, and signatures swap with torch's / torchvision's (issue "One contract")."""
from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from stn_course import affine, autograd, data, deform, grids, images, impls, sampling, stn, training, warps
from stn_course.autograd import reference as autograd_reference
from stn_course.padding import GRID_SAMPLE_MODES
from stn_course.deform import DeformConv2d, deform_conv2d
from stn_course.stn import SpatialTransformer, small_localisation_net

NAN, INF = float("nan"), float("inf")
PUBLIC_MODULES = [affine, grids, sampling, autograd, autograd_reference, stn, deform, warps, data, training, images]


def _public_functions():
    for module in PUBLIC_MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj) or (inspect.isclass(obj) and issubclass(obj, torch.autograd.Function)):
                continue
            required = [p for p in inspect.signature(obj).parameters.values()
                        if p.default is inspect.Parameter.empty
                        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if required:
                yield pytest.param(obj, len(required), id=f"{module.__name__.split('.', 1)[1]}.{name}")


# ----------------------------------------------------------------------------------------------------------------
# Bad input: a clear TypeError / ValueError, never an AttributeError far from the cause or a silent answer
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[[1.0, 2.0]], "abc"], ids=["list", "str"])
@pytest.mark.parametrize("fn, n_required", list(_public_functions()))
def test_every_public_function_names_a_wrong_first_argument(fn, n_required, bad):
    others = [torch.zeros(1, 1, 2, 2)] * (n_required - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(bad, *others)
        except (TypeError, ValueError, FileNotFoundError) as error:
            assert str(error), "the error must say what was expected"
            return
    raise AssertionError(f"{fn.__name__} accepted {bad!r} as its first argument")


@pytest.mark.parametrize("call", [
    lambda: affine.normalization_matrix((28.0, 28)),
    lambda: affine.normalization_matrix((28.7, 28)),
    lambda: affine.normalization_matrix((True, 28)),
    lambda: grids.affine_grid(torch.zeros(1, 2, 3), (1, 1, 2.5, 4)),
    lambda: grids.affine_grid(torch.zeros(1, 2, 3), (1, 1, True, 4)),
    lambda: grids.base_grid(3.0, 4),
    lambda: SpatialTransformer(small_localisation_net(), out_size=14.0),
    lambda: SpatialTransformer(small_localisation_net(), out_size=(14, 14.5)),
    lambda: deform_conv2d(torch.rand(1, 2, 5, 5), torch.zeros(1, 18, 5, 5), torch.ones(1, 2, 3, 3), stride=True),
    lambda: deform_conv2d(torch.rand(1, 2, 5, 5), torch.zeros(1, 18, 5, 5), torch.ones(1, 2, 3, 3),
                          padding=(1.7, 1.2)),
    lambda: DeformConv2d(2, 2, 3.0),
    lambda: affine.scaling("2"),
    lambda: affine.rotation("0.5"),
    lambda: affine.translation(True, 0),
    lambda: affine.apply([[1, 0, 0], [0, 1, 0], [0, 0, 1]], torch.zeros(3, 2)),
    lambda: affine.apply(torch.eye(3), [[0.0, 0.0]]),
    lambda: sampling.unnormalize(torch.zeros(3), 4.0, False),
    lambda: sampling.grid_sample(torch.rand(1, 1, 3, 3), torch.zeros(1, 2, 2, 2), align_corners="yes"),
    lambda: training.baseline_cnn(42.0),
    lambda: training.st_cnn(42.0),
    lambda: training.default_out_size(60.0),
    lambda: training.fit(training.baseline_cnn(28), [], epochs=2.5, progress=False),
    lambda: images.checkerboard(3.5),
    lambda: images.grid_image(True),
], ids=["norm-float", "norm-fraction", "norm-bool", "grid-float", "grid-bool", "base-float", "stn-float",
        "stn-pair-float", "deform-stride-bool", "deform-padding-float", "deform-kernel-float", "scaling-str",
        "rotation-str", "translation-bool", "apply-list-matrix", "apply-list-points", "unnormalize-float-size",
        "align-corners-str", "baseline-float", "st-cnn-float", "out-size-float", "fit-epochs-float",
        "checkerboard-float", "grid-image-bool"])
def test_sizes_and_numbers_follow_operator_index_and_reject_bools_and_strings(call):
    with pytest.raises(TypeError):
        call()


def test_operator_index_integers_are_accepted():
    # numpy integers and torch.Size entries are ints in Python's sense
    m = affine.normalization_matrix((np.int64(4), 6))
    torch.testing.assert_close(m, affine.normalization_matrix((4, 6)))
    assert grids.affine_grid(torch.eye(2, 3)[None], torch.Size([1, 1, 3, 4])).shape == (1, 3, 4, 2)
    assert SpatialTransformer(small_localisation_net(), out_size=np.int32(7)).out_size == (7, 7)


@pytest.mark.parametrize("fn", [
    lambda mode: sampling.source_coordinates(torch.zeros(3), 4, mode),
    lambda mode: autograd.source_coordinates_grad(torch.zeros(3), 4, mode),
    lambda mode: sampling.grid_sample(torch.rand(1, 1, 3, 3), torch.zeros(1, 2, 2, 2), "bilinear", mode),
    lambda mode: autograd.bilinear_sample_analytic(torch.rand(1, 1, 3, 3), torch.zeros(1, 2, 2, 2), mode),
    lambda mode: SpatialTransformer(small_localisation_net(), padding_mode=mode),
], ids=["source_coordinates", "source_coordinates_grad", "grid_sample", "analytic", "SpatialTransformer"])
@pytest.mark.parametrize("mode", ["reflect", "Zeros", "", None])
def test_padding_mode_typos_are_refused(fn, mode):
    with pytest.raises((ValueError, TypeError), match="padding_mode"):
        fn(mode)


def test_sizes_of_zero_and_bad_modes_are_refused():
    with pytest.raises(ValueError, match="positive"):
        sampling.unnormalize(torch.zeros(3), 0, False)
    with pytest.raises(ValueError, match="mode"):
        sampling.grid_sample(torch.rand(1, 1, 3, 3), torch.zeros(1, 2, 2, 2), mode="bicubic")
    with pytest.raises(ValueError, match="H, W >= 1"):
        sampling.bilinear_sample(torch.rand(1, 1, 0, 3), torch.zeros(1, 2, 2, 2))


def test_data_rejects_float_digits_outside_0_1_negative_counts_and_small_tc_canvases():
    digits = data.load_splits()[0][:4]
    as_float_0_255 = torch.from_numpy(digits).float()
    with pytest.raises(ValueError, match=r"\[0, 1\].*uint8"):
        data.distort(as_float_0_255, "RTS", torch.Generator().manual_seed(0))
    # in range: accepted and equal to the uint8 path
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    torch.testing.assert_close(data.distort(as_float_0_255 / 255, "R", g1), data.distort(digits, "R", g2))
    for bad in (-5, 0):
        with pytest.raises(ValueError, match="n_train"):
            data.make_datasets("R", n_train=bad)
    with pytest.raises(TypeError, match="n_test"):
        data.make_datasets("R", n_test=10.5)
    with pytest.raises(ValueError, match="4000 digits"):
        data.make_datasets("R", n_train=4001)
    with pytest.raises(ValueError, match="size >= 28"):
        data.distort(digits, "TC", torch.Generator().manual_seed(0), size=20)
    with pytest.raises(ValueError, match="size >= 28"):
        data.make_datasets("TC", size=20, n_train=10, n_test=10)
    assert data.distort(digits, "R", torch.Generator().manual_seed(0), size=20).shape == (4, 1, 20, 20)


def test_modulated_deform_conv_refuses_an_offset_without_its_mask():
    layer = DeformConv2d(2, 3, 3, padding=1, modulated=True)
    x, offset = torch.rand(1, 2, 5, 5), torch.zeros(1, 18, 5, 5)
    with pytest.raises(ValueError, match="modulated"):
        layer(x, offset)
    mask = torch.full((1, 9, 5, 5), 0.5)
    torch.testing.assert_close(layer(x, offset, mask), 0.5 * (layer(x, offset, torch.ones_like(mask)) - layer.bias.view(
        1, -1, 1, 1)) + layer.bias.view(1, -1, 1, 1))
    # an unmodulated layer with a given offset: a v1 convolution, no mask needed
    plain = DeformConv2d(2, 3, 3, padding=1)
    torch.testing.assert_close(plain(x, offset), F.conv2d(x, plain.weight, plain.bias, padding=1))


@pytest.mark.parametrize("call, match", [
    (lambda: SpatialTransformer(small_localisation_net(), "tps", tps_grid_size=(4,)), "tps_grid_size"),
    (lambda: SpatialTransformer(small_localisation_net(), "tps", tps_grid_size=(1, 4)), "tps_grid_size"),
    (lambda: SpatialTransformer(small_localisation_net(), "tps", tps_grid_size="44"), "tps_grid_size"),
    (lambda: stn.num_params("tps", (4,)), "tps_grid_size"),
    (lambda: autograd.bilinear_sample_backward(torch.ones(1, 1, 2, 2), torch.ones(1, 1, 3, 3),
                                               torch.zeros(1, 3, 3, 2)), "grad_output"),
    (lambda: autograd.bilinear_sample_backward([1.0], torch.ones(1, 1, 3, 3), torch.zeros(1, 2, 2, 2)),
     "grad_output"),
    (lambda: autograd.affine_grid_backward(torch.ones(1, 2, 2, 2), (1, 1, 3, 3)), "grad_grid"),
    (lambda: autograd.affine_grid_backward(torch.ones(1, 2, 2, 2), (1, 1, 2.0, 2)), "size"),
    (lambda: grids.tps_kernel(torch.zeros(3, 3), torch.zeros(2, 2)), "points"),
    (lambda: grids.tps_kernel(torch.zeros(3, 2), torch.zeros(2, 2, dtype=torch.float64)), "dtype"),
    (lambda: grids.tps_transform(torch.zeros(3, 2), torch.zeros(1, 5, 2), torch.zeros(4, 2)), "coefficients"),
    (lambda: grids.tps_transform([[0.0, 0.0]], torch.zeros(1, 7, 2), torch.zeros(4, 2)), "points"),
    (lambda: deform.pack_offsets(torch.zeros(1, 1, 9, 2, 2), [0.0]), "dx"),
    (lambda: deform.pack_offsets(torch.zeros(1, 1, 9, 2, 2), torch.zeros(1, 1, 9, 2, 2).long()), "dx"),
    (lambda: deform.unpack_offsets(torch.zeros(1, 18, 2, 2).long(), 3), "offset"),
    (lambda: sampling.gather_corners(torch.zeros(1, 1, 2, 2), torch.zeros(1, 4, 3)), "index"),
    (lambda: warps.inverse_warp_nearest(torch.zeros(1, 1, 4, 4), torch.eye(2)), "matrix"),
    (lambda: training.fit([nn.Linear(2, 2)], []), "nn.Module"),
    (lambda: data.make_loaders([1, 2], [3]), "Dataset"),
])
def test_bad_arguments_are_named(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


# ----------------------------------------------------------------------------------------------------------------
# NaN and infinity: exactly as F.grid_sample
# ----------------------------------------------------------------------------------------------------------------

# x then y; NaN, ±inf, huge, an ordinary point, far outside, exactly on the corner
_GRID = torch.tensor([[[[NAN, 0.0], [INF, 0.0], [-INF, 0.0], [0.0, NAN], [0.2, -INF], [1e30, 0.0], [0.5, 0.0],
                        [-5.0, -5.0], [-1.0, -1.0], [3.0, 0.3]]]])


def _image(dtype, infinite_corner: bool):
    x = torch.arange(1.0, 13.0, dtype=dtype).view(1, 1, 3, 4).repeat(1, 2, 1, 1)
    if infinite_corner:
        x[0, :, 0, 0] = INF
    return x


_SAMPLERS = {
    "grid_sample": lambda x, g, pm, ac: sampling.grid_sample(x, g, "bilinear", pm, ac),
    "bilinear_sample": lambda x, g, pm, ac: sampling.bilinear_sample(x, g, pm, ac),
    "analytic-fast": lambda x, g, pm, ac: autograd.bilinear_sample_analytic(x, g, pm, ac, impl="fast"),
    "analytic-reference": lambda x, g, pm, ac: autograd.bilinear_sample_analytic(x, g, pm, ac, impl="reference"),
}


@pytest.mark.parametrize("impl", list(_SAMPLERS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("padding_mode", GRID_SAMPLE_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("infinite_corner", [False, True])
def test_nan_and_inf_like_grid_sample(impl, dtype, padding_mode, align_corners, infinite_corner):
    x, grid = _image(dtype, infinite_corner), _GRID.to(dtype)
    expected = F.grid_sample(x, grid, "bilinear", padding_mode, align_corners)
    actual = _SAMPLERS[impl](x, grid, padding_mode, align_corners)
    torch.testing.assert_close(actual, expected, equal_nan=True, rtol=0, atol=1e-5)
    assert bool((~expected.isfinite()).any()) == (padding_mode == "zeros" or infinite_corner)  # not vacuous


def _in_range_twin(grid: torch.Tensor, size: tuple[int, int], padding_mode: str) -> torch.Tensor:
    """The grid of the pixels ``padding_mode`` actually reads (align_corners=False), written inside the image.

    ``F.grid_sample``'s CPU backward crashes the process (a segfault, torch 2.13) on a NaN grid point with
    ``border`` or ``reflection`` padding, so its input gradient is taken at this finite twin, which reads the same
    pixels with the same weights.
    """
    h, w = size
    x = sampling.source_coordinates(grid[..., 0], w, padding_mode, False)
    y = sampling.source_coordinates(grid[..., 1], h, padding_mode, False)
    return torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], -1)


@pytest.mark.parametrize("impl", list(_SAMPLERS))
@pytest.mark.parametrize("padding_mode", GRID_SAMPLE_MODES)
def test_backward_through_non_finite_points_does_not_crash_and_matches_input_grads(impl, padding_mode):
    x = _image(torch.float64, False).requires_grad_()
    grid = _GRID.double().requires_grad_()
    out = _SAMPLERS[impl](x, grid, padding_mode, False)
    weights = torch.randn_like(out)
    grad_x, grad_grid = torch.autograd.grad(out, (x, grid), torch.where(out.isnan(), 0.0, weights))
    assert grad_x.isfinite().all()
    twin = _GRID.double() if padding_mode == "zeros" else _in_range_twin(_GRID.double(), (3, 4), padding_mode)
    x2, grid2 = x.detach().clone().requires_grad_(), twin.clone().requires_grad_()
    out2 = F.grid_sample(x2, grid2, "bilinear", padding_mode, False)
    torch.testing.assert_close(out.detach(), out2.detach(), equal_nan=True)
    grad_x2, grad_grid2 = torch.autograd.grad(out2, (x2, grid2), torch.where(out2.isnan(), 0.0, weights))
    torch.testing.assert_close(grad_x, grad_x2)
    if padding_mode == "zeros":  # the grid's gradient, away from the non-finite points
        finite = _GRID.isfinite().all(-1) & (_GRID.abs() < 1e3).all(-1)
        torch.testing.assert_close(grad_grid[finite], grad_grid2[finite])


@pytest.mark.parametrize("padding_mode", GRID_SAMPLE_MODES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_nearest_nan_and_inf_like_grid_sample(padding_mode, align_corners):
    x, grid = _image(torch.float32, True), _GRID
    expected = F.grid_sample(x, grid, "nearest", padding_mode, align_corners)
    torch.testing.assert_close(sampling.grid_sample(x, grid, "nearest", padding_mode, align_corners), expected,
                               equal_nan=True, rtol=0, atol=0)
    np.testing.assert_allclose(sampling.nearest_sample_np(x.numpy(), grid.numpy(), padding_mode, align_corners),
                               expected.numpy())
    np.testing.assert_allclose(sampling.bilinear_sample_np(x.double().numpy(), grid.double().numpy(), padding_mode,
                                                           align_corners),
                               F.grid_sample(x.double(), grid.double(), "bilinear", padding_mode,
                                             align_corners).numpy(), atol=1e-12)


@pytest.mark.parametrize("impl", ["reference", "fast", "aten"])
def test_spatial_transformer_with_a_diverged_theta_returns_nan_not_an_index_error(impl):
    st = SpatialTransformer(small_localisation_net(), "affine", impl=impl)
    with torch.no_grad():
        st.head.bias.fill_(NAN)
    out = st(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 1, 28, 28) and out.isnan().all()
    out.sum().backward()  # and the backward runs


@pytest.mark.parametrize("impl", impls.DEFORM_CONV2D.accepts)
def test_deform_conv_nan_and_inf_like_grid_sample(impl):
    x = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    offset = torch.zeros(1, 18, 5, 5, dtype=torch.float64)
    offset[0, 0, 2, 2], offset[0, 3, 1, 1], offset[0, 5, 3, 3] = NAN, INF, 1e30
    weight = torch.rand(3, 2, 3, 3, dtype=torch.float64)
    out = deform_conv2d(x, offset, weight, padding=1, impl=impl)
    # NaN and inf offsets poison exactly their own output location, like F.grid_sample's zeros padding
    assert out.isnan().any(1)[0].nonzero().tolist() == [[1, 1], [2, 2]]
    # an infinite pixel read only from far outside gives 0, not NaN
    x_inf = x.clone()
    x_inf[0, 0, 0, 0] = INF
    far = torch.full_like(offset, -30.0)
    assert deform_conv2d(x_inf, far, weight, padding=1, impl=impl).abs().max() == 0


def test_deform_conv_impls_agree_with_nan_offsets():
    torch.manual_seed(0)
    x, weight = torch.rand(2, 4, 6, 6, dtype=torch.float64), torch.rand(4, 2, 3, 3, dtype=torch.float64)
    offset = torch.randn(2, 36, 6, 6, dtype=torch.float64) * 2
    offset[0, 4, 1, 2], offset[1, 7, 3, 3] = NAN, -INF
    mask = torch.rand(2, 18, 6, 6, dtype=torch.float64)
    a = deform_conv2d(x, offset, weight, padding=1, mask=mask, impl="fast")
    b = deform_conv2d(x, offset, weight, padding=1, mask=mask, impl="reference")
    torch.testing.assert_close(a, b, equal_nan=True)
    assert a.isnan().any()


def test_horizon_points_read_padding_in_every_sampler():
    # (u, v, w) = (1, y_t, x_t + 1): the left column of an align_corners=True grid (x_t = -1) is the horizon
    H = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]], dtype=torch.float64)
    grid = grids.projective_grid(H, (1, 1, 3, 3), align_corners=True)
    assert grid.isfinite().all()
    assert (grid[0, :, 0, 0] >= 1e20).all()  # the horizon column, far to the right (u > 0)
    x = torch.rand(1, 2, 3, 3, dtype=torch.float64)
    for padding_mode in GRID_SAMPLE_MODES:
        expected = F.grid_sample(x, grid, "bilinear", padding_mode, True)
        assert expected.isfinite().all()
        for impl, sample in _SAMPLERS.items():
            torch.testing.assert_close(sample(x, grid, padding_mode, True), expected, msg=impl)
    # zeros padding: the horizon reads 0; border: the border pixel in the direction of (u, v) / 0+ = (1, y_t) · ∞
    assert sampling.bilinear_sample(x, grid, "zeros", True)[..., 0].abs().max() == 0
    torch.testing.assert_close(sampling.bilinear_sample(x, grid, "border", True)[..., 0], x[..., 2])
    # without the rule, w = 0 divides to inf / NaN and F.grid_sample gives NaN
    u, v, w = 1.0, torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), 0.0
    naive = torch.stack([torch.full_like(v, u) / w, v / w], -1).view(1, 3, 1, 2)
    assert F.grid_sample(x, naive, "bilinear", "zeros", True).isnan().any()


# ----------------------------------------------------------------------------------------------------------------
# Empty batches and zero-size outputs
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", list(_SAMPLERS) + ["nearest"])
@pytest.mark.parametrize("shape, grid_shape", [((0, 2, 3, 4), (0, 5, 6, 2)), ((2, 2, 3, 4), (2, 0, 6, 2)),
                                               ((2, 20, 3, 4), (2, 5, 0, 2)), ((0, 20, 3, 4), (0, 5, 6, 2)),
                                               ((2, 0, 3, 4), (2, 5, 6, 2))],
                         ids=["N=0", "H_out=0", "W_out=0,C=20", "N=0,C=20", "C=0"])
def test_empty_batches_and_outputs_like_grid_sample(impl, shape, grid_shape):
    x = torch.rand(*shape, requires_grad=True)
    grid = torch.zeros(*grid_shape, requires_grad=True)
    sample = (lambda a, g, pm, ac: sampling.grid_sample(a, g, "nearest", pm, ac)) if impl == "nearest" \
        else _SAMPLERS[impl]
    out = sample(x, grid, "zeros", False)
    assert out.shape == F.grid_sample(x, grid, align_corners=False).shape
    if impl != "nearest":
        out.sum().backward()
        assert x.grad.shape == x.shape and grid.grad.shape == grid.shape


def test_empty_affine_grids():
    for fn in (grids.affine_grid, autograd.affine_grid_analytic):
        assert fn(torch.zeros(0, 2, 3), (0, 1, 3, 4)).shape == (0, 3, 4, 2)
        assert fn(torch.zeros(2, 2, 3), (2, 1, 0, 4)).shape == (2, 0, 4, 2)
    assert grids.projective_grid(torch.zeros(0, 3, 3), (0, 1, 3, 4)).shape == (0, 3, 4, 2)


@pytest.mark.parametrize("impl", impls.SPATIAL_TRANSFORMER.accepts)  # impl="triton": marked triton (conftest.py)
def test_empty_batches_through_the_transformer(impl):
    st = SpatialTransformer(small_localisation_net(), "affine", impl=impl).eval()
    assert st(torch.rand(0, 1, 28, 28)).shape == (0, 1, 28, 28)


@pytest.mark.parametrize("impl", impls.DEFORM_CONV2D.accepts)
@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv_empty_batch(impl, modulated):
    # torchvision's own suite runs batch size 0 (detection models with zero proposals)
    x = torch.rand(0, 4, 7, 7, requires_grad=True)
    offset = torch.zeros(0, 36, 7, 7, requires_grad=True)
    weight = torch.rand(6, 2, 3, 3, requires_grad=True)
    bias = torch.rand(6, requires_grad=True)
    mask = torch.rand(0, 18, 7, 7, requires_grad=True) if modulated else None
    out = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask, impl=impl)
    assert out.shape == (0, 6, 7, 7)
    out.sum().backward()
    assert weight.grad.abs().sum() == 0 and torch.equal(bias.grad, torch.zeros(6))
    layer = DeformConv2d(4, 6, 3, padding=1, modulated=modulated, impl=impl)
    assert layer(torch.rand(0, 4, 7, 7)).shape == (0, 6, 7, 7)


# ----------------------------------------------------------------------------------------------------------------
# Signatures that match torch / torchvision, so ours and theirs swap
# ----------------------------------------------------------------------------------------------------------------


def _positional(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def test_grid_sample_has_torchs_signature_and_defaults():
    ours, theirs = inspect.signature(sampling.grid_sample), inspect.signature(F.grid_sample)
    assert list(ours.parameters) == list(theirs.parameters)
    assert [p.default for p in ours.parameters.values()] == [p.default for p in theirs.parameters.values()]
    x, g = torch.rand(2, 3, 5, 7, dtype=torch.float64), torch.rand(2, 4, 6, 2, dtype=torch.float64) * 2.4 - 1.2
    for args in [("nearest", "border", True), ("bilinear", "reflection", False), ("bilinear",)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns when align_corners is left to its default
            torch.testing.assert_close(sampling.grid_sample(x, g, *args), F.grid_sample(x, g, *args))


def test_affine_grid_has_torchs_signature():
    assert _positional(grids.affine_grid) == _positional(F.affine_grid) == ["theta", "size", "align_corners"]


# torchvision 0.29's signatures, written out: torchvision is not a dependency of the course
TORCHVISION_DEFORM_CONV2D = ["input", "offset", "weight", "bias", "stride", "padding", "dilation", "mask"]
TORCHVISION_DEFORMCONV2D = ["self", "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                            "groups", "bias"]


def test_deform_signatures_start_with_torchvisions():
    assert _positional(deform_conv2d)[:len(TORCHVISION_DEFORM_CONV2D)] == TORCHVISION_DEFORM_CONV2D
    assert _positional(DeformConv2d.__init__)[:len(TORCHVISION_DEFORMCONV2D)] == TORCHVISION_DEFORMCONV2D
    # torchvision's positional call DeformConv2d(4, 8, 3, 1, 1, 1, 1, False) means bias=False
    layer = DeformConv2d(4, 8, 3, 1, 1, 1, 1, False)
    assert layer.bias is None and layer.groups == 1 and layer.offset_groups == 1
    assert layer(torch.rand(2, 4, 6, 6)).shape == (2, 8, 6, 6)


def test_one_impl_vocabulary():
    from stn_course import deform_net

    # every impl= takes its names and its default from its operation's ImplSet (stn_course.impls), one rule for all
    takers = {impls.SPATIAL_TRANSFORMER: [SpatialTransformer, stn.transform_to_grid],
              impls.DEFORM_CONV2D: [deform_conv2d, DeformConv2d, deform_net.DeformableCNN],
              impls.AUTOGRAD: [autograd.bilinear_sample_analytic, autograd.BilinearSampleFunction.forward],
              impls.DISTORT: [data.distort, data.DistortedMNIST, data.make_datasets]}
    assert set(takers) == set(impls.OPERATIONS)
    for operation, functions in takers.items():
        assert set(operation.accepts) <= set(impls.IMPLS)
        for fn in functions:
            assert inspect.signature(fn).parameters["impl"].default == operation.default, fn
    # the defaults the notebooks' numbers were made with: fast for the transformer and the hand-derived backward,
    # auto (= exactly fast off CUDA) for deformable convolution, the readable sampler for the data
    assert [operation.default for operation in impls.OPERATIONS] == ["fast", "auto", "fast", "reference"]
    assert impls.SPATIAL_TRANSFORMER.fallback == "aten" and impls.DEFORM_CONV2D.fallback == "fast"
    for module in (stn, deform, autograd, data.distortions, data.datasets):
        assert not hasattr(module, "IMPLS")  # no private list of names
    for impl in ("cuda", "Reference", "readable"):
        for make in (lambda: SpatialTransformer(small_localisation_net(), impl=impl),
                     lambda: deform_conv2d(torch.rand(1, 1, 3, 3), torch.zeros(1, 18, 3, 3), torch.rand(1, 1, 3, 3),
                                           padding=1, impl=impl),
                     lambda: data.distort(data.load_splits()[0][:2], "R", impl=impl)):
            with pytest.raises(ValueError, match="impl"):
                make()


def test_the_two_localisation_networks_have_distinct_names():
    assert not hasattr(stn, "localisation_net") and not hasattr(training, "localisation_net")
    assert isinstance(training.st_cnn_localisation_net(42)[-1], nn.ReLU)
    assert small_localisation_net(1, 32, 28)(torch.rand(2, 1, 28, 28)).shape == (2, 32)


# ----------------------------------------------------------------------------------------------------------------
# torch.compile: users compile models that contain these modules
# ----------------------------------------------------------------------------------------------------------------


def test_torch_compile_spatial_transformer_fullgraph_and_deform_conv():
    torch.manual_seed(0)
    torch._dynamo.reset()
    x = torch.rand(3, 1, 28, 28)
    st = SpatialTransformer(small_localisation_net(), "attention", out_size=14, impl="aten").eval()
    with torch.no_grad():
        st.head.weight.normal_(0, 0.05)
    compiled = torch.compile(st, fullgraph=True)
    torch.testing.assert_close(compiled(x), st(x), rtol=1e-5, atol=1e-5)
    # the hand-derived autograd.Function (graph breaks are allowed there) – forward and backward
    fast = SpatialTransformer(small_localisation_net(), "affine", impl="fast")
    fast.load_state_dict({k: v for k, v in st.state_dict().items() if not k.startswith("head")}, strict=False)
    compiled_fast = torch.compile(fast, backend="aot_eager")  # dynamo + AOT autograd; inductor is tested above
    out = compiled_fast(x)
    torch.testing.assert_close(out, fast(x), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert fast.head.bias.grad is not None and math.isfinite(fast.head.bias.grad.abs().sum().item())
    # deform_conv2d's fast path (im2col through F.grid_sample + GEMM), forward and backward
    layer = DeformConv2d(2, 4, 3, padding=1)
    with torch.no_grad():
        layer.offset_conv.weight.normal_(0, 0.1)
    xd = torch.rand(2, 2, 8, 8, requires_grad=True)
    compiled_layer = torch.compile(layer, backend="aot_eager")
    out = compiled_layer(xd)
    torch.testing.assert_close(out, layer(xd), rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert xd.grad is not None and xd.grad.isfinite().all()
