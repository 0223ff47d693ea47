"""Checks for lesson 7 – the GPU path: the largest speedup the bytes model allows fusion over a training step (the
learner builds the model, forward and backward, and predicts the bound), where one program's lanes read (a
colleague's tile and the kernel's index arithmetic, in one), the fused forward kernel, the backward's input gradient
(a scatter: atomic additions), the busy share of a launch's waves (tuning), and the address a kernel computes in
int32 for tensors past 2³¹ elements.

The kernel exercises' cases are built on the kernel's device (:func:`.kernels.on_kernel_device`: CUDA tensors on a
GPU, CPU tensors under Triton's interpreter – the grader's sandbox sets ``TRITON_INTERPRET=1``); the lesson's
kernels are declared with :func:`.kernels.jit_exercise`, so an unwritten stub reports "not implemented yet" before
anything is compiled.

References: :func:`stn_course.gpu.traffic.sampler_traffic` (the bytes model behind ``07.fusion_bound``),
:func:`stn_course.gpu.indexing.program_pixels` and :func:`~stn_course.gpu.indexing.source_pixels` (the index
arithmetic, tested against ``F.affine_grid``), and :func:`stn_course.gpu.affine.unfused_affine_sample` (torch's
``F.affine_grid`` + ``F.grid_sample``) for the kernels. The kernel's cases are small: without a GPU the learner's
Triton kernel runs through Triton's interpreter, with every load and store checked against the launch's tensors
(:func:`stn_course.gpu.bounds.checked_memory`): a store without ``mask=`` fails with a message instead of
corrupting the process – the notebook's kernel would die. Float64 cases are compared to 1e-12, so a kernel that
rounds through float32 fails them.
"""
from __future__ import annotations

import numpy as np
import torch

from ..gpu.affine import unfused_affine_sample
from ..gpu.bounds import checked_memory
from ..gpu.indexing import program_pixels, source_pixels
from ..gpu.traffic import sampler_traffic
from .cases import random_theta, tensor
from .comparison import compare
from .equivalents import AFFINE_GRID, GRID_SAMPLE
from .catalog import exercise
from .kernels import on_kernel_device
from .questions import AnswerCompare
from .registry import Case, register

# ---------------------------------------------------------------------------------------------------------------
# 07.fusion_bound (the learner's bytes model, forward and backward – eq. 6 and 7 say what the backward reads again;
# at the roofline the bandwidth cancels in the ratio of a training step's two times)
# ---------------------------------------------------------------------------------------------------------------


def _fusion_bound_reference(input_shape, out_size) -> float:
    """ATen's forward + backward bytes over the fused kernels' (float32; the element size cancels too)."""
    def both_passes(fused: bool) -> int:
        return sum(sampler_traffic(input_shape, out_size, 4, fused, backward).total for backward in (False, True))

    return both_passes(False) / both_passes(True)


def _fusion_cases(rng: np.random.Generator, setups=((256, 1, 224, 224, 224, 224), (8, 64, 224, 224, 224, 224),
                                                   (2, 3, 10, 12, 5, 6))):
    """The roofline table's shapes (output as large as the input), and an output smaller than its input."""
    for n, c, h, w, h_out, w_out in setups:
        yield Case(f"input_shape=({n}, {c}, {h}, {w}), out_size=({h_out}, {w_out})", ((n, c, h, w), (h_out, w_out)))


def _fusion_hidden(rng: np.random.Generator):  # other channel counts; outputs smaller and larger than the input
    return _fusion_cases(rng, ((4, 3, 64, 64, 64, 64), (2, 16, 100, 80, 50, 40), (1, 1, 28, 28, 60, 60),
                               (32, 1000, 7, 7, 7, 7), (1, 2, 1, 1, 1, 1), (5, 1, 9, 1, 3, 17)))


