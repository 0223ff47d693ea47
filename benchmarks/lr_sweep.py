"""Learning-rate sweep for lesson 5: CNN and ST-CNN tuned under the lesson's own FAST budget, same grid, same seeds.

    python benchmarks/lr_sweep.py                # RTS and TC, 6 epochs, lr in {0.5, 1, 2, 3, 5}e-3, seeds 0 1 2
    python benchmarks/lr_sweep.py --write        # ... and store the table in benchmarks/README.md, the results in
                                                 # benchmarks/lr_sweep.json and the table in lesson 5's source

Both models get the same tuning budget: every learning rate of the grid, on every seed, for the number of epochs
lesson 5 runs with ``FAST = True``. The ST-CNN's transformer (localisation net + head) always learns at a quarter of
the ST-CNN's learning rate (``transformer_lr = lr / 4``, the lesson's rule), so both models have one knob each.
A model's chosen learning rate is the one with the lowest test error averaged over the seeds. The ST/CNN ratio is
then reported per seed at the chosen pair; the lesson trains seed 0 with exactly this configuration, but six epochs
amplify floating-point differences between machines, so its printed ratio is one more draw next to these seeds.

What a FAST run measures is **learning speed** – the test error after a short, fixed budget – not the accuracy
either model would converge to; ``benchmarks/train_quality.py`` trains longer.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stn_course import data, training  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "lr_sweep.json"
LESSON = ROOT / "solutions" / "src" / "05_training_stn.py"
LRS = (5e-4, 1e-3, 2e-3, 3e-3, 5e-3)
TRANSFORMER_FRACTION = 0.25  # the transformer learns at a quarter of the ST-CNN's rate
LESSON_EPOCHS = 6  # lesson 5's EPOCHS and EPOCHS_TC with FAST = True
MODELS = ("cnn", "stcnn")


def train_one(kind: str, name: str, lr: float, seed: int, epochs: int, batch_size: int = 32) -> float:
    """Final test error (%) of one model, trained exactly as lesson 5 trains it."""
    train, test = data.make_datasets(kind, seed=seed, impl="aten")
    loaders = data.make_loaders(train, test, batch_size=batch_size, seed=seed)
    model = training.build_model(name, train.size, seed=seed)
    history = training.fit(model, *loaders, epochs=epochs, lr=lr, seed=seed, progress=False,
                           transformer_lr=lr * TRANSFORMER_FRACTION if name == "stcnn" else None)
    return history["test_error"][-1]


def sweep(kinds, seeds, lrs, epochs) -> dict:
    """``results[kind][model][lr] = [error per seed]`` plus the chosen learning rates and ratios."""
    results: dict = {"epochs": epochs, "seeds": list(seeds), "lrs": list(lrs),
                     "transformer_fraction": TRANSFORMER_FRACTION, "kinds": {}}
    for kind in kinds:
        errors = {name: {} for name in MODELS}
        for name in MODELS:
            for lr in lrs:
                errors[name][repr(lr)] = []
                for seed in seeds:
                    started = time.perf_counter()
                    errors[name][repr(lr)].append(train_one(kind, name, lr, seed, epochs))
                    print(f"  {kind:4s} {name:6s} lr {lr:.1e} seed {seed}: {errors[name][repr(lr)][-1]:5.1f} % "
                          f"({time.perf_counter() - started:4.1f} s)", flush=True)
        chosen = {name: min(lrs, key=lambda lr: statistics.fmean(errors[name][repr(lr)])) for name in MODELS}
        ratios = [s / c for c, s in zip(errors["cnn"][repr(chosen["cnn"])], errors["stcnn"][repr(chosen["stcnn"])])]
        results["kinds"][kind] = {"errors": errors, "chosen": chosen, "ratios": ratios}
    return results


def sweep_table(results: dict) -> str:
    """The sweep as a markdown table: mean ± sd test error per learning rate, the chosen one in bold."""
    rows = []
    for kind, r in results["kinds"].items():
        for name in MODELS:
            cells = []
            for lr in results["lrs"]:
                values = r["errors"][name][repr(lr)]
                cell = f"{statistics.fmean(values):.1f} ± {statistics.stdev(values) if len(values) > 1 else 0:.1f}"
                cells.append(f"**{cell}**" if lr == r["chosen"][name] else cell)
            rows.append([kind, "CNN" if name == "cnn" else "ST-CNN", *cells])
    header = ["kind", "model", *[f"lr {lr:g}" for lr in results["lrs"]]]
    return markdown_table(header, rows)


def ratio_table(results: dict) -> str:
    rows = []
    for kind, r in results["kinds"].items():
        rows.append([kind, f"{r['chosen']['cnn']:g}", f"{r['chosen']['stcnn']:g}",
                     *[f"{x:.2f}" for x in r["ratios"]], f"**{statistics.fmean(r['ratios']):.2f}**"])
    header = ["kind", "CNN lr", "ST-CNN lr", *[f"ST/CNN seed {s}" for s in results["seeds"]], "mean"]
    return markdown_table(header, rows)


def write_lesson_table(body: str) -> None:
    """Replace the sweep table in lesson 5's percent source (a markdown cell, every line starting with '# ')."""
    text = LESSON.read_text()
    block = "# <!-- BEGIN lr_sweep -->\n" + "\n".join(f"# {line}".rstrip() for line in body.strip().splitlines())
    block += "\n# <!-- END lr_sweep -->"
    pattern = re.compile(r"# <!-- BEGIN lr_sweep -->.*?# <!-- END lr_sweep -->", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{LESSON}: no '<!-- BEGIN lr_sweep -->' block to replace")
    LESSON.write_text(pattern.sub(lambda _: block, text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["RTS", "TC"], choices=data.DISTORTIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--lrs", nargs="+", type=float, default=list(LRS))
    parser.add_argument("--epochs", type=int, default=LESSON_EPOCHS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", action="store_true",
                        help="write benchmarks/README.md, benchmarks/lr_sweep.json and lesson 5's table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/lr_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = time.perf_counter()
    results = sweep(args.kinds, args.seeds, args.lrs, args.epochs)
    results["command"] = command.strip()
    results["machine"] = machine()
    results["date"] = time.strftime("%Y-%m-%d", time.gmtime())
    tables = sweep_table(results) + "\n\n" + ratio_table(results)
    print(tables)
    if args.write:
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        body = (f"## Learning rates for lesson 5, tuned under its FAST budget\n\n"
                f"Command: `{results['command']}`  \nMachine: {results['machine']}; run on {results['date']} "
                f"({time.perf_counter() - started:.0f} s).\n\n"
                f"Test error % after {args.epochs} epochs (the lesson's `FAST = True` budget), mean ± sd over seeds "
                f"{args.seeds}; Adam, batch 32, the ST-CNN's transformer at lr/4. Both models get the same grid and "
                f"seeds; the chosen learning rate (bold) has the lowest mean. A FAST run measures learning speed, "
                f"not converged accuracy.\n\n{tables}\n")
        write_section("lr_sweep", body)
        write_lesson_table(f"Sweep of {results['date']} (`{results['command']}`, {args.epochs} epochs, seeds "
                           f"{args.seeds}; test error %, mean ± sd, chosen in bold):\n\n{tables}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
