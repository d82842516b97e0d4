"""One process against ``torchrun --nproc_per_node 2`` (gloo) on the CPU: epoch time and dev W-F1.

Usage::

    .venv/bin/python benchmarks/ddp_cpu.py [--epochs 4] [--out benchmarks/results/ddp_cpu.json]

Both runs train the same config on the embedded synthetic data with the same global batch;
the 1-process run uses 2 torch threads, each of the 2 processes 1 thread, so both use the
machine's 2 cores. What matters is equality of results (the suite's test_distributed checks
the weights); the time shows what data parallelism costs or saves on one small machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuro_erc.io import write_json

CONFIG = {
    "batch_size": 16, "lr": 1e-3, "patience": 100,
    "model": {"modalities": ["t", "a", "v"], "dim": 64, "context": "bigru", "dropout": 0.0, "fusion_layers": 1,
              "classifier_hidden": 64, "core": {"dim": 64, "depth": 1, "mlp_ratio": 2, "T": 8, "norm": "layer"}},
    "loss": {"ce": 1.0, "dsc": 0.0, "hgr": 0.0},
}


def run(argv: list[str], threads: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def summary(run_dir: Path, wall: float) -> dict:
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "wall_seconds": round(wall, 1),
        "epoch_seconds_median": round(statistics.median(e["seconds"] for e in epochs), 2),
        "epoch_seconds": [e["seconds"] for e in epochs],
        "final_dev_weighted_f1": epochs[-1]["dev_weighted_f1"],
        "best_dev_weighted_f1": json.loads((run_dir / "report_dev.json").read_text())["weighted_f1"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/ddp_cpu.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "cfg.json").write_text(json.dumps(CONFIG))
        common = ["-m", "neuro_erc.cli", "train", "--dataset", "synthetic", "--epochs", str(args.epochs),
                  "--config", str(tmp / "cfg.json"), "--quiet", "--no-tensorboard"]
        load = os.getloadavg()[0]
        one = run([sys.executable, *common, "--threads", "2", "--out", str(tmp / "one")], threads=2)
        two = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                   *common, "--threads", "1", "--out", str(tmp / "two")], threads=1)
        result = {
            "command": " ".join(["python", "benchmarks/ddp_cpu.py", *sys.argv[1:]]),
            "config": CONFIG, "epochs": args.epochs, "dataset": "synthetic (embedded, seed 0)",
            "load_average_before": round(load, 2), "cpu_cores": os.cpu_count(),
            "one_process_2_threads": summary(tmp / "one", one),
            "torchrun_2_processes_gloo_1_thread_each": summary(tmp / "two", two),
        }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
