"""Training, read top to bottom: config → data → model → epochs (train, dev, select, checkpoint).

Selection and early stopping use **dev** weighted F1 only. Checkpoints are written
atomically; ``last.pt`` carries optimiser, scheduler and RNG states so ``--resume`` ends
with the same weights as an uninterrupted run.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .config import from_dict, load_json, merge, to_dict
from .data.batching import iterate_batches
from .data.registry import DATASETS, VARIANTS
from .data.types import IGNORE_LABEL, DataError, DialogueDataset
from .errors import ConfigError
from .evaluate import evaluate_split
from .io import atomic_path, write_json
from .losses import class_weights_from_counts, total_loss
from .model.spikemo import SpikEmo
from .run_config import TrainConfig, load_config_dataset, resolve_device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=device, weights_only=False)


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> SpikEmo:
    cfg = from_dict(TrainConfig, ckpt["config"])
    model = SpikEmo(cfg.model).to(device)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model


def require_checkpoint_labels(ckpt: dict, dataset: DialogueDataset, source: str | Path) -> None:
    """Refuse to run the checkpoint at ``source`` on a dataset with other labels (or label order)."""
    if list(dataset.labels.labels) != ckpt["labels"]:
        raise DataError(f"{source}: checkpoint labels {ckpt['labels']} differ from dataset {dataset.name!r} "
                        f"labels {list(dataset.labels.labels)}")


def checkpoint_dataset(ckpt: dict, name: str, data: str | None, source: str | Path) -> DialogueDataset:
    """Dataset ``name`` at ``data`` with the features of the checkpoint at ``source``, checked
    against its labels."""
    dataset = load_config_dataset(from_dict(TrainConfig, ckpt["config"]), name, data)
    require_checkpoint_labels(ckpt, dataset, source)
    return dataset


def prepare(cfg: TrainConfig, dataset: DialogueDataset | None = None) -> tuple[TrainConfig, DialogueDataset]:
    """Load the dataset (unless given) and fill in what the model config takes from it."""
    dataset = dataset if dataset is not None else load_config_dataset(cfg)
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


def train_epoch(model, optimizer, batches, loss_cfg, class_weights, grad_clip, progress) -> dict[str, float]:
    model.train()
    totals: dict[str, float] = {}
    n_steps = 0
    for batch in progress(batches):
        out = model(batch)
        real = batch.mask.reshape(-1)
        loss, parts = total_loss(
            loss_cfg,
            out.logits.reshape(-1, out.logits.shape[-1])[real],
            batch.labels.reshape(-1)[real],
            {m: f.reshape(-1, f.shape[-1])[real] for m, f in out.features.items()},
            fused_feats=out.hidden.reshape(-1, out.hidden.shape[-1])[real],
            class_weights=class_weights,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value
        n_steps += 1
    return {key: value / max(n_steps, 1) for key, value in totals.items()}


def build_training(cfg: TrainConfig, dataset: DialogueDataset, device: torch.device):
    """Seeded model, Adam optimiser and (if configured) class weights for a prepared ``cfg``."""
    seed_everything(cfg.seed)
    model = SpikEmo(cfg.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    class_weights = (
        class_weights_from_counts(label_counts(dataset, "train")).to(device) if cfg.loss.class_weights else None
    )
    return model, optimizer, class_weights


def train(
    cfg: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    dataset: DialogueDataset | None = None,
) -> dict:
    """Train; returns the dev report of the best checkpoint. ``dataset`` overrides loading ``cfg.dataset``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cfg, dataset = prepare(cfg, dataset)
    device = resolve_device(cfg.device)
    model, optimizer, class_weights = build_training(cfg, dataset, device)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    start_epoch, best_f1, best_epoch = 0, -1.0, -1
    metrics_path = out_dir / "metrics.jsonl"
    if resume and (out_dir / "last.pt").exists():
        ckpt = load_checkpoint(out_dir / "last.pt", device)
        if ckpt["config"] != to_dict(cfg):
            raise ConfigError(f"{out_dir / 'last.pt'} was written with a different config; resume with the same options")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        start_epoch, best_f1, best_epoch = ckpt["epoch"] + 1, ckpt["best_f1"], ckpt["best_epoch"]
        keep = [line for line in metrics_path.read_text().splitlines() if json.loads(line)["epoch"] < start_epoch]
        metrics_path.write_text("".join(line + "\n" for line in keep))
    elif metrics_path.exists():
        metrics_path.unlink()
    write_json(out_dir / "config.json", to_dict(cfg))

    train_split = dataset.split("train")
    for epoch in range(start_epoch, cfg.epochs):
        if epoch - best_epoch > cfg.patience and best_epoch >= 0:
            break
        t0 = time.time()
        batches = [
            b.to(device)
            for b in iterate_batches(train_split, cfg.model.modalities, cfg.batch_size, shuffle=True, seed=cfg.seed * 100_003 + epoch)
        ]
        bar = (lambda it: tqdm(it, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, file=sys.stderr)) if show_progress else (lambda it: it)
        losses = train_epoch(model, optimizer, batches, cfg.loss, class_weights, cfg.grad_clip, bar)
        rates = model.firing_rates()
        scheduler.step()
        dev = evaluate_split(model, dataset, "dev", cfg.model.modalities, cfg.batch_size, device)
        record = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "loss": losses,
            "dev_weighted_f1": dev["weighted_f1"],
            "dev_accuracy": dev["accuracy"],
            "firing_rates": rates,
            "seconds": round(time.time() - t0, 2),
        }
        improved = dev["weighted_f1"] > best_f1
        if improved:
            best_f1, best_epoch = dev["weighted_f1"], epoch
        payload = {
            "config": to_dict(cfg),
            "labels": list(dataset.labels.labels),
            "model": model.state_dict(),
            "epoch": epoch,
            "best_f1": best_f1,
            "best_epoch": best_epoch,
        }
        if improved:
            save_checkpoint(out_dir / "best.pt", payload)
            write_json(out_dir / "report_dev.json", dev)
        save_checkpoint(
            out_dir / "last.pt",
            {**payload, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()},
        )
        with open(metrics_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if show_progress:
            print(
                f"epoch {epoch + 1:3d}  loss {losses.get('total', float('nan')):.4f}  dev W-F1 {dev['weighted_f1']:.2f}"
                f"  acc {dev['accuracy']:.2f}{'  *' if improved else ''}  ({record['seconds']:.1f}s)",
                file=sys.stderr,
            )
    return json.loads((out_dir / "report_dev.json").read_text())


# ---- command line -----------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = load_json(args.config) if args.config else {}
    overrides: dict = {"dataset": args.dataset}
    for key in ("data", "text_model", "variant", "epochs", "seed", "batch_size", "lr", "device", "threads"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    model: dict = {}
    if args.modalities:
        model["modalities"] = [m.strip() for m in args.modalities.split(",")]
    if args.T is not None:
        model["core"] = {"T": args.T}
    if model:
        overrides["model"] = model
    return from_dict(TrainConfig, merge(values, overrides), where=args.config or "config")


def add_train_arguments(parser: argparse.ArgumentParser, with_T: bool = True) -> None:
    """The flags that build a TrainConfig (``train`` and ``bench``; bench takes a list of T's)."""
    parser.add_argument("--dataset", choices=DATASETS, required=True)
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
    report = train(config_from_args(args), args.out, resume=args.resume, show_progress=not args.quiet)
    print(json.dumps({k: report[k] for k in ("dataset", "split", "weighted_f1", "accuracy")}))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train SpikEmo; writes config, metrics, best/last checkpoints, dev report")
    add_train_arguments(parser)
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
