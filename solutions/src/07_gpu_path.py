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
#   - text: a square tile (16 × 16 output pixels per program)
#     why: a tile shape, the question's choice (256 lanes, as the 1-D tile)
#   - text: a 1 × 256 row or a 16 × 16 square
#     why: the two tile shapes the code cell counts, chosen there
#   - text: the fused forward of one channel needs a third of the ATen forward's bytes
#     holds: abs(predictions[ROOFLINE_SHAPES[0], 'fused forward', 'T4'] / predictions[ROOFLINE_SHAPES[0], 'ATen forward',
#       'T4'] - 1 / 3) < 1e-12
#   - text: with 64 channels the two are almost equal
#     holds: predictions[ROOFLINE_SHAPES[1], 'fused forward', 'T4'] / predictions[ROOFLINE_SHAPES[1], 'ATen forward', 'T4']
#       > 0.95
#   - text: Image 8 starts exactly at
#     holds: kernel_address((8, 0, 0, 0), big) == -2**31
#   - text: 'The square tile turns each warp into two short rows, which after the rotation are two short columns: fewer
#       segments per warp'
#     holds: tile_counts['90°', (16, 16)][0] < tile_counts['90°', (1, 256)][0] and tile_counts['90°', (16, 16)][1] <
#       tile_counts['90°', (1, 256)][1]
#   - text: a block of 256 keeps almost every slot busy at four programs per SM and leaves a quarter of them idle at
#       eight
#     holds: wave_table['H100 SXM', 4, 256] > 0.98 and abs(wave_table['H100 SXM', 8, 256] - 0.75) < 0.01
#   - text: every block leaves the same tenth idle
#     holds: all(abs(wave_table['A100', 4, b] - 0.9) < 0.01 for b in (128, 256, 512, 1024))
#   - text: at least 1.3× as fast as ATen's
#     why: the goal issue 24 sets for a GPU run (quoted, not a measurement)
#   - text: at most about 1.03× the speed of ATen's
#     holds: 1.02 < goal_bound < 1.03
#   - text: about 1.27× less
#     holds: abs(1.3 / goal_bound - 1.27) < 0.005
#   exercises:
#     07.saved_share:
#       title: 'predict: the share of the bytes fusing saves, from the channels alone'
#       points: 1
#       hint: >-
#         Follow one output pixel of one image through both passes, in elements: every tensor that some kernel touches,
#         and every time it is touched. Which of these grow with C, and which cancel when you take the ratio? If the
#         check says "too low", you have missed a crossing.
#       recipe: >-
#         with H_out = H and W_out = W, per pixel the unfused pass moves 2 (grid written) + 2 (grid read) + C (input)
#         + C (output) elements and the fused one 2C; the saved share is 4 / (4 + 2C) = 2 / (C + 2), whatever N, H, W
#         and the element size.
#       rtol: 0
#       atol: 1.0e-09
#     07.sampler_bytes:
#       title: the bytes one pass moves, forward and backward
#       points: 1
#       hint: >-
#         The forward is your question's count, written in general. For the backward, go back to lesson 4's eq. 6 and
#         7: what does each gradient multiply by – which tensors must the backward kernels read again? A tensor that
#         one kernel writes and the next reads crosses the bus twice, and that holds for gradients too. Which of them
#         exist only in registers in the fused kernel?
#       recipe: >-
#         elements: image = N·C·H·W, output = N·C·H_out·W_out, grid = N·H_out·W_out·2. Forward unfused: grid written,
#         grid read, image read, output written; fused: image + output. Backward: grad_output read, the input read
#         (eq. 7 needs its values), the input gradient written twice (zero-fill, then the additions) – fused that is
#         all; unfused also grid_sample's backward reads the grid and writes the grid's gradient, which affine_grid's
#         backward reads back (3 grids). Multiply by element_size and return a Python int.
#       rtol: 0
#       atol: 0
#     07.program_pixels:
#       title: 'a bug hunt: the output pixels one program computes'
#       points: 1
#       hint: >-
#         His tests passed, so his sizes have something in common that hides both bugs. List what his sizes share
#         and yours do not; for each such property, pick a small size that breaks it (and only it), and follow a few
#         lanes of his function by hand – where do rows, cols and live first disagree with where the pixel is?
#       recipe: >-
#         offsets = pid * block + torch.arange(block); a row is W_out pixels long, so rows = offsets // w_out and
#         cols = offsets % w_out (his h_out only works for square outputs); live = offsets < h_out * w_out (his <=
#         lets the lane just past the last pixel load and store). Return (rows, cols, live): int64, int64, bool.
#       rtol: 0
#       atol: 0
#     07.source_pixels:
#       title: where an output pixel reads, without a grid
#       points: 2
#       hint: >-
#         Three steps per output pixel, no grid: where its centre sits in normalized units (which points are ±1 in each
#         convention?), θ times that point, then the same convention backwards on the input's side. A side of one pixel
#         has no first and last centre to put at ±1.
#       recipe: >-
#         align_corners=False: x_t = (2 j + 1) / W_out − 1 and x = ((x_s + 1) W − 1) / 2; True: x_t = 2 j / (W_out − 1)
#         − 1 (0 for a 1-pixel side) and x = (x_s + 1)(W − 1) / 2; x_s = θ₀₀ x_t + θ₀₁ y_t + θ₀₂, and the same for y with
#         the second row of θ. Work in theta's dtype.
#       rtol: 1.0e-09
#       atol: 1.0e-09
#     07.fused_affine_sample:
#       title: the fused forward kernel
#       points: 3
#       hint: >-
#         Each lane is one output pixel: find where it reads (exercise 3, in tl operations), then for every channel load
#         its four neighbours – masked where they fall outside the image – and blend them.
#       recipe: >-
#         x0 = tl.floor(x), fx = x − x0; the neighbours (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1) with weights
#         (1−fx)(1−fy), fx(1−fy), (1−fx)fy, fx·fy; load each with mask = live & inside and other=0.0 (a neighbour outside
#         the image reads 0); the address of (c, y, x) in image n is ((n·C + c)·H + y)·W + x.
#       rtol: 1.0e-05
#       atol: 1.0e-05
#     07.nondeterminism_source:
#       title: 'question: where a seeded GPU run loses bit-reproducibility'
#       points: 1
#       hint: >-
#         Compare two runs with the same inputs: what can be different between them at all? Not the data, not the
#         code – only when each program runs relative to the others. For each option, ask whether its result depends
#         on that timing, or only on its own inputs.
#       recipe: >-
#         the forward computes every output from fixed inputs in a fixed order, a program's tl.sum has a fixed order and
#         writes a fixed slot, and the fused kernel's rounding differs from torch's the same way on every run; only the
#         input gradient adds into one address from many programs (atomic additions), in a changing order – "b".
#     07.affine_input_gradient:
#       title: the backward's input gradient, with atomic additions
#       points: 3
#       hint: >-
#         One lane per output pixel, as in the forward (the helper gives the four neighbours and weights). What does
#         that pixel's output gradient add to each neighbour (eq. 6)? Two lanes may add into one input pixel at the
#         same moment: which tl operation makes that safe?
#       recipe: >-
#         load g = ∂L/∂V of channel c at the lane's pixel (mask=live, other=0.0); for each corner k with weight w_k
#         and mask m_k = live & inside: tl.atomic_add(grad_in + (n·C + c)·H·W + y_k·W + x_k, w_k · g, mask=m_k). A
#         tl.load / add / tl.store instead loses the additions of lanes that share an address.
#       rtol: 1.0e-05
#       atol: 1.0e-05
#     07.coalescing:
#       title: 'question: which accesses of a 1-D tile are coalesced under a 90° rotation'
#       points: 1
#       hint: >-
#         Write down the addresses the 32 lanes of one warp touch, for the store and for one corner load: consecutive
#         lanes are consecutive output pixels of one row. Where does θ send a row of the output when it rotates by a
#         quarter turn – along a row of the input, or down a column? How many 128-byte segments is that?
#       recipe: >-
#         the store's addresses are the output offsets, consecutive whatever θ: one or two segments per warp. A 90°
#         rotation maps an output row to an input column: the 32 lanes read 32 different input rows, W·4 bytes apart –
#         32 segments per corner load. A 16 × 16 tile turns the warp into 2 rows × 16 columns and reads 16 rows × 2
#         columns: half the segments, and neighbouring lanes share the lines – "b".
#     07.kernel_address:
#       title: the address a kernel computes in 32-bit integers
#       points: 2
#       hint: >-
#         Triton's program ids and integer arguments are int32: the address ((n·C + c)·H + y)·W + x is computed in
#         32-bit two's complement. What does a 32-bit signed register hold after a result passes 2³¹ − 1? Must you wrap
#         after every multiplication and addition, or is once at the end the same?
#       recipe: >-
#         exact = ((n·C + c)·H + y)·W + x with Python's integers; the int32 result is (exact + 2³¹) mod 2³² − 2³¹.
#         Arithmetic modulo 2³² is a ring, so wrapping once at the end gives what wrapping after every step gives.
#       rtol: 0
#       atol: 0
#     07.wave_efficiency:
#       title: 'waves: the busy share of a launch''s slots'
#       points: 2
#       hint: >-
#         Count in order: the launch's programs (exercise 2's tiles, per image), the slots that run at once, the
#         waves. A partly full wave takes a whole wave's time: which of your divisions round up?
#       recipe: >-
#         programs = n · ceil(h_out·w_out / block); slots = sms · per_sm; waves = ceil(programs / slots); return
#         programs / (waves · slots) – 1.0 when every wave is full.
#       rtol: 1.0e-12
#       atol: 1.0e-12
#     07.fusion_bound:
#       title: the most fusion can gain, forward and backward
#       points: 2
#       hint: >-
#         At the roofline a pass takes its bytes over the bandwidth. Write the ratio of the two training steps' times
#         – ATen's forward and backward over the fused ones – and see what cancels. Your sampler_bytes of exercise 1
#         gives every term.
#       recipe: >-
#         (sampler_bytes(s, o, 4, False, False) + sampler_bytes(s, o, 4, False, True)) / (sampler_bytes(s, o, 4, True,
#         False) + sampler_bytes(s, o, 4, True, True)); the bandwidth and the element size cancel. With the output as
#         large as the input it is (6C + 10) / 6C.
#       builds_on:
#       - 07.sampler_bytes
#       rtol: 1.0e-09
#       atol: 1.0e-12
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
# **You will predict, then build** the bytes model, fix the tile of output pixels one program of a kernel computes,
# the index arithmetic that finds where an output pixel reads without a grid, and the fused forward kernel itself.
# Then you will look at the backward – ask which of its parts can make two seeded GPU runs differ in their last
# bits, and write its input gradient with atomic additions – learn to measure a kernel honestly, and ask what makes
# it fast: tuning `BLOCK` and `num_warps`, coalesced memory accesses and 2-D tiles, addresses that overflow 32 bits,
# and a roofline prediction of each kernel's time on named GPUs.
#
# **Package modules:** `stn_course.gpu` – `affine` (the fused kernel, forward and backward, that
# `SpatialTransformer(impl="triton")` uses), `traffic` (the bytes model), `indexing`, `measure` (a fair timer, the
# copy bandwidth); `stn_course.plotting`, `stn_course.widgets`.
# **Prerequisites:** lessons 2 (bilinear sampling, `align_corners`) and 4 (the backward, eq. 6 and 7).
#
# **Where it runs.** With an NVIDIA GPU the kernels run on it. Without one, Triton's **interpreter**
# (`TRITON_INTERPRET=1`, set below before `triton` is imported) runs the very same kernels on CPU tensors, one
# program after another through NumPy: right numbers, small sizes, no speed. Triton ships Linux wheels only
# (`pip install "stn-course[gpu]"`); on macOS or Windows exercises 1–3 still run – they need PyTorch alone – and
# the kernel sections need a Linux machine or a hosted notebook.

