"""Training throughput and inference latency of the whole SpikEmo model, on CPU and (if any) GPU.

**Data.** MELD-shaped synthetic dialogues (``make_synthetic``, 7 classes): 384-d text features
(MiniLM's size) and, with ``--modalities t,a,v``, 512-d audio and 1000-d visual (MultiEMO's).
Dialogue lengths are drawn with weight ``min(1, (25 − n)/14)`` for ``n = 1..24`` (flat to 11,
then falling linearly): mean 9.7, sd 5.8, quartiles 4/9/13, max 24, against MELD train's
9.6, 5.8, 5/9/14, 24. Each dialogue is generated 24 long and cut to its drawn length.

**Model.** The default ``ModelConfig`` with a ``bigru`` context and text only, or the model, loss
and batch size of ``--config`` (a training config, as ``neuro-erc train --config`` reads);
``--T``, ``--core-dim``, ``--context``, ``--modalities`` and ``--batch-size`` override either.

**Training.** ``--warmup`` steps, then ``--steps`` timed steps of ``neuro_erc.train.train_epoch``
(forward, ``total_loss``, backward, gradient clipping, Adam step), ``batch_size`` distinct
dialogues each. Throughput = real utterances (the batch masks: padding not counted) / the
summed step times. **Inference.** ``model.eval()``, no gradients, one dialogue per call over
``--infer-dialogues`` dialogues (after 2 untimed ones); a call is timed from the host batch
(collated) through ``.to(device)`` and the forward pass. On CUDA the clock is read after
``torch.cuda.synchronize()``.

Each (device, T) runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``, the
whole process: data, model, optimiser) is its own; on CUDA also ``max_memory_allocated`` for
training and for inference. Each row records its CPU seconds and the load average before and
after: CPU seconds well under wall seconds × threads, or a load average above the core count,
mean other jobs held the cores (benchmarks/core_speed.py says why ``--threads 1`` is then robust).

    .venv/bin/python benchmarks/model_speed.py [--T 4,8,16,32] [--devices cpu,cuda] [--threads 2]
        [--steps 10] [--warmup 2] [--infer-dialogues 30] [--batch-size N] [--modalities t]
        [--core-dim N] [--context bigru] [--config examples/configs/meld_text_short.json]
        [--quick] [--out benchmarks/results/model_speed.json]

``--devices`` defaults to cpu plus cuda when torch sees a GPU. ``--quick`` (T=2, 1+2 steps of
4 dialogues, 4 inference dialogues) is a smoke test, not a measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_speed import machine_info, run_child  # noqa: E402

FEATURE_DIMS = {"t": 384, "a": 512, "v": 1000}
MAX_LEN, PLATEAU = 24, 11  # MELD's longest dialogue; lengths up to PLATEAU are equally likely
INFER_WARMUP = 2
QUICK = {"T": "2", "steps": 2, "warmup": 1, "batch_size": 4, "infer_dialogues": 4}
DEFAULTS = {"T": "4,8,16,32", "steps": 10, "warmup": 2, "infer_dialogues": 30}


def meld_lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` dialogue lengths in 1..24 with weights ``min(1, (25 − k)/(25 − PLATEAU))`` (module docstring)."""
    k = np.arange(1, MAX_LEN + 1)
    weights = np.minimum(1.0, (MAX_LEN + 1 - k) / (MAX_LEN + 1 - PLATEAU))
    return rng.choice(k, size=n, p=weights / weights.sum())


def meld_shaped(n_train: int, n_test: int, modalities, seed: int = 0):
    """A ``DialogueDataset`` of ``n_train``/``n_test`` dialogues with MELD's lengths and feature sizes
    (and one dev dialogue: training refuses a dataset without a dev split)."""
    from neuro_erc.data.synthetic import make_synthetic
    from neuro_erc.data.types import Dialogue, DialogueDataset

    full = make_synthetic(seed, n_train, 1, n_test, {m: FEATURE_DIMS[m] for m in modalities},
                          min_len=MAX_LEN, max_len=MAX_LEN)
    rng = np.random.default_rng(seed)
    splits = {split: [Dialogue(d.id, d.utterances[:k]) for d, k in zip(dialogues, meld_lengths(len(dialogues), rng))]
              for split, dialogues in full.splits.items()}
    return DialogueDataset("meld-shaped", full.labels, splits)


