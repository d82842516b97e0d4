"""``neuro-erc data-stats``: dialogue, utterance and label counts of a dataset, as JSON."""
from __future__ import annotations

import argparse
import json

from .registry import DATASETS, VARIANTS, load_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data-stats",
        help="print dataset statistics as JSON",
        description="Print n_dialogues, n_utterances, label_counts and max_dialogue_len of one split, "
        "or of every split (a dict split -> stats) when --split is omitted. Needs no text features.",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--data", help="dataset file or folder (default: $NEURO_ERC_DATA/<dataset>)")
    parser.add_argument("--variant", choices=VARIANTS, help="meld or iemocap, for multiemo/dialoguernn data "
                        "whose path does not say")
    parser.add_argument("--split", help="train, dev or test (default: all splits)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dataset = load_dataset(args.dataset, args.data, text_features=False, variant=args.variant)
    if args.split:
        stats = dataset.stats(args.split)
    else:
        stats = {split: dataset.stats(split) for split in dataset.splits}
    print(json.dumps(stats, indent=2))
    return 0
