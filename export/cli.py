"""``neuro-erc export nir|lava`` and ``neuro-erc lava-run``: thin wrappers over the export API.

* ``export nir --checkpoint CKPT --out MODEL.nir [--length L]``: one NIR file holding the graph
  of each spiking core for dialogues of up to L utterances (default 24, MELD's longest); for a
  stream checkpoint, its one streaming graph for every length (:mod:`.stream_graph`; no ``--length``).
* ``export lava --checkpoint CKPT --out DIR [--length L]``: the Lava network plan of each core
  (``DIR/<modality>/plan.json`` + arrays), what ``LavaCore`` instantiates; needs no Lava.
* ``lava-run``: the hybrid run (host in PyTorch, cores in Lava) → PARITY.json, running the
  cores rebuilt from the checkpoint, or what ``export lava`` (``--plan DIR``) or ``export nir``
  (``--nir MODEL.nir``) wrote once it is checked to come from that checkpoint. Needs Lava,
  hence Python 3.10. On a stream checkpoint: its streaming graph (rebuilt, or ``--nir``) as one
  Lava network fed every dialogue utterance after utterance (:mod:`.lava_stream`; float only).

Refusals are ``UserError``s, reported by ``neuro_erc.cli.main``.
"""
from __future__ import annotations

import argparse
import json

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.cli_types import positive_float, positive_int
from neuro_erc.errors import ExportError
from neuro_erc.io import write_json

from .artefacts import ExportedCores
from .lava_build import build_plan, save_plans
from .lava_run import PRECISIONS
from .nir_graph import core_shape, core_to_nir, save_graph
from .stream_graph import load_stream_graph, model_fingerprint, save_stream_graph, stream_to_nir
from .size_model import DEFAULT_BUDGET_BYTES, DEFAULT_LAVA_BUDGET_BYTES, check_fits, default_budget

MELD_LONGEST = 24


def _checkpoint(checkpoint: str) -> Checkpoint:
    ckpt = Checkpoint.load(checkpoint)
    if ckpt.config.arch == "bigru":
        raise ExportError(f"{checkpoint}: a 'bigru' model, the plain non-spiking baseline: it has no spiking cores, "
                          "so nothing to export or run on Lava")
    if ckpt.config.ann_twin:
        raise ExportError(f"{checkpoint}: the ANN twin of a stream model (ReLU, no spikes): nothing to export or run "
                          "on Lava; export the spiking model it is compared with")
    return ckpt


def _cores(ckpt: Checkpoint, modality: str | None) -> tuple[dict, object]:
    """The SpikEmo model of ``ckpt`` and its spiking cores (all, or ``modality``'s)."""
    checkpoint = ckpt.source
    if ckpt.config.arch != "spikemo":
        raise ExportError(f"{checkpoint}: a {ckpt.config.arch!r} model; `export lava` and `lava-run` handle SpikEmo's "
                          "cores only so far (a stream model exports its streaming graph with `export nir` and streams "
                          "with `neuro-erc stream`)")
    model = ckpt.model()
    cores = {m: dswa.core for m, dswa in model.cores.items()}
    if not cores:
        raise ExportError(f"{checkpoint}: the model has no spiking cores (trained without DSWA): nothing to export")
    if modality is not None:
        if modality not in cores:
            raise ExportError(f"{checkpoint}: no core for modality {modality!r}; it has {sorted(cores)}")
        cores = {modality: cores[modality]}
    return cores, model


def _budget(args, target: str) -> int:
    return default_budget(target) if args.budget_gib is None else int(args.budget_gib * 2**30)


def _export_stream_nir(args: argparse.Namespace, ckpt: Checkpoint) -> int:
    if args.modality is not None:
        raise ExportError(f"{args.checkpoint}: a stream model's graph holds every modality (they meet in its readout); "
                          "drop --modality")
    graph = stream_to_nir(ckpt.model().cpu().eval())
    path = save_stream_graph(graph, args.out)
    for m in ckpt.config.model.modalities:
        print(f"{m}: {len(graph.nodes[m].nodes)} nodes")
    print(f"wrote {path} (streaming: one graph for every dialogue length, T={graph.metadata['T']} steps per utterance)")
    return 0


def run_export_nir(args: argparse.Namespace) -> int:
    ckpt = _checkpoint(args.checkpoint)
    if ckpt.config.arch == "stream":
        return _export_stream_nir(args, ckpt)
    cores, _ = _cores(ckpt, args.modality)
    graphs = {m: core_to_nir(core.cpu(), args.length, _budget(args, "nir")) for m, core in cores.items()}
    path = save_graph(graphs, args.out)
    for m, graph in graphs.items():
        print(f"{m}: {len(graph.nodes)} nodes, L={args.length}, T={graph.metadata['T']}")
    print(f"wrote {path}")
    return 0


