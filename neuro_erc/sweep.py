"""``neuro-erc sweep``: a grid of training runs (variant × T × seed) as Ray tasks, then mean ± std over seeds.

**Cells.** Each (variant, T, seed) of the grid, and architecture with ``--arch``, is a *cell*: an
ordinary run directory ``DIR/<variant>/T<k>/seed<s>/`` (``DIR/<arch>/<variant>/T<k>/seed<s>/``
with ``--arch``) holding what ``neuro-erc train`` writes (config.json, metrics.jsonl, best.pt,
last.pt, report_dev.json), then :data:`DONE`, written last: the cell's config and its results
row. A cell with :data:`DONE` is finished and not run again (one that holds another config is
an error); any other cell is trained with ``resume=True``, so a killed cell continues from its
``last.pt``.

**Variants** are config overlays (:data:`VARIANTS`) merged over the base config (``--config``
and the training flags), then the cell's T, seed and, only where ``--arch`` is given, the config
key ``arch``. A variant that sets ``arch`` itself (``bigru``) is an architecture: ``--arch`` naming
another one is refused, not applied over it.

**Where cells run.** When ``ray`` can be imported, as Ray tasks: on a new local Ray instance
sized for ``--workers K`` cells at once, or on the cluster at ``--address``. Each cell reserves
as many CPUs as it has torch threads (``--threads``: 1 unless given; a config's 0, torch's
"every core", reserves every core of this machine). Where CUDA GPUs are present and the cell's
device is not ``cpu``, each cell also reserves a GPU: one on a cluster, min(1, G/K) of one on a
local instance with G GPUs, so K > G packs cells onto shared GPUs. ``--workers`` defaults to
one cell per GPU, else as many cells as the cores hold. On a cluster, the run directory and
the data must be at paths every node sees, and every node needs this package installed.
Without Ray the cells run in this process, one after another, and stderr says so.

**Results.** ``DIR/results.csv`` and ``DIR/results.json`` (the same rows): one row per variant
(and arch) and T with ``n_seeds``, ``seeds`` and, for each numeric column of its cells' rows,
the mean over the cells that have it, under the column's own name, and the sample standard
deviation (n − 1; 0 for a single seed) as ``<column>_std``. A cell's row holds dev
``weighted_f1`` and ``accuracy`` of its ``best.pt``, ``best_epoch`` (from 0), ``epochs_run``,
``train_seconds`` and ``dev_utterances``; with ``--measure`` also the spike, SOP, energy and
latency columns of ``neuro-erc bench`` (:func:`neuro_erc.bench.measure`) where the energy model
counts the cell's cores (:func:`countable`). Plots:
``wf1_vs_T.png`` and, where measured, ``energy_vs_T.png``, one line per variant with error bars
of ± one standard deviation over seeds.

``neuro-erc bench`` and ``benchmarks/erc_results.py`` are grids too: they make their cells
with :func:`grid`, run them with :func:`run_cells` and summarise them with :func:`summarise`.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import itertools
import json
import os
import statistics
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from .checkpoint import Checkpoint
from .cli_types import positive_int
from .config import from_dict, merge, to_dict
from .energy.constants import CMOS_45NM
from .errors import BackendUnavailable, ConfigError, UserError
from .io import atomic_path, write_json
from .run_config import TrainConfig, load_config_dataset
from .train import add_train_arguments, config_from_args, train

CE_ONLY = {"loss": {"dsc": 0.0, "hgr": 0.0, "contrastive": 0.0}}
VARIANTS = {
    "spikemo": {},  # the config as given
    "no_dswa": {"model": {"dswa": False}},  # without dynamic spiking weight adaptation
    "ce_only": CE_ONLY,  # cross-entropy alone
    # the plain speaker-aware BiGRU baseline (neuro_erc.model.bigru), trained as RESEARCH §2's: CE alone
    "bigru": merge(CE_ONLY, {"arch": "bigru", "model": {"context": "bigru"}}),
}
DONE = "cell.json"  # written into a cell's directory once it is trained (and measured)
LAYOUT = "{variant}/T{T}/seed{seed}"
ARCH_LAYOUT = "{arch}/" + LAYOUT
RAY_OBJECT_STORE_BYTES = 256 * 2**20  # a local instance's object store: cells exchange small dicts only
INSTALL_RAY = "pip install 'neuro-erc[distributed]'"


@dataclass
class Cell:
    """One run of a grid: what it is (``labels``: arch, variant, T, seed), its whole config as
    JSON stores it, and its directory relative to the grid's."""

    labels: dict
    config: dict
    path: str


