# ---
# lesson:
#   checks: stn_course.checks.lesson07
#   figures: stn_course.plotting.lesson07
#   explorers: stn_course.widgets.lesson07
#   budget_s: 240
#   requires:
#   - triton
#   dashboard:
#     intro: 'The fused affine kernel cuts the output into programs of `BLOCK` pixels. Pick one: the picture''s left panel
#       shows the output pixels it computes, the right one the input pixels it reads (darker red: more of its corner reads
#       land there – in the backward, that many atomic additions to one address); under the controls, the bytes one
#       forward pass moves with and without the sampling grid.'
#     code: |
#       from stn_course.images import sample_image
#       widgets.kernel_explorer(sample_image('grace_hopper', size=32, gray=True))
#   claims:
#   - text: the grid's 16 bytes of traffic per pixel
#     holds: sampler_bytes((1, 1, 1, 1), (1, 1), 4) - sampler_bytes((1, 1, 1, 1), (1, 1), 4, fused=True) == 16
#   - text: it reads a thin slanted strip of the input, a few pixels thick. Its corner reads land on several times
#       fewer distinct pixels than there are reads
#     holds: len(read_pixels) * 3 < 4 * int(live7.sum()) and len(set(rows7[live7].tolist())) == 2
#   - text: For one channel, fusing removes two thirds of the forward traffic
#     holds: abs(saved_one_channel - 2 / 3) < 1e-12
#   - text: 'channels 64: fusing saves less than 3 % of the bytes'
#     why: an Explore instruction, verified on the explorer by tests/test_try_this.py
#   - text: a square tile – 16 × 16 output pixels per program
#     why: a tile shape, the question's (256 lanes, as the 1-D tile)
#   - text: a 1 × 256 row or a 16 × 16 square
#     why: the two tile shapes the code cell counts, chosen there
#   - text: the fused forward of one channel needs a third of the ATen forward's bytes
#     holds: abs(predictions[ROOFLINE_SHAPES[0], 'fused forward', 'T4'] / predictions[ROOFLINE_SHAPES[0], 'ATen forward',
#       'T4'] - 1 / 3) < 1e-12
#   - text: with 64 channels the two are almost equal
#     holds: predictions[ROOFLINE_SHAPES[1], 'fused forward', 'T4'] / predictions[ROOFLINE_SHAPES[1], 'ATen forward', 'T4']
#       > 0.95
#   - text: In the 16 × 64 × 2048² batch, image 8 starts exactly at
#     holds: kernel_address((8, 0, 0, 0), big) == -2**31 and big == (16, 64, 2048, 2048)
#   - text: the last element of two 40000² planes, at about
#     holds: kernel_address((1, 0, 39999, 39999), two_planes) == 2 * 40000**2 - 1 and abs(2 * 40000**2 - 3.2e9) < 1
#   - text: 'The square tile turns each warp into two short rows, which after the rotation are two short columns: fewer
#       segments per warp'
#     holds: tile_counts['90°', (16, 16)][0] < tile_counts['90°', (1, 256)][0] and tile_counts['90°', (16, 16)][1] <
#       tile_counts['90°', (1, 256)][1]
#   - text: 'there the square tile is worse than the row – each warp''s two short rows touch 4 segments instead of 1,
#       the program 32 instead of 8'
#     holds: tile_counts['identity', (16, 16)] == (4.0, 32) and tile_counts['identity', (1, 256)] == (1.0, 8)
#   - text: a block of 256 keeps almost every slot busy at four programs per SM and leaves a quarter of them idle at
#       eight
#     holds: wave_table['H100 SXM', 4, 256] > 0.98 and abs(wave_table['H100 SXM', 8, 256] - 0.75) < 0.01
#   - text: the smallest block, 128, is best or tied-best on every GPU at both occupancies
#     holds: smallest_best and BLOCKS[0] == 128
#   - text: 'on the T4 from 1024 at four programs per SM and from 512 at eight, on the H100 from 512 and from 256, on
#       the A100 only 1024 at eight per SM'
#     holds: 'first_loss == {("T4", 4): 1024, ("T4", 8): 512, ("H100 SXM", 4): 512, ("H100 SXM", 8): 256, ("A100", 4):
#       None, ("A100", 8): 1024}'
#   - text: every block leaves the same tenth idle
#     holds: all(abs(wave_table['A100', 4, b] - 0.9) < 0.01 for b in (128, 256, 512, 1024))
#   - text: at least 1.3× as fast as ATen's
#     why: the goal issue 24 sets for a GPU run (quoted, not a measurement)
#   - text: at most about 1.03× the speed of ATen's
#     holds: 1.02 < goal_bound < 1.03
#   - text: about 1.27× less
#     holds: abs(1.3 / goal_bound - 1.27) < 0.005
#   exercises:
#     07.fusion_bound:
#       title: 'predict: the most fusion can gain over a training step, from the bytes alone'
#       points: 4
#       hint: >-
#         Build the model tensor by tensor, for the four passes: which tensors each kernel reads and writes, and how
#         often each crosses the bus. For the backward, go back to lesson 4's eq. 6 and 7: what does each gradient
#         multiply by – which tensors must the backward read again, although the forward already read them? A
#         tensor that one kernel writes and the next reads crosses twice, gradients too. Check by hand: one channel,
#         the output as large as the input, then 64 channels. "Too low" means you have missed a crossing of the
#         unfused passes (or counted one too many of the fused).
#       recipe: >-
#         elements: image = N·C·H·W, output = N·C·H_out·W_out, grid = N·H_out·W_out·2. Forward, ATen: grid written
#         and read, image read, output written; fused: image + output. Backward: grad_output read, the input read
#         (eq. 7 needs its values for θ's gradient), the input gradient written twice (zero-fill, then the sums) –
#         fused that is all; ATen's grid_sample backward also reads the grid and writes the grid's gradient, which
#         affine_grid's backward reads back (3 grids). Return (ATen forward + backward) / (fused forward + backward);
#         the bandwidth and the element size cancel. With the output as large as the input it is (6C + 10) / 6C.
#       rtol: 1.0e-09
#       atol: 1.0e-12
#     07.program_reads:
#       title: where one program reads, without a grid (and what a colleague's tile gets wrong)
#       points: 3
#       hint: >-
#         Two halves: which output pixel each lane computes, then where that pixel reads. For the first, list what
#         the colleague's test sizes share and yours do not, and follow a few lanes by hand on a size that breaks
#         it. For the second, three steps per pixel: where its centre sits in normalized units (which points are ±1
#         in each convention?), θ times that point, the same convention backwards on the input's side. A side of
#         one pixel has no first and last centre to put at ±1.
#       recipe: >-
#         offsets = pid·block + arange(block); rows = offsets // W_out, cols = offsets % W_out (the colleague's h_out
#         works for square outputs only); live = offsets < H_out·W_out (his <= lets the lane past the last pixel
#         load and store). align_corners=False: x_t = (2 j + 1) / W_out − 1 and x = ((x_s + 1) W − 1) / 2; True:
#         x_t = 2 j / (W_out − 1) − 1 (0 for a 1-pixel side) and x = (x_s + 1)(W − 1) / 2; x_s = θ₀₀ x_t + θ₀₁ y_t
#         + θ₀₂, the same for y with θ's second row. Work in theta's dtype, for every lane.
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     07.fused_affine_sample:
#       title: the fused forward kernel
#       points: 3
#       hint: >-
#         Each lane is one output pixel: find where it reads (exercise 2, in tl operations), then for every channel load
#         its four neighbours – masked where they fall outside the image – and blend them.
#       recipe: >-
#         x0 = tl.floor(x), fx = x − x0; the neighbours (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1) with weights
#         (1−fx)(1−fy), fx(1−fy), (1−fx)fy, fx·fy; load each with mask = live & inside and other=0.0 (a neighbour outside
#         the image reads 0); the address of (c, y, x) in image n is ((n·C + c)·H + y)·W + x.
#       rtol: 1.0e-05
#       atol: 1.0e-05
#     07.affine_input_gradient:
#       title: 'the backward kernel: the input''s gradient and θ''s, in both conventions'
#       points: 4
#       hint: >-
#         Two halves. The input's: what does a lane's output gradient add to each neighbour (eq. 6), and when θ
#         magnifies, how many lanes of one program add into one input pixel – what does one vector store keep of
#         repeated addresses? θ's: eq. 7 is a derivative in the input's pixels; bilinear_corners says how a pixel
#         coordinate depends on x_s in each convention (differentiate its two formulas), and x_s on θ. Which way does
#         the sample change as x grows? Does every channel sample at the same point?
#       recipe: >-
#         Per channel: g = tl.load(grad_out …, mask=live, other=0.0); the four corners U with mask live & inside,
#         other=0.0; gx += g·((U10 − U00)(1 − fy) + (U11 − U01) fy), gy += g·((U01 − U00)(1 − fx) + (U11 − U10) fx);
#         tl.atomic_add each corner of grad_in with weight·g. After the channels: gx ·= (W − 1)/2 with ALIGN, W/2
#         without (gy with H); store tl.sum(gx·u), tl.sum(gx·v), tl.sum(gx), then the same for gy, at
#         partial + (n·P + pid)·6 + k.
#       rtol: 1.0e-05
#       atol: 1.0e-05
#     07.wave_efficiency:
#       title: 'waves: the share of a launch''s lanes that compute a pixel'
#       points: 3
#       hint: >-
#         What does the launch pay for, and what does it get? Count what it pays in lane-slots of a wave's time,
#         what it gets in output pixels. Where does something partly used cost as much as a full one – twice? Try
#         one small image, and a batch whose images do not fill their last program.
#       recipe: >-
#         programs = n · ceil(h_out·w_out / block) (the launch grid tiles every image on its own: the masked tail
#         is per image, not per batch); slots = sms · per_sm; waves = ceil(programs / slots); return
#         n·h_out·w_out / (waves · slots · block).
#       rtol: 1.0e-12
#       atol: 1.0e-12
#     07.kernel_address:
#       title: the element a kernel's load reaches, in 32-bit integers
#       points: 2
#       hint: >-
#         Go through the expression as Triton types it, one operation at a time: which results are int32 registers,
#         which are pointers? A 32-bit signed register cannot hold 2³¹; what does it hold instead? Try image 8 of a
#         16 × 64 × 2048² batch, and the last element of a (2, 1, 40000, 40000) input, by hand.
#       recipe: >-
#         int32(v) = (v + 2³¹) mod 2³² − 2³¹. (n·C + c)·H·W is one int32 chain: int32 of its exact value. Adding it to
#         inp gives a 64-bit pointer; y·W is a second int32 term, added to that pointer on its own; x is small.
#         The load reaches int32((n·C + c)·H·W) + int32(y·W) + x – not int32 of the whole position.
#       rtol: 0
#       atol: 0
# ---

