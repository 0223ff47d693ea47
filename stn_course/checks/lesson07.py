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


register(exercise("07.program_reads", reference=_program_reads_reference, cases=_reads_cases,
                  hidden_cases=_reads_hidden, forbidden=(
                      'stn_course.gpu.indexing.source_pixels', 'stn_course.gpu.indexing.program_pixels',
                      'stn_course.grids.affine_grid', 'stn_course.grids.base_grid', 'stn_course.grids.pixel_centres',
                      *AFFINE_GRID)))

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
