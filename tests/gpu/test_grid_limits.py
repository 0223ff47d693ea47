"""CUDA's caps on a launch grid (:func:`stn_course.gpu.launches.check_grid`): 2³¹ − 1 programs along x, 65,535 along
y and z. A launch past them is refused with a message naming the kernel, the axis, its size and the cap – on CUDA
devices only: Triton's interpreter runs the programs in loops and has no cap (the last test runs a grid past it).

The launcher tests fake the device (``check_grid`` sees ``cuda``) and shrink the modules' ``BLOCK`` to 1, so a
grid past 65,535 takes a 256² output or 65,536 expanded channels: no large allocation, nothing launched.
"""
from __future__ import annotations

import pytest
import torch

from stn_course.gpu import launches
from stn_course.gpu.launches import GRID_LIMITS, check_grid

CUDA, CPU = torch.device("cuda"), torch.device("cpu")  # device objects only: no GPU needed


@pytest.mark.parametrize("grid, axis", [((1, 65536), 1), ((2, 3, 65536), 2), ((2**31, 1), 0)])
def test_a_grid_past_cuda_s_caps_is_refused_naming_axis_size_and_cap(grid, axis):
    limit = GRID_LIMITS[axis]
    with pytest.raises(ValueError, match=rf"forward: launch grid .* {grid[axis]:,} programs along axis {axis} "
                                         rf"\({'xyz'[axis]}\); CUDA allows at most {limit:,}"):
        check_grid("forward", grid, CUDA)


@pytest.mark.parametrize("grid", [(1, 65535), (2**31 - 1, 65535, 65535), (7,)])
def test_grids_at_the_caps_pass(grid):
    check_grid("forward", grid, CUDA)


def test_the_interpreter_s_cpu_launches_are_not_capped():
    check_grid("forward", (1, 65536, 10**6), CPU)


@pytest.fixture
def fake_cuda_grid_check(monkeypatch):
    """``launch`` checks every grid as if its tensors were on CUDA."""
    real = launches.check_grid
    monkeypatch.setattr(launches, "check_grid", lambda kernel, grid, device: real(kernel, grid, CUDA))


@pytest.mark.triton
def test_the_affine_launcher_refuses_more_than_65535_programs_per_image(fake_cuda_grid_check, monkeypatch):
    """The grid is ``(N, ceil(H_out·W_out / BLOCK))``: with BLOCK 1, a 256² output is 65,536 programs along y."""
    from stn_course.gpu import affine

    monkeypatch.setattr(affine, "BLOCK", 1)
    image, theta = torch.zeros(1, 1, 2, 2), torch.eye(2, 3)[None]
    with pytest.raises(ValueError, match=r"^_affine_kernels.forward: launch grid \(1, 65536\) has 65,536 programs along axis 1 "
                                         r"\(y\); CUDA allows at most 65,535"):
        affine.affine_sample(image, theta, (256, 256))


@pytest.mark.triton
def test_the_deform_launcher_refuses_more_than_65535_channels(fake_cuda_grid_check):
    """The grid is ``(N, C, ceil(K·P / BLOCK))``: 65,536 input channels (an expanded view) exceed y's cap."""
    from stn_course.gpu.deform import deform_conv2d

    channels = 65536
    image = torch.zeros(1, 1, 3, 3).expand(1, channels, 3, 3)
    offset, weight = torch.zeros(1, 18, 1, 1), torch.zeros(1, 1, 3, 3).expand(1, channels, 3, 3)
    with pytest.raises(ValueError, match=r"^_deform_kernels.im2col: launch grid \(1, 65536, 1\) has 65,536 programs along axis 1"):
        deform_conv2d(image, offset, weight, None, (1, 1), (0, 0), (1, 1), None, 1, 1)


@pytest.mark.triton
def test_the_deform_launcher_refuses_more_than_65535_blocks_of_taps_and_locations(fake_cuda_grid_check,
                                                                                  monkeypatch):
    """With BLOCK 1 the z axis is K·P: 9 taps × 7,282 locations = 65,538 programs."""
    from stn_course.gpu import deform

    monkeypatch.setattr(deform, "BLOCK", 1)
    image, weight = torch.zeros(1, 1, 3, 7284), torch.zeros(1, 1, 3, 3)
    offset = torch.zeros(1, 18, 1, 7282)
    with pytest.raises(ValueError, match=r"^_deform_kernels.im2col: launch grid \(1, 1, 65538\) has 65,538 programs along axis 2 "
                                         r"\(z\); CUDA allows at most 65,535"):
        deform.deform_conv2d(image, offset, weight, None, (1, 1), (0, 0), (1, 1), None, 1, 1)


@pytest.mark.triton
def test_the_interpreter_runs_a_grid_past_cuda_s_cap():
    """Verified, not assumed: the interpreter launches 65,536 programs along y (a one-store kernel, ~1 s)."""
    import triton
    import triton.language as tl

    @triton.jit
    def mark_programs(marks):
        tl.store(marks + tl.program_id(1), 1)

    marks = torch.zeros(65536, dtype=torch.int32)
    mark_programs[(1, 65536)](marks)
    assert int(marks.sum()) == 65536
