"""SpikEmo training on CUDA: one step agrees with the CPU's, then throughput and peak GPU memory for
each T → benchmarks/results/gpu_check.json.

Without CUDA it prints that it was skipped and exits 0. ``--device cpu`` is a dry run: the same
code on the CPU (the "CUDA" side of the comparison is the CPU too, one small step per T = 2) to
check the script where there is no GPU; it measures nothing and writes a file only with ``--out``.

**Models.** ``text``: benchmarks/model_speed.py's default (MiniLM-sized text features, BiGRU
context); ``trimodal``: ``ModelConfig``'s default (text, audio, visual; DialogueRNN context) at
model_speed's feature sizes; ``stream``: the text model with ``"arch": "stream"``, where the
config accepts that key. Data: model_speed's MELD-shaped dialogues (:func:`model_speed.meld_shaped`).

**Agreement.** Each model at T = 4 with dropout 0 (CPU and CUDA draw different dropout masks from
the same seed), built with the same seed on both devices: one step of
``neuro_erc.train.train_epoch`` on one batch of ``--batch-size`` dialogues, in float32 with
TF32 off. It passes when ``|loss_cuda − loss_cpu| ≤ LOSS_RTOL · |loss_cpu|`` and, for every
parameter, ``‖g_cuda − g_cpu‖₂ ≤ GRAD_RTOL · ‖g_cpu‖₂ + GRAD_ATOL`` (the gradients the optimiser
used: after clipping). The gradient tolerance is loose because a LIF neuron that sits within
rounding of its threshold spikes on one device and not the other; ``GRAD_ATOL`` covers biases whose
gradient is zero up to rounding (norms ~1e-9 here). Calibration on the CPU: the same step with 1
and with 2 torch threads (other summation orders) differs by at most 0.11 % of these tolerances.
The JSON keeps the measured worst cases beside the tolerances.

**Throughput.** Each model and T ∈ {4, 8, 16, 32}: ``--warmup`` untimed steps, then ``--steps``
timed steps (model_speed's :func:`step_timer`, synchronised), ``--batch-size`` dialogues each;
utterances/s counts real utterances (padding not counted); ``cuda_peak_gib`` is
``torch.cuda.max_memory_allocated`` over those steps (model, optimiser and activations), the
peak statistics reset before each row. A row that fails keeps its error and the rest go on.

Needs torch, numpy, norse and this package (norse imports nir and nirtorch, so carry those
three wheels where norse is missing); no Lava, no Ray.

    python benchmarks/gpu_check.py [--device cuda|cpu] [--steps 10] [--warmup 3] [--batch-size 32]
        [--out benchmarks/results/gpu_check.json]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from core_speed import machine_info  # noqa: E402
from model_speed import meld_shaped, step_timer, train_config  # noqa: E402

LOSS_RTOL = 1e-4
GRAD_RTOL, GRAD_ATOL = 1e-2, 1e-6
AGREEMENT_T = 4
TS = (4, 8, 16, 32)
DRY = {"Ts": (2,), "steps": 1, "warmup": 1, "batch_size": 4}


def model_configs() -> dict[str, dict]:
    """The TrainConfig dicts (without T) of the models checked; ``stream`` only where the config has it."""
    from neuro_erc.config import from_dict, merge
    from neuro_erc.errors import ConfigError
    from neuro_erc.train import TrainConfig

    def flags(**given) -> argparse.Namespace:  # model_speed's flags, unset unless given
        return argparse.Namespace(**{"config": None, "modalities": None, "context": None, "core_dim": None,
                                     "batch_size": None, **given})

    configs = {"text": train_config(flags()), "trimodal": train_config(flags(modalities="t,a,v", context="dialoguernn"))}
    try:
        from_dict(TrainConfig, {"arch": "stream"})
        configs["stream"] = merge(configs["text"], {"arch": "stream"})
    except ConfigError:
        pass  # no stream architecture in this version
    return configs


def meld_data(n_train: int, modalities, seed: int):
    """``n_train`` MELD-shaped train dialogues, and one more as the dev split ``prepare`` requires."""
    from neuro_erc.data.types import DialogueDataset

    data = meld_shaped(n_train, 1, modalities, seed)
    return DialogueDataset(data.name, data.labels, {"train": data.split("train"), "dev": data.split("test")})


def build(config: dict, T: int, batch_size: int, n_batches: int, device, seed: int):
    """Seeded model, optimiser, class weights, config and ``n_batches`` (batch, scale) pairs on ``device``."""
    from neuro_erc.config import from_dict, merge
    from neuro_erc.data.batching import iterate_batches
    from neuro_erc.train import TrainConfig, build_training, prepare

    cfg = from_dict(TrainConfig, merge(config, {"batch_size": batch_size, "seed": seed, "model": {"core": {"T": T}}}))
    cfg, dataset = prepare(cfg, meld_data(n_batches * batch_size, cfg.model.modalities, seed))
    model, optimizer, class_weights = build_training(cfg, dataset, device)
    batches = [(b.to(device), 1.0) for b in iterate_batches(dataset.split("train"), cfg.model.modalities, batch_size)]
    return model, optimizer, class_weights, cfg, batches


@contextmanager
def full_fp32():
    """TF32 off for matrix products and cuDNN (the GRU), so CUDA computes in float32 as the CPU does."""
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def one_step(config: dict, device, batch_size: int, seed: int) -> tuple[float, dict]:
    """Loss and clipped gradients (on the CPU) of one training step of ``config`` on ``device``."""
    from neuro_erc.config import merge
    from neuro_erc.train import train_epoch

    model, optimizer, class_weights, cfg, batches = build(merge(config, {"model": {"dropout": 0.0}}), AGREEMENT_T,
                                                          batch_size, 1, device, seed)
    losses = train_epoch(model, optimizer, batches, cfg.loss, class_weights, cfg.grad_clip, lambda it: it)
    return losses["total"], {n: p.grad.detach().cpu() for n, p in model.named_parameters() if p.grad is not None}


def agreement(name: str, config: dict, device, batch_size: int, seed: int) -> dict:
    """One step on the CPU and on ``device``: the loss and per-parameter gradient differences, against the tolerances."""
    import torch

    with full_fp32():
        loss_cpu, grads_cpu = one_step(config, torch.device("cpu"), batch_size, seed)
        loss_dev, grads_dev = one_step(config, device, batch_size, seed)
    norm = {n: float(torch.linalg.vector_norm(g)) for n, g in grads_cpu.items()}
    diff = {n: float(torch.linalg.vector_norm(grads_dev[n] - g)) for n, g in grads_cpu.items() if n in grads_dev}
    share = {n: d / (GRAD_RTOL * norm[n] + GRAD_ATOL) for n, d in diff.items()}  # ≤ 1 passes
    worst = max(share, key=share.get)
    loss_rel = abs(loss_dev - loss_cpu) / abs(loss_cpu)
    return {"model": name, "T": AGREEMENT_T, "batch_size": batch_size, "loss_cpu": loss_cpu, "loss_device": loss_dev,
            "loss_relative_difference": loss_rel, "gradients": len(grads_cpu),
            "gradients_missing_on_device": sorted(set(grads_cpu) - set(grads_dev)),
            "worst_gradient": worst, "worst_gradient_norm": norm[worst], "worst_gradient_difference": diff[worst],
            "worst_gradient_share_of_tolerance": share[worst],
            "passed": loss_rel <= LOSS_RTOL and share[worst] <= 1 and set(grads_dev) == set(grads_cpu)}


def throughput(name: str, config: dict, T: int, device, args: argparse.Namespace) -> dict:
    import torch

    from neuro_erc.train import train_epoch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model, optimizer, class_weights, cfg, batches = build(config, T, args.batch_size, args.warmup + args.steps, device, args.seed)
    warmup, timed = batches[: args.warmup], batches[args.warmup:]
    train_epoch(model, optimizer, warmup, cfg.loss, class_weights, cfg.grad_clip, lambda it: it)
    seconds: list[float] = []
    train_epoch(model, optimizer, timed, cfg.loss, class_weights, cfg.grad_clip, step_timer(seconds, device))
    utterances = sum(int(b.mask.sum()) for b, _ in timed)
    row = {"model": name, "T": T, "device": str(device), "batch_size": args.batch_size, "train_steps": len(timed),
           "train_utterances": utterances, "utterances_per_s": utterances / sum(seconds),
           "seconds_per_step_median": statistics.median(seconds)}
    if device.type == "cuda":
        row["cuda_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def guarded(row: dict, measure) -> dict:
    """``measure()``, or ``row`` with the error's last line (and the traceback on stderr)."""
    try:
        return measure()
    except Exception as err:  # one failing row must not lose the others of a scarce GPU session
        traceback.print_exc()
        return {**row, "error": f"{type(err).__name__}: {err}"}
    finally:
        gc.collect()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cuda (default; skipped without CUDA) or cpu: a dry run of the same code on the CPU")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per row (default 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--batch-size", dest="batch_size", type=int, default=32, help="dialogues per step (default 32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="results JSON (default benchmarks/results/gpu_check.json; a dry run writes none)")
    args = ap.parse_args(argv)
    args.Ts = TS
    if args.device == "cpu":
        vars(args).update(DRY)
    elif args.out is None:
        args.out = str(HERE / "results" / "gpu_check.json")
    return args


