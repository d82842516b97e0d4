"""``neuro-erc bench``: accuracy against spikes, synaptic operations and energy, for each T.

A bench is a one-seed grid of :mod:`neuro_erc.sweep` with one cell per T in ``DIR/T<k>/`` (and,
with ``--rate-targets``, one per T and spike budget in ``DIR/T<k>_rate<r>/``, trained with the
firing-rate penalty ``loss.rate`` at budget ``loss.rate_target``, ``..._per_layer`` with
``--rate-per-layer``; with ``--rate-from-base`` in ``DIR/T<k>_rate<r>[_per_layer]_from_base/``,
fine-tuned from the unbudgeted ``DIR/T<k>/best.pt``): each is trained (a cell that
finished is not redone, an interrupted one resumes from its ``last.pt``), then measured on the
**dev** split with its ``best.pt`` by :func:`measure` — on every run of the bench; counts are
deterministic — for inference time per dialogue (a forward pass without hooks) and operation
counts of every layer (a second pass, with hooks; :mod:`neuro_erc.energy`); weighted F1 is its
dev report's. Both architectures are measured: ``spikemo`` (spiking cores + host parts) and
``stream`` (every population spiking; :mod:`neuro_erc.energy.whole`). Writes

* ``DIR/results.csv`` and ``DIR/results.json`` (a list of the same rows): one row per cell with
  :data:`COLUMNS` (the ARCHITECTURE.md contract) then :data:`EXTRA_COLUMNS`;
* ``DIR/<cell>/energy.json``: the per-layer counts and the energy model used;
* ``DIR/wf1_vs_T.png``, ``DIR/energy_vs_T.png`` (ANN twins as lines), ``DIR/firing_rates.png``
  (per layer, per T), for the cells without a rate sweep, and ``DIR/pareto.png``: dev W-F1
  against whole-model energy with memory, one point per row.

Core-only columns (kept as they were): ``energy_uj_45nm`` uses the **exact** counts of the
spiking cores, ``energy_uj_45nm_convention`` the fr·T·FLOPs convention of Spikformer /
Spike-driven Transformer; neither counts SpikEmo's host parts nor memory. Whole-model columns
(``energy_uj_whole``, ``energy_uj_whole_memory``, the ANN twin's ``ann_energy_uj_whole[_memory]``
and the ⌈log₂(T+1)⌉-bit quantised ANN's ``qann_energy_uj_whole[_memory]``) count every layer;
``encoder_energy_uj`` is the text feature extractor, outside both models, per utterance. All
energies are µJ per utterance.

**The trained ANN twin** (``--ann-twin``, arch ``stream``): the same architecture with its
spiking populations replaced by ReLU counterparts, one pass per utterance
(:mod:`neuro_erc.model.ann_twin`), trained once by the same recipe into ``DIR/ann_twin/`` (it
has no T, so every row shares it; its config says ``T`` 1 and no spike budget). Each row gets
its dev ``ann_weighted_f1`` and ``ann_accuracy``. The ``ann_*`` energy columns are that
network's energy: the twin's layers have exactly the shapes the counter charges the ANN for
(every synapse once per utterance, products as D multiplications, one activation per neuron),
so ``ann_energy_uj_whole_memory`` is the trained twin's whole-model energy with memory, and
``energy_ratio_whole_memory_ann_over_snn`` compares the two networks whose W-F1 the row holds.
Without ``--ann-twin`` the ``ann_*`` energies are the same count, of a twin nobody trained.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import Checkpoint
from .cli_types import positive_int
from .config import merge, to_dict
from .data.batching import iterate_batches
from .data.types import DialogueDataset
from .energy import (SOURCES, cmos, count_whole, encoder_energy, encoder_spec, energy, layer_table, per_utterance,
                     spiking_rate, whole_energy, whole_per_utterance)
from .energy.constants import CMOS_45NM, LOIHI, MEMORY, TOKENS_PER_UTTERANCE, quantised_bits
from .errors import ConfigError
from .evaluate import predict
from .io import write_json
from .model import TWIN_ARCHS
from .run_config import TrainConfig, load_config_dataset, resolve_device
from .snn.rates import SplitFiringRate
from .sweep import grid, parse_ints, run_cells, write_table
from .train import add_train_arguments, config_from_args

COLUMNS = (
    "T", "weighted_f1", "spikes_per_utterance", "firing_rate", "sops_per_utterance", "energy_uj_45nm",
    "energy_uj_loihi", "ann_energy_uj_45nm", "train_seconds", "infer_ms_per_dialogue",
)
EXTRA_COLUMNS = (
    "accuracy", "sops_convention_per_utterance", "macs_per_utterance", "ann_macs_per_utterance",
    "neuron_updates_per_utterance", "energy_uj_45nm_convention", "energy_uj_45nm_with_neurons",
    "energy_uj_45nm_encoder_per_step", "energy_ratio_ann_over_snn", "best_epoch", "epochs_run", "dev_utterances",
    "arch", "rate_target", "rate_weight", "energy_uj_whole", "energy_uj_whole_memory", "ann_energy_uj_whole",
    "ann_energy_uj_whole_memory", "qann_bits", "qann_energy_uj_whole", "qann_energy_uj_whole_memory",
    "energy_ratio_whole_memory_ann_over_snn", "host_macs_per_utterance", "host_energy_uj_memory",
    "encoder_energy_uj", "encoder_energy_uj_memory", "ann_weighted_f1", "ann_accuracy", "rate_from_base",
    "rate_per_layer", "rate_per_synapse", "synaptic_rate",
)
SPLIT = "dev"
MEASURED_ARCHS = ("spikemo", "stream")
DEFAULT_RATE_WEIGHT = 10.0
TWIN_CELL = "ann_twin"  # DIR/ann_twin/: the trained ANN twin, one for every T
TWIN_OVERLAY = {"ann_twin": True, "model": {"core": {"T": 1}}, "loss": {"rate": 0.0}}  # no time steps, no spikes


def parse_Ts(text: str) -> list[int]:
    return parse_ints(text, "--T")


def parse_rates(text: str) -> list[float]:
    """``--rate-targets``: distinct firing rates in (0, 1), sorted high to low."""
    try:
        rates = [float(v) for v in text.split(",")]
    except ValueError:
        rates = []
    if not rates or any(not 0 < r < 1 for r in rates) or len(set(rates)) < len(rates):
        raise ValueError(f"--rate-targets: expected distinct comma-separated rates in (0, 1), got {text!r}")
    return sorted(rates, reverse=True)


def encoder_columns(cfg: TrainConfig, precision: str) -> tuple[dict, dict]:
    """(columns, details) of the text encoder that feeds modality ``t``; empty without text or
    when the encoder's shape is unknown."""
    spec = encoder_spec(cfg.text_model) if "t" in cfg.model.modalities else None
    if spec is None:
        return {}, {}
    e = encoder_energy(spec, TOKENS_PER_UTTERANCE, precision)
    return ({k: e[k] for k in ("encoder_energy_uj", "encoder_energy_uj_memory")},
            {**vars(spec), "tokens_per_utterance": TOKENS_PER_UTTERANCE, **e})


