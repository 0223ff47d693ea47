"""How the package reaches the GPU path: ``SpatialTransformer(impl="triton" | "auto")`` and
``deform_conv2d(impl="triton" | "auto")`` give the numbers of the other implementations (forward, every gradient, a
few training steps), ``"auto"`` picks what can run, and every way a Triton call cannot run is a clear error."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from stn_course import gpu
from stn_course.deform import deform_conv2d
from stn_course.gpu.affine import affine_sample
from stn_course.stn import AFFINE_FAMILY, SpatialTransformer
from stn_course.training import st_cnn

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _transformer(transform: str, impl: str, dtype=torch.float64) -> SpatialTransformer:
    torch.manual_seed(0)
    loc = nn.Sequential(nn.Flatten(), nn.Linear(2 * 9 * 8, 16), nn.Tanh())
    st = SpatialTransformer(loc, transform=transform, loc_features=16, out_size=(7, 6), impl=impl,
                            padding_mode="border")
    with torch.no_grad():  # a transform far from the identity, different per sample
        st.head.weight.normal_(0, 0.3)
    return st.to(device=DEVICE, dtype=dtype)


@pytest.mark.triton
@pytest.mark.parametrize("transform", AFFINE_FAMILY)
def test_the_fused_transformer_matches_aten_forward_and_every_gradient(transform):
    x = torch.randn(3, 2, 9, 8, dtype=torch.float64, device=DEVICE, requires_grad=True)
    fused, aten = _transformer(transform, "triton"), _transformer(transform, "aten")
    out_f, matrix_f, grid_f = fused(x, return_params=True)
    out_a, matrix_a, grid_a = aten(x, return_params=True)
    torch.testing.assert_close(out_f, out_a, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(matrix_f, matrix_a)
    torch.testing.assert_close(grid_f, grid_a)  # the picture's grid, though the kernel never made one
    grad = torch.randn_like(out_a)
    params_f, params_a = [x, *fused.parameters()], [x, *aten.parameters()]
    for got, want in zip(torch.autograd.grad(out_f, params_f, grad), torch.autograd.grad(out_a, params_a, grad)):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def _off_the_pixel_centres(model: nn.Module) -> nn.Module:
    """Nudge the transformer's start off the identity. At the identity every sampling point sits exactly on a pixel
    centre, where bilinear interpolation has a kink: which one-sided derivative is the gradient depends on the last
    bit of the point. The kernels round as ATen does, so at equal weights they agree there too
    (``tests/test_kinks.py``), but two models trained apart differ in the last bits after a step, and a long run
    started on the kinks would amplify that."""
    with torch.no_grad():
        model.transformer.head.bias.add_(torch.tensor([0.013, -0.021, 0.017, 0.011, 0.019, -0.023]))
    return model


@pytest.mark.triton
def test_a_few_training_steps_with_the_fused_kernel_follow_the_aten_ones():
    """The ST-CNN of lesson 5, same seed, same batches, five SGD steps from the identity (every sampling point on a
    pixel centre at the first step): at every step, from the same weights, impl='triton' computes impl='aten''s
    gradients. (Two models trained side by side drift apart in the last bits, and a point then lands on the other
    side of a kink – the comparison is per step, from equal weights.)"""
    g = torch.Generator().manual_seed(3)
    batches = [(torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(5)]
    models = {impl: st_cnn(28, impl=impl, seed=0, hidden=16).to(DEVICE) for impl in ("triton", "aten")}
    start = [p.detach().clone() for p in models["aten"].parameters()]
    optimizer = torch.optim.SGD(models["aten"].parameters(), lr=0.1, momentum=0.9)
    for x, y in batches:
        models["triton"].load_state_dict(models["aten"].state_dict())
        grads = {}
        for impl, model in models.items():
            model.zero_grad()
            nn.functional.cross_entropy(model(x.to(DEVICE)), y.to(DEVICE)).backward()
            grads[impl] = [p.grad.detach().clone() for p in model.parameters()]
        for got, want in zip(grads["triton"], grads["aten"]):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
        optimizer.step()
    moved = max((a - b).abs().max().item() for a, b in zip(models["aten"].parameters(), start))
    assert moved > 1e-2  # the steps did change the weights


def test_auto_picks_triton_only_on_cuda_and_otherwise_the_aten_path():
    st = _transformer("affine", "auto")
    x = torch.randn(2, 2, 9, 8, dtype=torch.float64, device=DEVICE)
    assert st.resolved_impl(x) == ("triton" if DEVICE.type == "cuda" else "aten")
    torch.testing.assert_close(st(x), _transformer("affine", "aten")(x))
    assert _transformer("projective", "auto").resolved_impl(x) == "aten"


def test_deformable_auto_on_the_cpu_is_the_fast_path_exactly():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 3, 6, 5, generator=g), torch.randn(4, 3, 3, 3, generator=g)
    offset = torch.randn(2, 18, 6, 5, generator=g)
    auto = deform_conv2d(x, offset, w, padding=1, impl="auto")
    assert torch.equal(auto, deform_conv2d(x, offset, w, padding=1, impl="fast"))


@pytest.mark.parametrize("transform", ["projective", "tps"])
def test_triton_refuses_transforms_it_does_not_fuse(transform):
    loc = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    with pytest.raises(ValueError, match="affine family.*impl='fast' or 'aten'"):
        SpatialTransformer(loc, transform=transform, loc_features=4, impl="triton")


def test_without_triton_an_explicit_request_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(gpu, "triton_available", lambda: False)
    x, theta = torch.randn(1, 1, 4, 4), torch.eye(2, 3)[None]
    with pytest.raises(RuntimeError, match=r"triton package.*stn-course\[gpu\]"):
        affine_sample(x, theta)
    with pytest.raises(RuntimeError, match="triton package"):
        _transformer("affine", "triton")(torch.randn(1, 2, 9, 8, dtype=torch.float64, device=DEVICE))
    assert _transformer("affine", "auto").resolved_impl(x.cuda() if DEVICE.type == "cuda" else x) == "aten"


@pytest.mark.triton  # these errors come after "triton is not installed" (the test above)
def test_cpu_tensors_without_the_interpreter_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="CUDA tensors; these are on the CPU.*TRITON_INTERPRET=1"):
        affine_sample(torch.randn(1, 1, 4, 4), torch.eye(2, 3)[None])
    x, w, off = torch.randn(1, 2, 4, 4), torch.randn(3, 2, 3, 3), torch.zeros(1, 18, 4, 4)
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        deform_conv2d(x, off, w, padding=1, impl="triton")


@pytest.mark.triton
def test_mixed_and_unsupported_devices_are_named():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"one device, got \['cpu', 'meta'\]"):
        affine_sample(x, torch.eye(2, 3)[None].to("meta"))
    with pytest.raises(RuntimeError, match="runs on CUDA tensors, got meta"):
        affine_sample(x.to("meta"), torch.eye(2, 3)[None].to("meta"))


@pytest.mark.parametrize("call, error, message", [
    (lambda x: affine_sample(x, torch.eye(2, 3)), ValueError, r"theta: expected a 3-D tensor of shape \(N, 2, 3\)"),
    (lambda x: affine_sample(x, torch.eye(2, 3).expand(3, 2, 3)), ValueError, r"expected shape \(2, 2, 3\)"),
    (lambda x: affine_sample(x, torch.eye(2, 3).expand(2, 2, 3), (2, 5, 4, 4)), ValueError,
     r"N, C = \(2, 3\)"),
    (lambda x: affine_sample(x, torch.eye(2, 3).expand(2, 2, 3), padding_mode="wrap"), ValueError, "padding_mode"),
    (lambda x: affine_sample(x.to(torch.float8_e4m3fn), torch.eye(2, 3).expand(2, 2, 3)), TypeError,
     r"input: expected a floating-point tensor \(float16, bfloat16, float32 or float64\)"),
    (lambda x: affine_sample(x.int(), torch.eye(2, 3).expand(2, 2, 3)), TypeError, "input"),
])
def test_bad_arguments_get_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call(torch.randn(2, 3, 4, 4))


@pytest.mark.triton
def test_the_fused_transformer_trains_the_lesson5_st_cnn_to_the_same_accuracy():
    """Acceptance of issue 14 on a tiny budget: rotated digits, 320 training images, 2 epochs, the ST-CNN of
    lesson 5 with impl='triton' and impl='aten' from the same (nudged) start: the same test accuracy."""
    from stn_course import data, training

    train, test = data.make_datasets("R", seed=0, n_train=320, n_test=200, impl="aten")
    results = {}
    for impl in ("triton", "aten"):
        model = _off_the_pixel_centres(training.st_cnn(28, impl=impl, seed=0, hidden=32))
        train_loader, test_loader = data.make_loaders(train, test, batch_size=32, seed=0)
        history = training.fit(model, train_loader, test_loader, epochs=2, lr=2e-3, progress=False,
                               device=DEVICE)
        results[impl] = history
    assert results["aten"]["test_error"][-1] < 80  # it learned something (10 classes: 90 % is chance)
    assert abs(results["triton"]["test_error"][-1] - results["aten"]["test_error"][-1]) <= 1.0  # ≤ 2 of 200
    torch.testing.assert_close(torch.tensor(results["triton"]["loss"]), torch.tensor(results["aten"]["loss"]),
                               rtol=1e-3, atol=1e-4)