# %%
FAST = True  # small sizes (the interpreter runs every program in Python); False: larger measurements

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: kernels run on CPU tensors

%matplotlib inline
import math

import matplotlib.pyplot as plt
import numpy as np
import torch.nn.functional as F
from tqdm.auto import tqdm

from stn_course import gpu, plotting, widgets
from stn_course.checks import check, status
from stn_course.checks.kernels import jit_exercise  # @triton.jit for an exercise: a stub says "not implemented"
from stn_course.gpu.affine import affine_sample as package_affine_sample  # the package's kernel, beside yours
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
# input image and returns the output. The fused kernel computes each
# sampling point in registers, where it costs no traffic at all. This is a lower bound – a kernel that reads an input
# pixel twice because it fell out of the cache moves more – and it is what a good kernel approaches.

# %% [markdown]
# ## Build
#
# ### Question – predict before you count
#
# Before you write the model down exactly: for an output as large as its input ($H_\text{out} = H$,
# $W_\text{out} = W$), what share of the unfused pass's bytes does fusing save, as a function of the number of
# channels $C$ alone? Work it out on paper, per output pixel; return a number between 0 and 1. (Exercise 1 then
# counts exactly, and a table checks your answer at the benchmark's sizes.)

# %%
def saved_share(channels):
    """The share (0 … 1) of one unfused forward pass's bytes that fusing saves, the output as large as the input."""
    ### BEGIN SOLUTION
    return 2 / (channels + 2)  # the grid written and read: 2 · 2 numbers per pixel, of 4 + 2C in all
    ### END SOLUTION


