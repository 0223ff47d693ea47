"""Learning-rate sweep for lesson 8's colour signs: CNN vs ST-CNN (projective), tuned on a validation split.

    python benchmarks/sign_quality.py             # the committed configuration (6 epochs, seeds 0 1, 2 jobs)
    python benchmarks/sign_quality.py --write     # ... and store benchmarks/sign_quality.json and its README section;
                                                  # lesson 8 reads its learning rates from the json
    python benchmarks/sign_quality.py --seeds 0 --epochs 1 --jobs 1    # a quick look

The same protocol as ``benchmarks/lr_sweep.py`` (lesson 5):

1. **Data.** ``sign_datasets(N_TRAIN, N_TEST, seed=0)`` (:mod:`stn_course.data.signs`): fixed sets, drawn once; 10 %
   of the training signs are held out as the validation set (:func:`stn_course.tuning.validation_split`, seed 0).
2. **Same normalisation.** Both models are built with ``batch_norm=True`` (the classifier trunk they share), read
   colour through :func:`stn_course.training.colour_input`, and have about the same number of parameters.
3. **Same tuning budget.** 4 configurations each: the CNN's learning rate (``CNN_LRS``); the ST-CNN's learning rate
   (``ST_LRS``) times the transformer's fraction of it (``FRACTIONS``).
4. **Choose on validation** (lowest mean validation error after the last epoch, over the seeds), then **test once**:
   the stored test errors of the chosen configurations are what the README reports; the lesson retrains at them.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stn_course import training, tuning  # noqa: E402
from stn_course.data.signs import CANVAS, sign_datasets  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "sign_quality.json"
N_TRAIN, N_TEST = 3000, 1000
CNN_LRS = (1e-3, 2e-3, 4e-3, 8e-3)
ST_LRS = (2e-3, 4e-3)
FRACTIONS = (0.25, 1.0)
EPOCHS = 6  # lesson 8's EPOCHS
VALIDATION = 0.1
BATCH = 64


def build(model: str, seed: int) -> torch.nn.Module:
    """Lesson 8's two models: same trunk, same batch norm, colour input, ~ the same parameter count."""
    if model == "cnn":
        return training.colour_input(training.baseline_cnn(CANVAS, seed=seed, batch_norm=True))
    return training.colour_input(training.st_cnn(CANVAS, "projective", seed=seed, batch_norm=True))


@functools.lru_cache(maxsize=1)
def datasets():
    """The fixed training and test signs (drawn once per process)."""
    return sign_datasets(N_TRAIN, N_TEST, seed=0)


def loaders(seed: int):
    """``(train, validation, test)`` loaders; the training order depends on ``seed``."""
    train, test = datasets()
    fit_idx, val_idx = tuning.validation_split(len(train), VALIDATION, seed=0)
    order = torch.Generator().manual_seed(seed)
    return (DataLoader(Subset(train, fit_idx.tolist()), batch_size=BATCH, shuffle=True, generator=order),
            DataLoader(Subset(train, val_idx.tolist()), batch_size=500), DataLoader(test, batch_size=500))


def run(job: tuple[str, float, float | None, int, int]) -> dict:
    """Train one configuration on one seed: validation error after the last epoch, and the test error."""
    model_name, lr, fraction, seed, epochs = job
    torch.set_num_threads(1)
    train, val, test = loaders(seed)
    model = build(model_name, seed)
    start = time.process_time()
    history = training.fit(model, train, val, epochs=epochs, lr=lr, seed=seed, progress=False,
                           transformer_lr=None if fraction is None else lr * fraction)
    return {"model": model_name, "lr": lr, "fraction": fraction, "seed": seed, "val_error": history["test_error"][-1],
            "test_error": training.evaluate(model, test)["error"], "cpu_s": time.process_time() - start}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    configs = [("cnn", lr, None) for lr in CNN_LRS] + [("stcnn", lr, f) for lr in ST_LRS for f in FRACTIONS]
    jobs = [(m, lr, f, s, args.epochs) for m, lr, f in configs for s in args.seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(run, jobs))
    chosen, rows = {}, []
    for model in ("cnn", "stcnn"):
        mine = {(lr, f): [r for r in runs if (r["model"], r["lr"], r["fraction"]) == (model, lr, f)]
                for m, lr, f in configs if m == model}
        key = tuning.select_by_validation({k: [r["val_error"] for r in v] for k, v in mine.items()})
        tests = [r["test_error"] for r in mine[key]]
        chosen[model] = {"lr": key[0], "fraction": key[1], "test_errors": tests,
                         "val_errors": [r["val_error"] for r in mine[key]]}
        for (lr, f), v in mine.items():
            picked = (lr, f) == key
            rows.append([model, f"{lr:g}", "–" if f is None else f"{f:g}",
                         tuning.format_mean_spread([r["val_error"] for r in v]) + (" ← chosen" if picked else ""),
                         tuning.format_mean_spread([r["test_error"] for r in v]) if picked else "(not looked at)"])
    result = {"date": datetime.date.today().isoformat(), "machine": machine(), "epochs": args.epochs,
              "seeds": args.seeds, "n_train": N_TRAIN, "n_test": N_TEST, "validation": VALIDATION,
              "chosen": chosen, "runs": runs,
              "command": "python benchmarks/sign_quality.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    table = markdown_table(["model", "lr", "transformer fraction", "validation error %", "test error %"], rows)
    print(table)
    if args.write:
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        cnn, st = (tuning.format_mean_spread(chosen[m]["test_errors"]) for m in ("cnn", "stcnn"))
        title = "## Colour signs: CNN vs ST-CNN, learning rates tuned on validation (lesson 8)\n\n"
        write_section("sign_quality", title + f"{result['date']}, `{result['command'].strip()}` "
                      f"({result['machine']}; each run on 1 thread, {args.jobs} at a time): {N_TRAIN} training "
                      f"signs ({VALIDATION:.0%} held out for validation), "
                      f"{N_TEST} test signs, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}, mean ± sd. "
                      f"Chosen on validation, tested once: CNN **{cnn} %**, ST-CNN (projective) **{st} %**.\n\n"
                      + table)
    return result


if __name__ == "__main__":
    main()
