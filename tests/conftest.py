"""Shared fixtures."""
import os
from pathlib import Path

import pytest
import torch

from neuro_erc.cli import build_parser

# The test models are tiny: one thread is faster than two, and immune to the busy-wait
# slowdowns of an oversubscribed OpenMP pool when something else is using the cores.
torch.set_num_threads(1)

# Import every command module now, before any test monkeypatches what they import by name
# (a module first imported inside a patch would keep the patched function for good).
build_parser()

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data (``$NEURO_ERC_SHARED_DATA``, else ``shared/data`` beside the repo); skip when absent."""
    path = Path(os.environ.get("NEURO_ERC_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set NEURO_ERC_SHARED_DATA to run this test)")
    return path


STREAM_MODALITIES = ["t", "a"]
STREAM_DIMS = {"t": 12, "a": 8}


@pytest.fixture(scope="session")
def stream_data():
    """Synthetic dialogues for the stream-export tests (dev: several lengths)."""
    from neuro_erc.data.synthetic import make_synthetic

    return make_synthetic(seed=3, n_train=6, n_dev=6, n_test=1, dims={**STREAM_DIMS, "v": 8}, max_len=9)


def build_stream_model(stream_data, **stream):
    """A 2-block, 2-modality stream model (D = 16, T = 3; ``stream``: its StreamConfig fields) in
    eval mode, with batch-norm statistics that are not the init's (3 training-mode passes)."""
    from neuro_erc.config import from_dict
    from neuro_erc.data.batching import collate
    from neuro_erc.model import build_model
    from neuro_erc.run_config import TrainConfig

    torch.manual_seed(1)
    cfg = from_dict(TrainConfig, {"arch": "stream", "model": {
        "modalities": STREAM_MODALITIES, "input_dims": STREAM_DIMS, "n_classes": 7, "dropout": 0.1,
        "core": {"dim": 16, "depth": 2, "mlp_ratio": 2, "T": 3}, "stream": stream}})
    model = build_model(cfg)
    with torch.no_grad():
        for _ in range(3):
            model(collate(stream_data.split("train"), STREAM_MODALITIES))
    return model.eval()


@pytest.fixture(scope="session")
def stream_model(stream_data):
    return build_stream_model(stream_data)


@pytest.fixture(scope="session")
def stream_model_mlp_on_attention(stream_data):
    """The same, each block's MLP reading its attention's output (``stream.mlp_input`` "attention")."""
    return build_stream_model(stream_data, mlp_input="attention")


@pytest.fixture(scope="session")
def stream_run(tmp_path_factory) -> Path:
    """A run directory of `train --dataset synthetic --arch stream` (1 epoch, text only, T = 2, a small core)."""
    import json

    from neuro_erc.cli import main

    out = tmp_path_factory.mktemp("stream_cli_run")
    config = out / "config_in.json"
    config.write_text(json.dumps({"threads": 1, "model": {"core": {"dim": 32, "depth": 1, "mlp_ratio": 2}}}))
    run = out / "run"
    assert main(["train", "--dataset", "synthetic", "--arch", "stream", "--epochs", "1", "--T", "2", "--modalities", "t",
                 "--config", str(config), "--out", str(run), "--quiet", "--no-tensorboard"]) == 0
    return run


@pytest.fixture(scope="session")
def assert_causal():
    """A check for causal dialogue models: for each utterance u of the first dialogue, changing the
    later utterances' features and speakers leaves the logits up to u as they were, bit for bit,
    and does change the later ones (so the change reached the model)."""
    from neuro_erc.data.batching import collate

    def check(model, dialogues, modalities) -> None:
        with torch.no_grad():
            before = model(collate(dialogues, modalities)).logits
        L = len(dialogues[0])
        for u in range(L - 1):
            changed = collate(dialogues, modalities)
            for m in modalities:
                changed.features[m][u + 1:, 0] = torch.randn_like(changed.features[m][u + 1:, 0]) * 5
            changed.speakers[u + 1:, 0] = (changed.speakers[u + 1:, 0] + 1) % 3
            with torch.no_grad():
                after = model(changed).logits
            assert torch.equal(after[: u + 1, 0], before[: u + 1, 0]), f"utterance ≤ {u} changed"
            assert not torch.equal(after[u + 1:L, 0], before[u + 1:L, 0])  # the change reached the model

    return check
