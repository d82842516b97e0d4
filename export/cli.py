"""``neuro-erc export nir|lava`` and ``neuro-erc lava-run``: thin wrappers over the export API.

* ``export nir --checkpoint CKPT --out MODEL.nir [--length L]``: the NIR graph of each spiking
  core for dialogues of L utterances (default 24, MELD's longest); with several modalities the
  files are ``MODEL.<modality>.nir``.
* ``export lava --checkpoint CKPT --out DIR [--length L]``: the Lava network plan of each core
  (``DIR/<modality>_L<L>/plan.json`` + arrays), what ``LavaCore`` instantiates; needs no Lava.
* ``lava-run``: the hybrid run (host in PyTorch, cores in Lava) → PARITY.json. Needs Lava,
  hence Python 3.10.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.io import write_json

from .lava_build import build_plan, save_plan
from .lava_run import PRECISIONS, LavaUnavailable
from .nir_graph import core_shape, core_to_nir, save_graph
from .size_model import DEFAULT_BUDGET_BYTES, DEFAULT_LAVA_BUDGET_BYTES, check_fits, default_budget

MELD_LONGEST = 24


def _cores(checkpoint: str, modality: str | None) -> tuple[dict, object, Checkpoint]:
    ckpt = Checkpoint.load(checkpoint)
    model = ckpt.model()
    cores = {m: dswa.core for m, dswa in model.cores.items()}
    if not cores:
        raise ValueError(f"{checkpoint}: the model has no spiking cores (trained without DSWA): nothing to export")
    if modality is not None:
        if modality not in cores:
            raise ValueError(f"{checkpoint}: no core for modality {modality!r}; it has {sorted(cores)}")
        cores = {modality: cores[modality]}
    return cores, model, ckpt


def _budget(args, target: str) -> int:
    return default_budget(target) if args.budget_gib is None else int(args.budget_gib * 2**30)


def run_export_nir(args: argparse.Namespace) -> int:
    cores, _, _ = _cores(args.checkpoint, args.modality)
    out = Path(args.out)
    for m, core in cores.items():
        path = out if len(cores) == 1 else out.with_name(f"{out.stem}.{m}{out.suffix or '.nir'}")
        graph = core_to_nir(core.cpu(), args.length, _budget(args, "nir"))
        save_graph(graph, path)
        print(f"{m}: {path} ({len(graph.nodes)} nodes, L={args.length}, T={graph.metadata['T']})")
    return 0


def run_export_lava(args: argparse.Namespace) -> int:
    cores, _, _ = _cores(args.checkpoint, args.modality)
    for m, core in cores.items():
        check_fits(core_shape(core), args.length, _budget(args, "lava"), target="lava")
        plan = build_plan(core_to_nir(core.cpu(), args.length))
        directory = save_plan(plan, Path(args.out) / f"{m}_L{args.length}")
        print(f"{m}: {directory} ({len(plan.groups)} LIF + {len(plan.connections)} Sparse processes, "
              f"{plan.n_neurons} neurons, {plan.n_synapses} synapses, latency {plan.latency} steps)")
    return 0


def run_lava(args: argparse.Namespace) -> int:
    from .parity import hybrid_parity

    _, model, ckpt = _cores(args.checkpoint, None)
    dataset = ckpt.dataset(args.dataset, args.data)
    dialogues = dataset.split(args.split)
    if args.max_length:
        dialogues = [d for d in dialogues if len(d.utterances) <= args.max_length]
    dialogues = dialogues[: args.limit] if args.limit else dialogues
    try:
        report = hybrid_parity(model.cpu(), dialogues, list(dataset.labels.labels), dataset.name, args.split,
                               args.precision, args.batch_size, _budget(args, "lava"))
    except LavaUnavailable as err:
        print(f"neuro-erc lava-run: error: {err}", file=sys.stderr)
        return 2
    write_json(args.out, report)
    print(json.dumps({k: v for k, v in report.items() if k != "spike_agreement_by_node"}, indent=1))
    return 0


def _guarded(func):
    """Report refusals that are not the user's data (SSA cores, no cores) as a clean CLI error."""
    def run(args):
        try:
            return func(args)
        except (NotImplementedError, ValueError) as err:
            print(f"neuro-erc {args.command}: error: {err}", file=sys.stderr)
            return 2
    return run


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--budget-gib", dest="budget_gib", type=float,
                        help=f"refuse graphs needing more memory (default {DEFAULT_BUDGET_BYTES / 2**30:g} GiB for NIR, "
                             f"{DEFAULT_LAVA_BUDGET_BYTES / 2**30:g} GiB for Lava)")


def register(subparsers) -> None:
    export = subparsers.add_parser("export", help="export the spiking cores to NIR or to a Lava network plan")
    targets = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name, func, out_help, text in (
        ("nir", run_export_nir, "MODEL.nir (MODEL.<modality>.nir with several cores)", "NIR graph per core"),
        ("lava", run_export_lava, "directory for <modality>_L<length>/ plans", "Lava network plan per core"),
    ):
        p = targets.add_parser(name, help=text)
        _common(p)
        p.add_argument("--out", required=True, help=out_help)
        p.add_argument("--length", type=int, default=MELD_LONGEST, help="dialogue length L of the graph (default 24)")
        p.add_argument("--modality", help="export only this modality's core")
        p.set_defaults(func=_guarded(func))

    p = subparsers.add_parser("lava-run", help="hybrid run with the cores on Lava (Python 3.10); writes PARITY.json")
    _common(p)
    from neuro_erc.data.registry import DATASETS

    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data")
    p.add_argument("--split", required=True, choices=["train", "dev", "test"])
    p.add_argument("--precision", choices=PRECISIONS, default="float")
    p.add_argument("--limit", type=int, help="first N dialogues of the split")
    p.add_argument("--max-length", dest="max_length", type=int, help="skip dialogues longer than this")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=16)
    p.add_argument("--out", required=True, help="PARITY.json path")
    p.set_defaults(func=_guarded(run_lava))
