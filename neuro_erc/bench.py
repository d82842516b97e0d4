"""``neuro-erc bench``: accuracy against spikes, synaptic operations and energy, for each T.

For every T: train a model into ``DIR/T<k>/`` (:func:`neuro_erc.train.train`; a T whose
training finished is not redone, an interrupted one resumes from its ``last.pt``), then on the
**dev** split with its ``best.pt``: weighted F1, inference time per dialogue (a forward pass
without hooks), and operation counts of the spiking cores (a second pass, with hooks;
:mod:`neuro_erc.energy`). Writes

* ``DIR/results.csv`` and ``DIR/results.json`` (a list of the same rows): one row per T with
  :data:`COLUMNS` (the ARCHITECTURE.md contract) then :data:`EXTRA_COLUMNS`;
* ``DIR/T<k>/energy.json``: the per-layer counts and the energy model used;
* ``DIR/wf1_vs_T.png``, ``DIR/energy_vs_T.png`` (ANN twin as a horizontal line),
  ``DIR/firing_rates.png`` (per layer, per T).

``energy_uj_45nm`` uses the **exact** counts; ``energy_uj_45nm_convention`` the fr·T·FLOPs
convention of Spikformer / Spike-driven Transformer, alongside. All energies are µJ per
utterance for the spiking cores of every modality (the host parts — projections, context,
fusion, classifier — are not counted in either the SNN or the ANN-twin figure).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from .config import to_dict
from .checkpoint import Checkpoint
from .data.batching import iterate_batches
from .data.types import DialogueDataset
from .energy import SOURCES, cmos, count_model, energy, firing_rate, layer_table, per_utterance
from .energy.constants import CMOS_45NM, LOIHI
from .errors import ConfigError
from .evaluate import classification_report, predict
from .io import atomic_path, write_json
from .run_config import TrainConfig, load_config_dataset, resolve_device
from .train import add_train_arguments, config_from_args, train

COLUMNS = (
    "T", "weighted_f1", "spikes_per_utterance", "firing_rate", "sops_per_utterance", "energy_uj_45nm",
    "energy_uj_loihi", "ann_energy_uj_45nm", "train_seconds", "infer_ms_per_dialogue",
)
EXTRA_COLUMNS = (
    "accuracy", "sops_convention_per_utterance", "macs_per_utterance", "ann_macs_per_utterance",
    "neuron_updates_per_utterance", "energy_uj_45nm_convention", "energy_uj_45nm_with_neurons",
    "energy_uj_45nm_encoder_per_step", "energy_ratio_ann_over_snn", "best_epoch", "epochs_run", "dev_utterances",
)
SPLIT = "dev"
DONE = "bench_trained.json"  # written into DIR/T<k>/ once training for that T has finished


def parse_Ts(text: str) -> list[int]:
    try:
        Ts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--T must be comma-separated integers like 2,4,8; got {text!r}") from None
    if not Ts or min(Ts) < 1 or len(set(Ts)) != len(Ts):
        raise ConfigError(f"--T needs distinct positive time step counts; got {text!r}")
    return sorted(Ts)


def train_once(cfg: TrainConfig, run_dir: Path, show_progress: bool) -> None:
    """Train ``cfg`` into ``run_dir`` unless a finished run with the same config is there."""
    done = run_dir / DONE
    wanted = json.loads(json.dumps(to_dict(cfg)))  # as stored: tuples become lists
    if done.exists():
        previous = json.loads(done.read_text())["config"]
        if previous != wanted:
            changed = sorted(k for k in set(previous) | set(wanted) if previous.get(k) != wanted.get(k))
            raise ConfigError(f"{run_dir} holds a finished run with a different config (differs in {changed}); "
                             "use another --out or delete that folder")
        return
    train(cfg, run_dir, resume=True, show_progress=show_progress)
    write_json(done, {"config": wanted})


def train_seconds(run_dir: Path) -> float:
    """Wall time of every epoch (training and dev evaluation), resumed parts included."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return round(sum(json.loads(line)["seconds"] for line in lines), 2)


