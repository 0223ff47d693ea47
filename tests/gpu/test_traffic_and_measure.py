"""The bytes model of lesson 7 (stn_course.gpu.traffic), counted by hand, and the fair timer (stn_course.gpu.measure)."""
from __future__ import annotations

import pytest
import torch

from stn_course.gpu.measure import copy_bandwidth, fixed_threads, time_many, time_samples
from stn_course.gpu.traffic import sampler_traffic


def test_forward_bytes_counted_by_hand():
    # N=2, C=3, 5×4 -> 6×7, float64: input 120, output 252, grid 2·42·2 = 168 elements
    unfused = sampler_traffic((2, 3, 5, 4), (6, 7), element_size=8)
    assert (unfused.read, unfused.written, unfused.grid) == ((120 + 168) * 8, (252 + 168) * 8, 336 * 8)
    fused = sampler_traffic((2, 3, 5, 4), (6, 7), element_size=8, fused=True)
    assert (fused.read, fused.written, fused.grid, fused.total) == (960, 2016, 0, 2976)


def test_backward_bytes_counted_by_hand():
    unfused = sampler_traffic((2, 3, 5, 4), (6, 7), 4, backward=True)
    # reads grad_out 252, input 120, grid 168, grad_grid 168; writes grad_input twice (zero, then sums), grad_grid
    assert (unfused.read, unfused.written, unfused.grid) == (4 * (252 + 120 + 336), 4 * (240 + 168), 4 * 504)
    fused = sampler_traffic((2, 3, 5, 4), (6, 7), 4, fused=True, backward=True)
    assert (fused.read, fused.written, fused.grid) == (4 * 372, 4 * 240, 0)


def test_fusing_saves_most_for_few_channels():
    ratio = {c: sampler_traffic((8, c, 32, 32), (32, 32)).total / sampler_traffic((8, c, 32, 32), (32, 32),
                                                                                   fused=True).total
             for c in (1, 3, 64)}
    assert ratio[1] == pytest.approx(3.0) and ratio[3] == pytest.approx(10 / 6) and ratio[64] == pytest.approx(132 / 128)


@pytest.mark.parametrize("bad, message", [
    (dict(input_shape=(1, 4, 4), out_size=(2, 2)), r"input_shape: expected \(N, C, H, W\)"),
    (dict(input_shape=(1, 1, 4, 4), out_size=(2,)), r"out_size: expected \(H_out, W_out\)"),
    (dict(input_shape=(1, -1, 4, 4), out_size=(2, 2)), "C"),
    (dict(input_shape=(1, 1, 4, 4), out_size=(2, 2), element_size=0), "element_size"),
])
def test_bad_arguments_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        sampler_traffic(**bad)


def test_time_many_measures_each_function_and_orders_them():
    slow = torch.randn(400, 400)
    times = time_many({"small": lambda: torch.ones(4).sum(), "matmul": lambda: slow @ slow}, repeats=3,
                      min_time=0.01)
    assert set(times) == {"small", "matmul"} and 0 < times["small"] < times["matmul"]


def test_time_samples_gives_one_sample_per_round_and_time_many_their_median():
    samples = time_samples({"sum": lambda: torch.ones(64).sum()}, repeats=5, min_time=0.001)
    assert len(samples["sum"]) == 5 and all(t > 0 for t in samples["sum"])
    times = time_many({"sum": lambda: torch.ones(64).sum()}, repeats=5, min_time=0.001)
    assert times["sum"] > 0


def test_fixed_threads_sets_the_count_and_restores_it_even_after_an_error():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with pytest.raises(RuntimeError, match="inside"):
        with fixed_threads(target):
            assert torch.get_num_threads() == target
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before


def test_copy_bandwidth_is_a_plausible_number_of_bytes_per_second():
    assert 1e8 < copy_bandwidth("cpu", megabytes=16, repeats=2) < 1e13


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sizes", [((5, 7), (4, 6)), ((1, 9), (3, 1)), ((6, 6), (1, 1))])
def test_source_pixels_is_affine_grid_unnormalized_at_those_pixels(align_corners, sizes):
    import warnings

    import torch.nn.functional as F

    from stn_course.gpu.indexing import program_pixels, source_pixels

    (h, w), (h_out, w_out) = sizes
    theta = torch.tensor([[0.8, -0.3, 0.1], [0.4, 1.1, -0.2]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's note on 1-pixel grids with align_corners=True
        grid = F.affine_grid(theta[None], (1, 1, h_out, w_out), align_corners=align_corners)[0]
    rows, cols, live = program_pixels(0, 16, h_out, w_out)
    x, y = source_pixels(theta, rows[live], cols[live], (h, w), (h_out, w_out), align_corners)
    g = grid.reshape(-1, 2)[: int(live.sum())]
    scale_x, scale_y = (w - 1, h - 1) if align_corners else (w, h)
    shift = 0.0 if align_corners else 0.5
    torch.testing.assert_close(x, (g[:, 0] + 1) / 2 * scale_x - shift, rtol=0, atol=1e-12)
    torch.testing.assert_close(y, (g[:, 1] + 1) / 2 * scale_y - shift, rtol=0, atol=1e-12)


def test_program_pixels_and_num_programs_name_bad_arguments():
    from stn_course.gpu.indexing import num_programs, program_pixels

    assert num_programs(24, 24, 256) == 3 and num_programs(1, 1, 1024) == 1
    with pytest.raises(ValueError, match="block"):
        program_pixels(0, 0, 4, 4)
    with pytest.raises(ValueError, match="pid"):
        program_pixels(-1, 4, 4, 4)
