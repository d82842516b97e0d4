"""K-fold cross-validation over the train dialogues, for choices that survive the test split.

``neuro-erc train --cv K ... --out DIR``:

1. splits the train dialogues into K folds (seeded, by dialogue, so no dialogue is on both
   sides) and trains K runs, ``DIR/fold<k>/``, each validated on its held-out fold;
2. reports the CV weighted F1 (mean ± sample std over folds of each fold's best epoch) and
   the mean validation curve over folds;
3. **the selection rule:** the number of epochs is the argmax of that mean curve (over the
   epochs every fold ran); a final model is trained on all train dialogues for exactly that
   many epochs, keeping its last epoch (``selection: "last"``), into ``DIR/final/`` — so the
   official dev split chooses nothing and its score (``dev_weighted_f1``) is an honest
   estimate. Everything lands in ``DIR/cv.json``.

Each run is an ordinary, resumable run directory: a killed CV resumes where it stopped.
Small dev sets motivate this: IEMOCAP's 12 valid dialogues swing ±3 W-F1 between epochs and
overestimated test by 2.3 points when they picked the epoch.
"""
from __future__ import annotations

import json
import random
import statistics
from dataclasses import replace
from pathlib import Path

from .data.types import DataError, DialogueDataset
from .io import write_json
from .run_config import TrainConfig, load_config_dataset
from .train import train

RULE = ("epochs = argmax over epochs of the mean held-out-fold W-F1 curve; final model trained on all train "
        "dialogues for that many epochs, last epoch kept; the official dev split is only reported")


def fold_datasets(dataset: DialogueDataset, k: int, seed: int) -> list[DialogueDataset]:
    """K datasets whose train split is K−1 folds of ``dataset``'s train dialogues and whose dev split is the other."""
    train = list(dataset.split("train"))
    if k < 2 or k > len(train):
        raise DataError(f"--cv {k}: needs 2 ≤ K ≤ the {len(train)} train dialogues of {dataset.name!r}")
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    folds = [sorted(order[i::k]) for i in range(k)]
    return [
        DialogueDataset(
            f"{dataset.name}-cv{i}of{k}", dataset.labels,
            {"train": [train[j] for f, fold in enumerate(folds) if f != i for j in fold],
             "dev": [train[j] for j in folds[i]]},
        )
        for i in range(k)
    ]


def dev_curve(run_dir: Path) -> list[float]:
    return [json.loads(line)["dev_weighted_f1"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def summarize(curves: list[list[float]]) -> dict:
    """CV statistics of per-fold validation curves, and the epochs the selection rule picks."""
    bests = [max(curve) for curve in curves]
    common = min(len(curve) for curve in curves)
    mean_curve = [statistics.fmean(curve[e] for curve in curves) for e in range(common)]
    return {
        "cv_weighted_f1_mean": round(statistics.fmean(bests), 2),
        "cv_weighted_f1_std": round(statistics.stdev(bests), 2) if len(bests) > 1 else 0.0,
        "fold_best_weighted_f1": bests,
        "mean_curve": [round(v, 3) for v in mean_curve],
        "chosen_epochs": max(range(common), key=mean_curve.__getitem__) + 1,
    }


def cross_validate(cfg: TrainConfig, out_dir: str | Path, k: int, show_progress: bool = True,
                   dataset: DialogueDataset | None = None, tensorboard: bool = True) -> dict:
    """Run the K folds and the final model (resuming whatever is there); returns what ``DIR/cv.json`` holds."""
    out_dir = Path(out_dir)
    dataset = dataset if dataset is not None else load_config_dataset(cfg)
    folds = fold_datasets(dataset, k, cfg.seed)
    for i, fold in enumerate(folds):
        if show_progress:
            print(f"fold {i + 1}/{k}: {len(fold.split('train'))} train / {len(fold.split('dev'))} held-out dialogues")
        train(cfg, out_dir / f"fold{i}", resume=True, show_progress=show_progress, dataset=fold, tensorboard=tensorboard)
    summary = summarize([dev_curve(out_dir / f"fold{i}") for i in range(k)])
    final_cfg = replace(cfg, epochs=summary["chosen_epochs"], selection="last")
    report = train(final_cfg, out_dir / "final", resume=True, show_progress=show_progress, dataset=dataset,
                   tensorboard=tensorboard)
    result = {"k": k, "seed": cfg.seed, "selection_rule": RULE, **summary,
              "fold_dialogues": [len(f.split("dev")) for f in folds],
              "dev_weighted_f1": report["weighted_f1"], "dev_accuracy": report["accuracy"],
              "final_checkpoint": str(out_dir / "final" / "best.pt")}
    write_json(out_dir / "cv.json", result)
    return result
