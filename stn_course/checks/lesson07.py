"""Checks for lesson 7 – the GPU path: the bytes model (and the question what share fusing saves), a program's tile,
the kernel's index arithmetic, the fused forward kernel, a Questions choice (where a seeded GPU run stops being
bit-reproducible), the backward's input gradient with atomic additions, a choice about coalescing, the address
a kernel computes in int32 for tensors past 2³¹ elements, the busy share of a launch's waves (tuning), and the
largest speedup the bytes model allows fusion over a training step (the roofline).

The kernel exercises' cases are built on the kernel's device (:func:`.kernels.on_kernel_device`: CUDA tensors on a
GPU, CPU tensors under Triton's interpreter – the grader's sandbox sets ``TRITON_INTERPRET=1``); the lesson's
kernels are declared with :func:`.kernels.jit_exercise`, so an unwritten stub reports "not implemented yet" before
anything is compiled.

References: :func:`stn_course.gpu.traffic.sampler_traffic` (the bytes model, also behind ``07.fusion_bound``),
:func:`stn_course.gpu.indexing.program_pixels` and :func:`~stn_course.gpu.indexing.source_pixels` (the index
arithmetic, tested against ``F.affine_grid``), and :func:`stn_course.gpu.affine.unfused_affine_sample` (torch's ``F.affine_grid`` +
``F.grid_sample``) for the kernel. The kernel's cases are small: without a GPU the learner's Triton kernel runs
through Triton's interpreter (the grader's sandbox sets ``TRITON_INTERPRET=1``), with every load and store checked
against the launch's tensors (:func:`stn_course.gpu.bounds.checked_memory`): a store without ``mask=`` fails with
a message instead of corrupting the process – the notebook's kernel would die. Float64 cases are compared to 1e-12,
so a kernel that rounds through float32 fails them; ``sampler_bytes`` (forward and backward passes) must return the
``int`` the text names.
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
from .questions import AnswerCompare, Choice
from .registry import Case, register

# ---------------------------------------------------------------------------------------------------------------
# 07.sampler_bytes (forward and backward: which tensors the backward reads again is lesson 4's eq. 6 and 7)
# ---------------------------------------------------------------------------------------------------------------


def _bytes_reference(input_shape, out_size, element_size=4, fused=False, backward=False):
    return sampler_traffic(input_shape, out_size, element_size, fused, backward).total


def _compare_bytes(expected: int, actual, case: Case) -> tuple[bool, float, str]:
    """Exactly the reference's count, as the Python ``int`` the text asks for (a count of bytes is not a float)."""
    if isinstance(actual, bool) or not isinstance(actual, int):
        shown = f"{type(actual).__name__} {actual!r}"[:80]
        return False, float("inf"), (f"expected a Python int (a count of bytes), got {shown}: count with integers "
                                     "(// rather than /, no float factors) or convert with int(...)")
    return compare(expected, actual, rtol=0.0, atol=0.0)


def _bytes_cases(rng: np.random.Generator, shapes=((1, 1, 1, 1, 1, 1), (2, 3, 5, 4, 6, 7), (1024, 1, 60, 60, 60, 60),
                                                   (256, 3, 224, 224, 224, 224), (8, 64, 28, 28, 14, 14))):
    for k, (n, c, h, w, h_out, w_out) in enumerate(shapes):
        element_size = (4, 8, 4, 2, 4)[k % 5]
        for backward in (False, True):
            for fused in (False, True):
                yield Case(f"input_shape=({n}, {c}, {h}, {w}), out_size=({h_out}, {w_out}), "
                           f"element_size={element_size}, fused={fused}, backward={backward}",
                           ((n, c, h, w), (h_out, w_out), element_size, fused, backward))


def _bytes_hidden(rng: np.random.Generator):
    return _bytes_cases(rng, ((3, 2, 1, 9, 4, 1), (1, 5, 17, 3, 2, 29), (64, 16, 32, 32, 64, 64)))


