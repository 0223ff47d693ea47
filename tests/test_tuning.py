"""stn_course.tuning: the validation split, choosing on validation, mean ± spread (lesson 5)."""
import math

import pytest
import torch

from stn_course import tuning


@pytest.mark.parametrize("n, fraction, expected", [(100, 0.1, 10), (4000, 0.125, 500), (7, 0.01, 1), (2, 0.9, 1)])
def test_validation_split_partitions_and_sizes(n, fraction, expected):
    train, val = tuning.validation_split(n, fraction, seed=3)
    assert len(val) == expected and len(train) == n - expected
    assert train.dtype == val.dtype == torch.int64
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(n))
    assert torch.equal(train, train.sort().values) and torch.equal(val, val.sort().values)


def test_validation_split_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = tuning.validation_split(1000, 0.1, seed=1)
    after = torch.rand(1)
    assert torch.equal(before, after)  # the global generator was not consumed
    b = tuning.validation_split(1000, 0.1, seed=1)
    c = tuning.validation_split(1000, 0.1, seed=2)
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    # not simply the last 10 %: a random subset spread over the range
    assert a[1].min() < 500 < a[1].max()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, True, "0.1"])
def test_validation_split_rejects_bad_fractions(bad):
    with pytest.raises(ValueError, match="fraction"):
        tuning.validation_split(10, bad)


def test_select_by_validation_lowest_mean_ties_first_nan_worst():
    assert tuning.select_by_validation({1e-3: [10, 30], 2e-3: [18, 20], 3e-3: [25, 25]}) == 2e-3
    assert tuning.select_by_validation({(1e-3, 0.25): [5.0], (1e-3, 1.0): [5.0]}) == (1e-3, 0.25)
    assert tuning.select_by_validation({"nan": [float("nan")], "ok": [90.0]}) == "ok"
    with pytest.raises(ValueError):
        tuning.select_by_validation({})
    with pytest.raises(ValueError):
        tuning.select_by_validation({1e-3: []})


def test_mean_spread_is_sample_sd():
    mean, sd = tuning.mean_spread([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    assert mean == 5.0 and math.isclose(sd, math.sqrt(32 / 7))
    assert tuning.mean_spread([3.5]) == (3.5, 0.0)
    with pytest.raises(ValueError):
        tuning.mean_spread([])


def test_format_mean_spread():
    assert tuning.format_mean_spread([10.0, 12.0]) == "11.0 ± 1.4"
    assert tuning.format_mean_spread([10.0, 12.0], digits=2) == "11.00 ± 1.41"


def test_make_split_datasets_holds_out_training_digits_as_a_fixed_validation_set():
    from stn_course import data

    full, test = data.make_datasets("R", seed=1, n_train=200, n_test=20, impl="aten")
    train, val, test2 = data.make_split_datasets("R", seed=1, validation=0.1, n_train=200, n_test=20, impl="aten")
    assert (len(train), len(val)) == (180, 20) and torch.equal(test2.images, test.images)
    # together exactly the training digits, none in both parts, none from the test split
    digits = lambda ds: {bytes(d.numpy()) for d in ds.source}  # noqa: E731
    assert digits(train) | digits(val) == digits(full) and not digits(train) & digits(val)
    assert not digits(val) & digits(test)
    assert val.train is False and train.train is True
    before = val.images.clone()
    val.set_epoch(3)  # a validation set never changes
    assert torch.equal(before, val.images)
