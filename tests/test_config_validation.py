"""Every bad config field or command-line value is a ConfigError (or argparse's error) naming it."""
import argparse
import copy
import json
import math
import random
from pathlib import Path

import pytest

import neuro_erc.data.registry as registry
from neuro_erc.cli import main
from neuro_erc.cli_types import fraction, non_negative_int, positive_float, positive_int
from neuro_erc.config import from_dict, load_json, to_dict
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import ConfigError
from neuro_erc.run_config import TrainConfig, resolve_device

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples" / "configs").glob("*.json"))


def nested(key: str, value) -> dict:
    """``{"a": {"b": value}}`` for ``key = "a.b"``."""
    *parents, last = key.split(".")
    values = {last: value}
    for parent in reversed(parents):
        values = {parent: values}
    return values


BAD_VALUES = [  # (dotted key, value, what the message says after "KEY: ")
    ("epochs", "1", 'expected an integer, got "1"'),
    ("epochs", True, "expected an integer, got true"),
    ("epochs", 0, "expected an integer ≥ 1, got 0"),
    ("epochs", 2.0, "expected an integer, got 2.0"),
    ("batch_size", 0, "expected an integer ≥ 1, got 0"),
    ("lr", "fast", 'expected a finite number, got "fast"'),
    ("lr", math.inf, "expected a finite number, got Infinity"),
    ("lr", math.nan, "expected a finite number, got NaN"),
    ("lr", 0, "expected a finite number > 0, got 0.0"),
    ("betas", [0.9], "expected a list of 2 items, got [0.9]"),
    ("betas", 0.9, "expected a list, got 0.9"),
    ("betas", [0.9, "x"], "[1]: expected a finite number"),
    ("betas", [0.9, 1.0], "[1]: expected a finite number ≥ 0 and < 1, got 1.0"),
    ("weight_decay", -1e-5, "expected a finite number ≥ 0"),
    ("lr_decay", 0, "expected a finite number > 0 and ≤ 1"),
    ("lr_decay", 1.5, "expected a finite number > 0 and ≤ 1"),
    ("lr_decay_every", 0, "expected an integer ≥ 1"),
    ("patience", -1, "expected an integer ≥ 0"),
    ("grad_clip", 0, "expected a finite number > 0"),
    ("threads", -1, "expected an integer ≥ 0 and < 2147483648, got -1"),
    ("seed", -1, "expected an integer ≥ 0 and < 4294967296"),
    ("seed", 2**32, "expected an integer ≥ 0 and < 4294967296"),
    ("device", "banana", "expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got \"banana\""),
    ("device", "cuda:-1", "expected 'auto'"),
    ("device", "meta", "expected 'auto'"),
    ("dataset", "imdb", 'expected one of ["synthetic", "meld", "iemocap", "multiemo", "dialoguernn"], got "imdb"'),
    ("variant", "friends", "expected one of"),
    ("data", 5, "expected null or a string, got 5"),
    ("text_model", "", "expected 'minilm' or a model directory"),
    ("model", [1], "expected an object, got [1]"),
    ("model.dim", -8, "expected an integer ≥ 1, got -8"),
    ("model.dim", 10, "expected a multiple of fusion_heads (4), got 10"),
    ("model.fusion_heads", 0, "expected an integer ≥ 1"),
    ("model.fusion_layers", -1, "expected an integer ≥ 0"),
    ("model.n_classes", 0, "expected an integer ≥ 1"),
    ("model.classifier_hidden", 0, "expected an integer ≥ 1"),
    ("model.dropout", 1.0, "expected a finite number ≥ 0 and < 1, got 1.0"),
    ("model.dswa", "yes", 'expected true or false, got "yes"'),
    ("model.context", "lstm", 'expected one of ["dialoguernn", "bigru", "none"], got "lstm"'),
    ("model.modalities", [], 'expected distinct names among ["t", "a", "v"], got []'),
    ("model.modalities", ["t", "t"], "expected distinct names"),
    ("model.modalities", ["text"], "expected distinct names"),
    ("model.modalities", "t", 'expected a list, got "t"'),
    ("model.input_dims", {"t": "12"}, '.t: expected an integer, got "12"'),
    ("model.input_dims", {"t": 0, "a": 1, "v": 1}, ".t: expected an integer ≥ 1, got 0"),
    ("model.input_dims", {"t": 12}, "no input dimension for modalities ['a', 'v']"),
    ("model.input_dims", [12], "expected an object, got [12]"),
    ("model.core.dim", "8", 'expected an integer, got "8"'),
    ("model.core.heads", 0, "expected an integer ≥ 1"),
    ("model.core.T", 0, "expected an integer ≥ 1"),
    ("model.core.depth", -1, "expected an integer ≥ 0"),
    ("model.core.mlp_ratio", 0, "expected an integer ≥ 1"),
    ("model.core.attention", "softmax", 'expected one of ["sdsa", "ssa"], got "softmax"'),
    ("model.core.norm", "group", 'expected one of ["batch", "layer", "none"]'),
    ("model.core.attn_v_th", 0, "expected a finite number > neuron.v_reset (0.0), got 0.0"),
    ("model.core.attn_scale", -1, "expected a finite number > 0"),
    ("model.core.norm_gain", 0, "expected a finite number > 0"),
    ("model.core.neuron.tau_mem", 1e-4, "expected a finite number ≥ dt (0.001), got 0.0001"),
    ("model.core.neuron.dt", 0, "expected a finite number > 0"),
    ("model.core.neuron.v_th", 0, "expected a finite number > v_reset (0.0), got 0.0"),
    ("model.core.neuron.surrogate", "relu", "expected one of"),
    ("model.core.neuron.alpha", 0, "expected a finite number > 0"),
    ("loss.ce", -1, "expected a finite number ≥ 0, got -1.0"),
    ("loss.dsc_gamma", -0.5, "expected a finite number ≥ 0"),
    ("loss.contrastive_temperature", 0, "expected a finite number > 0"),
    ("loss.contrastive_focal_gamma", -1, "expected a finite number ≥ 0"),
    ("loss.class_weights", 1, "expected true or false, got 1"),
]


