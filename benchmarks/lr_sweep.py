"""Learning-rate sweep for lesson 5: CNN and ST-CNN tuned on a validation split, with the same budget, then tested once.

    python benchmarks/lr_sweep.py                # RTS and TC, 3 epochs, seeds 0 1 2 (the committed configuration)
    python benchmarks/lr_sweep.py --write        # ... and store benchmarks/lr_sweep.json and its benchmarks/README.md
                                                 # section; lesson 5 and the README read their numbers from the json
    python benchmarks/lr_sweep.py --kinds RTS --seeds 0 --epochs 1 --jobs 1     # a quick look

A fair experiment, step by step (lesson 5 teaches why):

1. **Validation split.** 10 % of the training digits are held out (:func:`stn_course.data.make_split_datasets`,
   seeded): a fixed distorted validation set. The models train on the other 90 %.
2. **Same normalisation.** Both models are built with ``batch_norm=True`` (batch norm after every layer of the
   classifier trunk, which the CNN and the ST-CNN share; the ST-CNN's localisation net has its own, as always).
3. **Same tuning budget.** Each model gets the same number of configurations, each trained on every seed for the
   same number of epochs: the CNN one knob (its learning rate, ``CNN_LRS``), the ST-CNN two (its learning rate
   ``ST_LRS`` times the transformer's fraction of it, ``FRACTIONS``: ``transformer_lr = lr * fraction``).
4. **Choose on validation.** A model's configuration is the one with the lowest validation error after the last
   epoch, averaged over the seeds (:func:`stn_course.tuning.select_by_validation`).
5. **Test once.** The reported numbers are the test errors of the chosen configurations, mean ± sample sd over
   the seeds (:func:`stn_course.tuning.format_mean_spread`). The test error of every other configuration is
   computed too and stored, but only to show what choosing on test would have claimed (``optimism``): it never
   picks anything.

What a short run measures is **learning speed** – the error after a fixed, small budget – not the accuracy either
model would converge to; ``benchmarks/train_quality.py`` trains longer at the chosen learning rates.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, write_section  # noqa: E402

from stn_course import data, training, tuning  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "lr_sweep.json"
CNN_LRS = (1e-3, 2e-3, 4e-3, 8e-3)
ST_LRS = (2e-3, 4e-3)
FRACTIONS = (0.25, 1.0)  # the transformer's learning rate as a fraction of its ST-CNN's
EPOCHS = 3  # lesson 5's EPOCHS with FAST = True
VALIDATION = 0.1
MODELS = ("cnn", "stcnn")


def configurations(cnn_lrs=CNN_LRS, st_lrs=ST_LRS, fractions=FRACTIONS) -> dict[str, list[tuple[float, float]]]:
    """``{model: [(lr, transformer fraction), ...]}`` – the CNN's fraction is 0 (it has no transformer)."""
    return {"cnn": [(lr, 0.0) for lr in cnn_lrs], "stcnn": [(lr, f) for lr in st_lrs for f in fractions]}


def config_key(lr: float, fraction: float) -> str:
    """The json key of a configuration, e.g. ``'lr=0.002,frac=0.25'``."""
    return f"lr={lr:g},frac={fraction:g}"


def train_one(job: tuple) -> tuple:
    """One model, one configuration, one seed: ``-> (job, validation error %, test error %, seconds)``, both after the
    last epoch. Trained exactly as lesson 5 trains it (batch 32, Adam, fresh distortions every epoch)."""
    kind, name, lr, fraction, seed, epochs, threads = job
    torch.set_num_threads(threads)
    started = time.perf_counter()
    train, val, test = data.make_split_datasets(kind, seed=seed, validation=VALIDATION, impl="aten")
    loaders = data.make_loaders(train, val, batch_size=32, seed=seed)
    model = training.build_model(name, train.size, seed=seed, batch_norm=True)
    history = training.fit(model, *loaders, epochs=epochs, lr=lr, seed=seed, progress=False,
                           transformer_lr=lr * fraction if name == "stcnn" else None)
    test_error = training.evaluate(model, data.make_loaders(train, test, seed=seed)[1])["error"]
    return job, history["test_error"][-1], test_error, time.perf_counter() - started


