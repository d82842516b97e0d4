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

from .errors import UserError

# Transparent huge pages for torch's CPU allocator: the spiking core allocates large
# per-step buffers, and page faults were ~30% of a T=32 training step without this.
# Read by torch when it first allocates, so it must be set before any tensor exists.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

COMMAND_MODULES = [
    "neuro_erc.data.cli",
    "neuro_erc.features.cli",
    "neuro_erc.train",
    "neuro_erc.evaluate",
    "neuro_erc.stream",
    "neuro_erc.export.cli",
    "neuro_erc.bench",
    "neuro_erc.sweep",
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


def describe_os_error(err: OSError) -> str:
    """``path: reason`` for an OSError about one of the user's paths (no traceback needed)."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}"


def main(argv: list[str] | None = None) -> int:
    """Run one command. User errors (bad input, missing backend, unusable path) end here:
    one line on stderr, exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        message = str(err)
    except OSError as err:  # the user's paths: missing, not writable, a file where a folder should be
        message = describe_os_error(err)
    print(f"neuro-erc {args.command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
