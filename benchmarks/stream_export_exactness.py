"""Does one exported streaming NIR graph reproduce the Norse stream model at the size users run?

A stream checkpoint is exported (``stream_to_nir``, written and read back as ``export nir``
does), then every dialogue of a split goes through both, one utterance window at a time, state
carried over, reset per dialogue: the Norse model by ``StreamModel.step``, the graph by the numpy
simulator (``StreamGraphRunner``). Spikes are compared for every neuron and step
(``neuro_erc.export.spike_measures``: agreement, Jaccard, mismatches per spike; overall and per
node), predictions by class and logits by their largest difference. One graph serves every
dialogue length (one runner for the whole split; ``lengths`` lists those met).

    .venv/bin/neuro-erc train --dataset meld --data ../shared/data/meld \\
        --config examples/configs/meld_text_stream.json --epochs 3 --threads 1 --seed 0 --out runs/meld_stream_export
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/stream_export_exactness.py --checkpoint runs/meld_stream_export/best.pt \\
        --dataset meld --data ../shared/data/meld --split dev --out benchmarks/results/stream_export_exactness.json
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

import torch
from tqdm import tqdm

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.export.stream_graph import StreamGraphRunner, load_stream_graph, save_stream_graph, stream_to_nir
from neuro_erc.export.stream_parity import stream_parity
from neuro_erc.io import write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--limit", type=int, help="first N dialogues")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ckpt = Checkpoint.load(args.checkpoint)
    model = ckpt.model().cpu().eval()
    with tempfile.TemporaryDirectory() as tmp:
        graph = load_stream_graph(save_stream_graph(stream_to_nir(model), Path(tmp) / "model.nir"))
    dialogues = ckpt.dataset(args.dataset, args.data).split(args.split)[: args.limit]
    report = stream_parity(model, StreamGraphRunner(graph), dialogues, progress=lambda d: tqdm(d, desc="dialogues"))
    core = ckpt.config.model.core
    report = {"command": " ".join(sys.argv), "checkpoint": args.checkpoint, "dataset": args.dataset, "split": args.split,
              "model": {"dim": core.dim, "depth": core.depth, "mlp_ratio": core.mlp_ratio, "T": core.T,
                        "modalities": list(ckpt.config.model.modalities)},
              "python": platform.python_version(), "torch_threads": 1, **report}
    write_json(args.out, report)
    print({k: v for k, v in report.items() if not k.endswith("_by_node")})


if __name__ == "__main__":
    main()
