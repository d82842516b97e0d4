"""Dev W-F1 of SpikEmo, its ablations and the plain BiGRU baseline over seeds → benchmarks/results/<name>.json.

The runs are the cells of a :mod:`neuro_erc.sweep` grid (the code of ``neuro-erc sweep``: Ray
tasks where Ray is installed, ``--address``/``--workers`` as there; else one after another) in
``RUNS/<variant>/seed<k>``, at the config's T. A finished cell is not redone and an interrupted
one resumes, so the script can be re-run after an interruption.

Every variant runs by default, ``bigru`` included: the speaker-aware BiGRU classifier over the
same features and schedule, without anything spiking (:mod:`neuro_erc.model.bigru`). Where it
ran, each variant's entry also holds ``over_bigru``: its mean dev W-F1 minus the baseline's, in
points — what the spiking machinery adds over the plain model.

    python benchmarks/erc_results.py --dataset meld --data ../shared/data/meld \
        --config examples/configs/meld_text.json --seeds 0,1,2 --runs runs/meld_text
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch

from neuro_erc.config import load_json, merge
from neuro_erc.io import write_json
from neuro_erc.sweep import (VARIANTS, add_execution_arguments, execution_from_args, grid, parse_ints, parse_names,
                             run_cells, summarise)


def run_entry(row: dict) -> dict:
    """A cell's row as this script's results files have always listed a run (best epoch from 1)."""
    return {"seed": row["seed"], "dev_weighted_f1": row["weighted_f1"], "dev_accuracy": row["accuracy"],
            "best_epoch": row["best_epoch"] + 1, "epochs_run": row["epochs_run"], "train_seconds": row["train_seconds"],
            "per_class_f1": row["per_class_f1"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data")
    parser.add_argument("--config", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", required=True)
    parser.add_argument("--out", help="results JSON (default benchmarks/results/<runs name>.json)")
    add_execution_arguments(parser)
    args = parser.parse_args(argv)
    base = merge(load_json(args.config), {"dataset": args.dataset, **({"data": args.data} if args.data else {})})
    out = Path(args.out or Path(__file__).parent / "results" / f"{Path(args.runs).name}.json")
    cells = grid(base, parse_names(args.variants, "--variants"), seeds=parse_ints(args.seeds, "--seeds", minimum=0),
                 layout="{variant}/seed{seed}", where=args.config)
    rows = run_cells(cells, args.runs, **execution_from_args(args))
    variants = {}
    for summary in summarise(rows, by=("variant",)):
        variant = summary["variant"]
        variants[variant] = {"runs": [run_entry(r) for r in rows if r["variant"] == variant],
                             "mean": round(summary["weighted_f1"], 2), "std": round(summary["weighted_f1_std"], 2)}
    baseline = variants.get("bigru")
    for variant, entry in variants.items():
        if baseline is not None:
            entry["over_bigru"] = round(entry["mean"] - baseline["mean"], 2)
        versus = f"  ({entry['over_bigru']:+.2f} over bigru)" if baseline is not None else ""
        print(f"{variant} {entry['mean']} ± {entry['std']}{versus}", flush=True)
    command = ["python", "benchmarks/erc_results.py", *(sys.argv[1:] if argv is None else argv)]
    write_json(out, {"command": " ".join(command), "config": base,
                     "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(), "torch": torch.__version__},
                     "variants": variants})


if __name__ == "__main__":
    main()