def _synchronize(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def step_timer(seconds: list[float], device):
    """A ``progress`` wrapper for ``train_epoch`` that appends each step's wall time to ``seconds``.

    A step is what ``train_epoch`` does between taking one batch and asking for the next.
    """
    def wrap(batches):
        for batch in batches:
            _synchronize(device)
            t0 = time.perf_counter()
            yield batch
            _synchronize(device)
            seconds.append(time.perf_counter() - t0)

    return wrap


def child(spec: dict) -> dict:
    """Runs in the subprocess: build data and model for ``spec``, time training, then inference."""
    import torch

    from neuro_erc.config import from_dict
    from neuro_erc.data.batching import collate, iterate_batches
    from neuro_erc.run_config import TrainConfig, resolve_device
    from neuro_erc.train import build_training, prepare, train_epoch

    load_before = os.getloadavg()[0]
    torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    cfg = from_dict(TrainConfig, spec["config"])
    modalities = cfg.model.modalities
    n_train = (spec["warmup"] + spec["steps"]) * cfg.batch_size
    cfg, dataset = prepare(cfg, meld_shaped(n_train, INFER_WARMUP + spec["infer_dialogues"], modalities, spec["seed"]))
    model, optimizer, class_weights = build_training(cfg, dataset, device)
    batches = [(b.to(device), 1.0) for b in iterate_batches(dataset.split("train"), modalities, cfg.batch_size)]
    warmup, timed = batches[: spec["warmup"]], batches[spec["warmup"]:]
    train_epoch(model, optimizer, warmup, cfg.loss, class_weights, cfg.grad_clip, lambda it: it)

    step_seconds: list[float] = []
    cpu0 = time.process_time()
    train_epoch(model, optimizer, timed, cfg.loss, class_weights, cfg.grad_clip, step_timer(step_seconds, device))
    train_cpu = time.process_time() - cpu0
    utterances = sum(int(b.mask.sum()) for b, _ in timed)
    slots = sum(b.mask.numel() for b, _ in timed)
    row: dict = {"device": str(device), "T": cfg.model.core.T, "threads": spec["threads"], "seed": spec["seed"],
                 "batch_size": cfg.batch_size, "warmup_steps": len(warmup), "train_steps": len(timed),
                 "train_utterances": utterances, "train_padding_fraction": round(1 - utterances / slots, 3),
                 "utterances_per_s": utterances / sum(step_seconds),
                 "seconds_per_step_median": statistics.median(step_seconds),
                 "step_seconds": [round(s, 4) for s in step_seconds], "train_cpu_seconds": round(train_cpu, 2)}
    if device.type == "cuda":
        row["cuda_peak_train_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)

    model.eval()
    ms, lengths = [], []
    cpu0 = time.process_time()
    with torch.no_grad():
        for i, dialogue in enumerate(dataset.split("test")):
            batch = collate([dialogue], modalities)
            _synchronize(device)
            t0 = time.perf_counter()
            model(batch.to(device))
            _synchronize(device)
            if i >= INFER_WARMUP:
                ms.append(1000 * (time.perf_counter() - t0))
                lengths.append(len(dialogue))
    row.update({"infer_dialogues": len(ms), "infer_utterances": sum(lengths), "infer_lengths": lengths,
                "infer_ms_median": statistics.median(ms), "infer_ms_p90": float(np.percentile(ms, 90)),
                "infer_ms_per_utterance": sum(ms) / sum(lengths),
                "infer_cpu_seconds": round(time.process_time() - cpu0, 2)})
    if device.type == "cuda":
        row["cuda_peak_infer_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    row.update({"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB on Linux
                "load_average_before": load_before, "load_average_after": os.getloadavg()[0]})
    return row


def train_config(args: argparse.Namespace) -> dict:
    """The ``TrainConfig`` (as a dict, without T) the flags and ``--config`` describe; checked here."""
    from neuro_erc.config import from_dict, load_json, merge, to_dict
    from neuro_erc.run_config import TrainConfig

    values = merge({"model": {"modalities": ["t"], "context": "bigru"}}, load_json(args.config) if args.config else {})
    model: dict = {}
    if args.modalities:
        model["modalities"] = [m.strip() for m in args.modalities.split(",")]
    if args.context:
        model["context"] = args.context
    if args.core_dim:
        model["core"] = {"dim": args.core_dim}
    overrides: dict = {"model": model}
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    cfg = from_dict(TrainConfig, merge(values, overrides), where=args.config or "config")
    unknown = [m for m in cfg.model.modalities if m not in FEATURE_DIMS]
    if unknown:
        raise ValueError(f"modalities must be among {sorted(FEATURE_DIMS)}; got {list(cfg.model.modalities)}")
    values = to_dict(cfg)
    del values["model"]["core"]["T"]  # set per row
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from neuro_erc.model.context import CONTEXT_KINDS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", help=f"comma-separated time steps (default {DEFAULTS['T']})")
    ap.add_argument("--devices", help="comma-separated, e.g. cpu,cuda (default: cpu, plus cuda if available)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--steps", type=int, help=f"timed training steps (default {DEFAULTS['steps']})")
    ap.add_argument("--warmup", type=int, help=f"untimed training steps first (default {DEFAULTS['warmup']})")
    ap.add_argument("--infer-dialogues", dest="infer_dialogues", type=int,
                    help=f"dialogues timed one at a time (default {DEFAULTS['infer_dialogues']})")
    ap.add_argument("--batch-size", dest="batch_size", type=int, help="dialogues per step (default: from config, 32)")
    ap.add_argument("--modalities", help="comma-separated subset of t,a,v (default: from config, else t)")
    ap.add_argument("--core-dim", dest="core_dim", type=int, help="channels of the spiking core")
    ap.add_argument("--context", choices=CONTEXT_KINDS,
                    help="context encoder (default: from config, else bigru)")
    ap.add_argument("--config", help="training config JSON: model, loss and batch size are taken from it")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    ap.add_argument("--out", default=str(HERE / "results" / "model_speed.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for key, value in {**DEFAULTS, **(QUICK if args.quick else {})}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.steps, args.infer_dialogues, args.threads) < 1 or args.warmup < 0:
        ap.error("--steps, --infer-dialogues and --threads must be ≥ 1 and --warmup ≥ 0")
    return args


def default_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def print_table(rows: list[dict]) -> None:
    print(f"{'device':<7}{'T':>4}{'utt/s':>9}{'s/step':>9}{'ms/dlg':>9}{'p90':>9}{'ms/utt':>9}{'peak GiB':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['device']:<7}{r['T']:>4}  error: {r['error']}")
            continue
        peak = r.get("cuda_peak_train_gib", r["peak_rss_gib"])
        print(f"{r['device']:<7}{r['T']:>4}{r['utterances_per_s']:>9.1f}{r['seconds_per_step_median']:>9.3f}"
              f"{r['infer_ms_median']:>9.1f}{r['infer_ms_p90']:>9.1f}{r['infer_ms_per_utterance']:>9.2f}{peak:>10.2f}")


def main(argv: list[str] | None = None) -> dict:
    """Measure every (device, T), write the results JSON to ``--out`` and return it."""
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return {}
    try:
        Ts = [int(t) for t in args.T.split(",")]
    except ValueError:
        raise SystemExit(f"--T must be comma-separated integers like 4,8; got {args.T!r}") from None
    from neuro_erc.config import merge
    from neuro_erc.io import write_json

    devices = args.devices.split(",") if args.devices else default_devices()
    config = train_config(args)
    load_before, t_start = os.getloadavg(), time.perf_counter()
    rows = []
    for device in devices:
        for T in Ts:
            spec = {"device": device, "threads": args.threads, "steps": args.steps, "warmup": args.warmup,
                    "infer_dialogues": args.infer_dialogues, "seed": args.seed,
                    "config": merge(config, {"model": {"core": {"T": T}}})}
            cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
            rows.append(run_child(cmd, {"device": device, "T": T}))
            print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("step_seconds", "infer_lengths")}),
                  file=sys.stderr, flush=True)
    result = {
        "what": "SpikEmo training throughput (real utterances/s) and per-dialogue inference latency",
        **machine_info(),
        "threads": args.threads,
        "data": {"lengths": f"weights min(1, (25-n)/14), n=1..{MAX_LEN}: mean 9.7, sd 5.8 (MELD train 9.6, 5.8)",
                 "feature_dims": {m: FEATURE_DIMS[m] for m in config["model"]["modalities"]}},
        "config": config,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
        "rows": rows,
    }
    write_json(args.out, result)
    print_table(rows)
    return result


if __name__ == "__main__":
    main()