def grid(base: dict, variants: Iterable[str], Ts: list[int] | None = None, seeds: list[int] | None = None,
         archs: list[str] | None = None, layout: str | None = None, where: str = "config") -> list[Cell]:
    """The cells of ``archs`` × ``variants`` × ``Ts`` × ``seeds`` over ``base`` (TrainConfig fields).

    ``Ts`` or ``seeds`` None keeps the base config's; ``archs`` None leaves the key ``arch``
    unset. ``layout`` names a cell's directory from its labels (default :data:`LAYOUT`, or
    :data:`ARCH_LAYOUT` with ``archs``). Every cell's config is checked here, before any runs.
    """
    variants = list(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    layout = layout or (ARCH_LAYOUT if archs else LAYOUT)
    cells = []
    for arch, variant, T, seed in itertools.product(archs or [None], variants, Ts or [None], seeds or [None]):
        overlay = {"model": {"core": {"T": T}}} if T is not None else {}
        if seed is not None:
            overlay["seed"] = seed
        if arch is not None:
            if VARIANTS[variant].get("arch", arch) != arch:
                raise ConfigError(f"variant {variant!r} is arch {VARIANTS[variant]['arch']!r}; it cannot be trained as "
                                  f"--arch {arch} (sweep it without --arch, or with --arch {VARIANTS[variant]['arch']})")
            overlay["arch"] = arch
        cfg = from_dict(TrainConfig, merge(merge(base, VARIANTS[variant]), overlay), where=f"{where} ({variant})")
        labels = {**({"arch": arch} if arch else {}), "variant": variant, "T": cfg.model.core.T, "seed": cfg.seed}
        cells.append(Cell(labels, json.loads(json.dumps(to_dict(cfg))), layout.format(**labels)))
    if len({c.path for c in cells}) < len(cells):
        raise ConfigError(f"the directory layout {layout!r} gives two cells the same directory")
    return cells


# ---- one cell -------------------------------------------------------------------------


def canonical_config(values: dict) -> dict:
    """``values`` as a complete TrainConfig in JSON form: defaults filled in (a field added since a
    cell was finished does not make it differ) and tuples as lists (as JSON stores them)."""
    return json.loads(json.dumps(to_dict(from_dict(TrainConfig, values))))


def finished_row(cell: Cell, out: Path, precision: str | None) -> dict | None:
    """The row of ``cell`` if it is finished (measured with ``precision``, when given); else None.

    A finished cell with another config is an error: its results would be mistaken for this one's.
    """
    done = out / cell.path / DONE
    if not done.exists():
        return None
    record = json.loads(done.read_text())
    old, new = canonical_config(record["config"]), canonical_config(cell.config)
    if old != new:
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ConfigError(f"{out / cell.path} holds a finished run with a different config (differs in {changed}); "
                          "use another --out or delete that folder")
    if precision is not None and record["precision"] != precision:
        return None  # trained but not measured so: run_cell's resume finds training done and measures
    return record["row"]


def trained_columns(run_dir: Path) -> dict:
    """What training left in ``run_dir``: dev scores of ``best.pt``, its epoch, and the epochs run."""
    report = json.loads((run_dir / "report_dev.json").read_text())
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "weighted_f1": report["weighted_f1"],
        "accuracy": report["accuracy"],
        "best_epoch": Checkpoint.load(run_dir / "best.pt").best_epoch,
        "epochs_run": len(epochs),
        "train_seconds": round(sum(e["seconds"] for e in epochs), 2),  # resumed parts included
        "dev_utterances": report["n_utterances"],
        "per_class_f1": report["per_class_f1"],
    }