# %% [markdown]
# # Lesson 7 – The GPU path
#
# ## Goal
#
# Lessons 2–4 wrote the sampler for clarity. This lesson writes it for a GPU, in **Triton**, and asks what makes a
# GPU kernel fast. The answer for a spatial transformer is not arithmetic – a bilinear sample is a handful of
# multiply-adds – but **memory traffic**: the sampler is *memory-bound*, so the kernel that moves the fewest bytes
# wins. `F.affine_grid` followed by `F.grid_sample` passes the sampling grid from one kernel to the next through
# memory; a **fused** kernel computes each sampling point in registers and never stores the grid.
#
# **You will predict, then build:** from the bytes alone, the most fusion can gain over a training step; where each
# lane of a kernel's program reads, without a grid (repairing a colleague's tile on the way); the fused forward
# kernel itself; and the backward kernel, the input's gradient and θ's – then ask which part of it can make two seeded GPU
# runs differ in their last bits, learn to measure a kernel honestly, and ask what makes it fast: tuning `BLOCK` and
# `num_warps` (and the waves a launch runs in), coalesced memory accesses and 2-D tiles, addresses that overflow
# 32 bits, and a roofline prediction of each kernel's time on named GPUs.
#
# **Package modules:** `stn_course.gpu` – `affine` (the fused kernel, forward and backward, that
# `SpatialTransformer(impl="triton")` uses), `traffic` (the bytes model), `indexing`, `measure` (a fair timer, the
# copy bandwidth); `stn_course.plotting`, `stn_course.widgets`.
# **Prerequisites:** lessons 2 (bilinear sampling, `align_corners`) and 4 (the backward, eq. 6 and 7).
#
# **Where it runs.** With an NVIDIA GPU the kernels run on it. Without one, Triton's **interpreter**
# (`TRITON_INTERPRET=1`, set below before `triton` is imported) runs the very same kernels on CPU tensors, one
# program after another through NumPy: right numbers, small sizes, no speed. Triton ships Linux wheels only
# (`pip install "stn-course[gpu]"`); on macOS or Windows exercises 1, 2, 5 and 6 still run – they need Python and PyTorch
# alone – and the kernel sections need a Linux machine or a hosted notebook.

# %%
FAST = True  # small sizes (the interpreter runs every program in Python); False: larger measurements

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: kernels run on CPU tensors

%matplotlib inline
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch.nn.functional as F
from tqdm.auto import tqdm

from stn_course import gpu, plotting, widgets
from stn_course.checks import check, status
from stn_course.checks.kernels import jit_exercise  # @triton.jit for an exercise: a stub says "not implemented"
from stn_course.gpu.affine import affine_sample as package_affine_sample  # the package's kernel, beside yours
from stn_course.gpu.indexing import source_pixels as package_source_pixels  # exercise 2's arithmetic, any tile
from stn_course.gpu.measure import copy_bandwidth, fixed_threads, time_samples
from stn_course.gpu.traffic import sampler_traffic as package_sampler_traffic  # reads and writes, separately
from stn_course.images import sample_image

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
THREADS = 1  # every CPU timing below runs on this many threads (restored after): timings depend on the count
if gpu.triton_available():
    import triton
    import triton.language as tl
else:
    print("triton is not installed:", gpu.INSTALL_HINT)
torch.manual_seed(0)
where = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "the CPU, through Triton's interpreter"
print("kernels run on:", where)

# %% [markdown]
# ## Theory
#
# ### 1. A GPU, as much as a kernel writer needs
#
# A GPU runs thousands of threads at once, grouped into **programs** (Triton's word; CUDA says *blocks*). All of
# them share the device memory (HBM), which delivers a fixed number of bytes per second, $B$; each also has fast
# on-chip registers and caches. A kernel that moves $Q$ bytes between memory and the chip and does $W$ floating-point
# operations takes at least
#
# $$ t \;\ge\; \max\!\Big(\frac{Q}{B},\; \frac{W}{P}\Big), $$
#
# with $P$ the arithmetic peak – the **roofline** model. Which term wins depends on the **arithmetic intensity**
# $W/Q$: a current data-centre GPU does tens of floating-point operations in the time it moves one byte, so a
# kernel doing fewer than that per byte waits for memory: it is *memory-bound*.
#
# Bilinear sampling of one output value reads four neighbours and blends them with weights shared by all channels:
# a few multiply-adds for every value read and written. Far below the ridge: the sampler is memory-bound, and its
# time is (at best) its bytes divided by $B$. **Count the bytes** and you know what to optimise.
#
# ### 2. The bytes of one forward pass
#
# The model: every time a tensor crosses the memory bus it costs its number of elements times `element_size` bytes
# (θ, six numbers per image, is negligible). A kernel reads each of its inputs once and writes each of its outputs
# once. `F.affine_grid` returns the sampling grid as a tensor in memory; `F.grid_sample` takes that tensor and the
# input image and returns the output. The model treats `affine_grid` as writing only the grid (and its backward as
# reading only the grid's gradient): ATen also builds an $(N, H_\text{out}, W_\text{out}, 3)$ base grid and
# multiplies it by θ, and its backward reads that base grid again – traffic the model leaves out, as if ATen made
# its base grid in registers. The fused kernel computes each
# sampling point in registers, where it costs no traffic at all. This is a lower bound – a kernel that reads an input
# pixel twice because it fell out of the cache moves more – and it is what a good kernel approaches.

# %% [markdown]
# ## Build
#
# ### Exercise 1 – predict: the most fusion can gain over a training step
#
# Training runs the sampler forward *and* backward. At the roofline (§1) a memory-bound pass takes its bytes over
# the bandwidth, so the bytes alone bound what fusing can gain – before any kernel is written. Write
# `fusion_bound(input_shape, out_size)`: by how many times, at most, can the fused kernels' forward + backward be
# faster than ATen's (`F.affine_grid` + `F.grid_sample`, forward + backward), in float32, **on any GPU**?
# `input_shape = (N, C, H, W)`, `out_size = (H_out, W_out)` (it may differ from the input's size); the grid's
# shape is lesson 2's. Return a float.
#
# The model's rules, for both directions: every tensor costs its elements × `element_size` each time a kernel
# reads it and each time a kernel writes it (the caches are ignored); θ and θ's gradient are negligible (a few
# numbers per image); `affine_grid` counts as writing only the grid, and so its backward as reading only the
# grid's gradient (§2: its base grid is left out). A tensor that a kernel fills by *adding* into it from many
# threads must hold zeros before the first addition: a fill writes them – count it – and the kernel then counts as
# writing the tensor once; a tensor whose every element one thread computes is written once. Autograd runs each
# op's backward as a kernel of its own, in reverse order; the fused backward is one kernel. Everything else is
# yours: which gradients each backward kernel produces, which tensors it must read to compute them (lesson 4's
# eq. 6 and 7 say what each gradient multiplies), and which of its outputs are filled by adding. Before the check,
# work out by hand what you expect for one channel and for 64 (output as large as the input): the check asks other
# channel counts, output sizes – smaller and larger than the input, where mixing up the input's and the output's
# tensors changes the answer – and batches.

# %%
def fusion_bound(input_shape, out_size):
    """The largest speedup of the fused forward + backward over ATen's that the bytes model allows:
    ``(N, C, H, W), (H_out, W_out) -> float`` (> 1)."""
    ### BEGIN SOLUTION
    n, c, h, w = input_shape
    h_out, w_out = out_size
    image, output, grid = n * c * h * w, n * c * h_out * w_out, n * h_out * w_out * 2
    # forward: affine_grid writes the grid, grid_sample reads it and the input and writes the output
    aten = (grid + grid + image + output) + (output + image + 2 * image + 3 * grid)
    # backward: grad_output and the input read (eq. 7), the input gradient zero-filled and written; unfused also
    # the grid read, the grid's gradient written and read back by affine_grid's backward
    fused = (image + output) + (output + image + 2 * image)
    return aten / fused  # time = bytes / bandwidth: the bandwidth and the element size cancel
    ### END SOLUTION


# %%
fusion_bound = check("07.fusion_bound", fusion_bound)

# %% [markdown]
# <details><summary>The count, tensor by tensor, and the formula (open after the check passes)</summary>
#
# | pass | reads | writes |
# |---|---|---|
# | `F.affine_grid` | θ | grid: $N \cdot H_\text{out} W_\text{out} \cdot 2$ |
# | `F.grid_sample` | grid, input: $N C H W$ | output: $N C H_\text{out} W_\text{out}$ |
# | fused kernel | θ, input | output |
#
# The grid crosses the bus twice: written by `affine_grid`, read back by `grid_sample`. The backward (eq. 6
# scatters $\partial L / \partial V$ into the input gradient; eq. 7 needs the input's values $U$ around every
# sampling point for the gradient of the sampling point, hence of θ – so the input is read again, although the
# sampler is linear in it):
#
# | pass | reads | writes |
# |---|---|---|
# | `grid_sample` backward | output gradient, grid, input | input gradient (zero-filled, then the sums), grid gradient |
# | `affine_grid` backward | grid gradient | θ's gradient |
# | fused backward | output gradient, θ, input | input gradient (zero-filled, then the sums), θ's partials |
#
# Which output is a scatter: the input's gradient – eq. 6 adds each output pixel's share into four input pixels,
# and many output pixels share an input pixel – so it is zero-filled (one write) and then written with the sums
# (another). The grid's gradient is not: each grid point belongs to one output pixel, whose thread computes its two
# numbers from eq. 7 and writes them once.
#
# Three grids cross the bus in the unfused backward; none in the fused one. At one bandwidth $B$ the ratio of the
# times is the ratio of the bytes, whatever $B$ – and whatever the element size, which multiplies both. Per output
# pixel, with the output as large as the input and in elements: ATen's forward moves $2 + 2 + 2C$, its backward
# $C + 3C + 3 \cdot 2$; the fused ones $2C$ and $4C$. The bound is $(6C + 10) / 6C = 1 + 5 / 3C$: large for one
# channel, close to 1 for many (the table below). The forward alone saves $4 / (4 + 2C)$ of its bytes.
# </details>
#
# The rest of the lesson counts with the package's model, `stn_course.gpu.traffic.sampler_traffic` (the table
# above, as code – reads and writes separately):

# %%
def sampler_bytes(input_shape, out_size, element_size=4, fused=False, backward=False):
    """Bytes of one affine sampling pass (the package's model): ``(N, C, H, W), (H_out, W_out) -> int``."""
    return package_sampler_traffic(input_shape, out_size, element_size, fused, backward).total


SIZES = [(1024, 1, 60, 60), (256, 1, 224, 224), (256, 3, 224, 224), (32, 64, 56, 56)]
print(f"{'input = output':22s} {'unfused MB':>11s} {'fused MB':>9s} {'saved':>7s} {'bound, fwd + bwd':>17s}")
for shape in SIZES:
    unfused, fused = (sampler_bytes(shape, shape[2:], 4, f) for f in (False, True))
    print(f"{str(shape):22s} {unfused / 1e6:11.1f} {fused / 1e6:9.1f} {1 - fused / unfused:7.0%} "
          f"{fusion_bound(shape, shape[2:]):16.2f}×")
saved_one_channel = 1 - sampler_bytes(SIZES[0], (60, 60), fused=True) / sampler_bytes(SIZES[0], (60, 60))
plotting.plot_traffic({f"C={s[1]}, {s[2]}²": (package_sampler_traffic(s, s[2:]),
                                               package_sampler_traffic(s, s[2:], fused=True)) for s in SIZES[1:]});