@pytest.mark.parametrize("key, value, message", BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_a_bad_value_names_its_dotted_key(key, value, message):
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, nested(key, value), where="config.json")
    assert str(err.value).startswith(f"config.json: {key}")
    assert message in str(err.value)


@pytest.mark.parametrize("values, message", [
    ({"bogus": 1}, "config.json: unknown key(s) ['bogus']"),
    ({"model": {"core": {"Dim": 8}}}, "config.json: model.core: unknown key(s) ['Dim']"),
    ({"loss": {"ce": 0.0}}, "config.json: loss: at least one loss weight must be > 0"),
    ({"model": {"modalities": ["t"]}, "loss": {"hgr": 0.1}}, "config.json: loss.hgr: expected 0 with one modality"),
    ({"model": {"core": {"attention": "ssa", "dim": 12, "heads": 8}}},
     "config.json: model.core.dim: expected a multiple of heads (8) for SSA, got 12"),
    ({"model": {"core": {"neuron": {"v_reset": 1.0}}}}, "config.json: model.core.neuron.v_th: expected a finite number > v_reset (1.0)"),
    ([{"epochs": 1}], 'config.json: expected an object, got [{"epochs": 1}]'),
])
def test_what_spans_fields_or_files_names_where(values, message):
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, values, where="config.json")
    assert str(err.value).startswith(message)


def test_post_init_value_and_type_errors_become_config_errors():
    from dataclasses import dataclass

    @dataclass
    class Picky:
        n: int = 1

        def __post_init__(self):
            if self.n == 2:
                raise ValueError("two is not allowed")
            if self.n == 3:
                raise TypeError("three is of the wrong kind")

    with pytest.raises(ConfigError, match="^cfg: two is not allowed$"):
        from_dict(Picky, {"n": 2}, where="cfg")
    with pytest.raises(ConfigError, match="^cfg: three is of the wrong kind$"):
        from_dict(Picky, {"n": 3}, where="cfg")