@torch.no_grad()
def measure(run_dir: Path, dataset: DialogueDataset, precision: str) -> tuple[dict, dict]:
    """(bench columns that training does not record, energy details) of ``run_dir/best.pt`` on dev."""
    ckpt = Checkpoint.load(run_dir / "best.pt")
    ckpt.require_labels(dataset)
    cfg = ckpt.config
    if cfg.arch not in MEASURED_ARCHS or cfg.ann_twin:
        raise ConfigError(f"bench measures the spiking architectures {list(MEASURED_ARCHS)}; "
                          f"{'an ANN twin' if cfg.ann_twin else f'arch {cfg.arch!r}'} has no spikes to count")
    T = cfg.model.core.T
    device = resolve_device(cfg.device)
    model = ckpt.model(device)
    modalities, dialogues = cfg.model.modalities, dataset.split(SPLIT)
    predict(model, dialogues[: cfg.batch_size], modalities, cfg.batch_size, device)  # warm-up
    t0 = time.perf_counter()
    predict(model, dialogues, modalities, cfg.batch_size, device)
    infer_ms = 1000 * (time.perf_counter() - t0) / len(dialogues)
    batch_size = 1 if cfg.arch == "spikemo" else cfg.batch_size  # SpikEmo's host is counted from unpadded shapes
    synapses = SplitFiringRate()  # the dev synaptic rate, as selection saw it (None without declared fan-outs)
    cores, host = count_whole(model, (b.to(device) for b in iterate_batches(dialogues, modalities, batch_size)),
                              after_batch=synapses.add)
    per_utt = per_utterance(cores)
    e = energy(per_utt, T, precision)
    whole = whole_per_utterance(cores, host)
    ew = whole_energy(whole, T, precision)
    encoder, encoder_details = encoder_columns(cfg, precision)
    columns = {
        "spikes_per_utterance": whole["spikes"],
        "firing_rate": spiking_rate(cores),
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
        "arch": cfg.arch,
        "rate_target": cfg.loss.rate_target if cfg.loss.rate else None,
        "rate_weight": cfg.loss.rate,
        "rate_from_base": bool(cfg.loss.rate and cfg.init),
        "rate_per_layer": bool(cfg.loss.rate and cfg.loss.rate_per_layer),
        "rate_per_synapse": bool(cfg.loss.rate and cfg.loss.rate_per_synapse),
        "synaptic_rate": synapses.synaptic_rate,
        **ew,
        "qann_bits": quantised_bits(T),
        "energy_ratio_whole_memory_ann_over_snn": ew["ann_energy_uj_whole_memory"] / ew["energy_uj_whole_memory"],
        "host_macs_per_utterance": whole["host_macs"],
        **encoder,
    }
    details = {
        "T": T,
        "split": SPLIT,
        "precision": precision,
        "arch": cfg.arch,
        "per_utterance": per_utt,
        "whole_per_utterance": whole,
        "energy_uj_per_utterance": {**e, **ew},
        "layers": layer_table(cores) + (layer_table({"host": host}) if host is not None else []),
        "text_encoder": encoder_details,
        "constants": {"cmos_45nm": {k: vars(v) for k, v in CMOS_45NM.items()}, "loihi": vars(LOIHI),
                      "memory": {"pj_per_bit": MEMORY.pj_per_bit, "word_bits": MEMORY.word_bits}},
        "sources": SOURCES,
    }
    return columns, details