# %% [markdown]
# The grid has **two** numbers per output pixel, whatever the number of channels $C$, and it crosses the bus twice:
# four numbers per pixel, against $C$ read and $C$ written – $4 / (4 + 2C)$ of the traffic, whatever the sizes and
# the element size. For one channel, fusing removes two thirds of the forward traffic; for three, it still removes a
# large share; for 64 it hardly matters. Spatial transformers usually warp images (one to three channels), which is where the
# fused kernel pays.
#
# **Measure the ceiling.** The bandwidth $B$ is not a number to copy from a data sheet: a large copy reads and
# writes every byte once, so `2 · size / time` is what this device's memory really delivers. Then the ATen sampler's
# *achieved* bandwidth – modelled bytes over measured time – says how far it is from that ceiling. (On a CPU the
# sampler's per-point work competes with memory; on a GPU the achieved fraction is what `bench_gpu.py` reports.)

# %% tags=["skip-when-grading"]
shape = (16, 1, 96, 96) if FAST else (256, 1, 224, 224)
x = torch.rand(shape, device=DEVICE)
theta = (torch.eye(2, 3) + 0.1 * torch.randn(shape[0], 2, 3)).to(DEVICE)


def aten_forward():
    grid = F.affine_grid(theta, x.shape, align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def spread(samples) -> str:
    """min / median / max of timing samples in seconds, as milliseconds."""
    low, mid, high = np.percentile(np.asarray(samples) * 1e3, [0, 50, 100])
    return f"{low:.3g} / {mid:.3g} / {high:.3g} ms (min / median / max of {len(samples)})"


with fixed_threads(THREADS):
    bandwidth = copy_bandwidth(DEVICE, megabytes=64 if FAST else 256)
    aten_samples = time_samples({"aten": aten_forward}, repeats=7, device=DEVICE)["aten"]
seconds = float(np.median(aten_samples))
achieved = sampler_bytes(shape, shape[2:]) / seconds
print(f"{THREADS} thread(s); copy bandwidth of this {DEVICE.type}: {bandwidth / 1e9:.3g} GB/s")
print(f"F.affine_grid + F.grid_sample on {shape}: {spread(aten_samples)}; at the median {achieved / 1e9:.3g} GB/s "
      f"= {100 * achieved / bandwidth:.2g} % of the copy bandwidth")

# %% [markdown]
# ### Programs and tiles
#
# A Triton kernel is a Python function decorated with `@triton.jit`, **launched on a grid of programs**:
# `kernel[grid](arguments)`. Every program runs the same code on a *block* of data at once – Triton's unit is the
# block, not the thread. Inside, `tl.program_id(axis)` says which program this is, and `tl.arange(0, BLOCK)` is the
# vector of lane numbers `0 … BLOCK − 1` (a power of two, known at compile time: `BLOCK: tl.constexpr`).
#
# For the sampler, program `(n, pid)` computes `BLOCK` output pixels of image `n`: the pixels are numbered in the
# order they sit in memory (row-major, as the output tensor stores them), program 0 takes the first `BLOCK` of them,
# program 1 the next `BLOCK`, and so on; lane ℓ of a program takes its ℓ-th pixel. The launch grid is
# `(N, ceil(H_out · W_out / BLOCK))`, so the last program of an image usually runs past the last pixel: its extra
# lanes are **masked** – every load and store takes `mask=live`, so a masked lane never touches memory. A program
# does each operation for all its lanes together – one `tl.load` fetches the values of all `BLOCK` lanes, one
# `tl.store` writes all of them – and on a GPU many programs run at the same time.
#
# ### Where a pixel reads, without a grid
#
# The fused kernel has no grid to read: each lane computes its own sampling point from its row, its column and θ –
# the point `F.affine_grid` would have stored for its pixel, and where it lands among the input's pixels – as
# arithmetic on one pixel's indices, for both `align_corners` conventions, without a grid to lean on.
#
# ### Exercise 2 – where one program reads
#
# Write `program_reads(theta, pid, block, in_size, out_size, align_corners=False)`: for every lane of program `pid`
# of one image (`theta (2, 3)`, `in_size = (H, W)`, `out_size = (H_out, W_out)`), the input pixel coordinates `x`,
# `y` its output pixel samples – what `F.affine_grid` would have stored there, unnormalized to the input's pixels
# (lesson 2's convention: integer coordinates are pixel centres) – in theta's dtype, and the bool mask `live`; each
# of shape `(block,)`. A masked lane still computes its `x` and `y` – the kernel cannot skip the arithmetic, only the
# memory access – so return them for every lane, as the same arithmetic gives them. No grid is made (the check bans
# `F.affine_grid` and the course's grid helpers); it tries every output size `F.affine_grid` accepts, in both
# conventions: whatever your arithmetic does at the extremes, it must do what `F.affine_grid` does.
#
# The tile half is half written: a colleague's function `colleague_pixels(pid, block, h_out, w_out) -> (rows,
# cols, live)` says which output pixel each lane computes. His kernel passes his tests on 4×4 and 32×32 outputs,
# with `BLOCK` 8 and 256, and his printout below looks right; on the sizes your model needs it goes wrong. His code
# is not shown – treat it as a black box, as you would a library's. **Hunt first**, in a cell of your own: find the
# sizes and blocks on which his tile is wrong – each *kind* of failure with the smallest counterexample you can
# make, and what it would do in a kernel – using only what the "Programs and tiles" section says a tile must be.
# Then write yours; the fold after the check names his bugs – compare with your list.

# %%
from stn_course.bug_hunt import colleague_pixels  # a black box: find where it is wrong by trying it

for pid in (0, 1):  # his test: a 4×4 output, BLOCK = 8 – two programs, 16 pixels
    r, c, ok = colleague_pixels(pid, 8, 4, 4)
    print(f"program {pid}: pixels (row, col) {list(zip(r.tolist(), c.tolist()))}, live lanes {int(ok.sum())} of 8")

# %%
def program_reads(theta, pid, block, in_size, out_size, align_corners=False):
    """Where the lanes of program ``pid`` read: ``theta (2, 3)``, ints, ``(H, W)``, ``(H_out, W_out)`` ->
    ``(x, y, live)``, each ``(block,)``: x and y in theta's dtype (every lane), live bool."""
    ### BEGIN SOLUTION
    (h, w), (h_out, w_out) = in_size, out_size
    offsets = pid * block + torch.arange(block)
    i, j = (offsets // w_out).to(theta.dtype), (offsets % w_out).to(theta.dtype)  # row-major: a row is W_out long
    if align_corners:  # ±1 are the centres of the first and last pixel (a 1-pixel side sits at 0)
        xt = 2 * j / (w_out - 1) - 1 if w_out > 1 else torch.zeros_like(j)
        yt = 2 * i / (h_out - 1) - 1 if h_out > 1 else torch.zeros_like(i)
    else:  # ±1 are the outer edges: pixel j's centre is in the middle of its cell of width 2 / W_out
        xt, yt = (2 * j + 1) / w_out - 1, (2 * i + 1) / h_out - 1
    xs = theta[0, 0] * xt + theta[0, 1] * yt + theta[0, 2]
    ys = theta[1, 0] * xt + theta[1, 1] * yt + theta[1, 2]
    if align_corners:
        x, y = (xs + 1) * (w - 1) / 2, (ys + 1) * (h - 1) / 2
    else:
        x, y = ((xs + 1) * w - 1) / 2, ((ys + 1) * h - 1) / 2
    return x, y, offsets < h_out * w_out  # the lane past the last pixel is already outside
    ### END SOLUTION


# %%
program_reads = check("07.program_reads", program_reads)

# %% [markdown]
# <details><summary>The colleague's two bugs, and the derivation (open after the check passes)</summary>
#
# **The tile.** His code was `rows, cols = offsets // h_out, offsets % h_out` and `live = offsets <= h_out *
# w_out`. The pixels are numbered row-major, and a row is $W_\text{out}$ pixels long: row `offset //
# W_out`, column `offset % W_out`. He divided by `h_out` – the same on every square output, which is all he
# tested; on a 24×40 output almost every lane lands in the wrong pixel. And `live = offsets <= h_out * w_out`
# lets the lane numbered exactly $H_\text{out} W_\text{out}$ – one past the last pixel – load and store: invisible
# when the block divides the output (his 16 pixels in two blocks of 8, 1024 in four of 256: no lane reaches that
# number), an out-of-bounds store when it does not. The smallest counterexamples: a 1×2 output (his second pixel
# lands in row 1, column 0 – a row that does not exist), and a 1×1 output with `BLOCK = 2` (lane 1 is live).
#
# **The sampling point.** With `align_corners=False`, ±1 are the outer edges: the $W_\text{out}$ pixels split
# $[-1, 1]$ into cells of width $2 / W_\text{out}$, and pixel $j$'s centre is in the middle of its cell,
# $x_t = \frac{2j + 1}{W_\text{out}} - 1$. With `True`, ±1 are the centres of the first and last pixel,
# $x_t = \frac{2j}{W_\text{out} - 1} - 1$ (and 0 for a side of one pixel, as `F.affine_grid` does). The same for
# $y_t$ with $i$ and $H_\text{out}$. θ maps the point, $x_s = \theta_{00} x_t + \theta_{01} y_t + \theta_{02}$,
# $y_s = \theta_{10} x_t + \theta_{11} y_t + \theta_{12}$, and inverting the same conventions on the input's side
# gives its pixel coordinates,
#
# $$ x = \frac{(x_s + 1) W - 1}{2} \quad (\texttt{False}), \qquad
#    x = \frac{(x_s + 1)(W - 1)}{2} \quad (\texttt{True}). $$
# </details>
#
# Six multiply-adds per output pixel, in registers: this is what replaces the grid's 16 bytes of traffic per pixel
# in float32 (two numbers of 4 bytes, written by `affine_grid` and read back by `grid_sample` – the model of
# exercise 1). The tiles of a 6×7 output with `BLOCK = 16`:

# %%
plotting.plot_program_tiles(6, 7, 16, program=2);

# %%
photo = sample_image("grace_hopper", size=32, gray=True)  # (1, 1, 32, 27)
demo_theta = torch.tensor([[0.55, -0.25, 0.1], [0.25, 0.55, -0.1]])
plotting.plot_program_reads(photo, demo_theta, (32, 32), 64, program=7);
x7, y7, live7 = program_reads(demo_theta.double(), 7, 64, photo.shape[-2:], (32, 32))
rows7 = torch.arange(7 * 64, 8 * 64) // 32  # the output rows of program 7's lanes
corner_reads = {(int(yy) + dy, int(xx) + dx) for xx, yy in zip(x7[live7].floor(), y7[live7].floor())
                for dy in (0, 1) for dx in (0, 1)}
read_pixels = {(r, c) for r, c in corner_reads if 0 <= r < photo.shape[-2] and 0 <= c < photo.shape[-1]}
print(f"program 7: output rows {sorted(set(rows7[live7].tolist()))}, {4 * int(live7.sum())} corner reads "
      f"land on {len(read_pixels)} distinct input pixels")

# %% [markdown]
# One program's 64 points (blue) and the input pixels their four neighbours cover (red, darker where more of its
# corner reads land): with `BLOCK = 64` and 32 columns, a program is two output rows, and it reads a thin slanted
# strip of the input, a few pixels thick. Its corner reads land on several times fewer distinct pixels than there
# are reads (printed above), and neighbouring programs read the strips beside it: the cache serves the repeats –
# that is why "read the input once" is a fair model.
#
# ### Exercise 3 – the fused forward kernel
#
# Write the body of `affine_sample_kernel` so that the launcher below computes exactly what
# `F.grid_sample(input, F.affine_grid(theta, ...))` does – zeros padding, `align_corners=False`, bilinear – in one
# kernel, without a grid. The launcher is given: a launch grid of `(N, ceil(H_out · W_out / BLOCK))` programs
# (axis 0 the image, axis 1 the tile of exercise 2), θ flattened to six numbers per image (`theta + n * 6 + k`),
# every tensor contiguous: element `(n, c, y, x)` of the input is at `inp + ((n·C + c)·H + y)·W + x`, and the output
# likewise with `H_out, W_out`. How a lane gets from its offset to its value is yours to assemble from exercise 2 and
# lesson 2. The constraints: every load and store is masked (the check runs the kernel with every access checked
# against the tensors' bounds); a float64 input is sampled in float64 throughout. The check accepts each value
# when $|\text{yours} - \text{torch}| \le \text{tol} \cdot (1 + |\text{torch}|)$, tol = 1e-12 for float64 and
# 1e-5 for float32, and the "worst error" it prints is that measure, $\max |\text{yours} - \text{torch}| / (1 +
# |\text{torch}|)$ – absolute for small values, relative for large ones. The `tl` operations you need are `tl.program_id`, `tl.arange`, `tl.load(pointer, mask=...,
# other=...)`, `tl.store(pointer, value, mask=...)`, `tl.floor`, `.to(dtype)` and a Python `for c in range(0, C):`
# loop over the channels.
#
# **Predict first** (write it down; the check's cases that read outside the image test it): a lane whose
# sampling point lies at $x = -0.4$, $y = 2$ – left of the first column's centre, inside the image's edge. What
# does `F.grid_sample` with zeros padding return there, in terms of the input's pixel values, and which of your
# four loads must be masked for it? And a lane of the last program past the last output pixel: what may it
# compute, and what must it not do?

# %%
if gpu.triton_available():

    @jit_exercise  # triton.jit, once the body is yours; the stub says "not implemented yet" before any compile
    def affine_sample_kernel(inp, theta, out, C, H, W, H_out, W_out, BLOCK: tl.constexpr):
        ### BEGIN SOLUTION
        n = tl.program_id(0)
        offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        live = offsets < H_out * W_out
        t0 = tl.load(theta + n * 6 + 0)
        t1 = tl.load(theta + n * 6 + 1)
        t2 = tl.load(theta + n * 6 + 2)
        t3 = tl.load(theta + n * 6 + 3)
        t4 = tl.load(theta + n * 6 + 4)
        t5 = tl.load(theta + n * 6 + 5)
        i = (offsets // W_out).to(t0.dtype)
        j = (offsets % W_out).to(t0.dtype)
        xt = (2.0 * j + 1.0) / W_out - 1.0
        yt = (2.0 * i + 1.0) / H_out - 1.0
        x = ((t0 * xt + t1 * yt + t2 + 1.0) * W - 1.0) / 2.0
        y = ((t3 * xt + t4 * yt + t5 + 1.0) * H - 1.0) / 2.0
        x0f = tl.floor(x)
        y0f = tl.floor(y)
        fx = x - x0f
        fy = y - y0f
        x0 = x0f.to(tl.int32)
        y0 = y0f.to(tl.int32)
        in_x0 = (x0 >= 0) & (x0 < W)
        in_x1 = (x0 + 1 >= 0) & (x0 + 1 < W)
        in_y0 = (y0 >= 0) & (y0 < H)
        in_y1 = (y0 + 1 >= 0) & (y0 + 1 < H)
        for c in range(0, C):
            image = inp + (n * C + c) * H * W
            value = (1.0 - fx) * (1.0 - fy) * tl.load(image + y0 * W + x0, mask=live & in_x0 & in_y0, other=0.0)
            value += fx * (1.0 - fy) * tl.load(image + y0 * W + x0 + 1, mask=live & in_x1 & in_y0, other=0.0)
            value += (1.0 - fx) * fy * tl.load(image + (y0 + 1) * W + x0, mask=live & in_x0 & in_y1, other=0.0)
            value += fx * fy * tl.load(image + (y0 + 1) * W + x0 + 1, mask=live & in_x1 & in_y1, other=0.0)
            tl.store(out + (n * C + c) * H_out * W_out + offsets, value, mask=live)
        ### END SOLUTION


def fused_affine_sample(input, theta, out_size):
    """``F.grid_sample(input, F.affine_grid(theta, (N, C, *out_size)))`` (zeros, align_corners=False) in one kernel:
    ``(N, C, H, W), (N, 2, 3), (H_out, W_out) -> (N, C, H_out, W_out)``"""
    input, theta = input.contiguous(), theta.reshape(-1, 6).contiguous().to(input.dtype)
    n, c, h, w = input.shape
    h_out, w_out = out_size
    out = torch.empty(n, c, h_out, w_out, dtype=input.dtype, device=input.device)
    block = gpu.block_size(input.device)  # 256 on a GPU, 1024 under the interpreter (its cost is per program)
    affine_sample_kernel[(n, triton.cdiv(h_out * w_out, block))](input, theta, out, c, h, w, h_out, w_out,
                                                                 BLOCK=block)
    return out


# %%
fused_affine_sample = check("07.fused_affine_sample", fused_affine_sample)

# %% [markdown]
# <details><summary>One way to assemble it, and the prediction (open after the check passes)</summary>
#
# 1. `n = tl.program_id(0)`; the offsets, rows, columns and mask of exercise 2, with `tl.program_id(1)`;
# 2. the six numbers of θ with `tl.load(theta + n * 6 + k)`; the source point of exercise 2, in `tl` arithmetic –
#    the integer rows and columns cast with `.to(t0.dtype)`, or a float64 input is silently computed in float32;
# 3. `x0 = tl.floor(x)`, `fx = x - x0` (and for y); integer corners with `.to(tl.int32)`; for each of the four
#    corners a mask `live & inside the image` – a corner outside reads 0 (`other=0.0`), which *is* zeros padding;
# 4. the weights do not depend on the channel: compute them once, then loop over the channels, load the four
#    neighbours, blend, and `tl.store` at `out + (n·C + c)·H_out·W_out + offset` with `mask=live`.
#
# **The prediction.** At $x = -0.4$, $y = 2$: $x_0 = \lfloor -0.4 \rfloor = -1$, $f_x = 0.6$, $f_y = 0$, so the
# sample is $0.4 \cdot 0 + 0.6 \cdot U_{2,0}$ – the neighbour at column −1 is outside and reads 0, the one at
# column 0 is inside and still counts with its weight: zeros padding fades the image out over the last half pixel
# (lesson 2). The loads of the outside corners are masked, and only those: here the two of column −1 (rows 2 and
# 3). Column 0's corners are inside and loaded – row 2's counts with weight 0.6, row 3's with weight $f_y = 0$
# (and on an image of only three rows it is outside and masked as well). A mask for the whole point ("all four
# inside, or nothing") gives 0 there; one that ignores an outside corner reads memory before the row. The lane past the last
# pixel may compute anything – its arithmetic is harmless – but must neither load nor store: `live` goes into every
# mask.
# </details>

# %% [markdown]
# ## Verify
#
# Your kernel against torch on a photo, float32 – and the package's kernel (`stn_course.gpu.affine.affine_sample`,
# every padding mode and convention, with the backward) beside it:

# %% tags=["skip-when-grading"]
mine_ready = status("07.fused_affine_sample") == "passed"
batch = photo.to(DEVICE).expand(2, 1, 32, 27).contiguous()
thetas = torch.stack([demo_theta, torch.tensor([[1.2, 0.3, 0.0], [-0.3, 1.2, 0.2]])]).to(DEVICE)
reference = F.grid_sample(batch, F.affine_grid(thetas, (2, 1, 40, 40), align_corners=False), align_corners=False)
reference64 = F.grid_sample(batch.double(), F.affine_grid(thetas.double(), (2, 1, 40, 40), align_corners=False),
                            align_corners=False)  # the same sampling in float64: nearly exact, for float32's results
package = package_affine_sample(batch, thetas, (2, 1, 40, 40))
results = {"torch (float32)": reference, "package kernel": package}
if mine_ready:
    results["your kernel"] = fused_affine_sample(batch, thetas, (40, 40))
print(f"{'max |difference|':18s} {'vs torch float32':>17s} {'vs float64':>11s}")
for name, result in results.items():
    print(f"{name:18s} {(result - reference).abs().max().item():17.1e} "
          f"{(result.double() - reference64).abs().max().item():11.1e}")
torch_axis = F.affine_grid(torch.eye(2, 3)[None], (1, 1, 1, 40), align_corners=False)[0, 0, :, 0]  # its base x
closed_form = (2 * torch.arange(40.0) + 1) / 40 - 1  # exercise 2's x_t, in float32
print(f"x_t of the 40 columns: the closed form differs from F.affine_grid's own numbers in "
      f"{int((closed_form != torch_axis).sum())} of them (by at most {(closed_form - torch_axis).abs().max():.1e})")
plotting.show_images([batch[0], reference[0], package[0], reference[1], package[1]],
                     ["input", "torch, θ₁", "fused kernel, θ₁", "torch, θ₂", "fused kernel, θ₂"]);

# %% [markdown]
# Every float32 sampler is about as far from the float64 result as the others (the last column) – torch's own
# included: a sampling coordinate rounded to float32 is off by up to half a unit in its last place, multiplied by
# $W / 2$ pixels per normalized unit, and the image's slope turns that into an error of the output. Your kernel can
# sit farther from *torch's* float32 output than the package's without being less accurate: it rounds differently.
# Its closed form $(2j + 1) / W_\text{out} - 1$ is not bit for bit `F.affine_grid`'s base axis (a `linspace`, then
# scaled – the last line above), and the order of its other operations may differ too. The package's kernel loads
# `F.affine_grid`'s own axis numbers (`stn_course.gpu.affine.base_axes`) and so repeats torch's rounding – not for
# accuracy, but so that at the identity every point falls on the same side of a pixel centre as torch's (the trap
# at the end of the backward section).
#
# ## The backward, in the fused kernel
#
# The backward of the sampler is lesson 4's eq. 6 and 7. In the fused kernel the same program that read the four
# neighbours of an output pixel computes, for every channel,
#
# * the **input gradient**, eq. 6: each output pixel's $\partial L / \partial V_i$ times each bilinear weight,
#   added into the matching neighbour;
# * the **gradient with respect to the sampling point**, eq. 7 – and from it, through the unnormalization and
#   `F.affine_grid`'s product, θ's: a sum over every output pixel of the image, which each program reduces over its
#   own block (`tl.sum`) and writes as one **partial**; the partials are added afterwards.
#
# ### Exercise 4 – the backward kernel
#
# Write the body of `backward_kernel`: both gradients of the fused sampler (zeros padding, bilinear) for the
# output gradient `grad_out`, in **both** conventions – `ALIGN` is `align_corners`, a compile-time constant. Given:
#
# * the helper `bilinear_corners` – per lane the (x0, y0) corner, the fractions `fx, fy`, the lane's output point
#   in normalized units `(u, v)` and the four corners' inside-the-image masks (exercise 3's steps, read its code:
#   it is the forward you wrote, with `ALIGN`);
# * the launcher: it fills `grad_in` with zeros (exercise 1's zero-fill) and allocates `partial`, six numbers per
#   program; program `(n, pid)` writes its six at `partial + (n · P + pid) · 6 + k`, `P = tl.num_programs(1)`, `k`
#   in θ's row-major order ($\theta_{00}, \theta_{01}, \theta_{02}, \theta_{10}, \dots$); the launcher sums them
#   per image into θ's gradient `(N, 2, 3)`.
#
# The rest is yours: which memory operation eq. 6's additions need (`triton.language` lists them all – `tl.load`
# and `tl.store` you know), eq. 7 in the input's pixels, and the chain from there to θ – derive it from
# `bilinear_corners`' arithmetic, for each convention. The check compares both gradients with torch's autograd of
# `F.affine_grid` + `F.grid_sample` – by exercise 3's measure, $|\text{yours} - \text{torch}| / (1 +
# |\text{torch}|)$, to 1e-12 for float64 and 1e-5 for float32: θ's gradient sums over every output pixel, so its
# values are large and a float32 one passes with an absolute error above 1e-5 – for shrinking, rotating and
# magnifying θ, several channels, the identity (at sizes where no point sits on a pixel centre: lesson 4's kink)
# and both conventions; on a failure it says which gradient is wrong and, where it can tell, in what way.

# %%
if gpu.triton_available():

    @triton.jit
    def bilinear_corners(theta, n, offsets, H, W, H_out, W_out, ALIGN: tl.constexpr):
        """Per lane: the (x0, y0) corner (int32), the fractions fx, fy, the output point (u, v) in normalized units
        and the inside-the-image masks of the columns x0, x0 + 1 and the rows y0, y0 + 1."""
        row = theta + n * 6
        a = tl.load(row)
        j, i = (offsets % W_out).to(a.dtype), (offsets // W_out).to(a.dtype)
        if ALIGN:  # ±1: the centres of the end pixels (0 for a side of one pixel)
            u = (2.0 * j - (W_out - 1)) / tl.maximum(W_out - 1, 1)
            v = (2.0 * i - (H_out - 1)) / tl.maximum(H_out - 1, 1)
            px = (a * u + tl.load(row + 1) * v + tl.load(row + 2) + 1.0) * (W - 1) / 2.0  # where it reads, in pixels
            py = (tl.load(row + 3) * u + tl.load(row + 4) * v + tl.load(row + 5) + 1.0) * (H - 1) / 2.0
        else:  # ±1: the outer edges of the end pixels
            u = (2.0 * j + 1.0) / W_out - 1.0
            v = (2.0 * i + 1.0) / H_out - 1.0
            px = ((a * u + tl.load(row + 1) * v + tl.load(row + 2) + 1.0) * W - 1.0) / 2.0
            py = ((tl.load(row + 3) * u + tl.load(row + 4) * v + tl.load(row + 5) + 1.0) * H - 1.0) / 2.0
        left, top = tl.floor(px), tl.floor(py)
        xi, yi = left.to(tl.int32), top.to(tl.int32)
        return (xi, yi, px - left, py - top, u, v, (xi >= 0) & (xi < W), (xi >= -1) & (xi < W - 1),
                (yi >= 0) & (yi < H), (yi >= -1) & (yi < H - 1))

    @jit_exercise
    def backward_kernel(grad_out, inp, theta, grad_in, partial, C, H, W, H_out, W_out, ALIGN: tl.constexpr,
                        BLOCK: tl.constexpr):
        ### BEGIN SOLUTION
        n = tl.program_id(0)
        pid = tl.program_id(1)
        offsets = pid * BLOCK + tl.arange(0, BLOCK)
        live = offsets < H_out * W_out
        x0, y0, fx, fy, u, v, in_x0, in_x1, in_y0, in_y1 = bilinear_corners(theta, n, offsets, H, W, H_out, W_out,
                                                                            ALIGN)
        m00, m10 = live & in_x0 & in_y0, live & in_x1 & in_y0
        m01, m11 = live & in_x0 & in_y1, live & in_x1 & in_y1
        gx = 0.0 * fx  # ∂L/∂x and ∂L/∂y in input pixels, summed over the channels
        gy = 0.0 * fy
        for c in range(0, C):
            g = tl.load(grad_out + (n * C + c) * H_out * W_out + offsets, mask=live, other=0.0)
            image = inp + (n * C + c) * H * W + y0 * W + x0  # the (x0, y0) corner; the others are +1, +W, +W + 1
            u00 = tl.load(image, mask=m00, other=0.0)  # zeros padding: an outside corner is 0
            u10 = tl.load(image + 1, mask=m10, other=0.0)
            u01 = tl.load(image + W, mask=m01, other=0.0)
            u11 = tl.load(image + W + 1, mask=m11, other=0.0)
            gx += g * ((u10 - u00) * (1.0 - fy) + (u11 - u01) * fy)  # eq. 7: the slope along x, blended along y
            gy += g * ((u01 - u00) * (1.0 - fx) + (u11 - u10) * fx)
            grad = grad_in + (n * C + c) * H * W + y0 * W + x0
            tl.atomic_add(grad, (1.0 - fx) * (1.0 - fy) * g, mask=m00)  # eq. 6: lanes may share an address
            tl.atomic_add(grad + 1, fx * (1.0 - fy) * g, mask=m10)
            tl.atomic_add(grad + W, (1.0 - fx) * fy * g, mask=m01)
            tl.atomic_add(grad + W + 1, fx * fy * g, mask=m11)
        if ALIGN:  # dx/dx_s of the unnormalization: x = (x_s + 1)(W − 1)/2, or ((x_s + 1) W − 1)/2
            gx = gx * ((W - 1) / 2.0)
            gy = gy * ((H - 1) / 2.0)
        else:
            gx = gx * (W / 2.0)
            gy = gy * (H / 2.0)
        slot = partial + (n * tl.num_programs(1) + pid) * 6  # x_s = θ₀₀ u + θ₀₁ v + θ₀₂: ∂x_s/∂θ₀ = (u, v, 1)
        tl.store(slot + 0, tl.sum(gx * u, axis=0))
        tl.store(slot + 1, tl.sum(gx * v, axis=0))
        tl.store(slot + 2, tl.sum(gx, axis=0))
        tl.store(slot + 3, tl.sum(gy * u, axis=0))
        tl.store(slot + 4, tl.sum(gy * v, axis=0))
        tl.store(slot + 5, tl.sum(gy, axis=0))
        ### END SOLUTION


def affine_input_gradient(grad_output, input, theta, align_corners=False):
    """The fused sampler's gradients for ``grad_output = ∂L/∂output``: ``(N, C, H_out, W_out), (N, C, H, W),
    (N, 2, 3) -> (∂L/∂input (N, C, H, W), ∂L/∂θ (N, 2, 3))``"""
    grad_output, input = grad_output.contiguous(), input.contiguous()
    theta = theta.reshape(-1, 6).to(input.dtype).contiguous()
    n, c, h_out, w_out = grad_output.shape
    h, w = input.shape[-2:]
    grad_input = torch.zeros_like(input)  # the zero-fill
    block = gpu.block_size(input.device)
    programs = triton.cdiv(h_out * w_out, block)
    partial = torch.zeros(n, programs, 6, dtype=input.dtype, device=input.device)
    backward_kernel[(n, programs)](grad_output, input, theta, grad_input, partial, c, h, w, h_out, w_out,
                                   ALIGN=bool(align_corners), BLOCK=block)
    return grad_input, partial.sum(1).view(n, 2, 3)


# %%
affine_input_gradient = check("07.affine_input_gradient", affine_input_gradient)

# %% [markdown]
# <details><summary>The chain to θ, and why atomics (open after the check passes)</summary>
#
# **Eq. 7 in the input's pixels.** The sample is $V = (1 - f_y)\big((1 - f_x) U_{00} + f_x U_{10}\big) + f_y
# \big((1 - f_x) U_{01} + f_x U_{11}\big)$ with $f_x = x - x_0$, so $\partial V / \partial x = (1 - f_y)(U_{10} -
# U_{00}) + f_y (U_{11} - U_{01})$ – the slope towards the *larger* column, positive when the image brightens to the
# right (the reverse difference flips the sign of θ's gradient), and likewise in $y$. An outside corner is a zero
# of zeros padding, here too. Every channel samples at the same point, so $\partial L / \partial x = \sum_c
# \partial L / \partial V_c \cdot \partial V_c / \partial x$: a sum over the channels, not the last channel's term.
#
# **The unnormalization.** `bilinear_corners` computes $x = \frac{(x_s + 1)(W - 1)}{2}$ with `ALIGN` and $x =
# \frac{(x_s + 1) W - 1}{2}$ without: $\partial x / \partial x_s = \frac{W - 1}{2}$ or $\frac{W}{2}$ – the one factor
# that differs between the conventions, and with it θ's gradient, row by row ($H$ for the second row; 0 for a
# side of one pixel with `ALIGN`, where every point sits at the centre). Then $x_s = \theta_{00} u + \theta_{01} v +
# \theta_{02}$: $\partial L / \partial \theta_{0k} = \sum_i \frac{\partial L}{\partial x_s^{(i)}} (u_i, v_i, 1)_k$
# over the image's output pixels – `tl.sum` over the block, the launcher's sum over the programs. A masked lane
# loaded $g = 0$, so it adds nothing to the sums.
#
# **Why atomics.** `tl.atomic_add(pointer, value, mask)` reads, adds and writes back as one indivisible operation
# of the memory system: two lanes adding into one address both count. `tl.load`, `+`, `tl.store` instead lets two
# lanes read the same old value and write their sums one after the other – one addition vanishes. Under the
# interpreter programs run one after another, but the lanes of *one* program still share addresses when the
# transform magnifies: a vector store with repeated addresses keeps only one of them, so even here the plain
# version fails. On a GPU the same happens between programs, at random. θ's gradient needs no atomics: each program
# owns its slot of `partial`.
# </details>

# **Predict, before you read on.** Your training run is not bit-reproducible on a GPU even with every seed fixed:
# the same data, the same initialisation, and after a few hundred steps the weights differ in their last bits.
# Which of the fused kernel's parts can make two runs differ – the forward's blend of four neighbours, the input's
# gradient you just wrote, θ's gradient (each program reduces its pixels' products with `tl.sum` into its own slot
# of partials, which torch sums afterwards), or the sampling points (computed in another order than
# `F.affine_grid`'s)? For each, ask what could differ between two runs at all – not the data, not the code. Write
# your answer down before you open the fold.
#
# <details><summary>Which part can differ, and why</summary>
#
# The scatter is the hard part on a GPU. Zooming in, neighbouring output pixels – computed by *different*
# programs running at the same time – add into the same input pixel. A plain `load, add, store` would lose updates
# (two programs read the old value, both write, one addition vanishes), so the kernel uses `tl.atomic_add`: the
# memory system serialises the additions to one address. Correct – but in **whatever order the programs arrive**.
# That is the one part whose result depends on timing: the forward and each program's `tl.sum` compute from the
# same inputs in a fixed order on every run, and the partials sit in fixed slots; the sampling points make the fused
# kernel differ from torch, but the same way on every run.
#
# Floating-point addition is not associative: $(a + b) + c$ and $a + (b + c)$ can differ in the last bits. So the
# order of atomic additions changes the result from run to run: `F.grid_sample`'s CUDA backward is
# nondeterministic for this reason (an open PyTorch issue since 2021), and so is any atomic scatter.
# </details>
#
# How much can the order of additions matter? Add the same numbers in different orders:

# %% tags=["skip-when-grading"]
generator = torch.Generator().manual_seed(0)
values = (torch.randn(4096, generator=generator) * torch.logspace(-3, 3, 4096)).numpy()  # mixed magnitudes, float32
orders = np.random.default_rng(0)
sums = {float(np.cumsum(values[orders.permutation(4096)])[-1]) for _ in range(200)}  # one addition after another
exact = values.astype(np.float64).sum()
order_spread = (max(sums) - min(sums)) / abs(exact)
print(f"200 orders of the same 4096 float32 numbers: {len(sums)} different sums, spread {order_spread:.1e} "
      f"of the exact sum")

# %% [markdown]
# Every order is "right" to float32 precision; none is bit-identical to the others. When reproducibility matters
# (debugging, a paper's numbers), make the order fixed. `affine_sample(..., deterministic=True)` does it with
# **sorted segments**: first every output pixel writes its four `(input pixel, weight)` contributions to a list; a
# stable sort groups them by input pixel; then one program per input pixel adds its own contributions one after
# another, in the sorted order – no atomics, the same order on every run. It costs a sort and a second pass.
#
# Without a GPU the interpreter runs the programs one after another, so even the atomic version adds in one fixed
# order here; on a GPU the run below shows the difference.

# %% tags=["skip-when-grading"]
zoom_in = torch.tensor([[[0.35, 0.05, 0.1], [-0.05, 0.35, 0.0]]]).to(DEVICE)  # many outputs per input pixel
small = photo.to(DEVICE)
grad_out = torch.randn(1, 1, 32, 32, generator=generator).to(DEVICE)
RUNS = 3  # per mode: enough to show a difference on a GPU (under the interpreter, slow: the times are printed)


def input_gradient(deterministic):
    leaf = small.clone().requires_grad_()
    out = package_affine_sample(leaf, zoom_in, (1, 1, 32, 32), deterministic=deterministic)
    (grad,) = torch.autograd.grad(out, leaf, grad_out)
    return grad


runs = {"atomics": [], "sorted segments": []}
run_seconds = {mode: 0.0 for mode in runs}
for mode in tqdm([mode for mode in runs for _ in range(RUNS)], desc="backward runs"):
    started = time.perf_counter()
    runs[mode].append(input_gradient(mode == "sorted segments"))
    run_seconds[mode] += time.perf_counter() - started
for mode, grads in runs.items():
    identical = all(torch.equal(grads[0], g) for g in grads[1:])
    print(f"{mode:16s}: {RUNS} runs bit-identical: {identical} ({run_seconds[mode] / RUNS:.2g} s per backward here)")
agree = (runs["atomics"][0] - runs["sorted segments"][0]).abs().max().item()
print(f"atomics vs sorted segments: max |difference| {agree:.1e} (the same sums, added in another order)")

# %% [markdown]
# **Testing a kernel's gradient, and a trap.** At the identity every sampling point lies *exactly* on a pixel centre
# – lesson 4's kink, where the sampler's derivative is one-sided. Which side you get depends on whether the
# computed coordinate is a hair below or above the integer, and the fused kernel rounds its arithmetic differently
# from `F.affine_grid` (a different order of the same operations). Compare θ's gradient at the identity and a
# little away from it:

# %% tags=["skip-when-grading"]
def theta_gradient(kernel, theta):
    t = theta.clone().requires_grad_()
    out = kernel(small, t)
    (grad,) = torch.autograd.grad(out, t, torch.ones_like(out))
    return grad


fused_kernel = lambda image, t: package_affine_sample(image, t, (1, 1, 32, 27))  # noqa: E731
aten_kernel = lambda image, t: F.grid_sample(image, F.affine_grid(t, (1, 1, 32, 27), align_corners=False),  # noqa: E731
                                             align_corners=False)
kink_differences = {}
for name, theta0 in (("identity", torch.eye(2, 3)[None]),
                     ("identity + 0.01", torch.eye(2, 3)[None] + 0.01)):
    a, b = (theta_gradient(k, theta0.to(DEVICE)) for k in (fused_kernel, aten_kernel))
    kink_differences[name] = ((a - b).abs().max() / b.abs().max()).item()
    print(f"{name:16s}: θ-gradient, fused vs torch, relative difference {kink_differences[name]:.1e}")

# %% [markdown]
# Away from the kinks the two agree to float32 rounding; at the identity they may not (whether they do depends on how
# each rounds: the numbers above are what this machine's run gives – under the interpreter the two often agree
# there too, which is exactly why a test must not rely on it) – both are valid one-sided
# derivatives, and a test that compares gradients there compares rounding, not correctness (the package's tests
# start trainings a little away from the identity for this reason). Lesson 4's questions met this kink from the
# other side: `gradcheck` cannot confirm a derivative there either.
#
# ## Measuring
#
# A fair measurement of a GPU kernel:
#
# 1. **Synchronise.** A launch returns immediately; the clock must wait for the device (`torch.cuda.synchronize()`
#    before reading it), or you time the launch, not the kernel.
# 2. **Warm up.** The first call compiles the kernel (Triton, `torch.compile`) and fills caches.
# 3. **Interleave, take the median, show the spread.** Time the things you compare in turns, in one run, on the
#    same inputs, and report the median of several repeats with their spread (min and max) – clocks change with
#    temperature, other processes interrupt. On a CPU, fix the thread count too: the time depends on it, and on a
#    busy machine more threads can be slower, not faster.
# 4. **Compare like with like,** and with the ceiling: the achieved bandwidth (modelled bytes / time) as a fraction
#    of the copy bandwidth says how much faster the kernel *could* be. Against `torch.compile` of the same two
#    calls – the fair baseline for a hand-written fusion.
#
# `stn_course.gpu.measure.time_samples` does 1–3 (`time_many` keeps the medians only; `fixed_threads` fixes the
# CPU's thread count and restores it); `benchmarks/bench_gpu.py` is written to run the comparison at full size on a
# GPU and write the table to `benchmarks/README.md` – it has **not been run on a GPU yet: no GPU numbers exist** for
# this course's kernels (not measured on a GPU). Here, on this machine:

# %% tags=["skip-when-grading"]
size = (8, 1, 64, 64) if DEVICE.type == "cpu" else ((256, 1, 224, 224) if not FAST else (64, 1, 128, 128))
image = torch.rand(size, device=DEVICE)
thetas_m = (torch.eye(2, 3) + 0.1 * torch.randn(size[0], 2, 3, generator=generator)).to(DEVICE)


def aten_kernel_batch(images, t):
    return F.grid_sample(images, F.affine_grid(t, images.shape, align_corners=False), align_corners=False)


candidates = {"F.affine_grid + F.grid_sample": lambda: aten_kernel_batch(image, thetas_m),
              "fused kernel (package)": lambda: package_affine_sample(image, thetas_m)}
with fixed_threads(THREADS):
    samples = time_samples(candidates, repeats=3 if DEVICE.type == "cpu" else 7, min_time=0.02, device=DEVICE)
times = {name: float(np.median(s)) for name, s in samples.items()}
print(f"{THREADS} thread(s)")
for name, t in times.items():
    modelled = package_sampler_traffic(size, size[2:], fused="fused" in name).total
    print(f"{name:30s} {spread(samples[name])}   {modelled / t / 1e9:.3g} GB/s modelled at the median")
interpreter_slowdown = times["fused kernel (package)"] / times["F.affine_grid + F.grid_sample"]
if DEVICE.type == "cpu":
    print(f"\nThe interpreter runs the fused kernel {interpreter_slowdown:.0f}× slower than ATen's compiled CPU code: "
          "it checks that a kernel is right, it says nothing about its speed on a GPU.")

# %% [markdown]
# On a CPU the interpreter's time is meaningless (it emulates every program in NumPy): the run above shows by how
# much. On a GPU, `benchmarks/bench_gpu.py` measures the fused kernel's forward and backward against ATen and
# `torch.compile` (not measured on a GPU yet); the bytes model predicts the best case – the saved share of the
# traffic for one to three channels – and the roofline below turns it into times.

# %% [markdown]
# ## What makes the kernel fast
#
# A correct kernel can still be slow – or correct only up to a size. Four topics follow, none of which the
# interpreter can show you by timing: each comes with the method or the reasoning, and on a GPU the measurement.
# **Everything this section says about GPU speed is reasoning and prediction: this course's kernels have not been
# measured on a GPU.**
#
# ### Tuning `BLOCK` and `num_warps`
#
# `BLOCK` sets how many output pixels one program computes; `num_warps` (a launch option, `kernel[grid](...,
# num_warps=4)`) how many warps of 32 threads share them. Too small a block and the launch has too many programs,
# each loading θ again and doing little; too large and each thread holds more values in registers, fewer programs
# fit on a streaming multiprocessor at once, and the GPU cannot hide the memory latency of one with the work of
# another. The best pair depends on the GPU and the sizes – it is measured, not derived. `triton.testing.do_bench`
# times a function the fair way (warm-up, synchronised, many repeats, a quantile of the times); `triton.autotune`
# does the sweep for you at the first launch of each new size and remembers the winner:
#
# ```python
# tuned = triton.autotune(
#     configs=[triton.Config({"BLOCK": b}, num_warps=w) for b in (128, 256, 512, 1024) for w in (2, 4, 8)],
#     key=["H_out", "W_out"],  # tune again when these change
# )(affine_sample_kernel)  # wraps the @triton.jit kernel itself (not its .fn); the launch passes no BLOCK
# tuned[lambda meta: (n, triton.cdiv(h_out * w_out, meta["BLOCK"]))](image, theta, out, C, H, W, H_out, W_out)
# ```
#
# The cell below sweeps the pairs over your kernel of exercise 3 – with `do_bench` on a GPU; under the interpreter
# with the course's CPU timer, which shows the method and **is not a GPU timing** (the interpreter ignores
# `num_warps`, and its cost is per program, so it always prefers the largest block).

# %% tags=["skip-when-grading"]
def sweep(kernel_launch, blocks, warps):
    """``{(BLOCK, num_warps): median seconds}`` of ``kernel_launch(block, num_warps)`` over the pairs."""
    if DEVICE.type == "cuda":
        from triton.testing import do_bench

        return {(b, w): do_bench(lambda: kernel_launch(b, w)) / 1e3 for b in blocks for w in warps}
    candidates = {(b, w): (lambda b=b, w=w: kernel_launch(b, w)) for b in blocks for w in warps}
    with fixed_threads(THREADS):
        return {pair: float(np.median(s)) for pair, s in time_samples(candidates, repeats=3, min_time=0.01,
                                                                         device=DEVICE).items()}


tune_shape = (1, 1, 32, 32) if DEVICE.type == "cpu" else (64, 3, 224, 224)
tune_image = torch.rand(tune_shape, device=DEVICE)
tune_theta = (torch.eye(2, 3) + 0.05 * torch.randn(tune_shape[0], 2, 3, generator=generator)).to(DEVICE).reshape(-1, 6)
tune_out = torch.empty_like(tune_image)


def launch_mine(block, num_warps):
    n, c, h, w = tune_shape
    affine_sample_kernel[(n, triton.cdiv(h * w, block))](tune_image, tune_theta, tune_out, c, h, w, h, w, BLOCK=block,
                                                         num_warps=num_warps)


if status("07.fused_affine_sample") != "passed":
    print("Exercise 3 first: the sweep times your kernel.")
else:
    blocks, warps = ((256, 1024), (1, 4)) if DEVICE.type == "cpu" else ((128, 256, 512, 1024), (2, 4, 8))
    tuning = sweep(launch_mine, blocks, warps)
    label = "on " + where if DEVICE.type == "cuda" else "under the interpreter – not a GPU timing"
    print(f"input {tune_shape}, {label}:")
    for (b, w), t in sorted(tuning.items(), key=lambda item: item[1]):
        print(f"  BLOCK {b:5d}, num_warps {w}: {t * 1e3:8.3f} ms")

# %% [markdown]
# ### Exercise 5 – waves: what a launch pays for
#
# A GPU does not run all the programs of a launch at once. Each of its `sms` streaming multiprocessors holds up to
# `per_sm` programs at a time – as many as its registers, shared memory and warp slots admit (the *occupancy*) –
# so a launch of more programs than `sms · per_sm` slots runs in **waves**: a wave starts when the one before it
# has finished. Say every program takes the same time, as a memory-bound one nearly does.
#
# Write `wave_efficiency(n, h_out, w_out, block, sms, per_sm)`: for a launch of exercise 3's kernel, with its
# launcher, on `n` images of `h_out × w_out` output pixels with `BLOCK = block`, the share of the launch's lane
# time that computes an output pixel. The lesson's case: the H100 SXM, 132 SMs, a batch of 8 at 224², `BLOCK` 256
# and 8 programs per SM; the check also asks the T4 (40 SMs) and the A100 (108 SMs), other sizes and blocks. The SM
# counts are NVIDIA's architecture whitepapers' (Turing, A100 Tensor Core GPU, H100 Tensor Core GPU).
#
# **Predict first** (write it down; the table after the check answers it): for that batch on the H100 at 8
# programs per SM, which is the smallest of the blocks 128, 256, 512 and 1024 whose share is below the best of the
# four – and what is that share, roughly? Every block divides 224² here, so no lane is masked: what else can idle?

# %%
def wave_efficiency(n, h_out, w_out, block, sms, per_sm):
    """The share (0 … 1] of the lane time of a launch of exercise 3's kernel on ``n`` images of ``h_out × w_out``
    output pixels that computes a pixel, on ``sms`` multiprocessors that run ``per_sm`` programs each at a time."""
    ### BEGIN SOLUTION
    programs = n * -(-(h_out * w_out) // block)  # exercise 2: the last program of each image is partly masked
    slots = sms * per_sm  # programs that run at once
    waves = -(-programs // slots)  # the last wave may be nearly empty: it takes a whole wave's time
    return n * h_out * w_out / (waves * slots * block)
    ### END SOLUTION


# %%
wave_efficiency = check("07.wave_efficiency", wave_efficiency)

# %% [markdown]
# <details><summary>The count, and what it leaves out (open after the check passes)</summary>
#
# With equal programs the launch takes as long as its number of waves; a program takes one wave's time whether its
# lanes are live or masked, a slot without a program idles, and a last wave with a few programs costs as much as a
# full one (the *tail effect*). The launcher's grid tiles every image on its own:
# $p = N \lceil H_\text{out} W_\text{out} / \text{BLOCK} \rceil$
# programs (not $\lceil N H_\text{out} W_\text{out} / \text{BLOCK} \rceil$: no program spans two images), and the
# GPU has $s = \text{SMs} \cdot \text{per\_sm}$ slots, so the launch runs $\lceil p / s \rceil$ waves and pays
# $\lceil p / s \rceil \, s \cdot \text{BLOCK}$ lane-slots for $N H_\text{out} W_\text{out}$ pixels. Two roundings up:
# the masked tail of every image (exercise 2) and the last wave – each costs on its own, and the first can add a
# wave. Taking only the last wave's fill, $(p \bmod s) / s$, forgets that the full waves before it dilute the loss
# – and gives 0 for a launch that fills every wave exactly. Real GPUs start a program as soon as a
# slot frees, and programs' times vary, so the tail is softer than this model's; the direction holds.
# </details>
#
# Now the table, for a batch of 8 at 224², with your function: the same kernel on three GPUs, for four blocks and
# two occupancies (how many programs fit on an SM depends on `BLOCK`, `num_warps` and the registers the compiler
# allots: Triton reports them, `kernel.n_regs`, after a compile for a GPU).

# %%
SMS = {"T4": 40, "A100": 108, "H100 SXM": 132}  # NVIDIA's whitepapers
BLOCKS = (128, 256, 512, 1024)
wave_table = {(gpu_name, per_sm, b): wave_efficiency(8, 224, 224, b, sms, per_sm)
              for gpu_name, sms in SMS.items() for per_sm in (4, 8) for b in BLOCKS}
print("share of the lane time that computes a pixel, batch 8 at 224² (every block divides 224²: no masked lanes):")
print(f"{'GPU':9s} {'per SM':>6s}" + "".join(f"{'BLOCK ' + str(b):>12s}" for b in BLOCKS) + "   first block that loses")
first_loss = {}  # (GPU, per SM) -> the smallest block whose share is below the best of the row (None: all tie)
for gpu_name in SMS:
    for per_sm in (4, 8):
        row = [wave_table[gpu_name, per_sm, b] for b in BLOCKS]
        first_loss[gpu_name, per_sm] = next((b for b, e in zip(BLOCKS, row) if e < max(row) - 1e-12), None)
        print(f"{gpu_name:9s} {per_sm:6d}" + "".join(f"{e:12.3f}" for e in row) + f"   {first_loss[gpu_name, per_sm]}")
smallest_best = all(wave_table[key + (BLOCKS[0],)] >= max(wave_table[key + (b,)] for b in BLOCKS) for key in first_loss)

# %% [markdown]
# In this model the smallest block, 128, is best or tied-best on every GPU at both occupancies: the tail alone never
# rewards a larger block here. What differs by GPU and occupancy is how soon larger blocks start to lose: on the T4
# from 1024 at four programs per SM and from 512 at eight, on the H100 from 512 and from 256, on the A100 only 1024
# at eight per SM. On the H100 a block of 256 keeps almost every slot busy at four programs per SM and leaves a
# quarter of them idle at eight; on the A100 at four programs per SM every block leaves the same tenth idle. The
# tail is only one of the effects – larger blocks mean fewer θ loads, more registers and fewer programs per SM, and
# the latency a full SM can hide – and they pull in different directions, differently on every GPU and size. That
# is why the best `BLOCK` and `num_warps` are measured, not derived: `do_bench` over a sweep as above, or
# `triton.autotune` with a `key` of the sizes, so that each new size is tuned once on the GPU that runs it. None of
# this has been measured on a GPU for this course's kernels: the table is the model's.

# %% [markdown]
# ### Coalescing, and 2-D tiles
#
# A GPU reads memory in **segments** of 32 to 128 bytes. The 32 threads of a warp issue a load together; when their
# addresses are consecutive, one or two segments serve all of them – the access is **coalesced**. When they are
# scattered, every thread may need its own segment: up to 32 times the traffic for the same useful bytes (the
# cache catches some of it, if the lines are still there when a neighbour asks).
#
# **Question – predict before the count** (not checked: the count below answers it). Lanes of a program are
# consecutive output pixels of one row (the 1-D tile of exercise 2), and θ rotates by 90°. Per warp of 32 lanes, how
# many 128-byte segments does the output store touch, and how many one corner load? Would a square tile – 16 × 16
# output pixels per program, the same 256 lanes – need fewer, per warp and per program? Write your numbers down.

# %% [markdown]
# Now count. For a program of 256 output pixels – a 1 × 256 row or a 16 × 16 square – the code below finds the
# 128-byte segments (float32) that the (x0, y0) corner loads of each warp touch, and of the whole program, with
# the index arithmetic of exercise 2 (the package's `source_pixels`, which takes any tile's rows and columns):

# %%
SEGMENT = 128 // 4  # float32 elements per 128-byte segment


def segments(theta, tile, size=256, warp=32):
    """Mean distinct segments per warp, and for the whole program, of the (x0, y0) corner loads of one program
    whose 256 lanes cover ``tile = (rows, cols)`` output pixels at the centre of a ``size²`` image."""
    rows_in_tile, cols_in_tile = tile
    lane = torch.arange(rows_in_tile * cols_in_tile)
    rows = size // 2 + lane // cols_in_tile - rows_in_tile // 2
    cols = size // 2 + lane % cols_in_tile - cols_in_tile // 2
    x, y = package_source_pixels(theta.double(), rows, cols, (size, size), (size, size))
    address = y.floor().long() * size + x.floor().long()
    per_warp = [len(set((address[k:k + warp] // SEGMENT).tolist())) for k in range(0, len(lane), warp)]
    return float(np.mean(per_warp)), len(set((address // SEGMENT).tolist()))


quarter_turn = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
tile_counts = {(name, tile): segments(t, tile) for name, t in (("identity", torch.eye(2, 3)), ("90°", quarter_turn))
               for tile in ((1, 256), (16, 16))}
print(f"{'θ':9s} {'tile':>8s} {'segments per warp':>18s} {'per program':>12s}")
for (name, tile), (warp_segments, program_segments) in tile_counts.items():
    print(f"{name:9s} {tile[0]:>3d} × {tile[1]:<3d} {warp_segments:18.1f} {program_segments:12d}")

# %% [markdown]
# The store (not counted: its addresses are the output offsets) is coalesced whatever θ. At the identity the row
# tile's loads are as coalesced as the store; rotated by a quarter turn, an output row becomes an input *column*:
# every lane of a warp reads another input row – one segment each. The square tile turns each warp into two short
# rows, which after the rotation are two short columns: fewer segments per warp, and the program as a whole touches
# a compact patch whose lines neighbouring lanes share. The price is paid at the identity: there the square tile is
# worse than the row – each warp's two short rows touch 4 segments instead of 1, the program 32 instead of 8 (this
# tile's rows also straddle a segment boundary). A row tile is best when θ keeps rows as rows and worst when it
# turns them into columns; the square tile is never the best case but bounds the worst: image kernels tile in 2-D
# because the reads of a gather follow θ, whatever its direction. (A 2-D tile in Triton: `rows =
# pid_y * BY + tl.arange(0, BY)[:, None]`, `cols = pid_x * BX + tl.arange(0, BX)[None, :]`, a launch grid of
# `(N, ceil(H_out / BY), ceil(W_out / BX))`.)
#
# ### Addresses past 2³¹
#
# Triton computes with the types it is given: `tl.program_id` and the integer arguments `C, H, W` are **int32**
# (a launcher passes Python integers below $2^{31}$ as 32-bit ones), and so is every product and sum of them – a
# 32-bit signed register, whose values run from $-2^{31}$ to $2^{31} - 1$. A batch of 16 feature maps of 64
# channels at 2048² has $2^{32}$ elements, and a real training job meets such tensors. Pointers are different: a
# pointer is a 64-bit address, and `pointer + k` (k an integer tensor) is a pointer again, `k` elements further –
# the value `k`'s register holds, whatever the exact arithmetic would have given.
#
# ### Exercise 6 – the element a kernel's load reaches
#
# Say a kernel – exercise 3's, written the straightforward way – loads element `(n, c, y, x)` of the input as
#
# ```python
# tl.load(inp + (n * C + c) * H * W + y * W + x, ...)
# ```
#
# (`y` and `x` int32 tensors; Python evaluates it as written: `+` from left to right, `*` first). Write
# `kernel_address(index, shape)`: for `index = (n, c, y, x)` of a contiguous input of `shape = (N, C, H, W)`, the
# element – counted from `inp`, as a Python `int`, negative if before it – that this load reads on a GPU, where the
# arithmetic is as described above. For small tensors it is the element's own position,
# `((n·C + c)·H + y)·W + x`; find what it is past $2^{31}$. Python's integers never overflow, so you must say what
# a 32-bit register holds. No tensor is made: the check's largest shapes have tens of billions of elements, but
# each of their four dimensions is below $2^{31}$ (so `C`, `H`, `W` and every index arrive as int32) – only the
# products pass it.

# %%
def kernel_address(index, shape):
    """The element (from ``inp``) that the load above of ``index = (n, c, y, x)`` reaches in a contiguous
    ``shape = (N, C, H, W)`` tensor, with int32 indices and 64-bit pointers -> int."""
    ### BEGIN SOLUTION
    (n, c, y, x), (_, channels, h, w) = index, shape

    def int32(value):
        return (value + 2**31) % 2**32 - 2**31  # what a 32-bit signed register holds: two's complement

    image = int32((n * channels + c) * h * w)  # int32 operands: the image's start wraps on its own ...
    return image + int32(y * w) + x  # ... then each int32 term joins the 64-bit pointer separately
    ### END SOLUTION


# %%
kernel_address = check("07.kernel_address", kernel_address)

# %%
big, two_planes = (16, 64, 2048, 2048), (2, 1, 40000, 40000)
for index, shape in (((7, 63, 2047, 2047), big), ((8, 0, 0, 0), big), ((15, 63, 2047, 2047), big),
                     ((1, 0, 39999, 39999), two_planes)):
    exact = ((index[0] * shape[1] + index[1]) * shape[2] + index[2]) * shape[3] + index[3]
    print(f"element {index} of {shape}: position {exact:>14,d}, the load reaches {kernel_address(index, shape):>14,d}")

# %% [markdown]
# <details><summary>Which terms wrap, and the fix (open after the check passes)</summary>
#
# A signed 32-bit register holds its value modulo $2^{32}$, shown in $[-2^{31}, 2^{31})$:
# $w(v) = (v + 2^{31}) \bmod 2^{32} - 2^{31}$. Within one chain of int32 operations it does not matter where you
# wrap – addition and multiplication modulo $2^{32}$ are the integers' own, reduced (a ring homomorphism) – so
# `(n * C + c) * H * W` is $w$ of its exact value. But the chain ends where a term joins the pointer: the load
# reaches $w((nC + c)HW) + w(yW) + x$, and that is **not** $w$ of the exact position. Wrapping once at the end
# would say that the last element of two 40000² planes, at about $3.2 \cdot 10^9$, is read at a negative address;
# the kernel reads it correctly – each of its two terms is below $2^{31}$, and the 64-bit pointer adds them. In
# the 16 × 64 × 2048² batch, image 8 starts exactly at $2^{31}$: its first element is computed at $-2^{31}$, and
# every image past it lands $2^{32}$ elements before its own place.
#
# The fix costs little: widen before the multiplications that can pass $2^{31}$, e.g. `base = (n * C +
# c).to(tl.int64) * H * W` (each program's offset within one image stays small, unless one plane passes $2^{31}$:
# then `y * W` wraps too). It is the integer index that overflows, never the pointer. Where a kernel only ever sees
# small tensors, int32 is faster (half the registers); a launcher can check `input.numel() < 2**31` and pick the
# 64-bit variant only when needed.
# </details>
#
# ### A roofline for named GPUs
#
# The bytes model and a bandwidth give a prediction before any GPU is at hand: the memory-bound kernel takes at
# least bytes / bandwidth. The published peak memory bandwidths, from NVIDIA's data sheets (T4: 320 GB/s, GDDR6;
# A100: 1,555 GB/s for the 40 GB SXM4 part, 2,039 GB/s for the 80 GB SXM4; H100 SXM: 3.35 TB/s, HBM3); a real
# kernel reaches only a part of the peak – measure the copy bandwidth of your own GPU, as above. These are
# predictions, **not measured on a GPU**: the table shows a measured column only when a GPU runs this notebook.

# %%
BANDWIDTH = {"T4": 320e9, "A100 40GB": 1555e9, "A100 80GB SXM": 2039e9, "H100 SXM": 3.35e12}  # NVIDIA data sheets
ROOFLINE_SHAPES = [(256, 1, 224, 224), (8, 64, 224, 224)]
KERNELS = {"fused forward": (True, False), "ATen forward": (False, False),
           "fused backward": (True, True), "ATen backward": (False, True)}


def predicted_seconds(shape, fused, backward, bandwidth):
    """The roofline's memory term: the bytes model's count over ``bandwidth`` (float32)."""
    return sampler_bytes(shape, shape[2:], 4, fused, backward) / bandwidth


predictions = {(shape, name, gpu_name): predicted_seconds(shape, *flags, b) for shape in ROOFLINE_SHAPES
               for name, flags in KERNELS.items() for gpu_name, b in BANDWIDTH.items()}
print("predicted time at peak bandwidth, µs (float32, output as large as the input):")
print(f"{'shape':20s} {'kernel':15s}" + "".join(f"{g:>15s}" for g in BANDWIDTH))
for shape in ROOFLINE_SHAPES:
    for name in KERNELS:
        print(f"{str(shape):20s} {name:15s}" + "".join(f"{predictions[shape, name, g] * 1e6:15.0f}" for g in BANDWIDTH))

# %% tags=["skip-when-grading"]
if DEVICE.type == "cuda":  # a GPU: the prediction against a measurement of the forwards
    from triton.testing import do_bench

    for shape in ROOFLINE_SHAPES:
        images, thetas_r = torch.rand(shape, device=DEVICE), torch.eye(2, 3, device=DEVICE).expand(shape[0], 2, 3)
        measured = {"fused forward": do_bench(lambda: package_affine_sample(images, thetas_r)) / 1e3,
                    "ATen forward": do_bench(lambda: aten_kernel_batch(images, thetas_r)) / 1e3}
        for name, seconds in measured.items():
            model = sampler_bytes(shape, shape[2:], 4, name.startswith("fused"))
            print(f"{str(shape):20s} {name:15s} measured on {where}: {seconds * 1e6:.0f} µs, "
                  f"{model / seconds / 1e9:.0f} GB/s modelled – compare with the row of your GPU's class above")
else:
    print("No GPU here: the predictions above are not measured on a GPU. On one, this cell times the package's "
          "fused forward and ATen's with triton.testing.do_bench beside them.")

# %% [markdown]
# Read the table as the model says: the fused forward of one channel needs a third of the ATen forward's bytes, so
# at best a third of its time, on every GPU alike; with 64 channels the two are almost equal. The backward moves
# more (the input read again, the gradient zero-filled and added). And the ratios between GPUs are only their
# bandwidths' – the model cannot say more. What it leaves out is what the measurement on a GPU would show: the
# atomics' contention in the backward, caches, launch overhead at small sizes.

# %% [markdown]
# ### The goal, against the bound
#
# The issue behind this section set a goal for a GPU run: the fused forward + backward at least 1.3× as fast as
# ATen's at 8×64×224². What does your bound of exercise 1 say about it?

# %%
goal_shape = (8, 64, 224, 224)
goal_bound = fusion_bound(goal_shape, goal_shape[2:])
print(f"the bytes model's bound at {goal_shape}: {goal_bound:.3f}× (one channel: "
      f"{fusion_bound((8, 1, 224, 224), (224, 224)):.2f}×)")
print(f"the 1.3× goal needs the fused kernels to reach {1.3 / goal_bound:.2f}× the share of the bandwidth "
      "that ATen's reach")

# %% [markdown]
# At 64 channels the grid is a small part of the traffic: the model allows the fused passes at most about 1.03× the
# speed of ATen's. The goal can be met only if ATen's kernels reach a much smaller share of the bandwidth than
# the fused ones – about 1.27× less: through the atomics of its backward, its extra launches, or a worse access
# pattern – never through the bytes fusing saves. A measurement would tell which; this course's kernels have **not
# been measured on a GPU**, so the goal is neither met nor missed – the model only says where the speed would
# have to come from.

# %% [markdown]
# ## Explore
#
# The kernel explorer cuts the output into programs: choose `BLOCK` and a program, and see the output pixels it
# computes (left), the input pixels it reads (right; darker red: more of its corner reads land there – in the
# backward, that many atomic additions to one address), and the bytes with and without the grid. Try this:
#
# * `BLOCK` 256: the 24×24 output takes three programs, and the last one has only 64 live lanes – the rest are
#   masked;
# * zoom 4 (magnify), `BLOCK` 64: every program reads fewer than 30 input pixels, and the most-read one receives
#   more than 20 of its corner reads – that many atomic additions to one address from one program alone; zoom 0.5
#   (shrink): at most one per input pixel;
# * channels 64: fusing saves less than 3 % of the bytes; channels 1: more than half (this photo is larger than
#   the output, so the grid's share is smaller than in the table above).

# %% tags=["skip-when-grading"]
widgets.kernel_explorer(photo)

# %% [markdown]
# ### Questions
#
# Answer in a sentence or two before you open the fold – these are the ideas the exercises cannot check.

# %% [markdown]
# **1.** A colleague proposes to speed up the sampler by computing the bilinear weights with fewer multiplications.
# Why will that not help on a GPU?

# %% [markdown] tags=["answer"]
# The sampler is memory-bound: its time is its bytes over the bandwidth, and the arithmetic already hides behind the
# memory traffic. Fewer operations change nothing; fewer bytes (not writing the grid, reading each input pixel once)
# do.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The sampler is memory-bound: its time is its bytes over the bandwidth, and the arithmetic already hides behind the
# memory traffic. Fewer operations change nothing; fewer bytes (not writing the grid, reading each input pixel once)
# do.
# </details>

# %% [markdown]
# **2.** Why does fusing help a 1-channel transformer much more than a 64-channel one?

# %% [markdown] tags=["answer"]
# The grid has two numbers per output pixel whatever the number of channels, while the input and output grow with
# C. For one channel the grid (written and read back) is most of the traffic; for 64 it is a small fraction.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The grid has two numbers per output pixel whatever the number of channels, while the input and output grow with
# C. For one channel the grid (written and read back) is most of the traffic; for 64 it is a small fraction.
# </details>

# %% [markdown]
# ## Takeaways
#
# * Count bytes before counting flops: the sampler is memory-bound, its time at best bytes over bandwidth; measure
#   the bandwidth with a copy, not from a data sheet.
# * Fusing the grid generator into the sampler removes the grid's round trip to memory – most of the traffic for one
#   to three channels, little for many.
# * A Triton program computes a block of output pixels: offsets, rows and columns, a mask for the ragged end; every
#   load and store is masked.
# * The backward scatters with atomics: correct, but the order – and so the last bits – changes from run to run;
#   sorted segments make it deterministic at a cost.
# * Test kernels against torch away from kinks; measure them synchronised, warmed up, interleaved, with medians and
#   their spread, at a fixed thread count on a CPU, and against `torch.compile` of the unfused calls.
# * Speed is measured, then explained: tune `BLOCK` and `num_warps` with `do_bench` / `triton.autotune` on the GPU
#   you have (the interpreter only shows the method); a gather follows θ, so tile in 2-D to keep a warp's reads in
#   few segments; widen indices to int64 where a tensor can pass 2³¹ elements; predict the time from the bytes
#   and the bandwidth, and compare with a measurement – none exists yet for these kernels on a GPU.