def sweep(kinds, seeds, epochs, jobs: int = 2, threads: int = 1, configs=None) -> dict:
    """Train every (kind, model, configuration, seed); choose on validation; see the module docstring.

    ``results["kinds"][kind][model]`` holds ``val`` and ``test`` (``{config_key: [error per seed]}``), ``chosen``
    (the configuration picked on validation), ``test_at_chosen`` (its test errors per seed) and, for the lesson,
    ``chosen_on_test`` (what picking on test would have picked) with its test errors.
    """
    configs = configs or configurations()
    todo = [(kind, name, lr, f, seed, epochs, threads) for kind in kinds for name in MODELS
            for lr, f in configs[name] for seed in seeds]
    raw: dict = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for (kind, name, lr, f, seed, *_), val, test, seconds in pool.map(train_one, todo):
            entry = raw.setdefault(kind, {}).setdefault(name, {"val": {}, "test": {}})
            entry["val"].setdefault(config_key(lr, f), []).append(val)
            entry["test"].setdefault(config_key(lr, f), []).append(test)
            print(f"  {kind:4s} {name:6s} lr {lr:.0e} frac {f:4.2f} seed {seed}: validation {val:5.1f} %, "
                  f"test {test:5.1f} % ({seconds:4.0f} s)", flush=True)
    results = {"epochs": epochs, "seeds": list(seeds), "validation": VALIDATION, "batch_norm": True,
               "configurations": {name: [config_key(*c) for c in configs[name]] for name in MODELS}, "kinds": {}}
    for kind in kinds:
        out = results["kinds"][kind] = {}
        for name in MODELS:
            entry = raw[kind][name]
            chosen = tuning.select_by_validation(entry["val"])
            on_test = tuning.select_by_validation(entry["test"])
            out[name] = {**entry, "chosen": chosen, "lr": float(chosen.split(",")[0][3:]),
                         "fraction": float(chosen.split("frac=")[1]), "test_at_chosen": entry["test"][chosen],
                         "chosen_on_test": on_test, "test_at_chosen_on_test": entry["test"][on_test]}
    return results


def sweep_table(results: dict) -> str:
    """Validation error % per configuration (mean ± sd over seeds), the chosen one in bold."""
    rows = []
    for kind, r in results["kinds"].items():
        for name in MODELS:
            for key in results["configurations"][name]:
                cell = tuning.format_mean_spread(r[name]["val"][key])
                rows.append([kind, "CNN" if name == "cnn" else "ST-CNN", key.replace("frac=0,", "").replace(",", ", "),
                             f"**{cell}**" if key == r[name]["chosen"] else cell])
    return markdown_table(["kind", "model", "configuration", "validation error %"], rows)


def result_table(results: dict) -> str:
    """Test error % at the configurations chosen on validation: the comparison lesson 5 and the README quote."""
    rows = []
    for kind, r in results["kinds"].items():
        cnn, st = r["cnn"]["test_at_chosen"], r["stcnn"]["test_at_chosen"]
        ratios = [s / c for c, s in zip(cnn, st)]
        rows.append([kind, results["epochs"], r["cnn"]["chosen"].split(",")[0], r["stcnn"]["chosen"].replace(",", ", "),
                     tuning.format_mean_spread(cnn), tuning.format_mean_spread(st),
                     f"**{tuning.format_mean_spread(ratios, 2)}**"])
    return markdown_table(["kind", "epochs", "CNN (chosen)", "ST-CNN (chosen)", "CNN test error %",
                           "ST-CNN test error %", "ST/CNN"], rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=["RTS", "TC"], choices=data.DISTORTIONS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--jobs", type=int, default=2, help="processes training at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--write", action="store_true", help="write benchmarks/lr_sweep.json and benchmarks/README.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = ("python benchmarks/lr_sweep.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    started = time.perf_counter()
    results = sweep(args.kinds, args.seeds, args.epochs, jobs=args.jobs, threads=args.threads)
    results.update(command=command, machine=machine(), date=time.strftime("%Y-%m-%d", time.gmtime()),
                   seconds=round(time.perf_counter() - started))
    tables = result_table(results) + "\n\n" + sweep_table(results)
    print(tables)
    if args.write:
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        n_configs = len(results["configurations"]["cnn"])
        body = (f"## Lesson 5's comparison: tuned on validation, tested once\n\n"
                f"Command: `{command}`  \nMachine: {results['machine']}, {args.jobs} processes; run on "
                f"{results['date']} ({results['seconds']} s). Results: `benchmarks/lr_sweep.json` (lesson 5 and the "
                f"README read their numbers from it).\n\n"
                f"Both models with batch norm in the classifier trunk they share; 10 % of the training digits held "
                f"out for validation; {n_configs} configurations per model (CNN: learning rate; ST-CNN: learning "
                f"rate × the transformer's fraction of it), each on seeds {args.seeds} for {args.epochs} epochs; "
                f"Adam, batch 32. Each model's configuration is the one with the lowest mean validation error; "
                f"the test set is used once, at the chosen configurations. Errors after {args.epochs} epochs "
                f"measure learning speed, not converged accuracy. Mean ± sample sd over seeds.\n\n{tables}\n")
        write_section("lr_sweep", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
