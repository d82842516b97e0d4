"""Dev W-F1 of SpikEmo and its ablations over seeds → benchmarks/results/<name>.json.

Each run is a plain ``neuro-erc train`` (same code path as users) into
``RUNS/<variant>/seed<k>``; a finished run (report_dev.json present and last epoch done)
is not redone, so the script can be re-run after an interruption.

    python benchmarks/erc_results.py --dataset meld --data ../shared/data/meld \
        --config examples/configs/meld_text.json --seeds 0,1,2 --runs runs/meld_text
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from neuro_erc.config import from_dict, load_json, merge
from neuro_erc.io import write_json
from neuro_erc.train import TrainConfig, train

VARIANTS = {
    "spikemo": {},
    "no_dswa": {"model": {"dswa": False}},
    "ce_only": {"loss": {"dsc": 0.0, "hgr": 0.0, "contrastive": 0.0}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data")
    parser.add_argument("--config", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--runs", required=True)
    parser.add_argument("--out", help="results JSON (default benchmarks/results/<runs name>.json)")
    args = parser.parse_args()
    base = merge(load_json(args.config), {"dataset": args.dataset, **({"data": args.data} if args.data else {})})
    out = Path(args.out or Path(__file__).parent / "results" / f"{Path(args.runs).name}.json")
    results: dict = {"command": " ".join(["python", "benchmarks/erc_results.py", *sys.argv[1:]]),
                     "config": base, "machine": {"platform": platform.platform(), "cpus": torch.get_num_threads(),
                                                  "torch": torch.__version__}, "variants": {}}
    for variant in args.variants.split(","):
        runs = []
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = from_dict(TrainConfig, merge(merge(base, VARIANTS[variant]), {"seed": seed}), args.config)
            run_dir = Path(args.runs) / variant / f"seed{seed}"
            t0 = time.time()
            report = train(cfg, run_dir, resume=True, show_progress=False)
            metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
            runs.append({"seed": seed, "dev_weighted_f1": report["weighted_f1"], "dev_accuracy": report["accuracy"],
                         "best_epoch": max(metrics, key=lambda r: r["dev_weighted_f1"])["epoch"] + 1,
                         "epochs_run": len(metrics), "train_seconds": round(sum(r["seconds"] for r in metrics), 1),
                         "this_call_seconds": round(time.time() - t0, 1), "per_class_f1": report["per_class_f1"]})
            print(variant, runs[-1]["seed"], runs[-1]["dev_weighted_f1"], flush=True)
        f1 = [r["dev_weighted_f1"] for r in runs]
        results["variants"][variant] = {"runs": runs, "mean": round(statistics.mean(f1), 2),
                                        "std": round(statistics.stdev(f1), 2) if len(f1) > 1 else 0.0}
        write_json(out, results)


if __name__ == "__main__":
    main()
