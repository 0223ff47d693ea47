"""Every number the lessons' prose relies on, tied to what backs it.

The lint test (``test_claims.py``) finds each measurement-looking number in a lesson's markdown – after "≈",
"about" or "~", or before "×" or "%" – and requires an entry here whose ``text`` holds it:

* :class:`Claim` – the sentence states what the notebook computes: ``expr`` is evaluated in the namespace of the
  executed solution notebook (``tests/notebooks/test_notebooks.py`` appends it as a last cell) and must be true;
* :class:`Benchmark` – the sentence quotes ``benchmarks/README.md``: ``check(readme_text)`` must be true;
* :class:`Setting` – the number is not a measurement but a choice made in the code or a quoted fact (a size, a
  zoom the demo applies, a figure from a paper), said with ``why``.

A new number in the prose without an entry fails the lint; a claim the run stops backing fails the notebook test.
Tables written by a benchmark script (between ``<!-- BEGIN name -->`` and ``<!-- END name -->``) are tested against
the benchmark's own output in ``tests/test_benchmarks.py`` and skipped here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Claim:
    lesson: str
    text: str
    expr: str


@dataclass(frozen=True)
class Benchmark:
    lesson: str
    text: str
    check: Callable[[str], bool]


@dataclass(frozen=True)
class Setting:
    lesson: str
    text: str
    why: str


def _train_quality_ratio(readme: str, kind: str) -> float:
    section = readme.split("<!-- BEGIN train_quality -->")[1].split("<!-- END train_quality -->")[0]
    row = next(line for line in section.splitlines() if line.startswith(f"| {kind} |"))
    return float(re.search(r"\*\*([\d.]+)\*\*", row).group(1))


ENTRIES = [
    # lesson 2
    Setting("02", "Magnifying a small crop 6×", "the figure's magnification, chosen in the code"),
    Setting("02", "zoom ≈ 3", "an Explore instruction: the value to set the slider to"),
    Setting("02", "Zoom in by about 3", "a question's instruction: the value to try"),
    # lesson 3
    Claim("03", "the central 40 % of each side of the canvas",
          "(GlimpseNet().params(test_x[:3]) - torch.tensor([0.4, 0.0, 0.0])).abs().max() < 1e-6"),
    Setting("03", "an accuracy far from 100 %", "a reference point (a run that learned the task), not a measurement"),
    # lesson 4
    Claim("04", "θ reads 90 % of the image", "abs(theta_coarse[0, 0, 0].item() - 0.9) < 1e-12"),
    Claim("04", "about 2.8 input pixels apart (36 pixels read onto 13)",
          "round(spacing, 1) == 2.8 and SIZE // 3 == 13 and round(0.9 * SIZE) == 36"),
    Claim("04", "falls 100× for every 10× smaller",
          "all(70 < a / b < 130 for a, b in zip(demo_errors, demo_errors[1:]))"),
    Setting("04", "float32 keeps about 7 significant digits", "a property of IEEE single precision (24-bit mantissa)"),
    # lesson 5
    Setting("05", "(normalized, ≈ 1.4 px; ours)", "0.1 in normalized units is 0.1 × 28 / 2 = 1.4 px (the corner std)"),
    Claim("05", "always learns 4× slower", "TRANSFORMER_FRACTION == 0.25"),
    Benchmark("05", "the ST-CNN's TC error is lower than the CNN's",
              lambda readme: _train_quality_ratio(readme, "TC") < 1),
    Claim("05", "one test mistake is 0.1 %", "len(rts_test) == 1000"),
    Setting("05", "differences below ~1 % are noise", "a rule of thumb: ten test mistakes in 1,000"),
    Claim("05", "Zoom out by 30 %", "abs(zoom_out[0, 0, 0].item() * 0.7 - 1) < 1e-6"),
    Claim("05", "about 2.25× fewer pixels", "(42 / 28) ** 2 == 2.25"),
    Setting("05", "a correlation of 0.5", "an example value in an explanation of correlation vs slope"),
    Setting("05", "a 2×-pooled canvas", "the architecture: training.st_cnn_localisation_net starts with a 2× max-pool"),
    Setting("05", "is about 0. What has happened", "a question's hypothetical, answered in its <details>"),
    # lesson 6
    Claim("06", "~30 % more parameters",
          "1.2 < training.count_parameters(models['deformable CNN']) / "
          "training.count_parameters(models['plain CNN']) < 1.4"),
    Setting("06", "10× or more", "Dai et al.'s datasets (COCO, VOC): a fact about the paper, not this run"),
    Claim("06", "our digits vary by 1.7×, for six epochs",
          "abs(data.distortions.RTS_SCALE[1] / data.distortions.RTS_SCALE[0] - 1.7) < 0.02 and EPOCHS == 6"),
    # lesson 7
    Claim("07", "For one channel, fusing removes two thirds of the forward traffic",
          "abs(saved_one_channel - 2 / 3) < 1e-12"),
    Setting("07", "channels 64: fusing saves less than 3 % of the bytes",
            "an Explore instruction, verified on the explorer by tests/test_try_this.py"),
]
