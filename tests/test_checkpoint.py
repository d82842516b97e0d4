"""Checkpoints: a safe format (nothing runs on load), validated on read, refused by every command when bad."""
import builtins
import json
import struct
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

import neuro_erc.run_config as run_config
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.cli import main
from neuro_erc.config import from_dict, to_dict
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.errors import CheckpointError
from neuro_erc.model.spikemo import SpikEmo
from neuro_erc.run_config import TrainConfig


def tiny_checkpoint(**overrides) -> Checkpoint:
    cfg = from_dict(TrainConfig, {
        "epochs": 2, "batch_size": 4,
        "model": {"modalities": ["t", "a"], "input_dims": {"t": 12, "a": 8}, "n_classes": 7, "dim": 16,
                  "classifier_hidden": 16, "fusion_layers": 1, "context": "none",
                  "core": {"dim": 16, "depth": 1, "mlp_ratio": 1, "T": 2}},
    })
    torch.manual_seed(0)
    model = SpikEmo(cfg.model)
    labels = list(make_synthetic(seed=0, n_train=2, n_dev=1, n_test=1, max_len=6).labels.labels)
    ckpt = Checkpoint(cfg, labels, model.state_dict(), epoch=1, best_f1=42.5, best_epoch=0)
    return replace(ckpt, **overrides)


class WritesAFile:
    """Unpickling this object creates ``path``: what a malicious checkpoint would do instead."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return builtins.open, (self.path, "w")


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(run_config, "load_dataset",
                        lambda *a, **kw: make_synthetic(seed=0, n_train=8, n_dev=4, n_test=2, max_len=5))


def test_round_trip_keeps_weights_config_and_training_state(tmp_path):
    state = {"optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}},
                           "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.99), "params": [0]}]},
             "rng": {"python": (3, tuple(range(5)), None), "torch": torch.get_rng_state()}}
    ckpt = tiny_checkpoint(training_state=state)
    ckpt.save(tmp_path / "last.pt")
    back = Checkpoint.load(tmp_path / "last.pt")
    assert back.config == ckpt.config and back.labels == ckpt.labels
    assert (back.epoch, back.best_f1, back.best_epoch) == (1, 42.5, 0)
    assert set(back.weights) == set(ckpt.weights)
    assert all(torch.equal(back.weights[k], ckpt.weights[k]) for k in ckpt.weights)
    opt = back.training_state["optimizer"]
    assert torch.equal(opt["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])  # int keys survive
    assert opt["param_groups"][0]["betas"] == (0.9, 0.99)  # tuples survive
    assert back.training_state["rng"]["python"] == (3, (0, 1, 2, 3, 4), None)
    assert torch.equal(back.training_state["rng"]["torch"], state["rng"]["torch"])
    model = back.model()
    assert not model.training and sum(p.numel() for p in model.parameters()) > 0


def test_a_file_is_safetensors_and_nothing_else(tmp_path):
    """The bytes are safetensors' layout: an 8-byte header length, then a JSON header."""
    tiny_checkpoint().save(tmp_path / "best.pt")
    raw = (tmp_path / "best.pt").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert json.loads(header["__metadata__"]["neuro_erc"])["format"] == 2


