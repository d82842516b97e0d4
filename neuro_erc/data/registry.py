"""Datasets by name: the one place that maps ``--dataset``/``--data`` to a loaded, validated dataset.

* ``synthetic`` — generated (seed 0), takes no data: :func:`.synthetic.make_synthetic`;
* ``meld`` — a folder with ``{train,dev,test}_sent_emo.csv``: :func:`.meld.load_meld`;
* ``iemocap`` — the COSMIC-style ``.pkl`` or its folder: :func:`.iemocap.load_iemocap`;
* ``multiemo`` — MultiEMO's ``Data/<DS>/`` folder: :func:`.feature_pickles.load_multiemo`;
* ``dialoguernn`` — ``IEMOCAP_features.pkl`` / ``MELD_features_raw1.pkl`` or their folder:
  :func:`.feature_pickles.load_dialoguernn`.

Without ``data`` a dataset is looked for in ``$NEURO_ERC_DATA/<name>``. meld and iemocap
carry text only; with ``text_features`` their utterances get sentence embeddings of
``text_model`` from :func:`neuro_erc.features.text.attach_text_features`. multiemo and
dialoguernn are MELD or IEMOCAP by their path's name unless ``variant`` says which.
"""
from __future__ import annotations

import os
from pathlib import Path

from .feature_pickles import VARIANT_LABELS, load_dialoguernn, load_multiemo
from .iemocap import load_iemocap
from .meld import load_meld
from .synthetic import make_synthetic
from .types import DataError, DialogueDataset

DATASETS = ("synthetic", "meld", "iemocap", "multiemo", "dialoguernn")
VARIANTS = tuple(VARIANT_LABELS)
DATA_ENV = "NEURO_ERC_DATA"


def load_dataset(
    name: str,
    data: str | Path | None = None,
    *,
    text_features: bool = True,
    feature_store: str | Path | None = None,
    variant: str | None = None,
    text_model: str = "minilm",
) -> DialogueDataset:
    """Load dataset ``name`` from ``data`` (see the module docstring), validated."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    if name == "synthetic":
        if data is not None:
            raise DataError("dataset 'synthetic' is generated and takes no data path")
        dataset = make_synthetic()
    else:
        path = Path(data) if data is not None else default_data_path(name)
        if name == "meld":
            dataset = load_meld(path)
        elif name == "iemocap":
            dataset = load_iemocap(path)
        elif name == "multiemo":
            dataset = load_multiemo(path, variant)
        else:
            dataset = load_dialoguernn(path, variant)
        if text_features and name in ("meld", "iemocap"):
            from neuro_erc.features.text import attach_text_features  # sentence-transformers: import on demand

            dataset = attach_text_features(dataset, store=feature_store, model=text_model)
    dataset.validate()
    return dataset


def default_data_path(name: str) -> Path:
    """``$NEURO_ERC_DATA/<name>``; without that variable the caller must give a path."""
    root = os.environ.get(DATA_ENV)
    if not root:
        raise DataError(f"dataset {name!r} needs a data path: pass --data PATH, or set {DATA_ENV} to a folder holding {name}/")
    return Path(root) / name
