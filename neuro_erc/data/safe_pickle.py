"""A restricted unpickler for the community feature pickles.

``pickle.load`` runs whatever callable the file names (``os.system`` included), so a
pickle from the internet is code, not data. Every global a pickle refers to goes through
:meth:`RestrictedUnpickler.find_class`; we admit only the few that plain data needs:

* builtin containers, numbers and strings (``set``, ``frozenset``, ``bytes``, ...; the
  rest have their own opcodes), under their Python 3 (``builtins``) and Python 2
  (``__builtin__``) module names;
* ``collections.OrderedDict`` and ``collections.defaultdict``;
* ``_codecs.encode`` (how Python 3 writes ``bytes`` at protocols 0–2);
* what numpy arrays and scalars reduce to: ``numpy.ndarray``, ``numpy.dtype``,
  ``numpy.core.multiarray._reconstruct``, ``numpy.core.multiarray.scalar`` and
  ``numpy.core.numeric._frombuffer`` (protocol 5), spelled ``numpy.core`` (numpy 1) or
  ``numpy._core`` (numpy 2); a file written by either numpy loads under the other.

Anything else raises :class:`~neuro_erc.data.types.DataError` naming the file and the
refused global, before it is imported or called.
"""
from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

from .types import DataError

_BUILTINS = frozenset(
    {"bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list", "set", "str", "tuple"}
)
_NUMPY_INTERNAL = {
    "multiarray": frozenset({"_reconstruct", "scalar"}),
    "numeric": frozenset({"_frombuffer"}),
}
_ALLOWED = {
    *((module, name) for module in ("builtins", "__builtin__") for name in _BUILTINS),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *(
        (f"numpy.{core}.{sub}", name)
        for core in ("core", "_core")
        for sub, names in _NUMPY_INTERNAL.items()
        for name in names
    ),
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals listed in the module docstring.

    ``encoding='latin1'`` lets Python 2 pickles of numpy arrays load (their raw bytes were
    written as ``str``); text that Python 2 stored as UTF-8 bytes comes back as Latin-1
    mojibake, which :func:`neuro_erc.data.textfix.repair_text` undoes.
    """

    def __init__(self, file: io.BufferedIOBase, source: str):
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise DataError(
                f"{self.source}: refused to unpickle global {module}.{name}; only containers, "
                "numbers, strings and numpy arrays are allowed in a data file"
            )
        if module.startswith("numpy._core.") or module.startswith("numpy.core."):
            found = _numpy_internal(module, name)
            if found is None:
                raise DataError(f"{self.source}: this numpy has no {module}.{name}")
            return found
        return super().find_class(module, name)


def _numpy_internal(module: str, name: str):
    """Resolve ``numpy.core.X`` / ``numpy._core.X`` under whichever spelling this numpy has."""
    sub = module.rsplit(".", 1)[1]
    for core in ("_core", "core"):
        try:
            return getattr(importlib.import_module(f"numpy.{core}.{sub}"), name)
        except (ImportError, AttributeError):
            continue
    return None


def load_pickle(path: str | Path) -> object:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; any failure is a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as f:
        try:
            return RestrictedUnpickler(f, str(path)).load()
        except DataError:
            raise
        except MemoryError:  # a length field asking for gigabytes
            raise DataError(f"{path}: not a readable pickle (it asks for more memory than is available: "
                            "corrupt, or too large for this machine)") from None
        except Exception as err:  # a corrupt pickle raises anything from EOFError to TypeError
            raise DataError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from None