@dataclass(frozen=True)
class SpikeBudgets:
    """The spike budgets a bench sweeps: one cell per T and ``targets`` entry, trained with the
    firing-rate penalty at ``weight`` (None: the config's ``loss.rate``, else
    :data:`DEFAULT_RATE_WEIGHT`); ``from_base``: fine-tuned from that T's unbudgeted model;
    ``epochs``: the budgeted cells' schedule (None: the config's; a fine-tuning run lowering the
    rate may need longer than the model it starts from); ``per_layer``: every population held to
    the budget (``loss.rate_per_layer``) instead of their mean; ``per_synapse``: the budget on
    synaptic events per synapse per step (``loss.rate_per_synapse``, the stream model)."""

    targets: tuple[float, ...] = ()
    weight: float | None = None
    from_base: bool = False
    epochs: int | None = None
    per_layer: bool = False
    per_synapse: bool = False

    def __post_init__(self) -> None:
        if self.per_layer and self.per_synapse:
            raise ConfigError("--rate-per-layer and --rate-per-synapse: choose one kind of spike budget")

    @property
    def suffix(self) -> str:
        """What the budget's kind adds to its cells' names (and sets in ``loss``)."""
        return "_per_layer" if self.per_layer else "_per_synapse" if self.per_synapse else ""