def test_legacy_weights_only_file_loads_and_a_legacy_pickle_with_objects_is_refused(tmp_path):
    ckpt = tiny_checkpoint()
    legacy = {"config": to_dict(ckpt.config), "labels": ckpt.labels,
              "model": ckpt.weights, "epoch": 1, "best_f1": 40.0, "best_epoch": 1}
    torch.save(legacy, tmp_path / "old.pt")
    assert Checkpoint.load(tmp_path / "old.pt").best_f1 == 40.0
    marker = tmp_path / "marker"
    torch.save({**legacy, "rng": WritesAFile(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="does not load weights-only"):
        Checkpoint.load(tmp_path / "evil.pt")
    assert not marker.exists()


def tampered_files(tmp_path, marker) -> dict:
    """name → a bad checkpoint file, one per way a file can be bad."""
    good = tmp_path / "good.pt"
    tiny_checkpoint().save(good)
    raw = good.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])

    def with_header(meta_change=None, header_change=None):
        h = json.loads(json.dumps(header))
        if meta_change:
            meta = json.loads(h["__metadata__"]["neuro_erc"])
            meta_change(meta)
            h["__metadata__"]["neuro_erc"] = json.dumps(meta)
        if header_change:
            header_change(h)
        text = json.dumps(h).encode()
        text += b" " * (-len(text) % 8)
        return struct.pack("<Q", len(text)) + text + raw[8 + n:]

    first_weight = next(k for k in header if k.startswith("model."))
    files = {
        "pickle_object": None,  # written below with torch.save
        "empty": b"",
        "text": b"this is not a checkpoint\n",
        "truncated": raw[: len(raw) // 2],
        "huge_header_length": struct.pack("<Q", 2**62) + raw[8:],
        "header_not_json": struct.pack("<Q", 16) + b"{not json at all" + raw[24:],
        "metadata_not_json": with_header(header_change=lambda h: h["__metadata__"].update(neuro_erc="{oops")),
        "no_neuro_erc_metadata": with_header(header_change=lambda h: h.pop("__metadata__")),
        "unknown_config_key": with_header(lambda m: m["config"].update(evil="__import__('os')")),
        "config_not_object": with_header(lambda m: m.update(config=["a", "list"])),
        "labels_not_strings": with_header(lambda m: m.update(labels=[1, 2])),
        "future_format": with_header(lambda m: m.update(format=99)),
        "state_refers_to_missing_tensor": with_header(lambda m: m.update(training_state={"__tensor__": "nope"})),
        "state_with_unknown_object": with_header(lambda m: m.update(training_state={"__reduce__": ["os.system", "x"]})),
        "tensor_offsets_past_the_end": with_header(
            header_change=lambda h: h[first_weight].update(data_offsets=[0, 10**9])),
    }
    paths = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.pt"
        if content is None:
            torch.save({"config": {}, "model": {"w": WritesAFile(marker)}}, path)
        else:
            path.write_bytes(content)
        paths[name] = path
    nan = tiny_checkpoint()
    nan.weights = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in nan.weights.items()}
    nan.save(tmp_path / "nan_weights.pt")
    paths["nan_weights"] = tmp_path / "nan_weights.pt"
    wrong_shape = tiny_checkpoint()
    wrong_shape.weights = {k: v[..., :1] if v.dim() == 2 else v for k, v in wrong_shape.weights.items()}
    wrong_shape.save(tmp_path / "wrong_shape.pt")
    paths["wrong_shape"] = tmp_path / "wrong_shape.pt"
    return paths


def test_every_damaged_or_malicious_file_is_a_checkpoint_error(tmp_path):
    marker = tmp_path / "marker"
    for name, path in tampered_files(tmp_path, marker).items():
        with pytest.raises(CheckpointError) as err:
            Checkpoint.load(path).model()
        assert str(path) in str(err.value), name
    assert not marker.exists()


COMMANDS = {
    "evaluate": lambda ck, out: ["evaluate", "--checkpoint", ck, "--dataset", "synthetic", "--split", "dev",
                                 "--out", str(out / "r.json")],
    "export nir": lambda ck, out: ["export", "nir", "--checkpoint", ck, "--out", str(out / "m.nir")],
    "export lava": lambda ck, out: ["export", "lava", "--checkpoint", ck, "--out", str(out / "plan")],
    "lava-run": lambda ck, out: ["lava-run", "--checkpoint", ck, "--dataset", "synthetic", "--split", "dev",
                                 "--out", str(out / "p.json")],
    "plot raster": lambda ck, out: ["plot", "raster", "--checkpoint", ck, "--dataset", "synthetic",
                                    "--dialogue", "0", "--utterance", "0", "--out", str(out / "r.png")],
}


@pytest.mark.parametrize("kind", ["pickle_object", "unknown_config_key", "truncated", "nan_weights"])
def test_every_checkpoint_command_refuses_bad_files_without_running_them(tmp_path, tiny_data, capsys, kind):
    marker = tmp_path / "marker"
    bad = tampered_files(tmp_path, marker)[kind]
    for command, argv in COMMANDS.items():
        assert main(argv(str(bad), tmp_path)) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err, (command, err)
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(bad.read_bytes())
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(run), "--resume", "--quiet"]) == 2
    assert str(run / "last.pt") in capsys.readouterr().err
    assert not marker.exists()


def test_commands_that_read_checkpoints_do_not_import_the_training_loop():
    code = ("import sys; import neuro_erc.checkpoint, neuro_erc.evaluate, neuro_erc.export.cli, neuro_erc.viz; "
            "print('neuro_erc.train' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
