"""Config round trips and crash-safe writes."""
import json
from dataclasses import dataclass, field

import pytest

from neuro_erc.config import from_dict, load_json, merge, to_dict
from neuro_erc.errors import ConfigError
from neuro_erc.io import atomic_path, write_json


@dataclass
class Inner:
    a: int = 1
    pair: tuple[float, float] = (0.5, 0.25)


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_from_dict_builds_nested_dataclasses_and_tuples():
    cfg = from_dict(Outer, {"name": "y", "inner": {"a": 3, "pair": [1.0, 2.0]}})
    assert cfg == Outer("y", Inner(3, (1.0, 2.0)))
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match=r"cfg: inner: unknown key\(s\) \['b'\]"):
        from_dict(Outer, {"inner": {"b": 1}}, where="cfg")


@dataclass
class Kinds:
    names: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    note: str | None = None
    rate: float = 0.5
    flag: bool = False


def test_from_dict_takes_lists_objects_null_and_ints_as_floats():
    cfg = from_dict(Kinds, {"names": ["a", "b"], "sizes": {"a": 1}, "note": None, "rate": 1, "flag": True})
    assert cfg == Kinds(["a", "b"], {"a": 1}, None, 1.0, True) and isinstance(cfg.rate, float)


@pytest.mark.parametrize("values, message", [
    ({"names": "a"}, 'names: expected a list, got "a"'),
    ({"names": ["a", 2]}, "names[1]: expected a string, got 2"),
    ({"sizes": {"a": 1.5}}, "sizes.a: expected an integer, got 1.5"),
    ({"sizes": {"a": False}}, "sizes.a: expected an integer, got false"),
    ({"note": 3}, "note: expected null or a string, got 3"),
    ({"rate": float("nan")}, "rate: expected a finite number, got NaN"),
    ({"rate": True}, "rate: expected a finite number, got true"),
    ({"flag": 0}, "flag: expected true or false, got 0"),
])
def test_from_dict_names_the_key_and_what_was_expected(values, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Kinds, values, where="k.json")
    assert str(err.value) == f"k.json: {message}"


def test_nested_errors_name_the_dotted_key():
    with pytest.raises(ConfigError, match=r"^cfg: inner\.pair: expected a list of 2 items, got \[1\.0\]$"):
        from_dict(Outer, {"inner": {"pair": [1.0]}}, where="cfg")
    with pytest.raises(ConfigError, match=r"^cfg: inner: expected an object, got 3$"):
        from_dict(Outer, {"inner": 3}, where="cfg")


def test_merge_overlays_recursively():
    assert merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n "a": 1,\n}\n')
    with pytest.raises(ValueError, match=r"c\.json, line 3"):
        load_json(path)


def test_atomic_write_leaves_old_file_on_crash(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_dir_replaces_a_directory_whole_or_not_at_all(tmp_path):
    from neuro_erc.io import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v1")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half-written")
            raise RuntimeError("crash while saving")
    assert (target / "weights").read_text() == "v1"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("v2")
    assert (target / "weights").read_text() == "v2" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]