def countable(cfg: TrainConfig) -> bool:
    """Whether :mod:`neuro_erc.energy` can count the cell's model: SpikEmo's DSWA cores (not the
    ``stream`` architecture's, nor a model without DSWA)."""
    return cfg.arch == "spikemo" and cfg.model.dswa


def run_cell(cell: Cell, out: str, precision: str | None = None, show_progress: bool = False) -> dict:
    """Train ``cell`` into ``out/<cell.path>`` (resuming), measure it if ``precision`` is given,
    write :data:`DONE`; returns the cell's row. Runs where the cell runs: here or in a Ray worker.

    ``precision`` None means no measurement; a cell that :func:`countable` refuses has none either way."""
    run_dir = Path(out) / cell.path
    cfg = from_dict(TrainConfig, cell.config)
    dataset = load_config_dataset(cfg)
    train(cfg, run_dir, resume=True, show_progress=show_progress, dataset=dataset)
    row = {**cell.labels, **trained_columns(run_dir)}
    if precision is not None and countable(cfg):
        from .bench import measure  # bench imports this module at its top

        columns, details = measure(run_dir, dataset, precision)
        write_json(run_dir / "energy.json", details)
        row.update(columns)
    write_json(run_dir / DONE, {"config": cell.config, "precision": precision, "row": row})
    return row


# ---- many cells -----------------------------------------------------------------------


def ray_available() -> bool:
    """Whether ``ray`` can be imported (without importing it: that takes seconds)."""
    return importlib.util.find_spec("ray") is not None


def run_cells(cells: list[Cell], out: str | Path, precision: str | None = None, *, ray: bool = False,
              address: str | None = None, workers: int | None = None, show_progress: bool = True) -> list[dict]:
    """Every cell's row, in the order of ``cells``: finished cells are read back, the others run as
    Ray tasks (``ray``; see the module docstring for ``address`` and ``workers``) or here, in turn."""
    out = Path(out)
    rows = [finished_row(cell, out, precision) for cell in cells]
    todo = [i for i, row in enumerate(rows) if row is None]
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc="cells", unit="cell", file=sys.stderr,
               disable=not show_progress)
    runs = _on_ray(cells, todo, out, precision, address, workers) if ray else _here(cells, todo, out, precision, show_progress)
    for i, row in runs:
        rows[i] = row
        bar.set_postfix_str(cells[i].path, refresh=False)
        bar.update()
    bar.close()
    return rows


@contextmanager
def _naming(cell: Cell) -> Iterator[None]:
    """Say on stderr which cell failed, before its error goes on to the caller."""
    try:
        yield
    except Exception:
        print(f"cell {cell.path} failed", file=sys.stderr)
        raise


def _here(cells: list[Cell], todo: list[int], out: Path, precision: str | None, show_progress: bool):
    for i in todo:
        with _naming(cells[i]):
            row = run_cell(cells[i], str(out), precision, show_progress)
        yield i, row


def cell_cpus(config: dict) -> int:
    """CPUs a cell reserves: its torch threads (0, torch's default, uses every core)."""
    return config["threads"] or os.cpu_count() or 1


def wants_gpu(config: dict) -> bool:
    return config["device"] != "cpu"