def main(argv: list[str] | None = None) -> int:
    """0 when every model agrees within the tolerances (or CUDA is absent: skipped), else 1."""
    import torch

    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"gpu_check: skipped: torch {torch.__version__} sees no CUDA device here "
              "(--device cpu runs the same code on the CPU as a dry run)")
        return 0
    from neuro_erc.io import write_json

    device = torch.device(args.device)
    result = {"what": "CPU/CUDA agreement of one SpikEmo training step; training throughput and peak GPU memory per T",
              "command": " ".join(["python", "benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)]),
              **machine_info(), "device": str(device), "dry_run": args.device == "cpu",
              "tolerance": {"loss_rtol": LOSS_RTOL, "grad_rtol": GRAD_RTOL, "grad_atol": GRAD_ATOL, "float32": True,
                            "tf32": False},
              "agreement": [], "throughput": []}
    for name, config in model_configs().items():
        row = guarded({"model": name, "passed": False}, lambda: agreement(name, config, device, args.batch_size, args.seed))
        result["agreement"].append(row)
        print(json.dumps(row), flush=True)
        for T in args.Ts:
            row = guarded({"model": name, "T": T}, lambda: throughput(name, config, T, device, args))
            result["throughput"].append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        write_json(args.out, result)
    return 0 if all(r["passed"] for r in result["agreement"]) else 1


if __name__ == "__main__":
    sys.exit(main())