register(exercise("07.fusion_bound", reference=_fusion_bound_reference, cases=_fusion_cases,
                  hidden_cases=_fusion_hidden, compare=AnswerCompare(rtol=1e-9, atol=1e-12, direction=True),
                  forbidden=('stn_course.gpu.traffic.sampler_traffic',)))


# ---------------------------------------------------------------------------------------------------------------
# 07.program_reads (a colleague's tile – h_out for w_out, <= for < – and the index arithmetic, in one)
# ---------------------------------------------------------------------------------------------------------------


def _program_reads_reference(theta: torch.Tensor, pid: int, block: int, in_size, out_size,
                             align_corners: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The package's tile, then its index arithmetic on every lane (masked lanes too): ``-> (x, y, live)``."""
    rows, cols, live = program_pixels(pid, block, *out_size)
    x, y = source_pixels(theta, rows, cols, in_size, out_size, align_corners)
    return x, y, live


def _reads_cases(rng: np.random.Generator, setups=((0, 8, 5, 7, 3, 4, False), (1, 8, 5, 7, 3, 4, True),
                                                   (0, 16, 6, 6, 2, 3, True), (3, 4, 4, 4, 5, 1, True),
                                                   (2, 64, 12, 8, 9, 17, False), (0, 1, 2, 3, 1, 1, True))):
    """``(pid, BLOCK, H, W, H_out, W_out, align_corners)``: non-square outputs, a last program partly masked (the
    lane one past the last pixel), 1-pixel sides of the output (the hidden cases: of the input too)."""
    for k, (pid, block, h, w, h_out, w_out, align_corners) in enumerate(setups):
        theta = random_theta(rng, 1, spread=0.5 + 0.3 * k)[0]
        yield Case(f"theta (2, 3) float64, pid={pid}, block={block}, in_size=({h}, {w}), out_size=({h_out}, {w_out}), "
                   f"align_corners={align_corners}", (theta, pid, block, (h, w), (h_out, w_out), align_corners))


def _reads_hidden(rng: np.random.Generator):
    return _reads_cases(rng, ((7, 32, 31, 2, 15, 17, False), (0, 256, 7, 13, 1, 300, True),
                              (12, 2, 3, 30, 5, 5, False), (0, 8, 1, 1, 5, 3, True), (1, 16, 9, 4, 4, 5, False)))


def _compare_reads(expected, actual, case: Case) -> tuple[bool, float, str]:
    """Exactly the reference's points (to 1e-9) and mask; a failure is diagnosed by its kind, tried on this case's
    own arguments with the package's functions: the mask, a tile whose rows are H_out long (right on square outputs
    only), the other ``align_corners`` convention – never with the expected numbers."""
    ok, worst, message = compare(expected, actual, rtol=1e-9, atol=1e-9)
    if ok or not isinstance(actual, (tuple, list)) or len(actual) != 3:
        return ok, worst, message
    theta, pid, block, in_size, out_size, align_corners = case.args
    x, y, live = actual
    same = lambda a, b: isinstance(b, torch.Tensor) and a.shape == b.shape and bool(  # noqa: E731
        torch.allclose(a, b.to(a.dtype), rtol=1e-9, atol=1e-9))
    if isinstance(live, torch.Tensor) and live.shape == expected[2].shape and not torch.equal(live.bool(),
                                                                                                 expected[2]):
        extra = bool((live.bool() & ~expected[2]).any())
        return False, worst, ("`live` " + ("lets a lane with no output pixel through (it would load and store past the "
                                           "end of the image)" if extra else "masks a lane that has a pixel to compute")
                              + ": count the pixels the last program really has")
    rows, cols, _ = program_pixels(pid, block, out_size[1], out_size[0])  # offset // H_out, offset % H_out
    if out_size[0] != out_size[1] and same(source_pixels(theta, rows, cols, in_size, out_size, align_corners)[0], x):
        return False, worst, ("the lanes land on the wrong output pixels – right on square outputs only: how long is "
                              "a row of the output in memory?")
    rows, cols, _ = program_pixels(pid, block, *out_size)
    other = source_pixels(theta, rows, cols, in_size, out_size, not align_corners)
    if same(other[0], x) and same(other[1], y):
        return False, worst, (f"these are the sampling points of align_corners={not align_corners}, "
                              f"not of {align_corners}")
    return False, worst, message


register(exercise("07.program_reads", reference=_program_reads_reference, cases=_reads_cases,
                  hidden_cases=_reads_hidden, compare=_compare_reads, forbidden=(
                      'stn_course.gpu.indexing.source_pixels', 'stn_course.gpu.indexing.program_pixels',
                      'stn_course.grids.affine_grid', 'stn_course.grids.base_grid', 'stn_course.grids.pixel_centres',
                      *AFFINE_GRID)))

# ---------------------------------------------------------------------------------------------------------------
# 07.fused_affine_sample
# ---------------------------------------------------------------------------------------------------------------


# float64 cases are compared to 1e-12: a kernel that computes in float32 inside is off by ~1e-5 there
TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-12}