def run_bench(cfg: TrainConfig, Ts: list[int], out: str | Path, precision: str = "fp32", show_progress: bool = True,
              budgets: SpikeBudgets = SpikeBudgets(), ann_twin: bool = False) -> list[dict]:
    """Train (or reuse) one model per T (and per spike budget of ``budgets``) into ``out``, and
    with ``ann_twin`` the ANN twin once; measure each spiking model on dev, write results and
    plots; the rows."""
    from .viz import plot_bench, plot_pareto  # matplotlib only when plotting

    cmos(precision)  # fail now on an unknown precision, not after training
    if cfg.arch not in MEASURED_ARCHS:  # before training every T
        raise ConfigError(f"bench measures the spiking architectures {list(MEASURED_ARCHS)}; arch {cfg.arch!r} "
                          "has no spikes to count (use `neuro-erc sweep --arch ...` for its W-F1)")
    if cfg.ann_twin:
        raise ConfigError("bench trains spiking models; give it the spiking config and --ann-twin to train its twin too")
    if ann_twin and cfg.arch not in TWIN_ARCHS:
        raise ConfigError(f"--ann-twin: the ANN twin is built for arch {' and '.join(TWIN_ARCHS)}; not for {cfg.arch!r}")
    weight = budgets.weight if budgets.weight is not None else (cfg.loss.rate or DEFAULT_RATE_WEIGHT)
    if budgets.targets and weight <= 0:
        raise ConfigError(f"--rate-weight must be > 0 to sweep --rate-targets; got {weight}")
    out, base = Path(out), to_dict(cfg)
    cells = grid(base, ["spikemo"], Ts, layout="T{T}")
    schedule = {"epochs": budgets.epochs} if budgets.epochs else {}
    for target in budgets.targets:
        penalty = {"rate": weight, "rate_target": target, **({f"rate{budgets.suffix}": True} if budgets.suffix else {})}
        budget = merge(base, {"loss": penalty, **schedule})
        layout = f"T{{T}}_rate{target:g}{budgets.suffix}"
        if not budgets.from_base:
            cells += grid(budget, ["spikemo"], Ts, layout=layout)
            continue
        for T, plain in zip(Ts, cells[:len(Ts)]):  # the plain cells run first, so their best.pt is there
            tuned = merge(budget, {"init": str((out / plain.path / "best.pt").resolve())})
            cells += grid(tuned, ["spikemo"], [T], layout=layout + "_from_base")
    twin = grid(merge(base, TWIN_OVERLAY), ["spikemo"], layout=TWIN_CELL, where="the ANN twin's config") if ann_twin else []
    rows = run_cells(cells + twin, out, None, show_progress=show_progress)
    if twin:
        twin_row = rows.pop()
        for row in rows:
            row.update(ann_weighted_f1=twin_row["weighted_f1"], ann_accuracy=twin_row["accuracy"])
    dataset = load_config_dataset(cfg)
    for cell, row in zip(cells, rows):
        columns, details = measure(out / cell.path, dataset, precision)
        write_json(out / cell.path / "energy.json", details)
        row.update(columns)
    write_table(out, rows, list(COLUMNS) + list(EXTRA_COLUMNS))
    n_plain = len(Ts)  # the first cells: one per T, with the config's own loss
    layers = {c.labels["T"]: json.loads((out / c.path / "energy.json").read_text())["layers"] for c in cells[:n_plain]}
    plot_bench(rows[:n_plain], layers, out)
    plot_pareto(rows, out)
    return rows


def run(args: argparse.Namespace) -> int:
    Ts = parse_Ts(args.T)
    budgets = SpikeBudgets(tuple(parse_rates(args.rate_targets)) if args.rate_targets else (), args.rate_weight,
                           args.rate_from_base, args.budget_epochs, args.rate_per_layer, args.rate_per_synapse)
    cfg = config_from_args(argparse.Namespace(**{**vars(args), "T": None}))
    rows = run_bench(cfg, Ts, args.out, args.precision, show_progress=not args.quiet, budgets=budgets,
                     ann_twin=args.ann_twin)
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
    parser.add_argument("--rate-targets", dest="rate_targets", metavar="R1,R2,...",
                        help="also train one model per T and spike budget (firing rate, e.g. 0.2,0.1,0.05) with "
                             "the firing-rate penalty loss.rate; rows carry rate_target; writes OUT/pareto.png")
    parser.add_argument("--rate-weight", dest="rate_weight", type=float,
                        help=f"weight of that penalty (default: the config's loss.rate if > 0, else {DEFAULT_RATE_WEIGHT:g})")
    parser.add_argument("--rate-from-base", dest="rate_from_base", action="store_true",
                        help="start each budgeted model from the same T's unbudgeted best.pt (fine-tuning with the "
                             "penalty; cells OUT/T<k>_rate<r>_from_base/) instead of from scratch")
    parser.add_argument("--rate-per-layer", dest="rate_per_layer", action="store_true",
                        help="hold every spiking population to the budget (loss.rate_per_layer), not only their mean")
    parser.add_argument("--rate-per-synapse", dest="rate_per_synapse", action="store_true",
                        help="budget synaptic events per synapse per step (loss.rate_per_synapse: each population's "
                             "spikes weighted by its fan-out, so the budget is on synaptic ops; arch stream)")
    parser.add_argument("--budget-epochs", dest="budget_epochs", type=positive_int, metavar="N",
                        help="epochs of the budgeted cells (default: the config's epochs, as the plain cells)")
    parser.add_argument("--ann-twin", dest="ann_twin", action="store_true",
                        help=f"also train the ANN twin (arch {', '.join(TWIN_ARCHS)}: spiking parts as ReLUs, one pass "
                             f"per utterance) once into OUT/{TWIN_CELL}/; every row gets its dev ann_weighted_f1, "
                             "and the ann_* energies are that trained twin's")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