@torch.no_grad()
def measure(run_dir: Path, T: int, dataset: DialogueDataset, precision: str) -> tuple[dict, dict]:
    """(results row, energy details) of ``run_dir/best.pt`` on the dev split."""
    ckpt = Checkpoint.load(run_dir / "best.pt")
    ckpt.require_labels(dataset)
    cfg = ckpt.config
    device = resolve_device(cfg.device)
    model = ckpt.model(device)
    modalities, dialogues = cfg.model.modalities, dataset.split(SPLIT)
    predict(model, dialogues[: cfg.batch_size], modalities, cfg.batch_size, device)  # warm-up
    t0 = time.perf_counter()
    gold, pred = predict(model, dialogues, modalities, cfg.batch_size, device)
    infer_ms = 1000 * (time.perf_counter() - t0) / len(dialogues)
    report = classification_report(gold, pred, dataset.labels.labels, dataset.name, SPLIT)
    counts = count_model(model, (b.to(device) for b in iterate_batches(dialogues, modalities, cfg.batch_size)))
    per_utt = per_utterance(counts)
    e = energy(per_utt, T, precision)
    epochs_run = len((run_dir / "metrics.jsonl").read_text().splitlines())
    row = {
        "T": T,
        "weighted_f1": report["weighted_f1"],
        "spikes_per_utterance": per_utt["spikes"],
        "firing_rate": firing_rate(counts),
        "sops_per_utterance": per_utt["sops"],
        "energy_uj_45nm": e["energy_uj_45nm"],
        "energy_uj_loihi": e["energy_uj_loihi"],
        "ann_energy_uj_45nm": e["ann_energy_uj_45nm"],
        "train_seconds": train_seconds(run_dir),
        "infer_ms_per_dialogue": infer_ms,
        "accuracy": report["accuracy"],
        "sops_convention_per_utterance": per_utt["sops_convention"],
        "macs_per_utterance": per_utt["macs"],
        "ann_macs_per_utterance": per_utt["ann_macs"],
        "neuron_updates_per_utterance": per_utt["neuron_steps"],
        "energy_uj_45nm_convention": e["energy_uj_45nm_convention"],
        "energy_uj_45nm_with_neurons": e["energy_uj_45nm_with_neurons"],
        "energy_uj_45nm_encoder_per_step": e["energy_uj_45nm_encoder_per_step"],
        "energy_ratio_ann_over_snn": e["ann_energy_uj_45nm"] / e["energy_uj_45nm"] if e["energy_uj_45nm"] else None,
        "best_epoch": ckpt.best_epoch,
        "epochs_run": epochs_run,
        "dev_utterances": report["n_utterances"],
    }
    details = {
        "T": T,
        "split": SPLIT,
        "precision": precision,
        "per_utterance": per_utt,
        "energy_uj_per_utterance": e,
        "layers": layer_table(counts),
        "constants": {"cmos_45nm": {k: vars(v) for k, v in CMOS_45NM.items()}, "loihi": vars(LOIHI)},
        "sources": SOURCES,
    }
    return row, details


def write_results(out: Path, rows: list[dict]) -> None:
    """``results.csv`` (contract columns first) and ``results.json`` (the same rows)."""
    columns = list(COLUMNS) + list(EXTRA_COLUMNS)
    with atomic_path(out / "results.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row[k]) for k in columns})
    write_json(out / "results.json", rows)


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def run_bench(cfg: TrainConfig, Ts: list[int], out: str | Path, precision: str = "fp32", show_progress: bool = True) -> list[dict]:
    """Train (or reuse) one model per T into ``out/T<k>``, measure each on dev, write results and plots."""
    from .viz import plot_bench  # matplotlib only when plotting

    cmos(precision)  # fail now on an unknown precision, not after training
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_config_dataset(cfg)
    rows, layers = [], {}
    bar = tqdm(Ts, desc="bench", unit="T", file=sys.stderr, disable=not show_progress)
    for T in bar:
        bar.set_postfix_str(f"T={T}")
        run_dir = out / f"T{T}"
        train_once(replace(cfg, model=replace(cfg.model, core=replace(cfg.model.core, T=T))), run_dir, show_progress)
        row, details = measure(run_dir, T, dataset, precision)
        write_json(run_dir / "energy.json", details)
        rows.append(row)
        layers[T] = details["layers"]
        write_results(out, rows)  # after every T: an interrupted bench keeps what it measured
    plot_bench(rows, layers, out)
    return rows


def run(args: argparse.Namespace) -> int:
    Ts = parse_Ts(args.T)
    cfg = config_from_args(argparse.Namespace(**{**vars(args), "T": None}))
    rows = run_bench(cfg, Ts, args.out, args.precision, show_progress=not args.quiet)
    for row in rows:
        print(json.dumps({k: row[k] for k in COLUMNS}))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="W-F1, spikes, synaptic operations and energy for each T; writes results.csv and plots",
        description="Train (or reuse) one model per T into OUT/T<k>/, measure it on the dev split and write "
        "OUT/results.csv, OUT/results.json, OUT/T<k>/energy.json and the plots. Re-running skips finished T's "
        "and resumes an interrupted one.",
    )
    add_train_arguments(parser, with_T=False)
    parser.add_argument("--T", default="2,4,8,16,32,64", help="comma-separated time steps (default 2,4,8,16,32,64)")
    parser.add_argument("--out", required=True, help="bench directory")
    parser.add_argument("--precision", choices=sorted(CMOS_45NM), default="fp32", help="45 nm number format (default fp32)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