def local_workers(cells: list[Cell]) -> int:
    """Cells at once on this machine by default: one per CUDA GPU, else as many as the cores hold."""
    import torch

    if torch.cuda.is_available() and any(wants_gpu(c.config) for c in cells):
        return torch.cuda.device_count()
    return max(1, (os.cpu_count() or 1) // max(cell_cpus(c.config) for c in cells))


def _on_ray(cells: list[Cell], todo: list[int], out: Path, precision: str | None, address: str | None,
            workers: int | None):
    if not todo:
        return
    import ray  # the optional extra: imported only when a sweep runs on it

    quiet = {"log_to_driver": False, "logging_level": "WARNING"}
    if address:
        ray.init(address=address, **quiet)
    else:
        workers = workers or local_workers([cells[i] for i in todo])
        cpus = max(cell_cpus(cells[i].config) for i in todo)
        ray.init(address="local", num_cpus=workers * cpus, include_dashboard=False,
                 object_store_memory=RAY_OBJECT_STORE_BYTES, **quiet)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        gpu_share = min(1.0, gpus / workers) if workers else 1.0
        task = ray.remote(run_cell)
        pending = {}
        for i in todo:
            config = cells[i].config
            options = {"num_cpus": cell_cpus(config), "num_gpus": gpu_share if gpus and wants_gpu(config) else 0}
            pending[task.options(**options).remote(cells[i], str(out), precision)] = i
        while pending:
            (ref,), _ = ray.wait(list(pending))
            i = pending.pop(ref)
            with _naming(cells[i]):
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayTaskError as err:
                    if isinstance(err.cause, UserError):  # the user's mistake: its own message, not Ray's traceback
                        raise err.cause from None
                    raise
            yield i, row
    finally:
        ray.shutdown()


# ---- results --------------------------------------------------------------------------


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def summarise(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    """One row per distinct value of the ``by`` columns, in first-seen order: ``by``, ``n_seeds``,
    ``seeds``, then for every numeric column of the group's rows its mean over the rows that have
    it and ``<column>_std``, the sample standard deviation (0 for one value)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    summaries = []
    for key, members in groups.items():
        summary = {**dict(zip(by, key)), "n_seeds": len(members), "seeds": ",".join(str(r["seed"]) for r in members)}
        for column in dict.fromkeys(k for r in members for k in r):
            values = [r[column] for r in members if _is_number(r.get(column))]
            if column in by or column == "seed" or not values:
                continue
            summary[column] = statistics.mean(values)
            summary[f"{column}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summaries.append(summary)
    return summaries


def write_table(out: Path, rows: list[dict], columns: list[str]) -> None:
    """``out/results.csv`` (``columns``; floats to 6 significant digits; empty where a row has no
    value) and ``out/results.json`` (the same rows and columns, full precision)."""
    with atomic_path(out / "results.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _fmt(row.get(k, "")) for k in columns})
    write_json(out / "results.json", [{k: row.get(k) for k in columns} for row in rows])


def _fmt(value):
    return f"{value:.6g}" if isinstance(value, float) else value


def write_sweep(out: Path, rows: list[dict]) -> list[dict]:
    """Summarise the cells' rows per (arch,) variant and T into results.csv/.json and the plots."""
    by = ("arch", "variant", "T") if "arch" in rows[0] else ("variant", "T")
    summaries = summarise(rows, by)
    write_table(out, summaries, list(dict.fromkeys(k for s in summaries for k in s)))
    plot_sweep(summaries, by[:-1], out)
    return summaries


def plot_sweep(summaries: list[dict], series: tuple[str, ...], out: Path) -> list[Path]:
    """``wf1_vs_T.png`` and, where measured, ``energy_vs_T.png``: one line per ``series`` value
    (variant, or arch and variant), mean over seeds with ± one standard deviation as error bars."""
    from matplotlib.figure import Figure

    from .viz import _log2_T_axis, _save  # the bench plots' axis and file conventions

    lines: dict[str, list[dict]] = {}
    for s in sorted(summaries, key=lambda s: s["T"]):
        lines.setdefault(" ".join(str(s[k]) for k in series), []).append(s)
    plots = [("weighted_f1", "dev weighted F1 (%)", "wf1_vs_T.png")]
    if any("energy_uj_45nm" in s for s in summaries):
        plots.append(("energy_uj_45nm", "energy per utterance, 45 nm (µJ)", "energy_vs_T.png"))
    paths = []
    for column, ylabel, name in plots:
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        for label, points in lines.items():
            points = [p for p in points if column in p]
            if not points:
                continue
            ax.errorbar([p["T"] for p in points], [p[column] for p in points], yerr=[p[f"{column}_std"] for p in points],
                        marker="o", capsize=3, label=f"{label} (n={max(p['n_seeds'] for p in points)})")
        _log2_T_axis(ax, sorted({s["T"] for s in summaries}))
        ax.set_ylabel(ylabel)
        ax.set_title("mean ± std over seeds", fontsize=10)
        ax.legend(fontsize=8)
        paths.append(_save(fig, out / name))
    return paths


# ---- command line ---------------------------------------------------------------------


def parse_ints(text: str, flag: str, minimum: int = 1) -> list[int]:
    """Distinct integers ≥ ``minimum`` from ``text`` like "2,4,8", sorted."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be comma-separated integers like 2,4,8; got {text!r}") from None
    if not values or min(values) < minimum or len(set(values)) != len(values):
        raise ConfigError(f"{flag} needs distinct integers ≥ {minimum}; got {text!r}")
    return sorted(values)


def parse_names(text: str, flag: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"{flag} needs distinct comma-separated names; got {text!r}")
    return names


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """``--address`` or ``--workers``: where the cells run (the module docstring says how)."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--address", help="Ray cluster to run the cells on (ray://HOST:PORT, HOST:PORT or auto); "
                                         "default: a new local Ray instance")
    where.add_argument("--workers", type=positive_int,
                       help="cells at once on the local Ray instance (default: one per CUDA GPU, else cores / threads)")


def execution_from_args(args: argparse.Namespace) -> dict:
    """:func:`run_cells` keywords for ``--address``/``--workers``: Ray where it is installed."""
    if ray_available():
        return {"ray": True, "address": args.address, "workers": args.workers}
    if args.address:
        raise BackendUnavailable(f"--address needs Ray, which is not installed here ({INSTALL_RAY})")
    print(f"Ray is not installed ({INSTALL_RAY}): the cells run in this process, one after another", file=sys.stderr)
    return {"ray": False}


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(argparse.Namespace(**{**vars(args), "T": None, "arch": None}))  # lists: the grid's
    base = to_dict(cfg)
    if args.threads is None and not cfg.threads:
        base["threads"] = 1  # torch's default (every core) in each of several cells at once would oversubscribe
    cells = grid(base, parse_names(args.variants, "--variants"),
                 Ts=parse_ints(args.T, "--T") if args.T else None,
                 seeds=parse_ints(args.seeds, "--seeds", minimum=0) if args.seeds else None,
                 archs=parse_names(args.arch, "--arch") if args.arch else None, where=args.config or "config")
    rows = run_cells(cells, args.out, args.precision if args.measure else None, **execution_from_args(args),
                     show_progress=not args.quiet)
    for summary in write_sweep(Path(args.out), rows):
        keys = [k for k in ("arch", "variant", "T", "n_seeds", "weighted_f1", "weighted_f1_std") if k in summary]
        print(json.dumps({k: summary[k] for k in keys}))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="train a grid of variant × T × seed runs (Ray tasks where Ray is installed); mean ± std over seeds",
        description="Train every (variant, T, seed) cell into OUT/<variant>/T<k>/seed<s>/ as an ordinary run, as Ray "
        "tasks where Ray is installed (else here, one after another), then write OUT/results.csv, OUT/results.json "
        "(mean and std over seeds per variant and T) and plots. Re-running skips finished cells and resumes "
        "interrupted ones.",
        conflict_handler="resolve",  # --T and --arch take lists here: they replace the training flags' single values
    )
    add_train_arguments(parser, with_T=False)
    parser.add_argument("--T", help="comma-separated time steps (default: the config's)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the config's, or --seed)")
    parser.add_argument("--variants", default="spikemo",
                        help=f"comma-separated config overlays among {', '.join(VARIANTS)} (default spikemo: the config as given)")
    parser.add_argument("--arch", help="comma-separated architectures, each set as the config key 'arch' "
                                       "(default: the config's; cells go to OUT/<arch>/<variant>/...)")
    parser.add_argument("--out", required=True, help="sweep directory")
    add_execution_arguments(parser)
    parser.add_argument("--measure", action="store_true",
                        help="also count spikes, SOPs, energy and latency of every cell on dev, as bench does")
    parser.add_argument("--precision", choices=sorted(CMOS_45NM), default="fp32",
                        help="45 nm number format for --measure (default fp32)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