register(exercise("07.sampler_bytes", reference=_bytes_reference, cases=_bytes_cases, hidden_cases=_bytes_hidden,
                  compare=_compare_bytes, forbidden=('stn_course.gpu.traffic.sampler_traffic',)))

# ---------------------------------------------------------------------------------------------------------------
# 07.saved_share (predict, then run: a question whose answer is checked, never shown)
# ---------------------------------------------------------------------------------------------------------------


def _saved_share_reference(channels: int) -> float:
    """The bytes model's saved share for an output as large as its input (any N, H, W, element size: it cancels)."""
    shape = (1, channels, 5, 7)
    unfused, fused = (sampler_traffic(shape, shape[2:], 4, f).total for f in (False, True))
    return 1 - fused / unfused


def _saved_share_cases(rng: np.random.Generator, channels=(1, 3)):  # the lesson's table: one and three channels
    for c in channels:
        yield Case(f"channels={c}", (c,))


def _saved_share_hidden(rng: np.random.Generator):  # a copied 2/3 or a table read off does not score
    return _saved_share_cases(rng, (2, 5, 64, 1000))


register(exercise("07.saved_share", reference=_saved_share_reference, cases=_saved_share_cases,
                  hidden_cases=_saved_share_hidden, compare=AnswerCompare(atol=1e-9, direction=True),
                  forbidden=('stn_course.gpu.traffic.sampler_traffic',)))

# ---------------------------------------------------------------------------------------------------------------
# 07.program_pixels
# ---------------------------------------------------------------------------------------------------------------


def _tiles_cases(rng: np.random.Generator, setups=((0, 8, 3, 4), (1, 8, 3, 4), (0, 16, 2, 3), (3, 4, 5, 1),
                                                   (2, 64, 9, 17), (0, 1, 1, 1))):
    for pid, block, h_out, w_out in setups:
        yield Case(f"pid={pid}, block={block}, h_out={h_out}, w_out={w_out}", (pid, block, h_out, w_out))


def _tiles_hidden(rng: np.random.Generator):
    return _tiles_cases(rng, ((7, 32, 15, 17), (0, 256, 1, 300), (12, 2, 5, 5)))


register(exercise("07.program_pixels", reference=program_pixels, cases=_tiles_cases, hidden_cases=_tiles_hidden,
                  forbidden=('stn_course.gpu.indexing.program_pixels',)))

# ---------------------------------------------------------------------------------------------------------------
# 07.source_pixels
# ---------------------------------------------------------------------------------------------------------------


