"""Training, read top to bottom: config → data → model → epochs (train, dev, select, checkpoint).

Selection and early stopping use **dev** weighted F1 only. Checkpoints are written
atomically; ``last.pt`` carries optimiser, scheduler and RNG states so ``--resume`` ends
with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from .cli_types import number_type
from .config import from_dict, load_json, merge, to_dict
from . import distributed
from .data.batching import iterate_shards
from .data.registry import DATASETS, VARIANTS
from .data.types import IGNORE_LABEL, DataError, DialogueDataset
from .checkpoint import Checkpoint
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .evaluate import evaluate_split
from .io import remove_stale_temps, write_json
from .losses import LossConfig, class_weights_from_counts, total_loss
from .snn.rates import mean_firing_rate, population_rates
from .model import ARCHS, build_model
from .distributed import Processes
from .run_config import TrainConfig, load_config_dataset
from .run_log import RunLog


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG's state as checkpointable values (tuples, ints, tensors; no numpy objects)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prepare(cfg: TrainConfig, dataset: DialogueDataset | None = None) -> tuple[TrainConfig, DialogueDataset]:
    """Load the dataset (unless given) and fill in what the model config takes from it."""
    dataset = dataset if dataset is not None else load_config_dataset(cfg)
    for split in ("train", "dev"):
        if not dataset.split(split):
            raise DataError(f"dataset {dataset.name!r} has no {split} dialogues: nothing to {'train on' if split == 'train' else 'select on'}")
    dims = dataset.feature_dims()
    missing = [m for m in cfg.model.modalities if m not in dims]
    if missing:
        raise ConfigError(
            f"dataset {cfg.dataset!r} has no features for modalities {missing} (it has {sorted(dims)}); "
            "choose --modalities among those"
        )
    model_cfg = replace(
        cfg.model,
        input_dims={m: dims[m] for m in cfg.model.modalities},
        n_classes=len(dataset.labels),
    )
    return replace(cfg, model=model_cfg), dataset


def label_counts(dataset: DialogueDataset, split: str) -> list[int]:
    counts = [0] * len(dataset.labels)
    for dialogue in dataset.split(split):
        for utt in dialogue.utterances:
            if utt.label != IGNORE_LABEL:
                counts[utt.label] += 1
    return counts


def budgeted_rate(model, loss_cfg: LossConfig) -> torch.Tensor | None:
    """The rate ``loss.rate`` budgets in ``model``'s last forward: the mean firing rate, each
    population's (``rate_per_layer``) or synaptic events per synapse (``rate_per_synapse``)."""
    if loss_cfg.rate_per_layer:
        return population_rates(model)
    return mean_firing_rate(model, per_synapse=loss_cfg.rate_per_synapse)


def train_epoch(model, optimizer, batches, loss_cfg, class_weights, grad_clip, progress, after_step=None) -> dict[str, float]:
    """One pass over ``batches`` of (batch, loss scale) pairs (:func:`iterate_shards`); mean loss parts.

    ``after_step()`` runs after every optimiser step (the weight average's update)."""
    model.train()
    totals: dict[str, float] = {}
    n_steps = 0
    for batch, scale in progress(batches):
        out = model(batch)
        if scale == 0.0:  # nothing of this batch to learn from here; still take part in the step (DDP)
            optimizer.zero_grad(set_to_none=True)
            (out.logits.sum() * 0.0).backward()
            optimizer.step()
            if after_step:
                after_step()
            continue
        real = batch.mask.reshape(-1)
        loss, parts = total_loss(
            loss_cfg,
            out.logits.reshape(-1, out.logits.shape[-1])[real],
            batch.labels.reshape(-1)[real],
            {m: f.reshape(-1, f.shape[-1])[real] for m, f in out.features.items()},
            fused_feats=out.hidden.reshape(-1, out.hidden.shape[-1])[real],
            class_weights=class_weights,
            firing_rate=budgeted_rate(model, loss_cfg) if loss_cfg.rate else None,
        )
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the training loss became {loss.item()} at step {n_steps + 1} of this epoch "
                                   "(with the learning rate, loss weights and data given); lower --lr and train again")
        optimizer.zero_grad(set_to_none=True)
        (loss * scale).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if after_step:
            after_step()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value
        n_steps += 1
    return {key: value / max(n_steps, 1) for key, value in totals.items()}


