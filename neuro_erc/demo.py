"""``neuro-erc demo``: the embedded main job, end to end on the synthetic data.

It runs the same commands a user would, in order — train, evaluate, export to NIR, a hybrid
Lava run on a few dev dialogues (float, then fixed point), a short T sweep, spike rasters —
and ends with a summary of every artefact's path (also written to ``DIR/summary.json``).
A small model (D = 64, one block) keeps it to a few minutes on 2 CPU cores. The Lava step
needs Python 3.10 (Lava's requirement); elsewhere it is skipped and the summary says so.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .export.lava_run import lava_available
from .io import write_json

DEMO_CONFIG = {
    "dataset": "synthetic",
    "epochs": 10,
    "batch_size": 16,
    "lr": 2e-3,
    "patience": 6,
    "threads": 1,  # a model this small gains nothing from a second thread
    "model": {
        "modalities": ["t", "a", "v"],
        "dim": 64,
        "context": "bigru",
        "dropout": 0.2,
        "fusion_layers": 1,
        "classifier_hidden": 64,
        "core": {"dim": 64, "heads": 4, "depth": 1, "T": 8},
    },
    "loss": {"ce": 1.0, "dsc": 0.5, "hgr": 0.05},
}
SWEEP_T = "2,4,8"
SWEEP_EPOCHS = 3
LAVA_DIALOGUES = 8


def run_demo(out: Path, quick: bool = False) -> dict:
    from .cli import main as cli

    out.mkdir(parents=True, exist_ok=True)
    config = dict(DEMO_CONFIG, epochs=2 if quick else DEMO_CONFIG["epochs"])
    config_path = out / "demo_config.json"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    run, ckpt = out / "train", str(out / "train" / "best.pt")
    artefacts: dict = {}
    timings: dict = {}

    def step(name: str, argv: list[str]) -> None:
        print(f"\n== {name}: neuro-erc {' '.join(argv)}", flush=True)
        t0 = time.time()
        if cli(argv) != 0:
            raise RuntimeError(f"demo step {name!r} failed (see the message above)")
        timings[name] = round(time.time() - t0, 1)

    step("train", ["train", "--dataset", "synthetic", "--config", str(config_path), "--out", str(run)])
    artefacts["run_dir"] = str(run)
    step("evaluate", ["evaluate", "--checkpoint", ckpt, "--dataset", "synthetic", "--split", "dev",
                      "--out", str(out / "report_dev.json")])
    artefacts["report_dev"] = str(out / "report_dev.json")
    step("export nir", ["export", "nir", "--checkpoint", ckpt, "--out", str(out / "model.nir"), "--length", "16"])
    artefacts["nir"] = [str(out / "model.nir")]  # one file holds every modality's core
    if lava_available():
        for precision in ("float", "fixed"):
            parity = out / f"parity_{precision}.json"
            step(f"lava-run {precision}", ["lava-run", "--checkpoint", ckpt, "--dataset", "synthetic", "--split", "dev",
                                           "--precision", precision, "--limit", str(LAVA_DIALOGUES), "--out", str(parity)])
            artefacts[f"parity_{precision}"] = str(parity)
    else:
        artefacts["parity"] = "skipped: Lava needs Python 3.10 (lava-nc 0.10 / lava-dl 0.6)"
    sweep_config = out / "sweep_config.json"
    sweep_config.write_text(json.dumps(dict(config, epochs=2 if quick else SWEEP_EPOCHS), indent=2) + "\n")
    step("bench", ["bench", "--dataset", "synthetic", "--config", str(sweep_config), "--T", "2,4" if quick else SWEEP_T,
                   "--out", str(out / "bench")])
    artefacts["bench"] = sorted(str(p) for p in (out / "bench").glob("*.*"))
    first = _first_dev_dialogue()
    step("plot raster", ["plot", "raster", "--checkpoint", ckpt, "--dataset", "synthetic", "--dialogue", first,
                         "--utterance", "0", "--out", str(out / "raster.png")])
    artefacts["rasters"] = sorted(str(p) for p in out.glob("raster*.png"))
    summary = {"report_dev": json.loads((out / "report_dev.json").read_text())["weighted_f1"],
               "artefacts": artefacts, "seconds": timings}
    for precision in ("float", "fixed"):
        if f"parity_{precision}" in artefacts:
            summary[f"parity_{precision}"] = {k: v for k, v in json.loads(Path(artefacts[f"parity_{precision}"]).read_text()).items()
                                              if k in ("spike_agreement", "spike_jaccard", "prediction_agreement", "n_dialogues")}
    write_json(out / "summary.json", summary)
    return summary


def _first_dev_dialogue() -> str:
    from .data.registry import load_dataset

    return load_dataset("synthetic").split("dev")[0].id


def run(args: argparse.Namespace) -> int:
    summary = run_demo(Path(args.out), quick=args.quick)
    print("\n== demo finished: dev W-F1 {:.2f}".format(summary["report_dev"]))
    for name, path in summary["artefacts"].items():
        print(f"  {name:14s} {path}")
    print(f"  {'summary':14s} {Path(args.out) / 'summary.json'}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="synthetic data end to end: train, evaluate, export, Lava parity, T sweep, rasters")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and Ts (for tests)")
    parser.set_defaults(func=run)
