"""The restricted unpickler admits plain data and refuses anything that could run code."""
import collections
import os
import pickle

import numpy as np
import pytest

from neuro_erc.data import DataError
from neuro_erc.data.safe_pickle import load_pickle


class RunsCode:
    """Unpickling this would call os.system and create ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_refuses_a_pickle_that_would_run_os_system(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"videoText": RunsCode(marker)}))
    with pytest.raises(DataError, match=r"evil\.pkl.*refused.*(posix|os)\.system"):
        load_pickle(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [eval, getattr, collections.Counter])
def test_refuses_other_globals(tmp_path, payload):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError, match=f"x\\.pkl.*{payload.__name__}"):
        load_pickle(path)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_admits_containers_numbers_strings_and_numpy(tmp_path, protocol):
    data = {
        "arrays": [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(["a", "b"], dtype=object)],
        "scalar": np.int64(3),
        "text": ("é’", b"", b"raw", 1.5, 2 + 1j, None, True),
        "sets": ({1, 2}, frozenset({"x"})),
        "ordered": collections.OrderedDict(a=1),
        "default": collections.defaultdict(list, {"k": [1]}),
    }
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded["arrays"][0], data["arrays"][0])
    assert loaded["arrays"][0].dtype == np.float32
    assert list(loaded["arrays"][1]) == ["a", "b"]
    assert loaded["scalar"] == 3 and loaded["text"] == data["text"] and loaded["sets"] == data["sets"]
    assert loaded["ordered"] == data["ordered"] and loaded["default"]["k"] == [1]


def test_corrupt_and_missing_files_name_the_file(tmp_path):
    path = tmp_path / "broken.pkl"
    path.write_bytes(pickle.dumps([1, 2, 3])[:-3])
    with pytest.raises(DataError, match="broken.pkl: not a readable pickle"):
        load_pickle(path)
    with pytest.raises(DataError, match="absent.pkl: no such file"):
        load_pickle(tmp_path / "absent.pkl")


def test_a_length_field_asking_for_a_petabyte_names_the_file(tmp_path):
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x04\x8e" + (1 << 50).to_bytes(8, "little") + b"x")  # BINBYTES8 of 2**50 bytes
    with pytest.raises(DataError, match=r"huge\.pkl: not a readable pickle \(it asks for more memory than is available"):
        load_pickle(path)