# %%
saved_share = check("07.saved_share", saved_share)

# %% [markdown]
# ### Exercise 1 – the bytes model
#
# Return the bytes one pass moves, as a Python `int`: with `fused=False` the two ATen kernels one after the other,
# with `fused=True` the fused kernel. `input_shape = (N, C, H, W)`, `out_size = (H_out, W_out)` (now it may differ
# from the input's size); the grid's shape is lesson 2's. Your question above is the forward's special case – do
# they agree?
#
# Then `backward=True`: the bytes of the pass that computes the gradients with respect to the input and θ from the
# output's gradient. Which tensors does it need? That is lesson 4's eq. 6 and 7, not this text. The model's rules,
# for both directions: count every tensor once per kernel that reads it and once per kernel that writes it (the
# caches are ignored); θ and θ's gradient are negligible (a few numbers per image); the input gradient is a sum, so
# it is first filled with zeros – a write of its own – and then written once more with the sums.

# %%
def sampler_bytes(input_shape, out_size, element_size=4, fused=False, backward=False):
    """Bytes of one affine sampling pass, forward or backward: ``(N, C, H, W), (H_out, W_out) -> int``."""
    ### BEGIN SOLUTION
    n, c, h, w = input_shape
    h_out, w_out = out_size
    image, output, grid = n * c * h * w, n * c * h_out * w_out, n * h_out * w_out * 2
    if backward:  # grad_output and the input read (eq. 7); the input gradient zero-filled, then written
        elements = output + image + 2 * image
        if not fused:  # grid_sample's backward reads the grid, writes grad_grid; affine_grid's backward reads it
            elements += 3 * grid
    elif fused:
        elements = image + output
    else:
        elements = grid + (grid + image + output)  # affine_grid writes the grid; grid_sample reads it, and so on
    return int(elements * element_size)
    ### END SOLUTION


# %%
sampler_bytes = check("07.sampler_bytes", sampler_bytes)

# %% [markdown]
# <details><summary>The count, tensor by tensor</summary>
#
# | pass | reads | writes |
# |---|---|---|
# | `F.affine_grid` | θ | grid: $N \cdot H_\text{out} W_\text{out} \cdot 2$ |
# | `F.grid_sample` | grid, input: $N C H W$ | output: $N C H_\text{out} W_\text{out}$ |
# | fused kernel | θ, input | output |
#
# The grid crosses the bus twice: written by `affine_grid`, read back by `grid_sample`. Per output pixel of one
# image (output as large as the input): 2 + 2 grid numbers, $C$ input and $C$ output numbers, against $2C$ fused –
# saved $4 / (4 + 2C) = 2 / (C + 2)$.
#
# The backward (eq. 6 scatters $\partial L / \partial V$ into the input gradient; eq. 7 needs the input's values
# $U$ around every sampling point, so the input is read again):
#
# | pass | reads | writes |
# |---|---|---|
# | `grid_sample` backward | output gradient, grid, input | input gradient (zero-filled, then the sums), grid gradient |
# | `affine_grid` backward | grid gradient | θ's gradient |
# | fused backward | output gradient, θ, input | input gradient (zero-filled, then the sums), θ's partials |
#
# Three grids cross the bus in the unfused backward; none in the fused one.
# </details>

# %%
SIZES = [(1024, 1, 60, 60), (256, 1, 224, 224), (256, 3, 224, 224), (32, 64, 56, 56)]
print(f"{'input = output':22s} {'unfused MB':>11s} {'fused MB':>9s} {'saved':>7s}")
for shape in SIZES:
    unfused, fused = (sampler_bytes(shape, shape[2:], 4, f) for f in (False, True))
    print(f"{str(shape):22s} {unfused / 1e6:11.1f} {fused / 1e6:9.1f} {1 - fused / unfused:7.0%}")
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
# lanes are **masked** – every load and store takes `mask=live`, so a masked lane never touches memory.
#
# ### Exercise 2 – a bug hunt: the tile of one program
#
# A colleague wrote the function that says which output pixel each lane of program `pid` computes – `(rows, cols,
# live)`: the int64 row and column of every lane's output pixel and the bool mask `live` (which lanes have a
# pixel). His kernel passes his tests on 4×4 and 32×32 outputs, with `BLOCK` 8 and 256; his printout below looks
# right. On your 24×40 outputs the same kernel writes a scrambled image, and now and then the process dies with an
# illegal memory access. His function has **two** bugs. Find them – reason about which sizes hide each one – and
# write the fixed `program_pixels`. (A masked lane still computes a row and a column – the kernel cannot skip the
# arithmetic, only the memory access – so return them for every lane, as the same arithmetic gives them.)

