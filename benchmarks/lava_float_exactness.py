"""Is float Lava spike-exact at SpikEmo's size? Every core of a checkpoint, dialogues of L = 24 utterances.

For each modality core and each dialogue (synthetic, generated with exactly ``--length`` utterances
from the checkpoint's data geometry; core inputs from the model's own host parts), the spikes of
every neuron and step are compared (``neuro_erc.export.spike_measures``: agreement, Jaccard,
mismatches, firing rates; overall, per dialogue and per layer):

* ``lava_vs_norse`` — float Lava (BoxLIF + float Sparse, the host's input current) against the
  exported network in Norse (``exported_core``): the claim under test;
* ``nir_sim_vs_norse`` — the numpy NIR simulator (the host's input current) against the same;
* ``nir_sim_from_analog_input_vs_norse`` — the simulator computing the first layer's current from
  the analog input itself (float64, not an exact sum: why the host's current is handed over);
* ``norse_float32_vs_lava`` — the previous reference, the folded core with torch's float32
  Linears (BLAS's summation order), against the same Lava run: what float32 sums cost;
* ``trained_vs_lava`` — the trained model's cores (batch norm unfolded, float32) against Lava.

    .venv/bin/neuro-erc train --dataset synthetic --epochs 2 --threads 1 --seed 0 --out runs/exactness_tav
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lava_float_exactness.py --checkpoint runs/exactness_tav/best.pt \\
        --dialogues 20 --out benchmarks/results/lava_float_exactness.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.data.batching import iterate_batches
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.export import (
    LavaCore, SpikeTally, build_plan, core_to_nir, dialogue_currents, dialogue_spikes, exported_core, record_core,
    simulate_nir,
)

COMPARISONS = {  # name -> (reference run, other run)
    "lava_vs_norse": ("norse", "lava"),
    "nir_sim_vs_norse": ("norse", "nir_sim"),
    "nir_sim_from_analog_input_vs_norse": ("norse", "nir_sim_from_x"),
    "norse_float32_vs_lava": ("norse_float32", "lava"),
    "trained_vs_lava": ("trained", "lava"),
}


def timed(seconds: dict, key: str, fn):
    t0 = time.perf_counter()
    out = fn()
    seconds.setdefault(key, []).append(time.perf_counter() - t0)
    return out


def norse_runs(variants: dict, x: torch.Tensor, seconds: dict) -> tuple[dict, dict]:
    """Spikes of one dialogue ``x [L, 1, D_in]`` in each Norse variant, and the exported run's input currents."""
    length, mask = x.shape[0], torch.ones(x.shape[0], 1, dtype=torch.bool)
    currents = {}
    runs = {"norse": timed(seconds, "norse", lambda: record_core(variants["norse"], x, mask, currents))[1]}
    runs.update({name: record_core(core, x, mask)[1] for name, core in variants.items() if name != "norse"})
    return {name: dialogue_spikes(s, 0, length) for name, s in runs.items()}, dialogue_currents(currents, 0, length)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--length", type=int, default=24)
    parser.add_argument("--dialogues", type=int, default=20)
    parser.add_argument("--modalities", help="comma-separated subset of the checkpoint's cores (default: all)")
    parser.add_argument("--seed", type=int, default=1, help="of the generated dialogues (the geometry is the checkpoint's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/lava_float_exactness.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    ckpt = Checkpoint.load(args.checkpoint)
    model = ckpt.model().eval()
    modalities = args.modalities.split(",") if args.modalities else list(model.cores)
    # the synthetic data's geometry (seed 0, what `--dataset synthetic` trains on), other dialogues of exactly L utterances
    dataset = make_synthetic(seed=0, n_train=0, n_dev=args.dialogues, n_test=0, min_len=args.length, max_len=args.length)
    with torch.no_grad():
        inputs = [model.core_inputs(batch) for batch in iterate_batches(dataset.split("dev"), model.cfg.modalities, 1)]

    tallies = {name: SpikeTally() for name in COMPARISONS}
    per_dialogue, seconds, cores = [], {}, {}
    for m in modalities:
        trained = model.cores[m].core
        variants = {"norse": exported_core(trained), "norse_float32": trained.folded(), "trained": trained}
        graph = timed(seconds, "nir_graph", lambda: core_to_nir(trained, args.length))
        plan = timed(seconds, "plan_build", lambda: build_plan(graph))
        cores[m] = {"flushed_weights": graph.metadata["flushed_weights"], "neurons": plan.n_neurons,
                    "synapses": plan.n_synapses, "lava_steps": plan.steps}
        with LavaCore(plan, "float") as lava:
            for i, x in enumerate(inp[m] for inp in inputs):
                runs, currents = norse_runs(variants, x, seconds)
                analog = x[:, 0].numpy().T
                runs["nir_sim"] = timed(seconds, "nir_sim", lambda: simulate_nir(graph, analog, currents=currents))
                runs["nir_sim_from_x"] = simulate_nir(graph, analog)
                runs["lava"] = timed(seconds, "lava_first" if i == 0 else "lava", lambda: lava.run(analog, currents))
                row = {"modality": m, "dialogue": i}
                for name, (ref, other) in COMPARISONS.items():
                    counts = tallies[name].add(runs[ref], runs[other], prefix=f"{m}:")
                    row[name] = {"agreement": counts.agreement, "jaccard": counts.jaccard, "mismatches": counts.mismatches}
                per_dialogue.append(row)
                print(json.dumps(row), flush=True)

    comparisons = {}
    for name, (ref, other) in COMPARISONS.items():
        report = tallies[name].report(reference=ref, other=other)
        comparisons[name] = {
            **{k: v for k, v in report.items() if not k.endswith("_by_node")},
            "dialogues_exact": sum(row[name]["mismatches"] == 0 for row in per_dialogue),
            "by_node": {node: {k[: -len("_by_node")]: v[node] for k, v in report.items() if k.endswith("_by_node")}
                        for node in report["spike_agreement_by_node"]},
        }
    core_cfg = model.cores[modalities[0]].core.cfg
    threads_env = [f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"] if "OMP_NUM_THREADS" in os.environ else []
    result = {
        "command": " ".join([*threads_env, os.path.relpath(sys.executable), *sys.argv]),
        "checkpoint": args.checkpoint,
        "core": {k: getattr(core_cfg, k) for k in ("dim", "depth", "mlp_ratio", "T", "attention")},
        "length": args.length, "dialogues": args.dialogues, "modalities": modalities, "cores": cores,
        "core_dialogues": len(per_dialogue),
        "comparisons": comparisons,
        "per_dialogue": per_dialogue,
        "seconds": {k: {"total": round(sum(v), 2), "per_call": round(sum(v) / len(v), 3)} for k, v in seconds.items()},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "torch_threads": args.threads},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    summary = {name: {k: c[k] for k in ("spike_agreement", "spike_jaccard", "spike_mismatches", "dialogues_exact")}
               for name, c in comparisons.items()}
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