def _source_cases(rng: np.random.Generator, setups=((5, 7, 4, 6, False), (5, 7, 4, 6, True), (1, 9, 3, 1, False),
                                                    (6, 6, 1, 1, True), (12, 8, 10, 16, False))):
    for k, (h, w, h_out, w_out, align_corners) in enumerate(setups):
        theta = random_theta(rng, 1, spread=0.5 + 0.5 * k)[0]
        count = max(1, h_out * w_out // 2)
        rows = torch.from_numpy(rng.integers(0, h_out, count))
        cols = torch.from_numpy(rng.integers(0, w_out, count))
        if k % 2:  # a 2-D block of lanes, the first at the corner
            rows, cols = rows.view(1, -1), cols.view(1, -1)
            rows[0, 0], cols[0, 0] = h_out - 1, 0
        yield Case(f"theta (2, 3) float64, {rows.numel()} output pixels of shape {tuple(rows.shape)}, input (H, W) = "
                   f"({h}, {w}), output ({h_out}, {w_out}), align_corners={align_corners}",
                   (theta, rows, cols, (h, w), (h_out, w_out), align_corners))


def _source_hidden(rng: np.random.Generator):
    return _source_cases(rng, ((1, 1, 5, 3, True), (31, 2, 9, 40, False), (7, 13, 1, 8, True), (3, 30, 17, 1, False)))


register(exercise("07.source_pixels", reference=source_pixels, cases=_source_cases, hidden_cases=_source_hidden,
                  forbidden=('stn_course.gpu.indexing.source_pixels', 'stn_course.grids.affine_grid',
                  'stn_course.grids.base_grid', 'stn_course.grids.pixel_centres', *AFFINE_GRID)))

# ---------------------------------------------------------------------------------------------------------------
# 07.fused_affine_sample
# ---------------------------------------------------------------------------------------------------------------


# float64 cases are compared to 1e-12: a kernel that computes in float32 inside is off by ~1e-5 there
TOLERANCES = {torch.float32: 1e-5, torch.float64: 1e-12}


def _compare_kernel(expected: torch.Tensor, actual, case: Case) -> tuple[bool, float, str]:
    """The reference's output to the tolerance of the input's dtype (:data:`TOLERANCES`): a float64 input is
    sampled in float64 throughout."""
    tolerance = TOLERANCES.get(expected.dtype, 1e-5)
    return compare(expected, actual, rtol=tolerance, atol=tolerance)


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
                  hidden_cases=_fused_hidden, compare=_compare_kernel, forbidden=('stn_course.gpu.affine.affine_sample',
                  'stn_course.gpu.affine.unfused_affine_sample', 'stn_course.sampling.bilinear_sample',
                  'stn_course.sampling.grid_sample', 'stn_course.autograd.bilinear_sample_analytic', *GRID_SAMPLE,
                  *AFFINE_GRID)))


# ---------------------------------------------------------------------------------------------------------------
# 07.nondeterminism_source
# a "predict, before you read on" multiple choice in the backward section, checked without showing the answer
# ---------------------------------------------------------------------------------------------------------------


def _nondeterminism_reference() -> str:
    return "b"  # the backward's atomic scatter into the input gradient: the one sum whose order nobody fixes


def _no_arguments(rng: np.random.Generator):
    yield Case("your choice", ())


register(exercise("07.nondeterminism_source", reference=_nondeterminism_reference, cases=_no_arguments,
                  hidden_cases=_no_arguments, compare=Choice("a", "b", "c", "d")))


# ---------------------------------------------------------------------------------------------------------------
# 07.affine_input_gradient (the backward's scatter with tl.atomic_add, written by the learner: a kernel exercise)
# ---------------------------------------------------------------------------------------------------------------


def _input_gradient_reference(grad_output: torch.Tensor, theta: torch.Tensor, in_size) -> torch.Tensor:
    """∂L/∂input of torch's two passes for this ``grad_output`` (the sampler is linear in its input, so the
    input's values do not matter): ``(N, C, H_out, W_out), (N, 2, 3), (H, W) -> (N, C, H, W)``."""
    n, c, h_out, w_out = grad_output.shape
    leaf = torch.zeros(n, c, *in_size, dtype=grad_output.dtype, device=grad_output.device, requires_grad=True)
    with torch.enable_grad():
        out = unfused_affine_sample(leaf, theta, (h_out, w_out))
        (grad,) = torch.autograd.grad(out, leaf, grad_output)
    return grad


def _input_gradient_cases(rng: np.random.Generator, shapes=((1, 1, 4, 5, 3, 4, 0.2, 1.0),
                                                            (2, 2, 5, 6, 7, 5, 0.5, 1.0),
                                                            (1, 1, 6, 6, 16, 16, 0.1, 0.25),
                                                            (1, 2, 5, 4, 6, 6, 2.5, 1.0))):
    """``(N, C, H, W, H_out, W_out, θ spread, zoom)``; a zoom below 1 magnifies: many output pixels – lanes of one
    program – add into one input pixel, where a plain load-add-store loses additions even under the interpreter."""
    for k, (n, c, h, w, h_out, w_out, spread, zoom) in enumerate(shapes):
        dtype = torch.float32 if k == 1 else torch.float64
        theta = random_theta(rng, n, spread, dtype=dtype)
        theta[:, :, :2] *= zoom
        what = " – zoomed in: many outputs per input pixel" if zoom < 1 else ""
        yield on_kernel_device(Case(
            f"grad_output (N={n}, C={c}, H_out={h_out}, W_out={w_out}) {str(dtype)[6:]}, in_size=({h}, {w}), "
            f"θ spread {spread}{what}" + (" (reads far outside the image)" if spread > 1 else ""),
            (tensor(rng, n, c, h_out, w_out, dtype=dtype), theta, (h, w)), within=checked_memory))


