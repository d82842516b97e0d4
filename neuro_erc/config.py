"""Nested dataclass configs ⇄ plain JSON dicts, with errors that name the bad key.

:func:`from_dict` checks every value against its field's type hint before the dataclass is
built, so ``__post_init__`` only sees values of the right type and checks their ranges. Those
range checks raise :class:`FieldError` (through :func:`require`, :func:`check_range` and
:func:`check_choice`), which ``from_dict`` prefixes with the dotted path of the dataclass:
``config.json: model.core.dim: expected an integer ≥ 1, got -8``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import operator
import types
import typing
from pathlib import Path
from typing import Any, Collection, TypeVar

from .errors import ConfigError

T = TypeVar("T")

SHOWN_CHARS = 80  # a value quoted in an error is cut to this length


class FieldError(ConfigError):
    """A bad value of the field ``key`` (a dotted path; empty for the config as a whole)."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key, self.problem = key, problem

    def within(self, prefix: str) -> FieldError:
        """The same error, for the config at ``prefix`` that holds this one's."""
        return FieldError(_join(prefix, self.key), self.problem)


def show(value: Any) -> str:
    """``value`` as JSON writes it (a string in double quotes), else its repr; cut if long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def require(ok: bool, key: str, expected: str, value: Any) -> None:
    """Raise ``FieldError`` "KEY: expected EXPECTED, got VALUE" unless ``ok``."""
    if not ok:
        raise FieldError(key, f"expected {expected}, got {show(value)}")


def check_range(key: str, value: float, *, gt: float | None = None, ge: float | None = None,
                lt: float | None = None, le: float | None = None) -> None:
    """``value`` must be finite and ``> gt``, ``≥ ge``, ``< lt``, ``≤ le`` (the bounds given)."""
    bounds = ((">", gt, operator.gt), ("≥", ge, operator.ge), ("<", lt, operator.lt), ("≤", le, operator.le))
    given = [(symbol, bound, test) for symbol, bound, test in bounds if bound is not None]
    ok = math.isfinite(value) and all(test(value, bound) for _, bound, test in given)
    kind = "an integer" if isinstance(value, int) else "a finite number"
    limits = " and ".join(f"{symbol} {bound}" for symbol, bound, _ in given)
    require(ok, key, f"{kind} {limits}" if limits else kind, value)


def check_choice(key: str, value: Any, choices: Collection) -> None:
    require(value in choices, key, f"one of {json.dumps(list(choices))}", value)


def to_dict(config: Any) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], values: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``values``; nested dataclass fields are built recursively.

    Unknown keys are an error (a typo must not be silently ignored); missing keys keep their
    defaults. Every value is checked against its field's type hint: ``int`` (not ``bool``),
    ``float`` (an int is taken; inf and nan are not), ``str``, ``bool``, ``X | None``, tuples and
    lists (JSON lists), ``dict[str, X]`` and nested dataclasses. A ``ValueError`` or
    ``TypeError`` from a dataclass's ``__post_init__`` becomes a ``ConfigError`` naming where
    it was. Every message starts with ``where`` (the file, or what the values are).
    """
    try:
        return _build(cls, values, "")
    except FieldError as err:
        raise ConfigError(f"{where}: {err}") from None


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else prefix or key


def _build(cls: type[T], values: Any, path: str) -> T:
    if not isinstance(values, dict):
        raise FieldError(path, f"expected an object, got {show(values)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise FieldError(path, f"unknown key(s) {unknown}; known keys: {sorted(names)}")
    kwargs = {key: _checked(hints[key], value, _join(path, key)) for key, value in values.items()}
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise err.within(path) from None
    except (ValueError, TypeError) as err:
        raise FieldError(path, str(err)) from None


_SCALARS = {  # type hint -> (test of a value, what a message says was expected)
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), "a finite number"),
    str: (lambda v: isinstance(v, str), "a string"),
}


def _checked(hint: Any, value: Any, key: str) -> Any:
    """``value`` if it is of type ``hint`` (JSON lists become tuples, ints floats), else FieldError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else _build(hint, value, key)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]  # only ``X | None`` is used
        return None if value is None else _checked_scalar(inner, value, key, "null or ")
    if origin in (tuple, list):
        return _checked_sequence(origin, args, value, key)
    if origin is dict:
        require(isinstance(value, dict), key, "an object", value)
        return {k: _checked(args[1], v, _join(key, str(k))) for k, v in value.items()}
    return _checked_scalar(hint, value, key)


def _checked_scalar(hint: Any, value: Any, key: str, alternative: str = "") -> Any:
    if hint not in _SCALARS:
        raise TypeError(f"from_dict cannot check {key} of type {hint}")
    test, expected = _SCALARS[hint]
    require(test(value), key, alternative + expected, value)
    return float(value) if hint is float else value


def _checked_sequence(origin: type, args: tuple, value: Any, key: str) -> tuple | list:
    """``tuple[X, ...]``, ``list[X]`` (any length) or ``tuple[X, Y]`` (that length) from a list."""
    require(isinstance(value, (list, tuple)), key, "a list", value)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        require(len(value) == len(args), key, f"a list of {len(args)} items", value)
        items = args
    else:
        items = (args[0],) * len(value)
    return origin(_checked(item, v, f"{key}[{i}]") for i, (item, v) in enumerate(zip(items, value)))


def merge(values: dict, overrides: dict) -> dict:
    """Recursively overlay ``overrides`` on ``values`` (new dict; inputs untouched)."""
    out = dict(values)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_json(path: str | Path) -> dict:
    """The JSON object in the config file ``path`` (anything else in it is a ConfigError)."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {path} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file, so not a JSON config") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a JSON object of config fields, got {show(values)}")
    return values