def run_export_lava(args: argparse.Namespace) -> int:
    cores, _ = _cores(_checkpoint(args.checkpoint), args.modality)
    for core in cores.values():  # refuse before writing anything
        check_fits(core_shape(core), args.length, _budget(args, "lava"), target="lava")

    def plans():  # one at a time: a plan at SpikEmo's size holds GiBs
        for m, core in cores.items():
            plan = build_plan(core_to_nir(core.cpu(), args.length))
            print(f"{m}: {len(plan.groups)} LIF + {len(plan.connections)} Sparse processes, {plan.n_neurons} neurons, "
                  f"{plan.n_synapses} synapses, latency {plan.latency} steps")
            yield m, plan

    print(f"wrote {save_plans(plans(), args.out)} (one plan per modality, L={args.length})")
    return 0


def _dialogues(args: argparse.Namespace, ckpt: Checkpoint):
    dataset = ckpt.dataset(args.dataset, args.data)
    dialogues = dataset.split(args.split)
    if args.max_length is not None:
        dialogues = [d for d in dialogues if len(d.utterances) <= args.max_length]
    if args.limit is not None:
        dialogues = dialogues[: args.limit]
    return dataset, dialogues


def _run_stream_lava(args: argparse.Namespace, ckpt: Checkpoint) -> dict:
    from .lava_stream import stream_lava_parity

    if args.precision != "float":
        raise ExportError(f"{args.checkpoint}: a stream model runs on Lava in float precision only (its CubaLIF context "
                          "and LI readout have no fixed-point mapping yet); use --precision float")
    if args.plan:
        raise ExportError(f"{args.checkpoint}: a stream model has no `export lava` plan; pass --nir MODEL.nir "
                          "(its streaming graph from `export nir`) or nothing (rebuilt from the checkpoint)")
    model = ckpt.model().cpu().eval()
    if args.nir:
        graph = load_stream_graph(args.nir)
        if graph.metadata.get("fingerprint") != model_fingerprint(model):
            raise ExportError(f"{args.nir}: exported from another model than {args.checkpoint} (fingerprints differ)")
    else:
        graph = stream_to_nir(model)
    dataset, dialogues = _dialogues(args, ckpt)
    report = stream_lava_parity(model, graph, dialogues, list(dataset.labels.labels), dataset.name, args.split)
    return {**report, "artefact": "nir" if args.nir else "checkpoint", "artefact_path": args.nir or args.checkpoint}


def _run_hybrid_lava(args: argparse.Namespace, ckpt: Checkpoint) -> dict:
    from .parity import hybrid_parity

    _, model = _cores(ckpt, None)
    if args.plan or args.nir:  # read (and refuse a damaged one) before the data
        kind, path = ("plan", args.plan) if args.plan else ("nir", args.nir)
        exported = ExportedCores.load(kind, path)
    else:
        kind, path, exported = "checkpoint", args.checkpoint, None
    dataset, dialogues = _dialogues(args, ckpt)
    report = hybrid_parity(model.cpu(), dialogues, list(dataset.labels.labels), dataset.name, args.split,
                           args.precision, args.batch_size, _budget(args, "lava"), exported)
    return {**report, "artefact": kind, "artefact_path": str(path)}


def run_lava(args: argparse.Namespace) -> int:
    ckpt = _checkpoint(args.checkpoint)
    report = _run_stream_lava(args, ckpt) if ckpt.config.arch == "stream" else _run_hybrid_lava(args, ckpt)
    write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if not k.endswith("_by_node")}, indent=1))
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--budget-gib", dest="budget_gib", type=positive_float,
                        help=f"refuse graphs needing more memory (default {DEFAULT_BUDGET_BYTES / 2**30:g} GiB for NIR, "
                             f"{DEFAULT_LAVA_BUDGET_BYTES / 2**30:g} GiB for Lava)")


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="export the spiking cores to NIR or to a Lava network plan")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, func, out_help, text in (
        ("nir", run_export_nir, "MODEL.nir: one file, one nested graph per modality core", "NIR graphs of the cores"),
        ("lava", run_export_lava, "directory of <modality>/ plans (replaced as a whole)", "Lava network plan per core"),
    ):
        p = targets.add_parser(name, help=text)
        _common(p)
        p.add_argument("--out", required=True, help=out_help)
        p.add_argument("--length", type=positive_int, default=MELD_LONGEST,
                       help="longest dialogue L the export runs (default 24)")
        p.add_argument("--modality", help="export only this modality's core")
        p.set_defaults(func=func)

    p = subparsers.add_parser("lava-run", help="hybrid run with the cores on Lava (Python 3.10); writes PARITY.json")
    _common(p)
    from neuro_erc.data.registry import DATASETS

    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data")
    p.add_argument("--split", required=True, choices=["train", "dev", "test"])
    p.add_argument("--precision", choices=PRECISIONS, default="float")
    artefact = p.add_mutually_exclusive_group()
    artefact.add_argument("--plan", metavar="DIR",
                          help="run the plans `export lava` wrote (default: rebuild the cores from the checkpoint)")
    artefact.add_argument("--nir", metavar="MODEL.nir", help="run the graphs `export nir` wrote")
    p.add_argument("--limit", type=positive_int, help="first N dialogues of the split")
    p.add_argument("--max-length", dest="max_length", type=positive_int, help="skip dialogues longer than this")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=16)
    p.add_argument("--out", required=True, help="PARITY.json path")
    p.set_defaults(func=run_lava)
