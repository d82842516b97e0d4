"""Pictures: spike rasters of the spiking core for one utterance, a per-dialogue overview, and the
bench plots (W-F1, energy and firing rates against T).

``neuro-erc plot raster`` writes two PNGs:

* ``FILE.png`` — one panel per spiking layer (LIF layers and AND units) of one modality's core (neurons × time steps, a dot
  per spike) for utterance *I* of dialogue *ID*, titled with the text, the true and the
  predicted emotion. A layer wider than ``--max-neurons`` shows evenly spaced neurons (every
  k-th, said in the panel title). The SDSA context LIF has one neuron set per dialogue, not
  per utterance: its panel says so.
* ``FILE_dialogue.png`` — for every utterance of that dialogue: the core's output (the integer
  residual stream DSWA reads) summed over channels, per time step; and the DSWA weight of the
  utterance (its softmax weight over the dialogue's utterances, averaged over channels; the
  weights of a channel sum to 1 over the utterances).

Figures use Matplotlib's object API (no pyplot), so nothing depends on a display or backend.
"""
from __future__ import annotations

import argparse
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FixedFormatter, FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from .cli_types import non_negative_int, positive_int
from .data.batching import collate
from .data.types import IGNORE_LABEL, DataError, Dialogue
from .errors import ConfigError
from .energy.whole import SPIKING_KINDS
from .snn.layers import And
from .snn.lif import LIF


# ---- recording one dialogue ---------------------------------------------------------


@dataclass
class DialogueRecord:
    """What one forward pass of a single dialogue left behind, for one modality's core.

    SpikEmo records ``core_output`` and ``dswa_weights``; the stream model records
    ``probabilities`` (its readout's softmax per utterance) instead.
    """

    dialogue: Dialogue
    modality: str
    spikes: dict[str, np.ndarray]  # spiking layer name -> [T, L, D] (L = 1 for a per-dialogue layer)
    predicted: np.ndarray  # [L] label ids
    labels: list[str]
    core_output: np.ndarray | None = None  # [T, L, D] integer residual stream
    dswa_weights: np.ndarray | None = None  # [L, D]
    probabilities: np.ndarray | None = None  # [L, C]


