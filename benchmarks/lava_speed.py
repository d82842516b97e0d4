"""Lava simulation time per dialogue vs Norse, on the same machine, for one spiking core.

For each dialogue length L: a random-input dialogue through (a) the Norse core (B = 1), (b) the
numpy NIR reference simulator, (c) Lava on CPU (``Loihi2SimCfg``) — exact float (BoxLIF) and,
optionally, Loihi fixed point. Lava's time is split into building the plan, compiling and the
first dialogue, and the steady state (each further dialogue through the same network). Spike
agreement and Jaccard are reported for every run against the exported network in Norse
(``exported_core``: batch norm folded, exact synaptic sums; the simulator and Lava get its input
current) and against the trained, unfolded core (float32 sums, so a near-threshold voltage may
flip a spike). The core is randomly initialised (its norm gain makes every layer fire) and in
eval mode; sizes default to the SpikEmo core (D = 256, depth 2, T = 32). Exactness on many
dialogues: ``benchmarks/lava_float_exactness.py``.

    .venv/bin/python benchmarks/lava_speed.py --lengths 4,12,24 --out benchmarks/results/lava_speed.json
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from neuro_erc.export import (
    LavaCore, SpikeTally, build_plan, core_shape, core_to_nir, dialogue_currents, dialogue_spikes, exported_core, graph_size,
    record_core, simulate_nir,
)
from neuro_erc.snn.core import CoreConfig, SpikingCore


def measures(spikes: dict, ref: dict, suffix: str = "") -> dict:
    """``spike_agreement`` and ``spike_jaccard`` (+ ``suffix``) of ``spikes`` against ``ref``, every neuron and step."""
    counts = SpikeTally().add(ref, spikes)
    return {f"spike_agreement{suffix}": round(counts.agreement, 6),
            f"spike_jaccard{suffix}": None if counts.jaccard is None else round(counts.jaccard, 6)}


def per_dialogue(rows: list[dict]) -> dict:
    """``[{key: value}]`` per dialogue → ``{key: [values]}``."""
    return {key: [row[key] for row in rows] for key in rows[0]}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_length(core: SpikingCore, length: int, dialogues: int, precisions: list[str], seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.randn(length, 1, core.in_dim, generator=gen) for _ in range(dialogues)]
    mask = torch.ones(length, 1, dtype=torch.bool)
    exported = exported_core(core)
    refs, currents, trained, norse_s = [], [], [], []
    for x in xs:
        recorded = {}
        (_, spikes), seconds = timed(lambda: record_core(exported, x, mask, recorded))
        refs.append(dialogue_spikes(spikes, 0, length))
        currents.append(dialogue_currents(recorded, 0, length))
        trained.append(dialogue_spikes(record_core(core, x, mask)[1], 0, length))
        norse_s.append(seconds)
    graph, nir_s = timed(lambda: core_to_nir(core, length))
    sim, sim_s = timed(lambda: simulate_nir(graph, xs[0][:, 0].numpy().T, currents=currents[0]))
    plan, plan_s = timed(lambda: build_plan(graph))
    size = graph_size(core_shape(core), length)
    row = {
        "L": length, "neurons": plan.n_neurons, "synapses": plan.n_synapses, "lava_steps": plan.steps,
        "size_model_lava_gib": round(size.lava_bytes / 2**30, 3),
        "norse_ms_per_dialogue": round(1e3 * statistics.median(norse_s), 1),
        "nir_build_s": round(nir_s, 3), "nir_sim_ms": round(1e3 * sim_s, 1),
        **{k.replace("spike", "nir_sim"): v for k, v in measures(sim, refs[0]).items()}, "plan_build_s": round(plan_s, 2),
    }
    for precision in precisions:
        with LavaCore(plan, precision) as lava:
            outs, seconds = [], []
            for x, current in zip(xs, currents):
                out, s = timed(lambda: lava.run(x[:, 0].numpy().T, current))
                outs.append(out)
                seconds.append(s)
        row[precision] = {
            "compile_and_first_dialogue_s": round(seconds[0], 2),
            "ms_per_dialogue": round(1e3 * statistics.median(seconds[1:]), 1) if len(seconds) > 1 else None,
            "ms_per_step": round(1e3 * statistics.median(seconds[1:]) / plan.steps, 2) if len(seconds) > 1 else None,
            **per_dialogue([{**measures(o, r), **measures(o, t, "_trained")} for o, r, t in zip(outs, refs, trained)]),
        }
    row["peak_rss_child_gib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 2)
    row["peak_rss_self_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--lengths", default="4,12,24")
    parser.add_argument("--dialogues", type=int, default=3, help="per length; the first one includes compiling")
    parser.add_argument("--precisions", default="float,fixed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the Norse runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/lava_speed.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    core = SpikingCore(args.dim, CoreConfig(dim=args.dim, depth=args.depth, T=args.T)).eval()
    rows = []
    for length in (int(v) for v in args.lengths.split(",")):
        rows.append(bench_length(core, length, args.dialogues, args.precisions.split(","), args.seed + length))
        print(json.dumps(rows[-1]), flush=True)
    result = {
        "core": {"dim": args.dim, "depth": args.depth, "T": args.T, "attention": "sdsa"},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "torch_threads": args.threads},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
