"""``neuro-erc plot raster`` on a tiny trained checkpoint; the recording behind it."""
import numpy as np
import pytest

import neuro_erc.data.registry as registry
import neuro_erc.run_config as train_module
from neuro_erc.cli import main
from neuro_erc.config import from_dict
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.train import TrainConfig, train
from neuro_erc.viz import _neuron_subset, record_dialogue


def small(name="synthetic", data=None, **kwargs):
    return make_synthetic(seed=0, n_train=12, n_dev=4, n_test=2, max_len=6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """best.pt of a 1-epoch run of a tiny SDSA model (T = 3) on a few synthetic dialogues."""
    cfg = from_dict(TrainConfig, {
        "epochs": 1, "batch_size": 4,
        "model": {"modalities": ["t", "v"], "dim": 16, "classifier_hidden": 16, "fusion_layers": 1, "context": "none",
                  "core": {"dim": 16, "depth": 1, "mlp_ratio": 2, "T": 3}},
    })
    run = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "load_dataset", small)
        train(cfg, run, show_progress=False)
    return run / "best.pt"


@pytest.fixture
def tiny_data(monkeypatch):
    monkeypatch.setattr(registry, "load_dataset", small)


def raster_args(checkpoint, out, dialogue="dev-0001", utterance="2", *extra):
    return ["plot", "raster", "--checkpoint", str(checkpoint), "--dataset", "synthetic", "--dialogue", dialogue,
            "--utterance", utterance, "--out", str(out), *extra]


def test_raster_command_writes_both_pngs(checkpoint, tiny_data, tmp_path):
    out = tmp_path / "figs" / "raster.png"
    assert main(raster_args(checkpoint, out, "dev-0001", "2", "--modality", "v")) == 0
    assert out.stat().st_size > 10_000
    assert (tmp_path / "figs" / "raster_dialogue.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (("nope", "0"), "split 'dev' has no dialogue 'nope'; its dialogues are: dev-0000, dev-0001, dev-0002, dev-0003"),
    (("dev-0001", "99"), "dialogue 'dev-0001' (dev) has"),
    (("dev-0001", "0", "--modality", "a"), "no spiking core for modality 'a'; it has ['t', 'v']"),
])
def test_raster_command_names_what_exists(checkpoint, tiny_data, tmp_path, capsys, args, message):
    assert main(raster_args(checkpoint, tmp_path / "r.png", *args)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.png").exists()


def test_record_dialogue_keeps_every_lif_layer_per_utterance(checkpoint):
    ckpt = Checkpoint.load(checkpoint)
    model = ckpt.model()
    dialogue = small().split("dev")[1]
    record = record_dialogue(model, dialogue, "t", ckpt.labels)
    L = len(dialogue)
    core = model.cores["t"].core
    assert list(record.spikes) == [i.name for i in core.describe() if i.kind in ("lif", "and")]
    spikes = record.spikes  # the AND units are their operands' product: qc broadcasts the per-dialogue context
    np.testing.assert_array_equal(spikes["blocks.0.attn.kv_and"], spikes["blocks.0.attn.k.lif"] * spikes["blocks.0.attn.v.lif"])
    np.testing.assert_array_equal(spikes["blocks.0.attn.qc_and"], spikes["blocks.0.attn.q.lif"] * spikes["blocks.0.attn.context_lif"])
    assert spikes["blocks.0.attn.qc_and"].shape == (3, L, 16)
    assert record.spikes["encoder.lif"].shape == (3, L, 16)
    assert record.spikes["blocks.0.attn.context_lif"].shape == (3, 1, 16)  # one context per dialogue
    assert record.spikes["blocks.0.mlp.fc1.lif"].shape == (3, L, 32)
    assert set(np.unique(record.spikes["encoder.lif"])) <= {0.0, 1.0}
    np.testing.assert_allclose(record.dswa_weights.sum(0), 1.0, rtol=1e-5)
    assert record.predicted.shape == (L,)


def test_neuron_subset_says_what_it_shows():
    keep, text = _neuron_subset(1024, 64)
    assert (len(keep), keep[1], text) == (64, 16, "every 16th of 1024 neurons")
    assert _neuron_subset(128, 64)[1] == "every 2nd of 128 neurons" and _neuron_subset(704, 64)[1] == "every 11th of 704 neurons"
    assert _neuron_subset(16, 64)[1] == "16 neurons"