def _input_gradient_hidden(rng: np.random.Generator):  # several programs, 1-pixel sides, a strong zoom
    return _input_gradient_cases(rng, ((1, 1, 30, 30, 36, 33, 0.3, 1.0), (2, 1, 9, 1, 5, 7, 0.7, 1.0),
                                       (1, 3, 3, 3, 20, 20, 0.05, 0.1)))


register(exercise("07.affine_input_gradient", reference=_input_gradient_reference, cases=_input_gradient_cases,
                  hidden_cases=_input_gradient_hidden, compare=_compare_kernel, forbidden=(
                      'stn_course.gpu.affine.affine_sample', 'stn_course.gpu.affine.unfused_affine_sample',
                      'stn_course.sampling.bilinear_sample', 'stn_course.sampling.grid_sample',
                      'stn_course.autograd.bilinear_sample_analytic', 'torch.autograd.grad', *GRID_SAMPLE,
                      *AFFINE_GRID)))

# ---------------------------------------------------------------------------------------------------------------
# 07.kernel_address (the address a kernel computes in 32-bit integers, for tensors of more than 2³¹ elements)
# ---------------------------------------------------------------------------------------------------------------


def _int32_address_reference(index, shape) -> int:
    """``((n·C + c)·H + y)·W + x`` as a kernel computing in int32 gets it: the exact value wrapped to
    ``[−2³¹, 2³¹)`` (two's complement; wrapping after every step gives the same, arithmetic modulo 2³² being a
    ring)."""
    (n, c, y, x), (_, channels, h, w) = index, shape
    exact = ((n * channels + c) * h + y) * w + x
    return (exact + 2**31) % 2**32 - 2**31


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
                                                     (16, 64, 2048, 2048), (5, 7, 40000, 30000))):
    """The first and the last element of every shape, and one drawn in between (shapes past 2³¹ elements: a
    batch of large images, or one huge feature map – no tensor is made)."""
    for shape in shapes:
        last = tuple(s - 1 for s in shape)
        drawn = tuple(int(rng.integers(0, s)) for s in shape)
        for index in ((0, 0, 0, 0), drawn, last):
            total = shape[0] * shape[1] * shape[2] * shape[3]
            yield Case(f"index (n, c, y, x) = {index} of a tensor of shape {shape} ({total:.3g} elements)",
                       (index, shape))


def _address_hidden(rng: np.random.Generator):
    return _address_cases(rng, ((2, 1, 1, 2**30), (64, 64, 512, 512), (1, 2**20, 2**11, 3), (7, 3, 46341, 46341)))


register(exercise("07.kernel_address", reference=_int32_address_reference, cases=_address_cases,
                  hidden_cases=_address_hidden, compare=_compare_int))

# ---------------------------------------------------------------------------------------------------------------
# 07.coalescing (a choice: which accesses of a 1-D tile are coalesced under a 90° rotation)
# ---------------------------------------------------------------------------------------------------------------


def _coalescing_reference() -> str:
    return "b"  # the stores are consecutive whatever θ; a 90° rotation turns an output row into an input column


register(exercise("07.coalescing", reference=_coalescing_reference, cases=_no_arguments, hidden_cases=_no_arguments,
                  compare=Choice("a", "b", "c", "d")))

