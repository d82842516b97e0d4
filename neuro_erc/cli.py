"""The ``neuro-erc`` command line.

Each command lives in the module that does its work; that module exposes
``register(subparsers)``, which adds its parser and sets ``func`` to the function that
runs it. This file only collects them, so a new command is one line here.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Transparent huge pages for torch's CPU allocator: the spiking core allocates large
# per-step buffers, and page faults were ~30% of a T=32 training step without this.
# Read by torch when it first allocates, so it must be set before any tensor exists.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

COMMAND_MODULES = [
    "neuro_erc.data.cli",
    "neuro_erc.features.cli",
    "neuro_erc.train",
    "neuro_erc.evaluate",
    "neuro_erc.export.cli",
    "neuro_erc.bench",
    "neuro_erc.viz",
    "neuro_erc.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuro-erc",
        description="SpikEmo spiking emotion recognition in conversations, with NIR/Lava export.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:  # DataError is a ValueError
        print(f"neuro-erc {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
