"""Speed and peak memory of the spiking module, ours (Norse) against the SpikEmo reference.

One MELD-shaped batch: 64 dialogues × 24 utterances × 256 features (all real), the module as
used per modality (input F → F + W ⊙ F), forward + backward of the sum of its output, torch
threads = 2 (``--threads``). Each (module, T) runs in a fresh subprocess, so its peak resident
memory (``ru_maxrss``) is its own; rounds alternate the order of the modules, since these
machines are noisy. Each run also records its CPU seconds and the load average: when other
jobs hold a core, two OpenMP threads wait on each other at every operation and wall times
blow up ~10x for both modules (CPU seconds ≈ wall seconds is the sign); ``--threads 1`` is
robust to that. The reference needs ``pip install spikingjelly==0.0.0.0.14`` (benchmark only; not
a project dependency); without it only ours is measured.

    .venv/bin/python benchmarks/core_speed.py [--T 8,16,32] [--threads 2] [--rounds 2] [--reps 2]
        [--out benchmarks/results/core_speed.json]

Modules: ``reference`` (SpikingJelly Spikformer, benchmarks/spikemo_reference.py, as is),
``reference_tuned`` (the same with the glibc malloc setting our core applies,
``neuro_erc.snn.lif.keep_step_buffers``: a like-for-like allocator), ``ours_sdsa`` (the default
core) and ``ours_ssa`` (same attention as the reference).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

L, B, D = 24, 64, 256
HERE = Path(__file__).resolve().parent


def build(module: str, T: int):
    if module.startswith("reference"):
        if module == "reference_tuned":
            from neuro_erc.snn.lif import keep_step_buffers

            keep_step_buffers()
        sys.path.insert(0, str(HERE))
        from spikemo_reference import SpikEmoReference

        ref = SpikEmoReference(D, heads=8, depth=2, T=T)
        return lambda f, mask: ref(f)
    from neuro_erc.snn import DSWA, CoreConfig

    dswa = DSWA(D, CoreConfig(dim=D, heads=8, depth=2, T=T, attention=module.removeprefix("ours_")))
    return lambda f, mask: dswa(f, mask)[0]


def child(module: str, T: int, reps: int, threads: int) -> dict:
    """Runs in the subprocess: one warm-up, then ``reps`` timed forward+backward passes."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    run = build(module, T)
    features = torch.randn(L, B, D, requires_grad=True)
    mask = torch.ones(L, B, dtype=torch.bool)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, cpu_seconds = [], []
    for i in range(reps + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        run(features, mask).sum().backward()
        if i:
            seconds.append(time.perf_counter() - t0)
            cpu_seconds.append(time.process_time() - c0)
        features.grad = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"module": module, "T": T, "threads": threads, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "load_average": os.getloadavg()[0],
            "rss_before_run_gib": rss_before / 2**20, "peak_rss_gib": peak / 2**20}


def run_child(cmd: list[str], row: dict) -> dict:
    """Run ``cmd`` (a benchmark's ``--child`` mode) in a fresh process, so its peak memory is its own.

    Its result is the JSON object on the last line of its stdout; if it fails, ``row`` with the
    last line of its stderr under ``error``.
    """
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        tail = out.stderr.strip().splitlines()[-1:] or [f"exit {out.returncode}"]
        return {**row, "error": tail[0]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine_info() -> dict:
    """Versions and hardware a timing depends on (``cpus`` = cores this process may use)."""
    import torch

    info = {"torch": torch.__version__, "norse": importlib.metadata.version("norse"),
            "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
            "cpus": len(os.sched_getaffinity(0))}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def measure(module: str, T: int, reps: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--child", module, "--T", str(T), "--reps", str(reps), "--threads", str(threads)]
    return run_child(cmd, {"module": module, "T": T, "threads": threads})


def summarise(runs: list[dict], modules: list[str], Ts: list[int], threads: list[int]) -> list[dict]:
    rows = []
    for n, T in ((n, T) for n in threads for T in Ts):
        row: dict = {"threads": n, "T": T}
        for m in modules:
            mine = [r for r in runs if r["module"] == m and r["T"] == T and r["threads"] == n and "seconds" in r]
            if mine:
                times = [s for r in mine for s in r["seconds"]]
                row[m] = {"median_s": statistics.median(times), "min_s": min(times),
                          "runs_s": [round(s, 3) for s in times],
                          "peak_rss_gib": max(r["peak_rss_gib"] for r in mine),
                          "rss_before_run_gib": max(r["rss_before_run_gib"] for r in mine)}
        for ref_name in ("reference", "reference_tuned"):
            if ref_name not in row:
                continue
            ref = row[ref_name]
            for m in modules:
                if m.startswith("ours") and m in row:
                    row[m][f"time_vs_{ref_name}"] = row[m]["median_s"] / ref["median_s"]
                    row[m][f"min_time_vs_{ref_name}"] = row[m]["min_s"] / ref["min_s"]
                    row[m][f"memory_vs_{ref_name}"] = row[m]["peak_rss_gib"] / ref["peak_rss_gib"]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", default="8,16,32")
    ap.add_argument("--threads", default="2", help="torch threads, e.g. 2 or 1,2")
    ap.add_argument("--rounds", type=int, default=2, help="subprocesses per (module, T), alternating order")
    ap.add_argument("--reps", type=int, default=2, help="timed passes per subprocess (after one warm-up)")
    ap.add_argument("--modules", default="reference,ours_sdsa,ours_ssa")
    ap.add_argument("--out", default=str(HERE / "results" / "core_speed.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, int(args.T), args.reps, int(args.threads))))
        return
    Ts = [int(t) for t in args.T.split(",")]
    threads = [int(n) for n in args.threads.split(",")]
    modules = args.modules.split(",")
    if importlib.util.find_spec("spikingjelly") is None:
        print("spikingjelly not installed: measuring ours only", file=sys.stderr)
        modules = [m for m in modules if not m.startswith("reference")]
    runs, t_start = [], time.perf_counter()
    for n, T in ((n, T) for n in threads for T in Ts):
        for r in range(args.rounds):
            for m in (modules if r % 2 == 0 else modules[::-1]):
                runs.append(measure(m, T, args.reps, n))
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    result = {
        "what": "forward+backward of the per-modality spiking module on one MELD-shaped batch",
        "shape": {"utterances": L, "dialogues": B, "dim": D},
        **machine_info(),
        "rounds": args.rounds, "reps_per_round": args.reps, "wall_seconds": round(time.perf_counter() - t_start, 1),
        "results": summarise(runs, modules, Ts, threads), "runs": runs,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for row in result["results"]:
        print(row["threads"], row["T"], {m: (round(v["median_s"], 2), round(v["peak_rss_gib"], 2))
                                         for m, v in row.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main()
