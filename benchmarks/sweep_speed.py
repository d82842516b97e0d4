"""Wall time of a sweep on a 2-worker local Ray instance beside the same cells run one after another
in this process → benchmarks/results/sweep_ray.json.

The grid is that of ``neuro-erc sweep --dataset synthetic --T 2,4 --seeds 0,1`` over :data:`CONFIG`:
the embedded synthetic data at its default size (240 train, 60 dev dialogues, three modalities),
a 64-wide model with a BiGRU context, ``--epochs`` epochs, one torch thread per cell. Each mode
trains every cell into its own fresh temporary directory, through :func:`neuro_erc.sweep.run_cells`
(the code of ``neuro-erc sweep``); Ray's wall time includes starting and stopping its local
instance. With the same seeds and one thread each, the per-cell dev W-F1 of the two modes must be
equal: the JSON says whether they were. The load average before and after shows whether other
work held the cores.

    .venv/bin/python benchmarks/sweep_speed.py [--workers 2] [--epochs 8] [--out benchmarks/results/sweep_ray.json]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_speed import machine_info  # noqa: E402

from neuro_erc.config import merge  # noqa: E402
from neuro_erc.io import write_json  # noqa: E402
from neuro_erc.sweep import grid, ray_available, run_cells  # noqa: E402

CONFIG = {"dataset": "synthetic", "batch_size": 16, "lr": 0.001, "threads": 1,
          "model": {"modalities": ["t", "a", "v"], "dim": 64, "context": "bigru", "fusion_layers": 1,
                    "classifier_hidden": 64, "core": {"dim": 64, "depth": 1}}}
TS, SEEDS = [2, 4], [0, 1]


def timed(cells, out: Path, **execution) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    rows = run_cells(cells, out, **execution)
    return round(time.perf_counter() - t0, 1), rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="cells at once on the local Ray instance (default 2)")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default=str(HERE / "results" / "sweep_ray.json"))
    args = ap.parse_args(argv)
    if not ray_available():
        raise SystemExit("Ray is not installed: pip install 'neuro-erc[distributed]'")
    config = merge(CONFIG, {"epochs": args.epochs})
    cells = grid(config, ["spikemo"], Ts=TS, seeds=SEEDS)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        here_s, here = timed(cells, Path(tmp) / "here")
        ray_s, on_ray = timed(cells, Path(tmp) / "ray", ray=True, workers=args.workers)
    result = {
        "what": "wall time of a sweep's cells on a local Ray instance beside the same cells run one after another here",
        "command": " ".join(["python", "benchmarks/sweep_speed.py", *(sys.argv[1:] if argv is None else argv)]),
        **machine_info(),
        "grid": {"variants": ["spikemo"], "T": TS, "seeds": SEEDS},
        "config": config,
        "ray_workers": args.workers,
        "sequential_seconds": here_s,
        "ray_seconds": ray_s,
        "speedup": round(here_s / ray_s, 2),
        "cells": [{"cell": c.path, "weighted_f1_sequential": a["weighted_f1"], "weighted_f1_ray": b["weighted_f1"],
                   "train_seconds_sequential": a["train_seconds"], "train_seconds_ray": b["train_seconds"]}
                  for c, a, b in zip(cells, here, on_ray)],
        "same_weighted_f1": all(a["weighted_f1"] == b["weighted_f1"] for a, b in zip(here, on_ray)),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
    }
    write_json(args.out, result)
    print(f"sequential {here_s} s, Ray ({args.workers} workers) {ray_s} s, same W-F1: {result['same_weighted_f1']}")
    return result


if __name__ == "__main__":
    main()