# ---------------------------------------------------------------------------------------------------------------
# 07.wave_efficiency (tuning: a launch runs in waves of sms · per_sm programs; the last one may be nearly empty)
# ---------------------------------------------------------------------------------------------------------------

#: Streaming multiprocessors of the lesson's GPUs (NVIDIA's Turing, A100 and H100 architecture whitepapers).
SMS = {"T4": 40, "A100": 108, "H100 SXM": 132}


def _wave_efficiency_reference(n: int, h_out: int, w_out: int, block: int, sms: int, per_sm: int) -> float:
    """``programs / (waves · slots)``: the programs of the launch over the slot time its waves take."""
    programs = n * -(-(h_out * w_out) // block)
    slots = sms * per_sm
    return programs / (-(-programs // slots) * slots)


def _wave_cases(rng: np.random.Generator, setups=((8, 224, 224, 256, "H100 SXM", 8),
                                                  (8, 224, 224, 1024, "H100 SXM", 8), (1, 28, 28, 256, "H100 SXM", 4))):
    """``(N, H_out, W_out, BLOCK, GPU, programs per SM)``: the lesson's H100 case, a larger block, one small image
    (a single, nearly empty wave)."""
    for n, h_out, w_out, block, gpu_name, per_sm in setups:
        sms = SMS[gpu_name]
        yield Case(f"n={n}, h_out={h_out}, w_out={w_out}, block={block}, sms={sms} ({gpu_name}), per_sm={per_sm}",
                   (n, h_out, w_out, block, sms, per_sm))


def _wave_hidden(rng: np.random.Generator):  # other GPUs; every wave exactly full; a masked tail per image
    return _wave_cases(rng, ((8, 224, 224, 512, "T4", 8), (64, 128, 128, 256, "A100", 8),
                             (27, 64, 64, 128, "A100", 4), (3, 17, 19, 64, "T4", 16),
                             (256, 224, 224, 256, "H100 SXM", 16)))


register(exercise("07.wave_efficiency", reference=_wave_efficiency_reference, cases=_wave_cases,
                  hidden_cases=_wave_hidden, compare=AnswerCompare(rtol=1e-12, atol=1e-12, direction=True)))

# ---------------------------------------------------------------------------------------------------------------
# 07.fusion_bound (the roofline: the bandwidth cancels in the ratio of a training step's two times)
# ---------------------------------------------------------------------------------------------------------------


def _fusion_bound_reference(input_shape, out_size) -> float:
    """ATen's forward + backward bytes over the fused kernels' (float32; the element size cancels too)."""
    def both_passes(fused: bool) -> int:
        return sum(sampler_traffic(input_shape, out_size, 4, fused, backward).total for backward in (False, True))

    return both_passes(False) / both_passes(True)


def _fusion_cases(rng: np.random.Generator, setups=((256, 1, 224, 224, 224, 224), (8, 64, 224, 224, 224, 224))):
    """The roofline table's shapes (output as large as the input)."""
    for n, c, h, w, h_out, w_out in setups:
        yield Case(f"input_shape=({n}, {c}, {h}, {w}), out_size=({h_out}, {w_out})", ((n, c, h, w), (h_out, w_out)))


def _fusion_hidden(rng: np.random.Generator):  # other channel counts; outputs smaller and larger than the input
    return _fusion_cases(rng, ((4, 3, 64, 64, 64, 64), (2, 16, 100, 80, 50, 40), (1, 1, 28, 28, 60, 60),
                               (32, 1000, 7, 7, 7, 7)))


register(exercise("07.fusion_bound", reference=_fusion_bound_reference, cases=_fusion_cases,
                  hidden_cases=_fusion_hidden, compare=AnswerCompare(rtol=1e-9, atol=1e-12, direction=True),
                  forbidden=('stn_course.gpu.traffic.sampler_traffic',)))