# %%
def colleague_pixels(pid, block, h_out, w_out):
    """The colleague's version, with two bugs: ``-> (rows, cols, live)``, each ``(block,)``."""
    offsets = block * pid + torch.arange(block)
    rows, cols = offsets // h_out, offsets % h_out
    live = offsets <= h_out * w_out
    return rows, cols, live


for pid in (0, 1):  # his test: a 4×4 output, BLOCK = 8 – two programs, 16 pixels
    r, c, ok = colleague_pixels(pid, 8, 4, 4)
    print(f"program {pid}: pixels (row, col) {list(zip(r.tolist(), c.tolist()))}, live lanes {int(ok.sum())} of 8")

# %%
def program_pixels(pid, block, h_out, w_out):
    """The output pixels program ``pid`` computes: ``-> (rows, cols, live)``, each ``(block,)``: int64, int64, bool"""
    ### BEGIN SOLUTION
    offsets = pid * block + torch.arange(block)
    return offsets // w_out, offsets % w_out, offsets < h_out * w_out
    ### END SOLUTION


# %%
program_pixels = check("07.program_pixels", program_pixels)

# %%
rows, cols, live = program_pixels(2, 16, 6, 7)
print("program 2 of a 6×7 output with BLOCK = 16:", list(zip(rows[live].tolist(), cols[live].tolist()))[:4], "…,",
      int(live.sum()), "live lanes of 16")
plotting.plot_program_tiles(6, 7, 16, program=2);

# %% [markdown]
# ### Where a pixel reads, without a grid
#
# The fused kernel has no grid to read: each lane computes its own sampling point from its row, its column and θ.
# That is three steps you have met – where `F.affine_grid` puts output pixel $(i, j)$ in normalized coordinates,
# what θ does to that point, and where the normalized result lands among the input's pixels – but now written as
# arithmetic on one pixel's indices, for both `align_corners` conventions, without a grid to lean on.
#
# ### Exercise 3 – the kernel's index arithmetic, in PyTorch
#
# Given one image's `theta (2, 3)` and integer tensors `rows`, `cols` (any shape), return the pixel coordinates
# `(x, y)` they read, in theta's dtype – what `F.affine_grid` would have stored, then unnormalized, but computed only
# for these pixels. Derive each step from what the conventions *mean* (which points are ±1: the outer edges of the
# image, or the centres of its corner pixels?). The check tries every output size `F.affine_grid` accepts, and
# compares with what it stores – whatever your formula does at the extremes, it must do what `F.affine_grid` does.

# %%
def source_pixels(theta, rows, cols, in_size, out_size, align_corners=False):
    """``theta (2, 3)``, ``rows``/``cols`` int tensors, ``in_size (H, W)``, ``out_size (H_out, W_out)`` -> ``(x, y)``"""
    ### BEGIN SOLUTION
    (h, w), (h_out, w_out) = in_size, out_size
    i, j = rows.to(theta.dtype), cols.to(theta.dtype)
    if align_corners:
        xt = 2 * j / (w_out - 1) - 1 if w_out > 1 else torch.zeros_like(j)
        yt = 2 * i / (h_out - 1) - 1 if h_out > 1 else torch.zeros_like(i)
    else:
        xt, yt = (2 * j + 1) / w_out - 1, (2 * i + 1) / h_out - 1
    xs = theta[0, 0] * xt + theta[0, 1] * yt + theta[0, 2]
    ys = theta[1, 0] * xt + theta[1, 1] * yt + theta[1, 2]
    if align_corners:
        return (xs + 1) * (w - 1) / 2, (ys + 1) * (h - 1) / 2
    return ((xs + 1) * w - 1) / 2, ((ys + 1) * h - 1) / 2
    ### END SOLUTION


# %%
source_pixels = check("07.source_pixels", source_pixels)

# %% [markdown]
# <details><summary>The derivation</summary>
#
# With `align_corners=False`, ±1 are the outer edges: the $W_\text{out}$ pixels split $[-1, 1]$ into cells of width
# $2 / W_\text{out}$, and pixel $j$'s centre is in the middle of its cell, $x_t = \frac{2j + 1}{W_\text{out}} - 1$.
# With `True`, ±1 are the centres of the first and last pixel, $x_t = \frac{2j}{W_\text{out} - 1} - 1$ (and 0 for
# a side of one pixel, as `F.affine_grid` does). The same for $y_t$ with $i$ and $H_\text{out}$. θ maps the point,
# $x_s = \theta_{00} x_t + \theta_{01} y_t + \theta_{02}$, $y_s = \theta_{10} x_t + \theta_{11} y_t + \theta_{12}$,
# and inverting the same conventions on the input's side gives its pixel coordinates,
#
# $$ x = \frac{(x_s + 1) W - 1}{2} \quad (\texttt{False}), \qquad
#    x = \frac{(x_s + 1)(W - 1)}{2} \quad (\texttt{True}). $$
# </details>
#
# Six multiply-adds per output pixel, in registers: this is what replaces the grid's 16 bytes of traffic per pixel
# in float32 (two numbers of 4 bytes, written by `affine_grid` and read back by `grid_sample` – your model above).

