"""Utterance-level acoustic features with openSMILE, from audio clips listed in a manifest.

Feature sets (openSMILE functionals: statistics of frame-level descriptors over the clip):

* ``ComParE_2016`` — 6373 features (the INTERSPEECH 2016 ComParE set; what SpikEmo uses);
* ``eGeMAPSv02``   — 88 features (the extended Geneva minimalistic acoustic parameter set).

Column names: ``opensmile.Smile(feature_set=...).feature_names``. The PyPI ``opensmile``
package bundles its native library, so nothing is downloaded.

The manifest is a CSV with a header and the columns ``dataset, split, dialogue_id,
utterance_index, path``: one row per clip, ``utterance_index`` being the utterance's
0-based position in its dialogue as the dataset loader orders it (every dialogue listed
must have rows 0..n-1), and ``path`` any file libsndfile reads (wav, flac, ogg), relative
paths being taken from the manifest's folder. ``dataset``, ``split`` and ``dialogue_id``
must be spelled as the dataset loader names them, so :func:`attach_audio_features` finds
the rows.

A clip gives NaN functionals when it is too short for openSMILE's analysis windows; that
raises DataError naming the file rather than zero-filling it (a silent zero vector would
look like data). Stored rows are reused while each clip's path, size and modification time
are unchanged.
"""
from __future__ import annotations

import csv
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.types import DataError, DialogueDataset
from .store import DialogueKey, Encoder, FeatureResult, FeatureStore, fetch_or_compute

FEATURE_SETS = {"ComParE_2016": 6373, "eGeMAPSv02": 88}
MANIFEST_COLUMNS = ("dataset", "split", "dialogue_id", "utterance_index", "path")


@dataclass(frozen=True)
class AudioClip:
    """One utterance's audio file."""

    dataset: str
    split: str
    dialogue_id: str
    utterance_index: int
    path: Path


def read_manifest(path: str | Path) -> list[AudioClip]:
    """Parse a manifest CSV (see the module docstring); errors name the file and line."""
    path = Path(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"audio manifest {path} does not exist") from None
    clips = []
    with handle:
        reader = csv.DictReader(handle)
        absent = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(
                f"{path}: missing column(s) {absent}; expected a header with {list(MANIFEST_COLUMNS)}"
            )
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            values = {c: (row[c] or "").strip() for c in MANIFEST_COLUMNS}
            empty = [c for c, v in values.items() if not v]
            if empty:
                raise DataError(f"{where}: empty {empty}")
            try:
                index = int(values["utterance_index"])
            except ValueError:
                raise DataError(f"{where}: utterance_index {values['utterance_index']!r} is not an integer") from None
            clip_path = Path(values["path"]).expanduser()
            clips.append(AudioClip(
                values["dataset"], values["split"], values["dialogue_id"], index,
                clip_path if clip_path.is_absolute() else path.parent / clip_path,
            ))
    if not clips:
        raise DataError(f"{path}: no clips listed")
    return clips


def _by_dialogue(clips: Sequence[AudioClip]) -> dict[DialogueKey, list[Path]]:
    """Clip paths per dialogue in utterance order; every dialogue must list utterances 0..n-1 once."""
    indexed: dict[DialogueKey, dict[int, Path]] = {}
    for clip in clips:
        key = DialogueKey(clip.dataset, clip.split, clip.dialogue_id)
        rows = indexed.setdefault(key, {})
        if clip.utterance_index in rows:
            raise DataError(f"{key}: utterance {clip.utterance_index} has two clips ({rows[clip.utterance_index]}, {clip.path})")
        rows[clip.utterance_index] = clip.path
    for key, rows in indexed.items():
        gaps = sorted(set(range(len(rows))) - set(rows))
        if gaps:
            raise DataError(
                f"{key}: clips for utterances {sorted(rows)}; expected utterance indices 0..{len(rows) - 1} "
                f"(0-based positions in the dialogue), missing {gaps}"
            )
    return {key: [rows[i] for i in range(len(rows))] for key, rows in indexed.items()}


def audio_encoder(feature_set: str) -> Encoder:
    if feature_set not in FEATURE_SETS:
        raise DataError(f"unknown openSMILE feature set {feature_set!r}; expected one of {sorted(FEATURE_SETS)}")
    from importlib.metadata import version

    return Encoder(
        key=f"audio.{feature_set}",
        name=f"openSMILE {feature_set} functionals",
        version=f"opensmile {version('opensmile')}",
    )