@torch.no_grad()
def record_dialogue(model, dialogue: Dialogue, modality: str, labels: list[str]) -> DialogueRecord:
    """Run ``model`` on ``dialogue`` alone and keep every spiking layer's spikes of ``modality``'s core
    (LIF layers, and the AND units computed from their operands)."""
    if modality not in model.cores:
        raise DataError(f"the model has no spiking core for modality {modality!r}; it has {list(model.cores)}")
    model.eval()
    dswa = model.cores[modality]
    spikes: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda mod, args, out, name=name: spikes.__setitem__(name, out.detach()))
        for name, module in dswa.core.named_modules()
        if isinstance(module, LIF)
    ]
    try:
        batch = collate([dialogue], model.cfg.modalities)
        out = model(batch.to(next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    recorded = {name: s[:, :, 0].cpu().numpy() for name, s in spikes.items()}
    return DialogueRecord(
        dialogue=dialogue,
        modality=modality,
        spikes=with_and_units(dswa.core.describe(), recorded),
        core_output=dswa.last_core_output[:, :, 0].cpu().numpy(),
        dswa_weights=out.dswa_weights[modality][:, 0].cpu().numpy(),
        predicted=out.logits[:, 0].argmax(-1).cpu().numpy(),
        labels=list(labels),
    )


def with_and_units(steps, spikes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``spikes`` of the LIF layers, with every AND unit of the core's listing (``steps``) added as
    the product of its two operands' spikes (broadcast over utterances), in the listing's order."""
    out = {}
    for step in steps:
        if isinstance(step, And):
            a, b = (spikes[name] for name in step.inputs)
            out[step.name] = a * b
        elif step.name in spikes:
            out[step.name] = spikes[step.name]
    return out


def record_stream_dialogue(model, dialogue: Dialogue, modality: str, labels: list[str]) -> DialogueRecord:
    """Stream ``dialogue`` through ``model``'s exported graph (spike-exact against the model,
    docs/export.md §7) and keep every spiking node of ``modality``'s core, the AND units included."""
    from .export.stream_graph import StreamGraphRunner, stream_to_nir
    from .export.stream_parity import dialogue_turns, graph_stream

    if modality not in model.cfg.modalities:
        raise DataError(f"the model has no stream core for modality {modality!r}; it has {list(model.cfg.modalities)}")
    runner = StreamGraphRunner(stream_to_nir(model.cpu().eval()))
    logits, spikes, _ = graph_stream(runner, dialogue_turns(dialogue, model.cfg.modalities))
    L, T = len(dialogue), runner.T
    prefix = f"{modality}."
    mine = {name[len(prefix):]: z.reshape(L, T, -1).transpose(1, 0, 2) for name, z in spikes.items() if name.startswith(prefix)}
    probabilities = torch.softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    return DialogueRecord(dialogue=dialogue, modality=modality, spikes=mine, predicted=logits.argmax(-1),
                          labels=list(labels), probabilities=probabilities)


def find_utterance(dialogues: list[Dialogue], dialogue_id: str, index: int, split: str) -> Dialogue:
    """The dialogue ``dialogue_id`` of ``split``, checked to have utterance ``index``."""
    by_id = {d.id: d for d in dialogues}
    if dialogue_id not in by_id:
        ids = list(by_id)
        shown = ", ".join(ids[:20]) + (f", ... ({len(ids)} in all)" if len(ids) > 20 else "")
        raise DataError(f"split {split!r} has no dialogue {dialogue_id!r}; its dialogues are: {shown}")
    dialogue = by_id[dialogue_id]
    if not 0 <= index < len(dialogue):
        raise DataError(f"dialogue {dialogue_id!r} ({split}) has {len(dialogue)} utterances (0..{len(dialogue) - 1}); "
                        f"got utterance {index}")
    return dialogue


# ---- the raster and the dialogue overview --------------------------------------------


def _label(labels: list[str], label_id: int) -> str:
    return "(none)" if label_id == IGNORE_LABEL else labels[label_id]


def _neuron_subset(n: int, max_neurons: int) -> tuple[np.ndarray, str]:
    if n <= max_neurons:
        return np.arange(n), f"{n} neurons"
    step = math.ceil(n / max_neurons)
    suffix = "th" if step % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(step % 10, "th")
    return np.arange(0, n, step), f"every {step}{suffix} of {n} neurons"


def plot_raster(record: DialogueRecord, index: int, out: str | Path, max_neurons: int = 64) -> Path:
    """One panel per LIF layer: spikes of utterance ``index`` (neurons × steps). Returns the path."""
    names = list(record.spikes)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 2.9 * rows + 1.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        layer = record.spikes[name]  # [T, L or 1, D]
        per_dialogue = layer.shape[1] == 1 and len(record.dialogue) > 1
        s = layer[:, 0 if per_dialogue else index]  # [T, D]
        keep, shown = _neuron_subset(s.shape[1], max_neurons)
        t, n = np.nonzero(s[:, keep])
        ax.scatter(t, keep[n], s=6, marker="|" if len(keep) > 16 else "s", color="black", linewidths=1)
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        rate = s.mean()
        ax.set_title(f"{name}\n{shown}, rate {rate:.3f}" + (" (per dialogue)" if per_dialogue else ""), fontsize=8)
        ax.set_xlabel("time step", fontsize=8)
        ax.set_ylabel("neuron", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    utt = record.dialogue.utterances[index]
    text = textwrap.shorten(utt.text, 160) if utt.text else "(no text)"
    fig.suptitle(
        f"dialogue {record.dialogue.id} · utterance {index} · speaker {utt.speaker} · core of modality {record.modality!r}\n"
        f"\u201c{text}\u201d\ntrue: {_label(record.labels, utt.label)}   predicted: {record.labels[record.predicted[index]]}",
        fontsize=10,
    )
    return _save(fig, out)


def _utterance_steps(fig: Figure, ax, record: DialogueRecord, index: int, counts: np.ndarray, colorbar: str,
                     xlabel: str, title: str) -> None:
    """``counts`` [L, T] as a heatmap, one row per utterance labelled "i: true → predicted",
    utterance ``index`` in bold: the left panel of both dialogue overviews."""
    im = ax.imshow(counts, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, label=colorbar, pad=0.01)
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("utterance")
    ticks = [f"{i}: {_label(record.labels, u.label)} → {record.labels[record.predicted[i]]}"
             for i, u in enumerate(record.dialogue.utterances)]
    ax.set_yticks(range(len(ticks)), ticks, fontsize=8)
    ax.get_yticklabels()[index].set_fontweight("bold")
    ax.set_title(title, fontsize=10)


def plot_dialogue(record: DialogueRecord, index: int, out: str | Path) -> Path:
    """Per utterance: the core output summed over channels per step, and its DSWA weight."""
    L = len(record.dialogue)
    weights = record.dswa_weights.mean(-1)  # [L]
    fig = Figure(figsize=(11, 1.2 + 0.38 * L), layout="constrained")
    ax_spk, ax_w = fig.subplots(1, 2, width_ratios=[3, 1.4], sharey=True)
    _utterance_steps(fig, ax_spk, record, index, record.core_output.sum(-1).T, "Σ channels of core output",
                     "time step", "core output per utterance and step")
    colors = ["tab:red" if i == index else "tab:blue" for i in range(L)]
    # the weights sit near the uniform 1/L: drawn as their departure from it, they show their variation
    relative = np.round(100 * (L * weights.astype(np.float64) - 1), 6)  # float noise below 1e-6 % is 0
    ax_w.barh(range(L), relative, color=colors)
    if not relative.any():
        ax_w.set_xlim(-1, 1)
        ax_w.text(0.5, 0.02, "all uniform", transform=ax_w.transAxes, ha="center", fontsize=8, color="gray")
    ax_w.axvline(0, color="gray", linewidth=1)
    for i, (w, r) in enumerate(zip(weights, relative)):
        ax_w.annotate(f"{w:.3f}", (r, i), textcoords="offset points", xytext=(3 if r >= 0 else -3, 0),
                      ha="left" if r >= 0 else "right", va="center", fontsize=7)
    ax_w.margins(x=0.25)
    ax_w.xaxis.get_major_formatter().set_useOffset(False)
    ax_w.set_xlabel("vs uniform 1/L: 100·(L·w − 1) %\n(w: mean over channels)")
    ax_w.set_title("DSWA weights", fontsize=10)
    fig.suptitle(f"dialogue {record.dialogue.id} · modality {record.modality!r} · labels: true → predicted", fontsize=10)
    return _save(fig, out)


def plot_stream_dialogue(record: DialogueRecord, index: int, out: str | Path) -> Path:
    """Per utterance of a stream model's dialogue: its core's spikes per step (all layers), and the
    readout's class probabilities at the window's end (what ``neuro-erc stream`` answers)."""
    L = len(record.dialogue)
    fig = Figure(figsize=(12, 1.2 + 0.38 * L), layout="constrained")
    ax_spk, ax_p = fig.subplots(1, 2, width_ratios=[2, 1.6], sharey=True)
    _utterance_steps(fig, ax_spk, record, index, sum(z.sum(-1) for z in record.spikes.values()).T,
                     "spikes in the core (all layers)", "time step within the utterance's window",
                     "core spikes per utterance and step (state carries over)")
    im = ax_p.imshow(record.probabilities, aspect="auto", cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax_p, label="probability", pad=0.01)
    ax_p.set_xticks(range(len(record.labels)), record.labels, rotation=45, ha="right", fontsize=8)
    ax_p.set_title("readout at the window's end", fontsize=10)
    fig.suptitle(f"dialogue {record.dialogue.id} · stream model · modality {record.modality!r} · labels: true → predicted",
                 fontsize=10)
    return _save(fig, out)


def _save(fig: Figure, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


# ---- the bench plots ----------------------------------------------------------------


def plot_bench(rows: list[dict], layers: dict[int, list[dict]], out: str | Path) -> list[Path]:
    """``wf1_vs_T.png``, ``energy_vs_T.png`` and ``firing_rates.png`` in ``out``."""
    out = Path(out)
    Ts = [r["T"] for r in rows]

    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    f1 = [r["weighted_f1"] for r in rows]
    ax.plot(Ts, f1, "o-")
    for T, v in zip(Ts, f1):
        ax.annotate(f"{v:.2f}", (T, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    _log2_T_axis(ax, Ts)
    ax.margins(x=0.08, y=0.15)
    ax.set_ylabel("dev weighted F1 (%)")
    ax.set_title("accuracy against time steps")
    paths = [_save(fig, out / "wf1_vs_T.png")]

    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(Ts, [r["energy_uj_45nm"] for r in rows], "o-", markersize=4, zorder=3, label="SNN, 45 nm (exact SOPs)")
    # the convention equals the exact count when every layer's rate is exact: hollow and larger, so both show
    ax.plot(Ts, [r["energy_uj_45nm_convention"] for r in rows], "o--", markersize=10, markerfacecolor="none",
            label="SNN, 45 nm (fr·T·FLOPs; on the exact line where equal)")
    ax.plot(Ts, [r["energy_uj_loihi"] for r in rows], "s-", label="SNN, Loihi")
    ann = float(np.mean([r["ann_energy_uj_45nm"] for r in rows]))
    ax.axhline(ann, color="black", linestyle=":", label=f"ANN twin, cores only, 45 nm ({ann:.3g} µJ)")
    whole = [("energy_uj_whole_memory", "^-", "SNN, whole model + memory (host parts as MACs)"),
             ("ann_energy_uj_whole_memory", "v:", "ANN twin, whole model + memory"),
             ("qann_energy_uj_whole_memory", "d-.", "⌈log₂(T+1)⌉-bit ANN, whole model + memory")]
    for key, style, label in whole:
        ax.plot(Ts, [r[key] for r in rows], style, label=label, alpha=0.85)
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis, [v for r in rows for v in (r["energy_uj_45nm"], r["energy_uj_45nm_convention"],
                                                          r["energy_uj_loihi"], ann, *(r[k] for k, _, _ in whole))])
    _log2_T_axis(ax, Ts)
    ax.set_ylabel("energy per utterance (µJ)")
    ax.set_title("energy against time steps (spiking cores; whole model)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    paths.append(_save(fig, out / "energy_vs_T.png"))

    names = list(dict.fromkeys(r["layer"] for T in Ts for r in layers[T] if r["kind"] in SPIKING_KINDS))
    rates = np.full((len(names), len(Ts)), np.nan)
    for j, T in enumerate(Ts):
        for r in layers[T]:
            if r["kind"] in SPIKING_KINDS:
                rates[names.index(r["layer"]), j] = r["firing_rate"]
    fig = Figure(figsize=(2.2 + 0.75 * len(Ts) + 0.06 * max(map(len, names), default=0), 1.2 + 0.3 * len(names)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(rates, aspect="auto", cmap="magma", vmin=0, vmax=max(np.nanmax(rates), 1e-3) if names else 1)
    for (i, j), v in np.ndenumerate(rates):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 * np.nanmax(rates) else "black")
    ax.set_xticks(range(len(Ts)), [str(T) for T in Ts])
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("T")
    ax.set_title("firing rate per LIF layer (dev, real utterances)", fontsize=10)
    fig.colorbar(im, ax=ax, label="spikes per neuron per step")
    paths.append(_save(fig, out / "firing_rates.png"))
    return paths


def plot_pareto(rows: list[dict], out: str | Path) -> Path:
    """``pareto.png``: dev W-F1 against whole-model energy with memory, one point per bench row
    (T; spike budget), the non-dominated points joined, and the ANN twins' energies beside them."""
    fig = Figure(figsize=(6.5, 4.4), layout="constrained")
    ax = fig.subplots()
    Ts = sorted({r["T"] for r in rows})
    colours = {T: f"C{i}" for i, T in enumerate(Ts)}
    for i, r in enumerate(rows):
        budget, tuned = r.get("rate_target"), r.get("rate_from_base")
        ax.plot(r["energy_uj_whole_memory"], r["weighted_f1"], "o" if budget is None else "D" if tuned else "s",
                color=colours[r["T"]], markersize=7)
        kind = (" per layer" if r.get("rate_per_layer") else " per synapse" if r.get("rate_per_synapse") else "")
        kind += " (from base)" if tuned else ""
        tag = f"T={r['T']}" + ("" if budget is None else f", r*={budget:g}{kind}")
        ax.annotate(f"{tag}\nfr {r['firing_rate']:.3f}", (r["energy_uj_whole_memory"], r["weighted_f1"]),
                    textcoords="offset points", xytext=(5, 4 - 18 * (i % 3)), fontsize=7)  # neighbours apart
    front = pareto_front([(r["energy_uj_whole_memory"], r["weighted_f1"]) for r in rows])
    ax.plot(*zip(*front), "-", color="grey", alpha=0.6, label="non-dominated")
    ann = [r["ann_energy_uj_whole_memory"] for r in rows]
    qann = [r["qann_energy_uj_whole_memory"] for r in rows]
    ax.axvline(float(np.mean(ann)), color="black", linestyle=":", label=f"ANN twin ({np.mean(ann):.3g} µJ)")
    trained = [r["ann_weighted_f1"] for r in rows if r.get("ann_weighted_f1") is not None]
    if trained:  # the twin was trained (bench --ann-twin): its W-F1 is a point to compare at
        ax.plot(float(np.mean(ann)), trained[0], "*", color="black", markersize=11,
                label=f"trained ANN twin (dev {trained[0]:.2f})")
    for q, T in sorted({(r["qann_energy_uj_whole_memory"], r["T"]) for r in rows}):
        ax.axvline(q, color=colours[T], linestyle="-.", alpha=0.6, linewidth=1)
    ax.plot([], [], "-.", color="grey", label="⌈log₂(T+1)⌉-bit ANN (colour: T)")
    for T in Ts:
        ax.plot([], [], "o", color=colours[T], label=f"T = {T}")
    if any(r.get("rate_target") is not None and not r.get("rate_from_base") for r in rows):
        ax.plot([], [], "s", color="grey", label="with spike budget r*")
    if any(r.get("rate_from_base") for r in rows):
        ax.plot([], [], "D", color="grey", label="spike budget, fine-tuned from the T's plain model")
    ax.set_xscale("log")
    _plain_log_axis(ax.xaxis, [r["energy_uj_whole_memory"] for r in rows] + ann + qann)
    ax.yaxis.get_major_formatter().set_useOffset(False)
    ax.margins(x=0.15, y=0.15)
    ax.grid(alpha=0.3)
    ax.set_xlabel("whole-model energy per utterance, memory included (µJ, 45 nm)")
    ax.set_ylabel("dev weighted F1 (%)")
    ax.set_title("accuracy against energy")
    ax.legend(fontsize=7)
    return _save(fig, Path(out) / "pareto.png")


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (energy, score) points no other point beats on both (lower energy, higher score), by energy."""
    front, best = [], -math.inf
    for energy_uj, score in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((energy_uj, score))
            best = score
    return front


def _plain_log_axis(axis, values: list[float]) -> None:
    """Log-axis ticks at 1-2-5 × 10^k inside the data's range, labelled as plain numbers ("%g"):
    a narrow range still gets several labels, and no 10^k notation."""
    lo, hi = min(v for v in values if v > 0), max(values)
    ticks = [m * 10.0**k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo / 1.5 <= m * 10.0**k <= hi * 1.5]
    if len(ticks) < 3:  # under half a decade: label the ends and the middle instead
        ticks = [lo, math.sqrt(lo * hi), hi] if hi > lo else [lo]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FixedFormatter([f"{t:.3g}" for t in ticks]))
    axis.set_minor_locator(NullLocator())


def _log2_T_axis(ax, Ts: list[int]) -> None:
    """T on a log₂ axis with plain labels; a linear y axis gets no offset notation (a 0.01-point
    difference must not read as a cliff)."""
    formatter = ax.yaxis.get_major_formatter()
    if isinstance(formatter, ScalarFormatter):
        formatter.set_useOffset(False)
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ts, [str(T) for T in Ts])
    ax.minorticks_off()
    ax.set_xlabel("time steps T")
    ax.grid(alpha=0.3)


# ---- command line -------------------------------------------------------------------


def run_raster(args: argparse.Namespace) -> int:
    from .checkpoint import Checkpoint

    ckpt = Checkpoint.load(args.checkpoint)
    if ckpt.config.arch == "bigru":
        raise ConfigError(f"{args.checkpoint}: a 'bigru' checkpoint, the plain non-spiking baseline: it has no spikes to draw")
    if ckpt.config.ann_twin:
        raise ConfigError(f"{args.checkpoint}: the ANN twin of a stream model (ReLU, no spikes): it has no spikes to draw")
    stream = ckpt.config.arch == "stream"
    model = ckpt.model()
    dataset = ckpt.dataset(args.dataset, args.data)
    dialogue = find_utterance(dataset.split(args.split), args.dialogue, args.utterance, args.split)
    modality = args.modality or model.cfg.modalities[0]
    record = (record_stream_dialogue if stream else record_dialogue)(model, dialogue, modality, ckpt.labels)
    out = Path(args.out)
    raster = plot_raster(record, args.utterance, out, args.max_neurons)
    overview = (plot_stream_dialogue if stream else plot_dialogue)(
        record, args.utterance, out.with_name(f"{out.stem}_dialogue{out.suffix or '.png'}"))
    print(f"wrote {raster} and {overview}")
    return 0


def register(subparsers) -> None:
    from .data.registry import DATASETS

    plot = subparsers.add_parser("plot", help="pictures of a trained model (spike rasters)")
    kinds = plot.add_subparsers(dest="plot_kind", required=True, metavar="KIND")
    raster = kinds.add_parser(
        "raster", help="spike raster of every core layer for one utterance, plus a per-dialogue overview",
        description="Writes FILE.png (one panel per spiking layer: neurons × time for the utterance) and "
        "FILE_dialogue.png (core output per utterance and step, and the DSWA weights; for a stream model, its "
        "core's spikes per utterance and step and the readout's class probabilities).",
    )
    raster.add_argument("--checkpoint", required=True)
    raster.add_argument("--dataset", choices=DATASETS, required=True)
    raster.add_argument("--data")
    raster.add_argument("--dialogue", required=True, help="dialogue id")
    raster.add_argument("--utterance", type=non_negative_int, required=True, help="utterance index within the dialogue (from 0)")
    raster.add_argument("--split", default="dev", choices=["train", "dev", "test"])
    raster.add_argument("--modality", help="whose core to show (default: the model's first modality)")
    raster.add_argument("--max-neurons", dest="max_neurons", type=positive_int, default=64, help="neurons shown per layer at most")
    raster.add_argument("--out", required=True, help="FILE.png")
    raster.set_defaults(func=run_raster)