# %%
photo = sample_image("grace_hopper", size=32, gray=True)  # (1, 1, 32, 27)
demo_theta = torch.tensor([[0.55, -0.25, 0.1], [0.25, 0.55, -0.1]])
plotting.plot_program_reads(photo, demo_theta, (32, 32), 64, program=7);
rows7, cols7, live7 = program_pixels(7, 64, 32, 32)
x7, y7 = source_pixels(demo_theta.double(), rows7[live7], cols7[live7], photo.shape[-2:], (32, 32))
corner_reads = {(int(yy) + dy, int(xx) + dx) for xx, yy in zip(x7.floor(), y7.floor()) for dy in (0, 1)
                for dx in (0, 1)}
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
# ### Exercise 4 – the fused forward kernel
#
# Write the body of `affine_sample_kernel`: zeros padding, `align_corners=False`, bilinear. The launcher below is
# given: one program per `(image, BLOCK output pixels)`, θ flattened to six numbers per image, tensors contiguous so
# that element `(n, c, y, x)` of the input is at `inp + ((n·C + c)·H + y)·W + x`. In the kernel:
#
# 1. `n = tl.program_id(0)`; the offsets, rows, columns and mask of exercise 2 (with `tl.program_id(1)`);
# 2. the six numbers of θ with `tl.load(theta + n * 6 + k)`; the source point of exercise 3, in `tl` arithmetic
#    (cast the integer rows and columns with `.to(t0.dtype)`, so that float64 inputs stay float64);
# 3. `x0 = tl.floor(x)`, `fx = x - x0` (and for y); integer corners with `.to(tl.int32)`; for each corner a mask
#    `live & inside the image`;
# 4. a loop `for c in range(0, C):` that loads the four neighbours of channel `c` with their masks and
#    `other=0.0` (outside reads 0), blends them and `tl.store`s the result at `out + (n·C + c)·H_out·W_out + offset`.

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
# ## Verify
#
# Your kernel against torch on a photo, float32 – and the package's kernel (`stn_course.gpu.affine.affine_sample`,
# every padding mode and convention, with the backward) beside it:

# %% tags=["skip-when-grading"]
mine_ready = status("07.fused_affine_sample") == "passed"
batch = photo.to(DEVICE).expand(2, 1, 32, 27).contiguous()
thetas = torch.stack([demo_theta, torch.tensor([[1.2, 0.3, 0.0], [-0.3, 1.2, 0.2]])]).to(DEVICE)
reference = F.grid_sample(batch, F.affine_grid(thetas, (2, 1, 40, 40), align_corners=False), align_corners=False)
package = package_affine_sample(batch, thetas, (2, 1, 40, 40))
print(f"package kernel vs torch: max |difference| {(package - reference).abs().max().item():.1e}")
if mine_ready:
    yours = fused_affine_sample(batch, thetas, (40, 40))
    print(f"your kernel vs torch:    max |difference| {(yours - reference).abs().max().item():.1e}")
plotting.show_images([batch[0], reference[0], package[0], reference[1], package[1]],
                     ["input", "torch, θ₁", "fused kernel, θ₁", "torch, θ₂", "fused kernel, θ₂"]);

# %% [markdown]
# ## The backward, in the fused kernel
#
# The backward of the sampler is lesson 4's eq. 6 and 7. In the fused kernel the same program that read the four
# neighbours of an output pixel computes, for every channel,
#
# * the **input gradient** by scattering: $\partial L / \partial U_{nm} \mathrel{+}= \partial L / \partial V_i \cdot
#   w_{i,nm}$ into each of the four neighbours;
# * the **gradient with respect to the sampling point**, eq. 7, chained through the unnormalization, and then into θ:
#   $\partial L / \partial \theta_{0k} = \sum_i \partial L / \partial x_s^{(i)} \cdot (x_t, y_t, 1)_k$ – a sum over
#   every output pixel, which each program reduces over its own block (`tl.sum`) and writes as one partial; the
#   partials are added afterwards.
#
# **Predict, before you read on.** Your training run is not bit-reproducible on a GPU even with every seed fixed:
# the same data, the same initialisation, and after a few hundred steps the weights differ in their last bits.
# Which of the kernel's parts can make two runs differ? Choose one, as a string (`check` grades it without showing
# the answer; the text after it says why):
#
# * `"a"` – the forward: each output pixel blends its four input neighbours with bilinear weights;
# * `"b"` – the input's gradient: each output pixel's gradient, times the bilinear weights, goes to its four
#   input neighbours;
# * `"c"` – θ's gradient: each program reduces its pixels' products with `tl.sum` into its own slot of partials,
#   which torch sums afterwards;
# * `"d"` – the sampling points: the fused kernel computes θ·(x_t, y_t, 1) in another order than `F.affine_grid`,
#   so its coordinates differ from torch's in the last bits.

# %%
def nondeterminism_source():
    """The choice that makes a seeded GPU training run differ in its last bits: "a", "b", "c" or "d"."""
    ### BEGIN SOLUTION
    return "b"
    ### END SOLUTION


# %%
nondeterminism_source = check("07.nondeterminism_source", nondeterminism_source)

# %% [markdown]
# ### Atomics, and why two runs differ
#
# The scatter is the hard part on a GPU. Zooming in, neighbouring output pixels – computed by *different*
# programs running at the same time – add into the same input pixel. A plain `load, add, store` would lose updates
# (two programs read the old value, both write, one addition vanishes), so the kernel uses `tl.atomic_add`: the
# memory system serialises the additions to one address. Correct – but in **whatever order the programs arrive**
# ("b"). The forward ("a") and each program's `tl.sum` ("c") compute from the same inputs in a fixed order on every
# run, and the partials sit in fixed slots; "d" makes the fused kernel differ from torch, but the same way on every
# run.
#
# Floating-point addition is not associative: $(a + b) + c$ and $a + (b + c)$ can differ in the last bits. So the
# order of atomic additions changes the result from run to run: `F.grid_sample`'s CUDA backward is
# nondeterministic for this reason (an open PyTorch issue since 2021), and so is any atomic scatter. How much can
# the order matter? Add the same numbers in different orders:

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
# ### Exercise 5 – the input gradient, with atomic additions
#
# Write the body of `input_grad_kernel`: the backward's scatter, eq. 6 – for every output pixel and channel, its
# gradient $\partial L / \partial V_i$ times each bilinear weight, added into the matching input pixel of `grad_in`
# (zeros padding, `align_corners=False`, as exercise 4). The launcher fills `grad_in` with zeros first (the
# zero-fill your bytes model counted); the helper `bilinear_corners` gives each lane's four neighbours, weights and
# masks – exercise 4's steps 1–3, which you have written once already. Lanes of one program, and lanes of programs
# running at the same moment on a GPU, can add into the same input pixel: choose the memory operation accordingly.