def _file_identity(path: Path) -> str:
    """What the store hashes for a clip: resolved path, size and modification time."""
    stat = path.stat()
    return f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"


def _extractor(feature_set: str):
    import opensmile

    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def smile_functionals(paths: Sequence[Path], feature_set: str, num_workers: int = 1, progress: bool = False) -> np.ndarray:
    """openSMILE functionals for each file → float32 [len(paths), dim]; DataError naming a bad file."""
    from tqdm.auto import tqdm

    smile = _extractor(feature_set)

    def one(path: Path) -> np.ndarray:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Segment too short")
                row = smile.process_file(str(path)).to_numpy(dtype=np.float32)[0]
        except Exception as err:  # libsndfile/openSMILE errors come in many types; name the file
            raise DataError(f"{path}: openSMILE could not process it: {err}") from err
        if not np.all(np.isfinite(row)):
            raise DataError(
                f"{path}: openSMILE {feature_set} gave {int(np.sum(~np.isfinite(row)))} NaN/inf features "
                "(clip too short or empty?); fix or drop the clip"
            )
        return row

    out = np.empty((len(paths), FEATURE_SETS[feature_set]), dtype=np.float32)
    with ThreadPoolExecutor(max(1, num_workers)) as pool, tqdm(
        total=len(paths), unit="clip", desc=f"openSMILE {feature_set}", disable=not progress
    ) as bar:
        for i, row in enumerate(pool.map(one, paths)):
            out[i] = row
            bar.update(1)
    return out


def extract_audio_features(
    clips: str | Path | Sequence[AudioClip],
    feature_set: str = "ComParE_2016",
    store: str | Path | None = None,
    num_workers: int = 1,
    progress: bool = True,
) -> FeatureResult:
    """Functionals for every clip of a manifest (path or parsed), stored per dialogue.

    Only dialogues whose clips changed (path, size or mtime) or are new are processed;
    ``num_workers`` threads run openSMILE (its native code releases the GIL).
    """
    encoder = audio_encoder(feature_set)
    paths = _by_dialogue(read_manifest(clips) if isinstance(clips, (str, Path)) else clips)
    missing = [(k, p) for k, ps in paths.items() for p in ps if not p.is_file()]
    if missing:
        (key, first), n = missing[0], len(missing)
        raise DataError(f"audio clip {first} ({key}) does not exist" + (f"; {n - 1} more clips are missing" if n > 1 else ""))
    inputs = {k: [_file_identity(p) for p in ps] for k, ps in paths.items()}

    def compute(todo: dict[DialogueKey, Sequence[str]]) -> dict[DialogueKey, np.ndarray]:
        flat = [p for k in todo for p in paths[k]]
        rows = smile_functionals(flat, feature_set, num_workers=num_workers, progress=progress)
        bounds = np.cumsum([0] + [len(paths[k]) for k in todo])
        return {k: rows[a:b] for k, a, b in zip(todo, bounds[:-1], bounds[1:])}

    return fetch_or_compute(FeatureStore(store), encoder, inputs, compute)


def attach_audio_features(
    dataset: DialogueDataset, store: str | Path | None = None, feature_set: str = "ComParE_2016"
) -> DialogueDataset:
    """Set ``utt.features['a']`` on every utterance from the store; returns ``dataset``.

    Run :func:`extract_audio_features` first. A dialogue without stored features, or with
    fewer stored rows than utterances, raises DataError naming it.
    """
    encoder = audio_encoder(feature_set)
    store = FeatureStore(store)
    keys = {DialogueKey(dataset.name, split, d.id): d for split, ds in dataset.splits.items() for d in ds}
    found = store.read(encoder, dict.fromkeys(keys))
    for key, dialogue in keys.items():
        rows = found.get(key)
        if rows is None:
            stored = store.provenance(encoder.key)
            why = (
                f"the store has no {encoder.key} features" if stored is None
                else f"its {encoder.key} features were made by {stored.get('version')}, not {encoder.version}"
                if stored.get("version") != encoder.version
                else "that dialogue is not in it"
            )
            raise DataError(
                f"{key}: no {feature_set} audio features in {store.path} ({why}); "
                "run `neuro-erc features audio --manifest ...` for its clips first"
            )
        if len(rows) != len(dialogue):
            raise DataError(
                f"{key}: {len(dialogue)} utterances but audio features for {len(rows)} clips "
                f"(the manifest listed utterances 0..{len(rows) - 1}); check the manifest"
            )
        for utt, row in zip(dialogue.utterances, rows):
            utt.features["a"] = row
    return dataset
