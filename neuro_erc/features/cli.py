"""``neuro-erc features {text,finetune,audio}``: compute features once into the HDF5 store, or
fine-tune the text encoder that computes them.

Prints a JSON summary: counts, dimension, store path, seconds, and whether everything
came from the store (``cached``; then no encoder was loaded).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..cli_types import fraction, non_negative_float, non_negative_int, number_type, positive_float, positive_int
from .audio import FEATURE_SETS
from .finetune import FinetuneConfig
from .store import default_store_path

FINETUNE_FLAG_TYPES = {  # FinetuneConfig field -> what its flag accepts
    "epochs": positive_int,
    "lr": positive_float,
    "head_lr": positive_float,
    "batch_size": positive_int,
    "max_length": positive_int,
    "weight_decay": non_negative_float,
    "warmup": fraction,
    "seed": non_negative_int,
    "past_utterances": non_negative_int,
}
fold_count = number_type(int, lambda k: k == 0 or k >= 2, "0 (no cross-fitting) or an integer ≥ 2")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("features", help="extract text/audio features into the feature store")
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    store_help = f"HDF5 feature store (default {default_store_path()}; $NEURO_ERC_CACHE moves it)"

    text = kinds.add_parser("text", help="sentence embeddings of every utterance of a dataset")
    text.add_argument("--dataset", required=True, choices=["meld", "iemocap"])
    text.add_argument("--data", help="the dataset's folder or file (default $NEURO_ERC_DATA/<dataset>)")
    text.add_argument("--store", help=store_help)
    text.add_argument("--text-model", "--model", dest="model", default="minilm",
                      help="'minilm' (all-MiniLM-L6-v2, 384-d), 'mpnet' (all-mpnet-base-v2, 768-d; extra mpnet) "
                           "or a local model directory")
    text.add_argument("--batch-size", type=positive_int, default=256)
    text.add_argument("--no-progress", action="store_true", help="no progress bar")
    text.set_defaults(func=run_text)

    tune = kinds.add_parser("finetune", help="fine-tune the text encoder on a dataset's train labels (dev-selected)")
    tune.add_argument("--dataset", required=True, choices=["meld", "iemocap"])
    tune.add_argument("--data", help="the dataset's folder or file (default $NEURO_ERC_DATA/<dataset>)")
    tune.add_argument("--out", required=True, help="new directory for the fine-tuned sentence-transformers model")
    tune.add_argument("--base", "--text-model", dest="base", default="minilm",
                      help="encoder to start from: 'minilm', 'mpnet' or a local model directory")
    for name, value in asdict(FinetuneConfig()).items():
        tune.add_argument(f"--{name.replace('_', '-')}", dest=name, type=FINETUNE_FLAG_TYPES[name], default=value)
    tune.add_argument("--folds", type=fold_count, default=0,
                      help="K ≥ 2: cross-fit K encoders so no train utterance is embedded by one that fitted its label")
    tune.add_argument("--no-progress", action="store_true", help="no progress bar")
    tune.set_defaults(func=run_finetune)

    audio = kinds.add_parser("audio", help="openSMILE functionals of the clips listed in a manifest")
    audio.add_argument("--manifest", required=True, help="CSV with columns dataset,split,dialogue_id,utterance_index,path")
    audio.add_argument("--feature-set", default="ComParE_2016", choices=sorted(FEATURE_SETS))
    audio.add_argument("--store", help=store_help)
    audio.add_argument("--workers", type=positive_int, default=1, help="threads running openSMILE")
    audio.add_argument("--no-progress", action="store_true", help="no progress bar")
    audio.set_defaults(func=run_audio)


def run_text(args: argparse.Namespace) -> int:
    from ..data.registry import load_dataset
    from .text import text_features

    dataset = load_dataset(args.dataset, args.data, text_features=False)
    result = text_features(
        dataset, store=args.store, model=args.model, batch_size=args.batch_size, progress=not args.no_progress
    )
    print(json.dumps({"modality": "t", "dataset": dataset.name, **result.summary()}, indent=2))
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    from ..data.registry import load_dataset
    from .finetune import crossfit_text_encoder, finetune_text_encoder

    dataset = load_dataset(args.dataset, args.data, text_features=False)
    cfg = FinetuneConfig(**{name: getattr(args, name) for name in asdict(FinetuneConfig())})
    if args.folds:
        summary = crossfit_text_encoder(dataset, args.out, args.folds, cfg, base=args.base, progress=not args.no_progress)
    else:
        log = finetune_text_encoder(dataset, args.out, cfg, base=args.base, progress=not args.no_progress)
        summary = {k: log[k] for k in ("dataset", "best_epoch", "best_dev_wf1", "epochs")}
    print(json.dumps({"out": args.out, **summary}, indent=2))
    return 0


def run_audio(args: argparse.Namespace) -> int:
    from .audio import extract_audio_features

    result = extract_audio_features(
        args.manifest, feature_set=args.feature_set, store=args.store,
        num_workers=args.workers, progress=not args.no_progress,
    )
    print(json.dumps({"modality": "a", "manifest": args.manifest, **result.summary()}, indent=2))
    return 0