def weight_average(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``model``'s weights (and BatchNorm statistics), or None for decay 0.

    Dev selection on a small split (IEMOCAP's 12 valid dialogues swing ±3 W-F1 between
    epochs) picks noise; the average of the last steps' weights moves less from epoch to epoch.
    """
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def build_training(cfg: TrainConfig, dataset: DialogueDataset, device: torch.device):
    """Seeded model, Adam optimiser and (if configured) class weights for a prepared ``cfg``."""
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    class_weights = (
        class_weights_from_counts(label_counts(dataset, "train")).to(device) if cfg.loss.class_weights else None
    )
    return model, optimizer, class_weights


def start_from(init: str, cfg: TrainConfig, dataset: DialogueDataset, model: torch.nn.Module) -> None:
    """Load the weights of checkpoint ``init`` into ``model``: its architecture must be ``cfg``'s.

    Fine-tuning a trained model (a spike budget learnt on top of an unbudgeted one) keeps what it
    knows; from scratch, a strong firing-rate penalty silences the network before it has learnt
    the task (docs/results.md §12).
    """
    ckpt = Checkpoint.load(init)
    written, given = to_dict(ckpt.config), to_dict(cfg)
    changed = [key for key in ("arch", "ann_twin") if written[key] != given[key]]
    changed += [f"model.{key}" for key in given["model"] if written["model"].get(key) != given["model"][key]]
    if changed:
        raise ConfigError(f"init {init}: that checkpoint is another model ({', '.join(changed)} differ); "
                          "fine-tuning starts from a checkpoint of the same architecture")
    ckpt.require_labels(dataset)
    model.load_state_dict(ckpt.weights)


@dataclass
class Best:
    """The best epoch so far: its index, its dev W-F1 and the :func:`selection_key` it won with."""

    epoch: int = -1
    f1: float = -1.0
    key: tuple = (False, -math.inf)  # every epoch's key is larger

    @property
    def in_budget(self) -> bool:
        """Whether the best epoch is within the run's spike budget (always, for a run without one)."""
        return self.key[0]


def restore(last: Path, cfg: TrainConfig, model, optimizer, scheduler, average, procs: Processes, device) -> tuple[int, Best]:
    """Load ``last`` into model, optimiser, scheduler and the RNGs; returns (next epoch, best epoch).

    The config must be the one ``last`` was written with, except ``epochs``: a finished run
    can be extended with a larger ``--epochs``. Each process of a torchrun job gets back its
    own RNG state; resumed with another number of processes, all take rank 0's (the run
    continues, but not bit-identically).
    """
    ckpt = Checkpoint.load(last, device)
    if ckpt.training_state is None:
        raise CheckpointError(f"{last}: holds weights only (no optimiser/RNG state); it cannot be resumed")
    written, given = to_dict(ckpt.config), to_dict(cfg)
    written.pop("epochs"), given.pop("epochs")
    if written != given:
        changed = sorted(k for k in given if given[k] != written.get(k))
        raise ConfigError(f"{last} was written with a different config (differs in {changed}); "
                          "resume with the same options (only --epochs may change)")
    state = ckpt.training_state
    model.load_state_dict(state.get("model") or ckpt.weights)  # with a weight average, ckpt.weights is the average
    if average is not None:
        average.load_state_dict(state["average"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rngs = state["rng"]
    if len(rngs) != procs.world and procs.is_main:
        print(f"note: {last} was written by {len(rngs)} process(es), resumed by {procs.world}: "
              "the random streams continue from rank 0's", file=sys.stderr)
    set_rng_state(rngs[procs.rank] if len(rngs) == procs.world else rngs[0])
    return ckpt.epoch + 1, Best(ckpt.best_epoch, ckpt.best_f1, tuple(state.get("best_key", (True, ckpt.best_f1))))


def selection_key(dev: dict, cfg: TrainConfig) -> tuple[bool, float]:
    """What ``best.pt`` maximises: dev W-F1 — with a spike budget (``loss.rate``), among the
    epochs whose dev firing rate is within ``loss.rate_target``, and until one is, the epoch
    nearest to it (the lowest dev rate).

    The penalty pulls the rate down over several epochs while W-F1 is highest early, at the
    unbudgeted rate: ranking by W-F1 alone keeps an epoch that breaks the budget it was asked
    for, and its patience would stop the run while the rate is still falling: patience counts
    only once an epoch is within the budget (docs/results.md §12). A budget per synapse
    (``loss.rate_per_synapse``) is checked on the dev synaptic rate.
    """
    rate = dev.get("synaptic_rate" if cfg.loss.rate_per_synapse else "firing_rate", 0.0)
    if not cfg.loss.rate or rate <= cfg.loss.rate_target:
        return True, dev["weighted_f1"]
    return False, -rate


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    dataset: DialogueDataset | None = None,
    tensorboard: bool = True,
) -> dict:
    """Train; returns the dev report of the best checkpoint. ``dataset`` overrides loading ``cfg.dataset``.

    Launched by torchrun, every process runs this; see :mod:`neuro_erc.distributed`.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: a file is there; give a directory for the run")
    procs, device = distributed.join(cfg.device)
    try:
        return _train(cfg, out_dir, resume, show_progress and procs.is_main, dataset, tensorboard, procs, device)
    finally:
        distributed.leave(procs)


def _train(cfg, out_dir: Path, resume, show_progress, dataset, tensorboard, procs: Processes, device) -> dict:
    if procs.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg, dataset = prepare(cfg, dataset)
    model, optimizer, class_weights = build_training(cfg, dataset, device)
    if cfg.init:
        start_from(cfg.init, cfg, dataset, model)  # a resumed run's own weights replace these below
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    average = weight_average(model, cfg.ema)
    evaluated = average.module if average is not None else model  # what dev scores and checkpoints hold
    start_epoch, best = 0, Best()
    if resume and (out_dir / "last.pt").exists():
        start_epoch, best = restore(out_dir / "last.pt", cfg, model, optimizer, scheduler, average,
                                                   procs, device)
    trained = distributed.wrap(model, procs, device)
    log = RunLog(out_dir, start_epoch, tensorboard) if procs.is_main else None
    if procs.is_main:
        write_json(out_dir / "config.json", to_dict(cfg))

    train_split = dataset.split("train")
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.selection == "best_dev" and epoch - best.epoch > cfg.patience and best.in_budget:
            break  # a run over its spike budget goes on (to its epochs) until an epoch is within it
        t0 = time.time()
        batches = [
            (b.to(device), scale)
            for b, scale in iterate_shards(train_split, cfg.model.modalities, cfg.batch_size, procs.rank, procs.world,
                                           shuffle=True, seed=cfg.seed * 100_003 + epoch)
        ]
        bar = (lambda it: tqdm(it, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, file=sys.stderr)) if show_progress else (lambda it: it)
        losses = train_epoch(trained, optimizer, batches, cfg.loss, class_weights, cfg.grad_clip, bar,
                             after_step=(lambda: average.update_parameters(model)) if average is not None else None)
        rates = model.firing_rates()
        scheduler.step()
        dev = evaluate_split(evaluated, dataset, "dev", cfg.model.modalities, cfg.batch_size, device) if procs.is_main else None
        key = distributed.from_main(procs, selection_key(dev, cfg) if dev else None)
        improved = key > best.key or cfg.selection == "last"
        if improved:
            best = Best(epoch, dev["weighted_f1"] if dev else None, key)
        rngs = distributed.gather(procs, rng_state())
        if not procs.is_main:
            continue
        ckpt = Checkpoint(cfg, list(dataset.labels.labels), evaluated.state_dict(), epoch, best.f1, best.epoch)
        if improved:
            ckpt.save(out_dir / "best.pt")
            write_json(out_dir / "report_dev.json", dev)
        training_state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rngs,
                          "best_key": best.key}
        if average is not None:
            training_state.update(model=model.state_dict(), average=average.state_dict())
        replace(ckpt, training_state=training_state).save(out_dir / "last.pt")
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "loss": losses,
            "dev_weighted_f1": dev["weighted_f1"],
            "dev_accuracy": dev["accuracy"],
            "dev_firing_rate": dev.get("firing_rate"),
            "dev_synaptic_rate": dev.get("synaptic_rate"),
            "firing_rates": rates,
            "seconds": round(time.time() - t0, 2),
        }
        log.write(record)
        if show_progress:
            print(
                f"epoch {epoch + 1:3d}  loss {losses.get('total', float('nan')):.4f}  dev W-F1 {dev['weighted_f1']:.2f}"
                f"  acc {dev['accuracy']:.2f}{'  *' if improved else ''}  ({record['seconds']:.1f}s)",
                file=sys.stderr,
            )
    if log is not None:
        log.close()
    distributed.barrier(procs)  # rank 0's report_dev.json is complete before anyone reads it
    return json.loads((out_dir / "report_dev.json").read_text())


# ---- command line -----------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = load_json(args.config) if args.config else {}
    overrides: dict = {"dataset": args.dataset}
    for key in ("arch", "data", "text_model", "variant", "epochs", "seed", "batch_size", "lr", "device", "threads"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    model: dict = {}
    if args.modalities:
        model["modalities"] = [m.strip() for m in args.modalities.split(",")]
    if args.T is not None:
        model["core"] = {"T": args.T}
    if getattr(args, "init", None):  # train only: a bench's cells choose their own starts
        overrides["init"] = args.init
    if args.arch == "bigru" and "context" not in values.get("model", {}):
        model["context"] = "bigru"  # the baseline's one context encoder; a config naming another is refused
    if model:
        overrides["model"] = model
    return from_dict(TrainConfig, merge(values, overrides), where=args.config or "config")


def add_train_arguments(parser: argparse.ArgumentParser, with_T: bool = True) -> None:
    """The flags that build a TrainConfig (``train`` and ``bench``; bench takes a list of T's)."""
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--arch", choices=ARCHS,
                        help="spikemo (default: the paper's hybrid), stream (causal, fully spiking; `neuro-erc stream` runs it) "
                             "or bigru (the plain speaker-aware BiGRU baseline, no spikes)")
    parser.add_argument("--data", help="dataset folder or file (see README)")
    parser.add_argument("--text-model", dest="text_model",
                        help="meld/iemocap text encoder: 'minilm' (default) or a model directory from `features finetune`")
    parser.add_argument("--variant", choices=VARIANTS, help="multiemo/dialoguernn: which dataset the pickles hold")
    parser.add_argument("--modalities", help="comma-separated subset of t,a,v (default: from config, else t,a,v)")
    if with_T:
        parser.add_argument("--T", type=int, help="time steps of the spiking core")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--config", help="JSON file with TrainConfig fields; flags override it")


def run(args: argparse.Namespace) -> int:
    if args.cv:
        from .crossval import cross_validate  # it calls train(): imported here, not at the top (a cycle)

        result = cross_validate(config_from_args(args), args.out, args.cv, show_progress=not args.quiet,
                                tensorboard=not args.no_tensorboard)
        print(json.dumps({k: result[k] for k in ("cv_weighted_f1_mean", "cv_weighted_f1_std", "chosen_epochs",
                                                 "dev_weighted_f1")}))
        return 0
    report = train(config_from_args(args), args.out, resume=args.resume, show_progress=not args.quiet,
                   tensorboard=not args.no_tensorboard)
    print(json.dumps({k: report[k] for k in ("dataset", "split", "weighted_f1", "accuracy")}))
    return 0


cv_folds = number_type(int, lambda k: k >= 2, "an integer ≥ 2 (folds)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train SpikEmo; writes config, metrics, best/last checkpoints, dev report")
    add_train_arguments(parser)
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument("--init", metavar="CKPT",
                        help="start from the weights of this checkpoint (same architecture): fine-tune it, e.g. "
                             "with a spike budget (config loss.rate)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--cv", type=cv_folds, metavar="K",
                        help="K-fold cross-validation on the train dialogues; then a final model for the CV-chosen "
                             "epochs (RUN_DIR/fold<k>/, RUN_DIR/final/, RUN_DIR/cv.json; resumable)")
    parser.add_argument("--no-tensorboard", dest="no_tensorboard", action="store_true",
                        help="do not write TensorBoard event files to RUN_DIR/tb/")
    parser.set_defaults(func=run)
