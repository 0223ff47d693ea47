"""Shared fixtures: the ``device`` every device-aware test runs on (Kornia's pattern) and Triton's interpreter.

``device`` is ``cpu`` always and ``cuda`` too when a GPU is present, so on a GPU machine those tests run on both.
Without a GPU, ``TRITON_INTERPRET=1`` is set here – before anything imports ``triton`` – so the GPU path's kernels
run on CPU tensors through Triton's interpreter (``tests/gpu/``). Where ``triton`` is not installed at all, the
root ``conftest.py`` skips the tests marked ``triton`` ("needs triton").
"""
from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)