# %%
if gpu.triton_available():

    @triton.jit
    def bilinear_corners(theta, n, offsets, H, W, H_out, W_out):
        """Per lane: the (x0, y0) corner (int32), the four weights and the four inside-the-image masks, in the order
        (x0, y0), (x0 + 1, y0), (x0, y0 + 1), (x0 + 1, y0 + 1)."""
        row = theta + n * 6
        a = tl.load(row)
        u = (2.0 * (offsets % W_out).to(a.dtype) + 1.0) / W_out - 1.0  # the output pixel, normalized
        v = (2.0 * (offsets // W_out).to(a.dtype) + 1.0) / H_out - 1.0
        px = ((a * u + tl.load(row + 1) * v + tl.load(row + 2) + 1.0) * W - 1.0) / 2.0  # where it reads, in pixels
        py = ((tl.load(row + 3) * u + tl.load(row + 4) * v + tl.load(row + 5) + 1.0) * H - 1.0) / 2.0
        left, top = tl.floor(px), tl.floor(py)
        wx, wy = px - left, py - top
        xi, yi = left.to(tl.int32), top.to(tl.int32)
        x_ok, x1_ok = (xi >= 0) & (xi < W), (xi >= -1) & (xi < W - 1)
        y_ok, y1_ok = (yi >= 0) & (yi < H), (yi >= -1) & (yi < H - 1)
        return (xi, yi, (1.0 - wx) * (1.0 - wy), wx * (1.0 - wy), (1.0 - wx) * wy, wx * wy,
                x_ok & y_ok, x1_ok & y_ok, x_ok & y1_ok, x1_ok & y1_ok)

    @jit_exercise
    def input_grad_kernel(grad_out, theta, grad_in, C, H, W, H_out, W_out, BLOCK: tl.constexpr):
        ### BEGIN SOLUTION
        n = tl.program_id(0)
        offsets = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        live = offsets < H_out * W_out
        x0, y0, w00, w10, w01, w11, m00, m10, m01, m11 = bilinear_corners(theta, n, offsets, H, W, H_out, W_out)
        for c in range(0, C):
            g = tl.load(grad_out + (n * C + c) * H_out * W_out + offsets, mask=live, other=0.0)
            image = grad_in + (n * C + c) * H * W + y0 * W + x0  # the (x0, y0) corner; the others are +1, +W, +W + 1
            tl.atomic_add(image, w00 * g, mask=live & m00)
            tl.atomic_add(image + 1, w10 * g, mask=live & m10)
            tl.atomic_add(image + W, w01 * g, mask=live & m01)
            tl.atomic_add(image + W + 1, w11 * g, mask=live & m11)
        ### END SOLUTION


def affine_input_gradient(grad_output, theta, in_size):
    """∂L/∂input of the fused sampler for ``grad_output = ∂L/∂output``: ``(N, C, H_out, W_out), (N, 2, 3), (H, W)
    -> (N, C, H, W)``"""
    grad_output, theta = grad_output.contiguous(), theta.reshape(-1, 6).contiguous().to(grad_output.dtype)
    n, c, h_out, w_out = grad_output.shape
    h, w = in_size
    grad_input = torch.zeros(n, c, h, w, dtype=grad_output.dtype, device=grad_output.device)  # the zero-fill
    block = gpu.block_size(grad_output.device)
    input_grad_kernel[(n, triton.cdiv(h_out * w_out, block))](grad_output, theta, grad_input, c, h, w, h_out, w_out,
                                                              BLOCK=block)
    return grad_input


# %%
affine_input_gradient = check("07.affine_input_gradient", affine_input_gradient)

# %% [markdown]
# <details><summary>Why atomics, and what a plain store would do</summary>
#
# `tl.atomic_add(pointer, value, mask)` reads, adds and writes back as one indivisible operation of the memory
# system: two lanes adding into one address both count. `tl.load`, `+`, `tl.store` instead lets two lanes read the
# same old value and write their sums one after the other – one addition vanishes. Under the interpreter programs
# run one after another, but the lanes of *one* program still share addresses when the transform magnifies (the
# check's zoomed-in case): a vector store with repeated addresses keeps only one of them, so even here the plain
# version fails. On a GPU the same happens between programs, at random.
# </details>

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
RUNS = 3  # per mode: enough to show a difference on a GPU; under the interpreter a sorted-segments backward costs ~3 s


def input_gradient(deterministic):
    leaf = small.clone().requires_grad_()
    out = package_affine_sample(leaf, zoom_in, (1, 1, 32, 32), deterministic=deterministic)
    (grad,) = torch.autograd.grad(out, leaf, grad_out)
    return grad


runs = {"atomics": [], "sorted segments": []}
for mode in tqdm([mode for mode in runs for _ in range(RUNS)], desc="backward runs"):
    runs[mode].append(input_gradient(mode == "sorted segments"))
for mode, grads in runs.items():
    identical = all(torch.equal(grads[0], g) for g in grads[1:])
    print(f"{mode:16s}: {RUNS} runs bit-identical: {identical}")
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
# )(affine_sample_kernel.fn)  # the plain function under your @triton.jit; the launch then passes no BLOCK
# tuned[lambda meta: (n, triton.cdiv(h_out * w_out, meta["BLOCK"]))](image, theta, out, C, H, W, H_out, W_out)
# ```
#
# The cell below sweeps the pairs over your kernel of exercise 4 – with `do_bench` on a GPU; under the interpreter
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
    print("Exercise 4 first: the sweep times your kernel.")
else:
    blocks, warps = ((256, 1024), (1, 4)) if DEVICE.type == "cpu" else ((128, 256, 512, 1024), (2, 4, 8))
    tuning = sweep(launch_mine, blocks, warps)
    label = "on " + where if DEVICE.type == "cuda" else "under the interpreter – not a GPU timing"
    print(f"input {tune_shape}, {label}:")
    for (b, w), t in sorted(tuning.items(), key=lambda item: item[1]):
        print(f"  BLOCK {b:5d}, num_warps {w}: {t * 1e3:8.3f} ms")

# %% [markdown]
# ### Exercise 6 – waves: why the best `BLOCK` depends on the GPU
#
# A GPU does not run all the programs of a launch at once. Each of its `sms` streaming multiprocessors holds up to
# `per_sm` programs at a time – as many as its registers, shared memory and warp slots admit (the *occupancy*) –
# so a launch of more programs than `sms · per_sm` slots runs in **waves**. Say every program takes the same time,
# as a memory-bound one nearly does: then the launch takes as long as its number of waves, and a last wave with a
# few programs costs as much as a full one (the *tail effect*).
#
# Write `wave_efficiency(n, h_out, w_out, block, sms, per_sm)`: the share of the slot time the launch of your
# kernel of exercise 4 (a grid of `n` images × the programs of exercise 2's tiles) keeps busy, over all its waves –
# `1.0` when every wave is full. The lesson's case: the H100 SXM, 132 SMs, a batch of 8 at 224², `BLOCK` 256 and
# 8 programs per SM; the check also asks the T4 (40 SMs) and the A100 (108 SMs), other sizes and blocks. The SM
# counts are NVIDIA's architecture whitepapers' (Turing, A100 Tensor Core GPU, H100 Tensor Core GPU).

# %%
def wave_efficiency(n, h_out, w_out, block, sms, per_sm):
    """The busy share (0 … 1] of the slots over the waves of a launch of ``n · ceil(h_out·w_out / block)`` programs
    on ``sms`` multiprocessors that run ``per_sm`` programs each at a time."""
    ### BEGIN SOLUTION
    programs = n * -(-(h_out * w_out) // block)  # exercise 2: the last program of each image is partly masked
    slots = sms * per_sm  # programs that run at once
    waves = -(-programs // slots)  # the last wave may be nearly empty: it takes a whole wave's time
    return programs / (waves * slots)
    ### END SOLUTION


# %%
wave_efficiency = check("07.wave_efficiency", wave_efficiency)

# %% [markdown]
# <details><summary>The count, and what it leaves out</summary>
#
# A launch has $p = N \lceil H_\text{out} W_\text{out} / \text{BLOCK} \rceil$ programs and the GPU $s =
# \text{SMs} \cdot \text{per\_sm}$ slots, so it runs $\lceil p / s \rceil$ waves, and the busy share of their
# slot time is $p / (\lceil p / s \rceil \, s)$. Two roundings up: the masked tail of every image (exercise 2)
# and the last wave. Taking only the last wave's fill, $(p \bmod s) / s$, forgets that the full waves before it
# dilute the loss – and gives 0 for a launch that fills every wave exactly. Real GPUs start a program as soon as a
# slot frees, and programs' times vary, so the tail is softer than this model's; the direction holds.
# </details>
#
# Now the table, for a batch of 8 at 224², with your function: the same kernel on three GPUs, for four blocks and
# two occupancies (how many programs fit on an SM depends on `BLOCK`, `num_warps` and the registers the compiler
# allots: Triton reports them, `kernel.n_regs`, after a compile for a GPU).

# %%
SMS = {"T4": 40, "A100": 108, "H100 SXM": 132}  # NVIDIA's whitepapers
wave_table = {(gpu_name, per_sm, b): wave_efficiency(8, 224, 224, b, sms, per_sm)
              for gpu_name, sms in SMS.items() for per_sm in (4, 8) for b in (128, 256, 512, 1024)}
print("busy share of the slots, batch 8 at 224²:")
print(f"{'GPU':9s} {'per SM':>6s}" + "".join(f"{'BLOCK ' + str(b):>12s}" for b in (128, 256, 512, 1024)))
for gpu_name in SMS:
    for per_sm in (4, 8):
        print(f"{gpu_name:9s} {per_sm:6d}" + "".join(f"{wave_table[gpu_name, per_sm, b]:12.3f}"
                                                     for b in (128, 256, 512, 1024)))

# %% [markdown]
# The best block is not the same on the three GPUs, and it moves with the occupancy: on the H100 a block of 256
# keeps almost every slot busy at four programs per SM and leaves a quarter of them idle at eight; on the A100 at four
# programs per SM every block leaves the same tenth idle. The tail is only one of the effects – larger blocks mean
# fewer θ loads, more registers and fewer programs per SM, and the latency a full SM can hide – and they pull in
# different directions, differently on every GPU and size. That is why the best `BLOCK` and `num_warps` are measured, not derived: `do_bench` over a
# sweep as above, or `triton.autotune` with a `key` of the sizes, so that each new size is tuned once on the GPU
# that runs it. None of this has been measured on a GPU for this course's kernels: the table is the model's.

# %% [markdown]
# ### Coalescing, and 2-D tiles
#
# A GPU reads memory in **segments** of 32 to 128 bytes. The 32 threads of a warp issue a load together; when their
# addresses are consecutive, one or two segments serve all of them – the access is **coalesced**. When they are
# scattered, every thread may need its own segment: up to 32 times the traffic for the same useful bytes (the
# cache catches some of it, if the lines are still there when a neighbour asks).
#
# **Question – predict before the count.** Lanes of a program are consecutive output pixels of one row (the 1-D
# tile of exercise 2). θ rotates by 90°. Which is right? Return `"a"`, `"b"`, `"c"` or `"d"`:
#
# * `"a"` – the output store and the four corner loads are all coalesced: consecutive lanes, consecutive pixels;
# * `"b"` – the store is coalesced whatever θ; the corner loads of one warp fall in about one segment per lane, and
#   a square tile (16 × 16 output pixels per program) needs fewer segments per warp and per program;
# * `"c"` – neither is coalesced: a gather never is;
# * `"d"` – the loads are coalesced, but the store is not, because the output is written in the rotated order.

# %%
def coalescing():
    """Which statement about a 1-D tile under a 90° rotation is right: "a", "b", "c" or "d"."""
    ### BEGIN SOLUTION
    statement = "b"  # the store follows the output; the loads follow θ – a column of the input
    return statement
    ### END SOLUTION


# %%
coalescing = check("07.coalescing", coalescing)

# %% [markdown]
# Now count. For a program of 256 output pixels – a 1 × 256 row or a 16 × 16 square – the code below finds the
# 128-byte segments (float32) that the (x0, y0) corner loads of each warp touch, and of the whole program, with
# your `source_pixels` from exercise 3:

# %%
SEGMENT = 128 // 4  # float32 elements per 128-byte segment


def segments(theta, tile, size=256, warp=32):
    """Mean distinct segments per warp, and for the whole program, of the (x0, y0) corner loads of one program
    whose 256 lanes cover ``tile = (rows, cols)`` output pixels at the centre of a ``size²`` image."""
    rows_in_tile, cols_in_tile = tile
    lane = torch.arange(rows_in_tile * cols_in_tile)
    rows = size // 2 + lane // cols_in_tile - rows_in_tile // 2
    cols = size // 2 + lane % cols_in_tile - cols_in_tile // 2
    x, y = source_pixels(theta.double(), rows, cols, (size, size), (size, size))
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
# a compact patch whose lines neighbouring lanes share. This is why image kernels tile in 2-D: the reads of a
# gather follow θ, and a square tile bounds the damage whatever the direction. (A 2-D tile in Triton: `rows =
# pid_y * BY + tl.arange(0, BY)[:, None]`, `cols = pid_x * BX + tl.arange(0, BX)[None, :]`, a launch grid of
# `(N, ceil(H_out / BY), ceil(W_out / BX))`.)
#
# ### Addresses past 2³¹
#
# Triton computes with the types it is given: `tl.program_id` and the integer arguments `C, H, W` are **int32**, and
# so is `((n·C + c)·H + y)·W + x` – up to $2^{31} - 1$. A batch of 16 feature maps of 64 channels at 2048² has
# $2^{32}$ elements, and a real training job meets such tensors. Then the address the kernel computes is not the
# element's: the load reads another element (or faults), silently.
#
# ### Exercise 7 – the address a kernel computes
#
# Return, as a Python `int`, the address `((n·C + c)·H + y)·W + x` of element `index = (n, c, y, x)` of a tensor of
# `shape = (N, C, H, W)` **as a kernel computing in int32 obtains it**. Python's integers never overflow, so you must
# say what a 32-bit signed register holds. No tensor is made: the check's largest shapes have tens of billions of
# elements.

# %%
def kernel_address(index, shape):
    """The int32 address of ``index = (n, c, y, x)`` in a contiguous ``shape = (N, C, H, W)`` tensor -> int."""
    ### BEGIN SOLUTION
    (n, c, y, x), (_, channels, h, w) = index, shape
    exact = ((n * channels + c) * h + y) * w + x
    return (exact + 2**31) % 2**32 - 2**31  # two's complement: wrapping once equals wrapping after every step
    ### END SOLUTION


# %%
kernel_address = check("07.kernel_address", kernel_address)

# %%
big = (16, 64, 2048, 2048)
for index in ((7, 63, 2047, 2047), (8, 0, 0, 0), (15, 63, 2047, 2047)):
    exact = ((index[0] * big[1] + index[1]) * big[2] + index[2]) * big[3] + index[3]
    print(f"element {index} of {big}: address {exact:>11,d}, in int32 {kernel_address(index, big):>14,d}")

# %% [markdown]
# <details><summary>Why one wrap at the end is enough, and the fix</summary>
#
# A signed 32-bit register holds its value modulo $2^{32}$, shown in $[-2^{31}, 2^{31})$:
# $(v + 2^{31}) \bmod 2^{32} - 2^{31}$. Addition and multiplication modulo $2^{32}$ are the integers' own,
# reduced – a ring homomorphism – so wrapping after every step gives the same as wrapping the exact result once.
# Image 8 starts exactly at $2^{31}$: its first element is computed at $-2^{31}$, and every element past it in
# memory lands before the tensor's start.
#
# The fix costs little: widen before the multiplications that can pass $2^{31}$, e.g. `base = (n * C +
# c).to(tl.int64) * H * W` (each program's offset within one image stays small). Triton's pointer arithmetic is
# 64-bit; it is the integer index that overflows. Where a kernel only ever sees small tensors, int32 is faster
# (half the registers); a launcher can check `input.numel() < 2**31` and pick the 64-bit variant only when needed.
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
    """The roofline's memory term: the bytes of your model over ``bandwidth`` (float32)."""
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
# ### Exercise 8 – the most fusion can gain, forward and backward
#
# Training runs the forward and the backward. By the bytes model, how many times faster can the fused kernels'
# forward + backward be than ATen's, **on any GPU**? Write `fusion_bound(input_shape, out_size)` with your
# `sampler_bytes` of exercise 1 (float32) – the check asks other channel counts and sizes than the table's. Before
# you write it: which of bandwidth, element size and batch the answer depends on?

# %%
def fusion_bound(input_shape, out_size):
    """The largest speedup of the fused forward + backward over ATen's that the bytes model allows:
    ``(N, C, H, W), (H_out, W_out) -> float`` (> 1)."""
    ### BEGIN SOLUTION
    def both_passes(fused):  # at one bandwidth, time is proportional to bytes: the bandwidth cancels in the ratio
        return sum(sampler_bytes(input_shape, out_size, 4, fused, backward) for backward in (False, True))

    return both_passes(False) / both_passes(True)
    ### END SOLUTION


# %%
fusion_bound = check("07.fusion_bound", fusion_bound)

# %% [markdown]
# <details><summary>Why the bandwidth cancels, and the formula</summary>
#
# At the roofline each pass takes its bytes over the same bandwidth $B$, so the ratio of the times is the ratio of
# the bytes, whatever $B$ – and whatever the element size, which multiplies both. Per output pixel, with the
# output as large as the input and in elements: ATen's forward moves $2 + 2 + 2C$, its backward $C + 3C + 3 \cdot
# 2$; the fused ones $2C$ and $4C$. The bound is $(6C + 10) / 6C = 1 + 5 / 3C$: large for one channel, close to 1
# for many.
# </details>
#
# The issue behind this section set a goal for a GPU run: the fused forward + backward at least 1.3× as fast as
# ATen's at 8×64×224². What does the model say about it?

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