def _compare_kernel(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """The reference's output to the tolerance ``tol`` of the input's dtype (:data:`TOLERANCES`), value by value
    ``|yours − torch| ≤ tol · (1 + |torch|)`` – the worst error reported is that measure (:func:`_scaled`), as the
    lesson's text says; a float64 input is sampled in float64 throughout. A float64 result that is right to float32's precision only is diagnosed as such."""
    tolerance = TOLERANCES.get(expected.dtype, 1e-5)
    ok, worst, message = compare(expected, actual, rtol=tolerance, atol=tolerance)
    worst, message = _scaled(expected, actual, worst, message)
    if (not ok and expected.dtype == torch.float64 and isinstance(actual, torch.Tensor)
            and actual.shape == expected.shape and actual.dtype == expected.dtype and worst < 1e-4):
        message = ("right to float32's precision only, on a float64 case: somewhere the kernel computes in float32 "
                   "(which of its values has which dtype – the integer rows and columns, once cast?)")
    return ok, worst, message


def _scaled(expected: torch.Tensor, actual, worst: float, message: str) -> tuple[float, str]:
    """The measure :func:`_compare_kernel` tests, ``max |yours − torch| / (1 + |torch|)`` (``compare``'s rule
    ``|yours − torch| ≤ tol + tol·|torch|``, divided through), as the worst error – and in the failure message –
    instead of the absolute difference: a large gradient passes with an absolute error above the tolerance."""
    if not (isinstance(actual, torch.Tensor) and actual.shape == expected.shape and np.isfinite(worst)):
        return worst, message
    e = expected.detach().cpu().double()
    scaled = float(((actual.detach().cpu().double() - e).abs() / (1 + e.abs())).max()) if e.numel() else 0.0
    return scaled, message.replace(f"worst error about {worst:.1g}",
                                   f"worst |yours − torch| / (1 + |torch|) about {scaled:.1g}")


def _compare_sample(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """:func:`_compare_kernel`, and where it fails: is the difference confined to the output pixels whose four
    neighbours lie partly outside the image (zeros padding done for the whole point instead of corner by corner)?"""
    ok, worst, message = _compare_kernel(expected, actual, case)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape or "float32" in message:
        return ok, worst, message
    input, theta, out_size = case.args
    tolerance = TOLERANCES.get(expected.dtype, 1e-5)
    wrong = ((actual.detach().to(expected.dtype) - expected).abs() > tolerance * (1 + expected.abs())).any(1).cpu()
    straddles = torch.stack([((a < 0).any(1) & (a >= 0).any(1)).reshape(out_size) for a in (
        _corner_addresses(theta[n].detach().cpu(), input.shape[-2:], out_size, 1)[0] for n in range(len(theta)))])
    if wrong.any() and not (wrong & ~straddles).any():
        message = ("wrong only where a sampling point's four neighbours lie partly outside the image: with zeros "
                   "padding, what does each neighbour contribute – the outside ones, and the inside ones beside "
                   "them?")
    return ok, worst, message


def _corner_addresses(theta: torch.Tensor, in_size, out_size, block: int,
                      align_corners: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output pixel of one image and per corner: the flat input pixel its bilinear corner adds into (−1 where
    the corner lies outside), and the program (``BLOCK`` lanes) that computes it – from the package's index
    arithmetic, to say where lanes of one program share an address."""
    (h, w), (h_out, w_out) = in_size, out_size
    offsets = torch.arange(h_out * w_out)
    x, y = source_pixels(theta, offsets // w_out, offsets % w_out, (h, w), (h_out, w_out), align_corners)
    x0, y0 = x.floor().long(), y.floor().long()
    corners = []
    for dy in (0, 1):
        for dx in (0, 1):
            xx, yy = x0 + dx, y0 + dy
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            corners.append(torch.where(inside, yy * w + xx, torch.full_like(xx, -1)))
    return torch.stack(corners, 1), (offsets // block)[:, None].expand(-1, 4)


def _compare_input_gradient(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """:func:`_compare_kernel`, and where it fails: is the difference confined to the input pixels into which
    several lanes of one program add through the same corner's store (under the interpreter; on a GPU: several
    lanes at all) – the plain load-add-store's lost additions? The kernel's ``BLOCK`` is
    :func:`stn_course.gpu.block_size` of the device."""
    ok, worst, message = _compare_kernel(expected, actual, case)
    if ok or not isinstance(actual, torch.Tensor) or actual.shape != expected.shape:
        return ok, worst, message
    from ..gpu import block_size

    grad_output, input, theta, _ = case.args
    in_size = tuple(input.shape[-2:])
    tolerance = TOLERANCES.get(expected.dtype, 1e-5)
    wrong = ((actual.detach().to(expected.dtype) - expected).abs() > tolerance * (1 + expected.abs()))
    shared = torch.zeros(expected.shape[0], in_size[0] * in_size[1], dtype=torch.bool)
    gpu = grad_output.device.type == "cuda"
    for n in range(expected.shape[0]):
        address, program = _corner_addresses(theta[n].detach().cpu(), in_size, grad_output.shape[-2:],
                                             block_size(grad_output.device), case.args[3])
        corner = torch.arange(4).expand_as(address)
        keep = address >= 0
        # one vector store per corner: lanes collide within it (and, on a GPU, any two programs at all)
        key = [address[keep]] if gpu else [program[keep], corner[keep], address[keep]]
        unique, counts = torch.stack(key, 1).unique(dim=0, return_counts=True)
        shared[n, unique[counts > 1, -1]] = True
    wrong_pixels = wrong.any(1).reshape(expected.shape[0], -1).cpu()
    if wrong_pixels.any() and not (wrong_pixels & ~shared).any():
        message = ("wrong only at input pixels into which several lanes of one program add: additions were lost "
                   "there – the lanes of a program do each operation together; what does one vector store keep of "
                   "lanes that write the same address (and on a GPU, of programs that run at the same time)?")
    return ok, worst, message


def _fused_cases(rng: np.random.Generator, shapes=((1, 1, 4, 5, 3, 4, 0.2), (2, 3, 6, 5, 7, 4, 0.6),
                                                   (1, 2, 5, 5, 6, 6, 2.5), (2, 1, 1, 6, 1, 1, 0.4))):
    """Every case runs in :func:`~stn_course.gpu.bounds.checked_memory`: a load or store without its mask fails
    with a message instead of corrupting (and later killing) the process; its tensors are on the kernel's device
    (:func:`~.kernels.kernel_device`: CUDA on a GPU, the CPU under the interpreter)."""
    for k, (n, c, h, w, h_out, w_out, spread) in enumerate(shapes):
        dtype = torch.float32 if k == 1 else torch.float64
        yield on_kernel_device(Case(
            f"input (N={n}, C={c}, H={h}, W={w}) {str(dtype)[6:]}, out_size=({h_out}, {w_out}), θ spread {spread}"
            + (" (reads far outside the image)" if spread > 1 else ""),
            (tensor(rng, n, c, h, w, dtype=dtype), random_theta(rng, n, spread, dtype=dtype), (h_out, w_out)),
            within=checked_memory))


def _fused_hidden(rng: np.random.Generator):  # an output of more than one 1024-lane program; 1-pixel sides
    return _fused_cases(rng, ((1, 1, 40, 40, 36, 33, 0.5), (3, 2, 9, 1, 5, 7, 0.7), (1, 4, 7, 11, 1, 9, 1.5)))


register(exercise("07.fused_affine_sample", reference=unfused_affine_sample, cases=_fused_cases,
                  hidden_cases=_fused_hidden, compare=_compare_sample, forbidden=('stn_course.gpu.affine.affine_sample',
                  'stn_course.gpu.affine.unfused_affine_sample', 'stn_course.sampling.bilinear_sample',
                  'stn_course.sampling.grid_sample', 'stn_course.autograd.bilinear_sample_analytic', *GRID_SAMPLE,
                  *AFFINE_GRID)))


# ---------------------------------------------------------------------------------------------------------------
# 07.affine_input_gradient (the backward kernel, written by the learner: eq. 6's scatter with tl.atomic_add, and
# θ's gradient – eq. 7 through the unnormalization of either convention, reduced per program – in one)
# ---------------------------------------------------------------------------------------------------------------


def _backward_reference(grad_output: torch.Tensor, input: torch.Tensor, theta: torch.Tensor,
                        align_corners: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """torch's gradients of its two passes (:func:`~stn_course.gpu.affine.unfused_affine_sample`) for this
    ``grad_output``: ``-> (∂L/∂input (N, C, H, W), ∂L/∂θ (N, 2, 3))``."""
    leaf, t = input.detach().clone().requires_grad_(), theta.detach().clone().requires_grad_()
    with torch.enable_grad():
        out = unfused_affine_sample(leaf, t, tuple(grad_output.shape[-2:]), align_corners)
        grads = torch.autograd.grad(out, (leaf, t), grad_output)
    return grads[0], grads[1]


def _ratio(expected: torch.Tensor, actual: torch.Tensor, tolerance: float) -> float | None:
    """``r`` where ``actual ≈ r · expected`` (least squares, then checked), None where no constant fits or the
    reference is (nearly) zero."""
    if float(expected.norm()) < 1e-9:
        return None
    r = float((actual * expected).sum() / (expected * expected).sum())
    return r if float((actual - r * expected).norm()) <= tolerance * (1 + float(actual.norm())) else None


def _theta_slip(expected: torch.Tensor, actual: torch.Tensor, case: Case) -> str | None:
    """The kind of a wrong θ gradient, from the reference alone (rerun on this case's own arguments): a row off by
    the other convention's unnormalization factor, by −1, or by another constant; one channel's contribution only;
    every image given the batch's sum."""
    grad_output, input, theta, align_corners = case.args
    (h, w), n, c = input.shape[-2:], input.shape[0], input.shape[1]
    e, a = expected.detach().cpu().double(), actual.detach().cpu().double()
    tolerance = 1e-4 if expected.dtype == torch.float32 else 1e-8
    close = lambda p, q: abs(p - q) <= 1e-3 * max(1.0, abs(q))  # noqa: E731
    rows = [_ratio(e[:, r], a[:, r], tolerance) for r in (0, 1)]
    if c > 1:
        last = grad_output.clone()
        last[:, :-1] = 0
        one = _backward_reference(last, input, theta, align_corners)[1].cpu().double()
        if any(_ratio(one[:, r], a[:, r], tolerance) is not None and _ratio(e[:, r], a[:, r], tolerance) is None
               for r in (0, 1)):
            return ("only one channel's part: every channel samples at the same point, so ∂L/∂x collects all "
                    "channels' terms – does each channel add to it, or replace it?")
    if n > 1 and torch.allclose(a, e.sum(0).expand_as(e), rtol=tolerance, atol=tolerance):
        return "every image got the batch's sum: θ is per image, and so is its gradient (which slots are whose?)"
    same = lambda p, q: torch.allclose(p, q, rtol=tolerance, atol=tolerance)  # noqa: E731
    if n > 1 and any((same(a[k], 0 * a[k]) and not same(e[k], 0 * e[k]))
                     or any(same(a[k], e[j]) and not same(e[k], e[j]) for j in range(n) if j != k) for k in range(n)):
        return ("the images' gradients land in the wrong places (one image's in another's, or none): whose slot of "
                "`partial` does program (n, pid) write?")
    if any(r is not None and close(r, -1.0) for r in rows):
        return ("a row has the opposite sign: which way does the sample change as x (or y) grows – towards the "
                "larger column's value, or away from it?")
    other = ((w - 1) / w if not align_corners else (w / (w - 1) if w > 1 else None),
             (h - 1) / h if not align_corners else (h / (h - 1) if h > 1 else None))
    fits = [r is None or (o is not None and close(r, o)) for r, o in zip(rows, other)]
    if all(fits) and any(r is not None and not close(r, 1.0) for r in rows):
        return (f"each row is off by the ratio of the two conventions' unnormalization: for align_corners="
                f"{align_corners}, what is dx/dx_s (differentiate bilinear_corners' formula of this convention)?")
    if all(r is not None for r in rows) and not (close(rows[0], 1.0) and close(rows[1], 1.0)):
        return ("each row is the right one times a constant: a factor of the chain rule is off – from the input's "
                "pixels to x_s (the unnormalization) and from x_s to θ")
    return None


def _compare_backward(expected, actual, case: Case) -> tuple[bool, float, str]:
    """The pair ``(grad_input, grad_theta)``: the input's gradient by :func:`_compare_input_gradient` (lost
    additions diagnosed), θ's to the dtype's tolerance, its slips diagnosed by :func:`_theta_slip`."""
    if not isinstance(actual, (tuple, list)) or len(actual) != 2:
        return False, float("inf"), "expected a pair (grad_input, grad_theta), as the launcher returns"
    ok, worst, message = _compare_input_gradient(expected[0], actual[0], case)
    if not ok:
        return False, worst, "the input's gradient: " + message
    ok, worst_theta, message = _compare_kernel(expected[1], actual[1], case)
    if ok:
        return True, max(worst, worst_theta), ""
    slip = None
    if isinstance(actual[1], torch.Tensor) and actual[1].shape == expected[1].shape:
        slip = _theta_slip(expected[1], actual[1], case)
    return False, worst_theta, "the input's gradient is right; θ's gradient: " + (slip or message)


def _backward_cases(rng: np.random.Generator, shapes=((1, 1, 4, 5, 3, 4, 0.2, 1.0, False),
                                                      (2, 2, 5, 6, 7, 5, 0.5, 1.0, False),
                                                      (1, 2, 5, 6, 4, 4, 0.3, 1.0, True),
                                                      (1, 1, 5, 6, 4, 4, 0.0, 1.0, False),
                                                      (1, 1, 6, 6, 16, 16, 0.1, 0.25, False),
                                                      (2, 2, 5, 4, 6, 6, 2.5, 1.0, True))):
    """``(N, C, H, W, H_out, W_out, θ spread, zoom, align_corners)``; spread 0 is the identity (at sizes where
    no sampling point sits on a pixel centre but the exact ends of align_corners=True: lesson 4's kink would compare
    rounding); a zoom below 1 magnifies: many output pixels – lanes of one program – add into one input pixel,
    where a plain load-add-store loses additions even under the interpreter."""
    for k, (n, c, h, w, h_out, w_out, spread, zoom, align) in enumerate(shapes):
        dtype = torch.float32 if k == 1 else torch.float64
        theta = random_theta(rng, n, spread, dtype=dtype) if spread else torch.eye(2, 3, dtype=dtype).repeat(n, 1, 1)
        theta[:, :, :2] *= zoom
        what = " – zoomed in: many outputs per input pixel" if zoom < 1 else ""
        what += " (reads far outside the image)" if spread > 1 else ""
        yield on_kernel_device(Case(
            f"grad_output (N={n}, C={c}, H_out={h_out}, W_out={w_out}) {str(dtype)[6:]}, input (H={h}, W={w}), "
            + (f"θ spread {spread}" if spread else "θ the identity") + f"{what}, align_corners={align}",
            (tensor(rng, n, c, h_out, w_out, dtype=dtype), tensor(rng, n, c, h, w, dtype=dtype), theta, align),
            within=checked_memory))


def _backward_hidden(rng: np.random.Generator):  # several programs, 1-pixel sides, a strong zoom, the identity
    return _backward_cases(rng, ((1, 1, 30, 30, 36, 33, 0.3, 1.0, True), (2, 1, 9, 1, 5, 7, 0.7, 1.0, False),
                                 (2, 1, 9, 1, 5, 7, 0.7, 1.0, True), (1, 3, 3, 3, 20, 20, 0.05, 0.1, False),
                                 (1, 2, 5, 6, 4, 4, 0.0, 1.0, True), (3, 2, 7, 5, 4, 6, 0.6, 1.0, True)))


register(exercise("07.affine_input_gradient", reference=_backward_reference, cases=_backward_cases,
                  hidden_cases=_backward_hidden, compare=_compare_backward, forbidden=(
                      'stn_course.gpu.affine.affine_sample', 'stn_course.gpu.affine.unfused_affine_sample',
                      'stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample',
                      'stn_course.autograd.bilinear_sample_analytic', 'torch.autograd.grad', *GRID_SAMPLE,
                      *AFFINE_GRID)))

# ---------------------------------------------------------------------------------------------------------------
# 07.kernel_address (the element a kernel's load reaches with int32 indices and 64-bit pointers, for tensors of more
# than 2³¹ elements)
# ---------------------------------------------------------------------------------------------------------------


def _int32(value: int) -> int:
    """What a 32-bit signed register holds of ``value``: two's complement, ``[−2³¹, 2³¹)``."""
    return (value + 2**31) % 2**32 - 2**31


def _int32_address_reference(index, shape) -> int:
    """The element (from ``inp``) that ``tl.load(inp + (n * C + c) * H * W + y * W + x)`` reaches: each int32 chain
    wraps on its own (within one chain wrapping once equals wrapping after every step, arithmetic modulo 2³² being
    a ring), and joins the 64-bit pointer separately – not the exact position wrapped once."""
    (n, c, y, x), (_, channels, h, w) = index, shape
    return _int32((n * channels + c) * h * w) + _int32(y * w) + x


def _compare_int(expected: int, actual, case: Case) -> tuple[bool, float, str]:
    """Exactly the reference's integer, as a Python ``int`` (a NumPy or tensor integer is converted first)."""
    if isinstance(actual, torch.Tensor) and actual.numel() == 1 and not actual.is_floating_point():
        actual = int(actual.item())
    if isinstance(actual, np.integer):
        actual = int(actual)
    if isinstance(actual, bool) or not isinstance(actual, int):
        return False, float("inf"), f"expected an integer address, got {type(actual).__name__} {actual!r}"[:120]
    return compare(expected, actual, rtol=0.0, atol=0.0)


def _address_cases(rng: np.random.Generator, shapes=((1, 1, 4, 4), (256, 3, 224, 224), (3, 1, 32768, 32768),
                                                     (16, 64, 2048, 2048), (2, 1, 40000, 40000))):
    """The first and the last element of every shape, and one drawn in between (shapes past 2³¹ elements: a
    batch of large images whose starts wrap; two planes whose starts and rows fit in int32 although their sum does
    not – the load is right there, the position wrapped once is not; no tensor is made)."""
    for shape in shapes:
        last = tuple(s - 1 for s in shape)
        drawn = tuple(int(rng.integers(0, s)) for s in shape)
        for index in ((0, 0, 0, 0), drawn, last):
            total = shape[0] * shape[1] * shape[2] * shape[3]
            yield Case(f"index (n, c, y, x) = {index} of a tensor of shape {shape} ({total:.3g} elements)",
                       (index, shape))


def _address_hidden(rng: np.random.Generator):
    return _address_cases(rng, ((2, 1, 1, 2**30), (64, 64, 512, 512), (1, 2**20, 2**11, 3), (7, 3, 46341, 46341),
                                (5, 7, 40000, 30000), (1, 1, 65536, 65536)))  # the last: one plane, y·W wraps


register(exercise("07.kernel_address", reference=_int32_address_reference, cases=_address_cases,
                  hidden_cases=_address_hidden, compare=_compare_int))

# ---------------------------------------------------------------------------------------------------------------
# 07.wave_efficiency (tuning: a launch runs in waves of sms · per_sm programs; the last one may be nearly empty, and
# the last program of every image partly masked)
# ---------------------------------------------------------------------------------------------------------------

#: Streaming multiprocessors of the lesson's GPUs (NVIDIA's Turing, A100 and H100 architecture whitepapers).
SMS = {"T4": 40, "A100": 108, "H100 SXM": 132}


def _wave_efficiency_reference(n: int, h_out: int, w_out: int, block: int, sms: int, per_sm: int) -> float:
    """The launch's output pixels over the lane-slots its waves take: ``n·h_out·w_out / (waves · slots · block)``,
    with ``n · ceil(h_out·w_out / block)`` programs (every image tiled on its own)."""
    programs = n * -(-(h_out * w_out) // block)
    slots = sms * per_sm
    return n * h_out * w_out / (-(-programs // slots) * slots * block)


def _wave_cases(rng: np.random.Generator, setups=((8, 224, 224, 256, "H100 SXM", 8),
                                                  (8, 224, 224, 1024, "H100 SXM", 8), (1, 28, 28, 256, "H100 SXM", 4),
                                                  (265, 16, 17, 256, "H100 SXM", 4))):
    """``(N, H_out, W_out, BLOCK, GPU, programs per SM)``: the lesson's H100 case, a larger block, one small image
    (a single, nearly empty wave, and masked lanes), a batch whose per-image masked tails add a wave."""
    for n, h_out, w_out, block, gpu_name, per_sm in setups:
        sms = SMS[gpu_name]
        yield Case(f"n={n}, h_out={h_out}, w_out={w_out}, block={block}, sms={sms} ({gpu_name}), per_sm={per_sm}",
                   (n, h_out, w_out, block, sms, per_sm))


def _wave_hidden(rng: np.random.Generator):  # other GPUs; every wave exactly full; a masked tail per image, once
    return _wave_cases(rng, ((8, 224, 224, 512, "T4", 8), (64, 128, 128, 256, "A100", 8),  # where it adds a wave
                             (27, 64, 64, 128, "A100", 4), (3, 17, 19, 64, "T4", 16),
                             (256, 224, 224, 256, "H100 SXM", 16), (55, 30, 30, 128, "A100", 4)))


register(exercise("07.wave_efficiency", reference=_wave_efficiency_reference, cases=_wave_cases,
                  hidden_cases=_wave_hidden, compare=AnswerCompare(rtol=1e-12, atol=1e-12, direction=True)))