def test_long_values_are_cut_in_messages():
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, {"dataset": "x" * 500})
    assert str(err.value).endswith('got "' + "x" * 76 + "...")


def test_a_config_file_that_is_not_an_object_names_the_file(tmp_path):
    listed, binary = tmp_path / "list.json", tmp_path / "binary.json"
    listed.write_text("[1, 2]")
    binary.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(ConfigError, match=r"list\.json: expected a JSON object of config fields, got \[1, 2\]"):
        load_json(listed)
    with pytest.raises(ConfigError, match=r"binary\.json: not a UTF-8 text file"):
        load_json(binary)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_configs_load_and_round_trip(path):
    cfg = from_dict(TrainConfig, load_json(path), where=str(path))
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    assert from_dict(TrainConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg  # tuples written as lists


def test_config_device_is_spelling_only_and_resolve_device_checks_it_exists(monkeypatch):
    import torch

    assert from_dict(TrainConfig, {"device": "cuda:1"}).device == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="device 'cuda': this machine has 0 CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match='device: expected .*, got "gpu"'):
        resolve_device("gpu")


# ---- fuzz -------------------------------------------------------------------------

WRONG_VALUES = ["8", "", "t", -1, 0, 1, 3, 2**40, 0.5, -0.5, 1.0, 1e12, math.inf, -math.inf, math.nan, True, False,
                None, [], [0.5], [0.5, 0.5], ["t"], ["t", "a"], {}, {"t": 3}, {"x": "y"}]


def leaf_paths(values: dict, prefix: tuple = ()) -> list[tuple]:
    """Every key path of ``values``, objects included (so a whole sub-config gets replaced too)."""
    paths = []
    for key, value in values.items():
        paths.append(prefix + (key,))
        if isinstance(value, dict):
            paths += leaf_paths(value, prefix + (key,))
    return paths


def mutated(values: dict, rng: random.Random) -> tuple[dict, tuple]:
    """A copy of ``values`` with one key (the path returned) set to a wrong-looking value."""
    out = copy.deepcopy(values)
    path = rng.choice(leaf_paths(values))
    holder = out
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = copy.deepcopy(rng.choice(WRONG_VALUES))
    return out, path


def test_fuzzed_configs_build_or_raise_config_error_naming_the_mutated_config():
    rng = random.Random(20240611)
    base = json.loads(json.dumps(to_dict(TrainConfig())))
    outcomes = {"built": 0, "refused": 0}
    for case in range(300):
        values, path = mutated(base, rng)
        try:
            from_dict(TrainConfig, values, where="fuzz.json")
        except ConfigError as err:
            # the mutated config or the one holding it (a bound can name a field of the holder:
            # attn_v_th > neuron.v_reset)
            holder = ".".join(path[:-2])
            assert str(err).startswith(f"fuzz.json: {holder}"), (case, path, values, str(err))
            assert "\n" not in str(err)
            outcomes["refused"] += 1
        else:
            outcomes["built"] += 1
    assert outcomes["built"] >= 10 and outcomes["refused"] >= 150, outcomes


# ---- command line ---------------------------------------------------------------


@pytest.mark.parametrize("flags, message", [
    (["--device", "banana"], "config: device: expected 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got \"banana\""),
    (["--threads", "-1"], "config: threads: expected an integer ≥ 0 and < 2147483648, got -1"),
    (["--epochs", "0"], "config: epochs: expected an integer ≥ 1, got 0"),
    (["--batch-size", "0"], "config: batch_size: expected an integer ≥ 1, got 0"),
    (["--lr", "inf"], "config: lr: expected a finite number, got Infinity"),
    (["--modalities", "t,x"], 'config: model.modalities: expected distinct names among ["t", "a", "v"], got ["t", "x"]'),
    (["--T", "0"], "config: model.core.T: expected an integer ≥ 1, got 0"),
])
def test_bad_train_flags_are_one_line_errors(tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--out", str(out), "--quiet", *flags]) == 2
    assert capsys.readouterr().err.splitlines() == [f"neuro-erc train: error: {message}"]
    assert not out.exists()


def test_bad_config_file_is_a_one_line_error_naming_it(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text('[{"epochs": 1}]')
    assert main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "run"), "--config", str(config)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'neuro-erc train: error: {config}: expected a JSON object of config fields, got [{{"epochs": 1}}]']


def argparse_refuses(argv: list[str], capsys) -> str:
    """argparse's own error for ``argv`` (exit status 2, no traceback): its last stderr line."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    return err.splitlines()[-1]


def test_a_non_number_train_flag_is_argparse_s_error(tmp_path, capsys):
    line = argparse_refuses(["train", "--dataset", "synthetic", "--out", str(tmp_path), "--lr", "fast"], capsys)
    assert line.endswith("error: argument --lr: invalid float value: 'fast'")


@pytest.mark.parametrize("flag, value, message", [
    ("--max-neurons", "0", "argument --max-neurons: expected an integer ≥ 1, got '0'"),
    ("--utterance", "-1", "argument --utterance: expected an integer ≥ 0, got '-1'"),
])
def test_raster_number_flags_are_checked(tmp_path, capsys, flag, value, message):
    argv = ["plot", "raster", "--checkpoint", str(tmp_path / "best.pt"), "--dataset", "synthetic",
            "--dialogue", "dev-0000", "--utterance", "0", "--out", str(tmp_path / "r.png"), flag, value]
    assert argparse_refuses(argv, capsys).endswith(f"error: {message}")


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "argument --epochs: expected an integer ≥ 1, got '0'"),
    (["--lr", "nan"], "argument --lr: expected a finite number > 0, got 'nan'"),
    (["--warmup", "1.5"], "argument --warmup: expected a number in [0, 1], got '1.5'"),
    (["--folds", "1"], "argument --folds: expected 0 (no cross-fitting) or an integer ≥ 2, got '1'"),
])
def test_finetune_flags_are_checked(tmp_path, capsys, flags, message):
    argv = ["features", "finetune", "--dataset", "meld", "--out", str(tmp_path / "m"), *flags]
    assert argparse_refuses(argv, capsys).endswith(f"error: {message}")


def test_finetune_into_an_existing_folder_says_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "load_dataset", lambda *args, **kwargs: make_synthetic(n_train=2, n_dev=2, n_test=1))
    out = tmp_path / "tuned"
    out.mkdir()
    assert main(["features", "finetune", "--dataset", "meld", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"neuro-erc features: error: {out} exists: fine-tuning writes a new model directory; "
        "choose another --out (or delete that one to fine-tune again)"]


def test_crossfit_refuses_one_fold_and_a_finished_folder(tmp_path):
    from neuro_erc.features.finetune import crossfit_text_encoder
    from neuro_erc.features.text import CROSSFIT_FILE

    dataset = make_synthetic(n_train=2, n_dev=2, n_test=1)
    with pytest.raises(ConfigError, match="at least 2 folds; got 1"):
        crossfit_text_encoder(dataset, tmp_path / "x", 1)
    (tmp_path / CROSSFIT_FILE).write_text("{}")
    with pytest.raises(ConfigError, match="holds a finished cross-fitted model: choose another --out"):
        crossfit_text_encoder(dataset, tmp_path, 2)


@pytest.mark.parametrize("convert, good, bad", [
    (positive_int, {"1": 1, "64": 64}, ["0", "-3", "1.5", "x", ""]),
    (non_negative_int, {"0": 0, "7": 7}, ["-1", "nan"]),
    (positive_float, {"0.5": 0.5, "3": 3.0}, ["0", "-1", "inf", "nan", "x"]),
    (fraction, {"0": 0.0, "1": 1.0, "0.25": 0.25}, ["1.5", "-0.1", "nan"]),
])
def test_cli_types_accept_and_refuse(convert, good, bad):
    assert {text: convert(text) for text in good} == good
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=f"got {text!r}"):
            convert(text)

