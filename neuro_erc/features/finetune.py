"""Fine-tune the sentence encoder on a dataset's emotion labels (train split), select on dev.

Frozen MiniLM sentence embeddings cap text-only ERC near the no-context floor (RESEARCH.md §2):
their geometry is about topic, not emotion. Fine-tuning the encoder with a linear emotion head,
one utterance at a time, is the usual first stage of ERC pipelines (COSMIC, MultiEMO's
EmoBERTa features); the dialogue model then trains on the fine-tuned embeddings. With
``past_utterances`` the encoder reads each utterance followed by the ones before it (EmoBERTa's
past context), and the saved model keeps that input format for every later embedding.

The base is any text model :func:`.text.load_text_model` resolves (``minilm``, ``mpnet``, a local
directory). The result is a sentence-transformers model directory (the base's pooling and
normalisation, safetensors weights), usable anywhere a text model is taken:
``neuro-erc features text --text-model DIR`` and the ``text_model`` field of a training config. The head is discarded. Only train labels are used for
gradients; the epoch is chosen by dev weighted F1 of the head, which ``finetune.json`` logs.
Embeddings of the train split come from a model that has seen those labels, so they are more
separable than dev's, and a dialogue model trained on them learns to trust the utterance over
its context (docs/results.md §2: on IEMOCAP that costs 5 points). :func:`crossfit_text_encoder`
removes the leak the way stacking does: K encoders, each fine-tuned without one fold of the
train dialogues, each embedding only its own fold (of every split).
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..data.types import IGNORE_LABEL, DataError, DialogueDataset
from ..errors import ConfigError
from ..io import atomic_dir, write_json
from .text import CROSSFIT_FILE, MINILM, InputFormat, _torch_threads, crossfit_folds, fold_of, load_text_model

LOG_NAME = "finetune.json"


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 4
    lr: float = 3e-5  # encoder
    head_lr: float = 1e-3  # the linear head sees unit-norm inputs: it needs a larger step
    batch_size: int = 32
    max_length: int = 128  # word pieces; MELD utterances are 14 on average, 64 at most
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps with a linear warm-up
    seed: int = 0
    past_utterances: int = 0  # earlier utterances read with each one (text.InputFormat)


def labelled_inputs(dataset: DialogueDataset, split: str, text_input: InputFormat) -> tuple[list[str], np.ndarray]:
    """Encoder inputs and labels of the labelled utterances of ``split``."""
    texts, labels = [], []
    for dialogue in dataset.split(split):
        inputs = text_input.inputs([u.text for u in dialogue.utterances])
        for utt, text in zip(dialogue.utterances, inputs):
            if utt.label != IGNORE_LABEL:
                texts.append(text)
                labels.append(utt.label)
    if not texts:
        raise DataError(f"{dataset.name}: split {split!r} has no labelled utterances to fine-tune on")
    return texts, np.asarray(labels)


def length_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within windows of 50 batches, cut.

    Padding to the longest text of a random batch costs about a third of the encoder's time
    on MELD; sorting within windows keeps the order random at the scale of an epoch.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = 50 * batch_size
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def finetune_text_encoder(
    dataset: DialogueDataset,
    out: str | Path,
    cfg: FinetuneConfig = FinetuneConfig(),
    base: str = MINILM,
    progress: bool = True,
) -> dict:
    """Fine-tune ``base`` on ``dataset``'s train labels; keep the dev-best encoder at ``out``."""
    import torch
    from sklearn.metrics import f1_score
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists: fine-tuning writes a new model directory; choose another --out "
                          "(or delete that one to fine-tune again)")
    if crossfit_folds(base) or InputFormat.of(base).past_utterances:
        raise DataError(f"base model {base}: fine-tuning starts from a single encoder that reads one utterance at a time")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    encoder = copy.deepcopy(load_text_model(base))  # trained in place: keep the shared cached one frozen
    text_input = InputFormat(cfg.past_utterances, f" {encoder.tokenizer.sep_token} ")
    train_texts, train_labels = labelled_inputs(dataset, "train", text_input)
    dev_texts, dev_labels = labelled_inputs(dataset, "dev", text_input)
    encoder.max_seq_length = cfg.max_length
    head = torch.nn.Linear(encoder.get_sentence_embedding_dimension(), len(dataset.labels))
    optimizer = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": cfg.lr}, {"params": head.parameters(), "lr": cfg.head_lr}],
        weight_decay=cfg.weight_decay,
    )
    lengths = [len(ids) for ids in encoder.tokenizer(train_texts, truncation=True, max_length=cfg.max_length)["input_ids"]]
    steps_per_epoch = -(-len(train_texts) // cfg.batch_size)
    schedule = get_linear_schedule_with_warmup(
        optimizer, int(cfg.warmup * steps_per_epoch * cfg.epochs), steps_per_epoch * cfg.epochs
    )

    def embed(texts: list[str]) -> "torch.Tensor":
        features = encoder.tokenize(texts)
        return encoder(features)["sentence_embedding"]

    def dev_scores() -> tuple[float, float]:
        encoder.eval()
        with torch.no_grad():
            order = np.argsort([len(t) for t in dev_texts])
            pred = np.empty(len(dev_texts), dtype=np.int64)
            for start in range(0, len(order), 128):
                rows = order[start : start + 128]
                pred[rows] = head(embed([dev_texts[i] for i in rows])).argmax(-1).numpy()
        return (
            round(100 * float(f1_score(dev_labels, pred, average="weighted", zero_division=0)), 2),
            round(100 * float((pred == dev_labels).mean()), 2),
        )

    log = {"dataset": dataset.name, "base": base, "config": asdict(cfg), "labels": list(dataset.labels.labels),
           "n_train": len(train_texts), "n_dev": len(dev_texts), "epochs": [], "best_epoch": None, "best_dev_wf1": None}
    with _torch_threads():
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            encoder.train()
            head.train()
            total, n = 0.0, 0
            batches = length_batches(lengths, cfg.batch_size, rng)
            for rows in tqdm(batches, desc=f"fine-tune epoch {epoch}/{cfg.epochs}", unit="batch", disable=not progress):
                logits = head(embed([train_texts[i] for i in rows]))
                loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(train_labels[rows]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(rows)
                n += len(rows)
            wf1, acc = dev_scores()
            log["epochs"].append({"epoch": epoch, "train_loss": round(total / n, 4), "dev_wf1": wf1, "dev_acc": acc,
                                  "seconds": round(time.perf_counter() - start, 1)})
            if log["best_dev_wf1"] is None or wf1 > log["best_dev_wf1"]:
                log.update(best_epoch=epoch, best_dev_wf1=wf1)
                with atomic_dir(out) as tmp:
                    encoder.save(str(tmp))
                    text_input.save(tmp)
                    write_json(tmp / LOG_NAME, log)
            else:
                write_json(out / LOG_NAME, log)
    return log


def crossfit_text_encoder(
    dataset: DialogueDataset,
    out: str | Path,
    folds: int,
    cfg: FinetuneConfig = FinetuneConfig(),
    base: str = MINILM,
    progress: bool = True,
) -> dict:
    """Fine-tune ``folds`` encoders into ``out/fold<k>``, encoder k without train fold k
    (:func:`.text.fold_of`); each is dev-selected as in :func:`finetune_text_encoder`.

    Re-running continues: finished folds are kept, a fold cut short is redone. ``crossfit.json``
    is written last, so an unfinished directory is never taken for a text model.
    """
    if folds < 2:
        raise ConfigError(f"cross-fitting needs at least 2 folds; got {folds}")
    out = Path(out)
    if (out / CROSSFIT_FILE).exists():
        raise ConfigError(f"{out} holds a finished cross-fitted model: choose another --out "
                          "(or delete that one to fit again)")
    logs = []
    for fold in range(folds):
        fold_dir = out / f"fold{fold}"
        if fold_dir.exists():
            log = json.loads((fold_dir / LOG_NAME).read_text())
            if len(log["epochs"]) == cfg.epochs and log["config"] == asdict(cfg):
                logs.append(log)
                continue
            shutil.rmtree(fold_dir)  # cut short (or other settings): redo
        train = [d for d in dataset.split("train") if fold_of(d.id, folds) != fold]
        subset = DialogueDataset(dataset.name, dataset.labels, {**dataset.splits, "train": train})
        logs.append(finetune_text_encoder(subset, fold_dir, cfg, base=base, progress=progress))
    InputFormat.of(str(out / "fold0")).save(out)
    summary = {"folds": folds, "assignment": "crc32(dialogue id) mod folds", "dataset": dataset.name,
               "best_dev_wf1": [log["best_dev_wf1"] for log in logs], "best_epoch": [log["best_epoch"] for log in logs]}
    write_json(out / CROSSFIT_FILE, summary)
    return summary
