"""``neuro-erc bench``: accuracy against spikes, synaptic operations and energy, for each T.

A bench is a one-seed grid of :mod:`neuro_erc.sweep` with one cell per T in ``DIR/T<k>/``: each
is trained (a cell that finished is not redone, an interrupted one resumes from its
``last.pt``), then measured on the **dev** split with its ``best.pt`` by :func:`measure`:
inference time per dialogue (a forward pass without hooks) and operation counts of the spiking
cores (a second pass, with hooks; :mod:`neuro_erc.energy`); weighted F1 is its dev report's.
Writes

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
import json
import time
from pathlib import Path

import torch

from .checkpoint import Checkpoint
from .config import to_dict
from .data.batching import iterate_batches
from .data.types import DialogueDataset
from .energy import SOURCES, cmos, count_model, energy, firing_rate, layer_table, per_utterance
from .energy.constants import CMOS_45NM, LOIHI
from .errors import ConfigError
from .evaluate import predict
from .run_config import TrainConfig, resolve_device
from .sweep import grid, parse_ints, run_cells, summarise, write_table
from .train import add_train_arguments, config_from_args

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


def parse_Ts(text: str) -> list[int]:
    return parse_ints(text, "--T")


@torch.no_grad()
def measure(run_dir: Path, dataset: DialogueDataset, precision: str) -> tuple[dict, dict]:
    """(bench columns that training does not record, energy details) of ``run_dir/best.pt`` on dev."""
    ckpt = Checkpoint.load(run_dir / "best.pt")
    ckpt.require_labels(dataset)
    cfg = ckpt.config
    T = cfg.model.core.T
    device = resolve_device(cfg.device)
    model = ckpt.model(device)
    modalities, dialogues = cfg.model.modalities, dataset.split(SPLIT)
    predict(model, dialogues[: cfg.batch_size], modalities, cfg.batch_size, device)  # warm-up
    t0 = time.perf_counter()
    predict(model, dialogues, modalities, cfg.batch_size, device)
    infer_ms = 1000 * (time.perf_counter() - t0) / len(dialogues)
    counts = count_model(model, (b.to(device) for b in iterate_batches(dialogues, modalities, cfg.batch_size)))
    per_utt = per_utterance(counts)
    e = energy(per_utt, T, precision)
    columns = {
        "spikes_per_utterance": per_utt["spikes"],
        "firing_rate": firing_rate(counts),
        "sops_per_utterance": per_utt["sops"],
        "energy_uj_45nm": e["energy_uj_45nm"],
        "energy_uj_loihi": e["energy_uj_loihi"],
        "ann_energy_uj_45nm": e["ann_energy_uj_45nm"],
        "infer_ms_per_dialogue": infer_ms,
        "sops_convention_per_utterance": per_utt["sops_convention"],
        "macs_per_utterance": per_utt["macs"],
        "ann_macs_per_utterance": per_utt["ann_macs"],
        "neuron_updates_per_utterance": per_utt["neuron_steps"],
        "energy_uj_45nm_convention": e["energy_uj_45nm_convention"],
        "energy_uj_45nm_with_neurons": e["energy_uj_45nm_with_neurons"],
        "energy_uj_45nm_encoder_per_step": e["energy_uj_45nm_encoder_per_step"],
        "energy_ratio_ann_over_snn": e["ann_energy_uj_45nm"] / e["energy_uj_45nm"] if e["energy_uj_45nm"] else None,
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
    return columns, details


def run_bench(cfg: TrainConfig, Ts: list[int], out: str | Path, precision: str = "fp32", show_progress: bool = True) -> list[dict]:
    """Train (or reuse) one model per T into ``out/T<k>``, measure each on dev, write results and plots."""
    from .viz import plot_bench  # matplotlib only when plotting

    cmos(precision)  # fail now on an unknown precision, not after training
    if cfg.arch != "spikemo":  # before training every T: the energy counter knows SpikEmo's cores only
        raise ConfigError(f"bench measures SpikEmo's spiking cores; arch {cfg.arch!r} has no energy count yet "
                          "(use `neuro-erc sweep --arch ...` for its W-F1 over T)")
    out = Path(out)
    cells = grid(to_dict(cfg), ["spikemo"], Ts, layout="T{T}")
    rows = summarise(run_cells(cells, out, precision, show_progress=show_progress), by=("T",))
    write_table(out, rows, list(COLUMNS) + list(EXTRA_COLUMNS))
    layers = {c.labels["T"]: json.loads((out / c.path / "energy.json").read_text())["layers"] for c in cells}
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
