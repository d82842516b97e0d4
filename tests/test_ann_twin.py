"""The stream model's ANN twin: trains and evaluates, is causal and streams, round-trips its
checkpoint, has the shapes the energy counter charges the ANN for, and ``bench --ann-twin``
writes its W-F1 into every row."""
import csv
import json

import pytest
import torch

import neuro_erc.data.registry as registry
import neuro_erc.run_config as run_config
from neuro_erc.checkpoint import Checkpoint
from neuro_erc.cli import main
from neuro_erc.config import from_dict
from neuro_erc.data.batching import collate
from neuro_erc.data.synthetic import make_synthetic
from neuro_erc.energy import count_whole, whole_per_utterance
from neuro_erc.errors import ConfigError
from neuro_erc.model import build_model
from neuro_erc.model.ann_twin import LeakyAverage, StreamTwin
from neuro_erc.model.stream import StreamModel, Synapse
from neuro_erc.run_config import TrainConfig

MODALITIES = ["t", "a"]
DIMS = {"t": 12, "a": 8, "v": 8}
MODEL = {"modalities": MODALITIES, "core": {"dim": 16, "depth": 1, "mlp_ratio": 2, "T": 3}}


def tiny_data():
    return make_synthetic(seed=3, n_train=10, n_dev=5, n_test=2, dims=DIMS, max_len=7)


def twin_config(**changes) -> TrainConfig:
    model = {**MODEL, "input_dims": {m: DIMS[m] for m in MODALITIES}, "n_classes": 7}
    return from_dict(TrainConfig, {"arch": "stream", "ann_twin": True, "model": model, **changes})


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture(scope="module")
def twin(data):
    torch.manual_seed(0)
    model = build_model(twin_config())
    with torch.no_grad():  # training-mode passes: batch-norm statistics that are not the init's
        for _ in range(3):
            model.train()(collate(data.split("train"), MODALITIES))
    return model.eval()


def test_the_switch_builds_the_twin_and_is_refused_where_it_does_not_apply():
    assert isinstance(build_model(twin_config()), StreamTwin)
    assert isinstance(build_model(twin_config(ann_twin=False)), StreamModel)
    with pytest.raises(ConfigError, match="ann_twin: expected false with arch 'spikemo'"):
        from_dict(TrainConfig, {"arch": "spikemo", "ann_twin": True})
    with pytest.raises(ConfigError, match="loss.rate: expected 0 with ann_twin"):
        twin_config(loss={"rate": 1.0})


def test_leaky_average_keeps_e_to_the_minus_one_over_h_per_utterance():
    avg = LeakyAverage(torch.tensor([1.0, 4.0]))
    x = torch.tensor([[[2.0, 2.0]], [[0.0, 0.0]], [[0.0, 0.0]]])  # [U=3, B=1, N=2]
    real = torch.tensor([[True], [True], [False]])
    out = avg(x, real, None)
    a = torch.exp(-1 / torch.tensor([1.0, 4.0]))
    assert torch.allclose(out[0, 0], 2 * (1 - a)) and torch.allclose(out[1, 0], 2 * (1 - a) * a)
    assert (out[2] == 0).all()  # padding


def test_later_utterances_do_not_change_earlier_logits(twin, data, assert_causal):
    assert_causal(twin, data.split("dev"), MODALITIES)


def test_streaming_one_utterance_at_a_time_equals_the_whole_dialogue(twin, data):
    dialogue = data.split("dev")[0]
    with torch.no_grad():
        whole = twin(collate([dialogue], MODALITIES)).logits[:, 0]
        speakers, state, streamed = {}, {}, []
        for i, utt in enumerate(dialogue.utterances):
            index = torch.tensor([speakers.setdefault(utt.speaker, len(speakers))])
            same = torch.tensor([i > 0 and utt.speaker == dialogue.utterances[i - 1].speaker])
            feats = {m: torch.from_numpy(utt.features[m])[None] for m in MODALITIES}
            streamed.append(twin.step(feats, index, same, state)[0])
    assert torch.equal(torch.stack(streamed), whole)


def test_the_twin_has_the_shapes_the_energy_counter_charges_the_ann_for(twin, data):
    """``ann_macs``/``ann_outputs`` of the SNN's counter = what the twin itself computes: every
    synapse call's MACs at real rows, each product D multiplications, each activation once."""
    batch = collate(data.split("dev"), MODALITIES)
    snn = build_model(twin_config(ann_twin=False))
    whole = whole_per_utterance(*count_whole(snn, [batch]))
    macs, outputs = [0.0], [0.0]

    def on_synapse(module, args, out):
        macs[0] += float(args[1].sum()) * module.linear.in_features * module.linear.out_features

    def on_relu_output(module, args, out):
        outputs[0] += float(args[1].sum()) * out.shape[-1]

    hooks = [m.register_forward_hook(on_synapse) for m in twin.modules() if isinstance(m, Synapse)]
    hooks += [m.register_forward_hook(on_relu_output) for m in twin.modules()
              if type(m).__name__ in ("ReLULayer", "LeakyAverage")]
    with torch.no_grad():
        twin(batch)
    for h in hooks:
        h.remove()
    utterances = float(batch.mask.sum())
    products = 2 * len(MODALITIES) * MODEL["core"]["depth"] * MODEL["core"]["dim"] * utterances  # k⊙v, q⊙C
    assert whole["ann_macs"] == pytest.approx((macs[0] + products) / utterances)
    assert whole["ann_outputs"] == pytest.approx(outputs[0] / utterances)


@pytest.fixture
def tiny_dataset(monkeypatch):
    for module in (registry, run_config):
        monkeypatch.setattr(module, "load_dataset", lambda *a, **kw: tiny_data())


def test_the_twin_trains_evaluates_and_its_checkpoint_rebuilds_it(tiny_dataset, tmp_path):
    config = tmp_path / "twin.json"
    config.write_text(json.dumps({"arch": "stream", "ann_twin": True, "batch_size": 4, "threads": 1, "model": MODEL}))
    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--config", str(config), "--epochs", "1", "--out", str(run),
                 "--quiet", "--no-tensorboard"]) == 0
    ckpt = Checkpoint.load(run / "best.pt")
    assert ckpt.config.ann_twin and isinstance(ckpt.model(), StreamTwin)
    report = tmp_path / "REPORT.json"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--dataset", "synthetic", "--split", "dev",
                 "--out", str(report), "--device", "cpu"]) == 0
    assert json.loads(report.read_text())["weighted_f1"] == json.loads((run / "report_dev.json").read_text())["weighted_f1"]
    # round trip: saved again and loaded, the same twin (same logits)
    copy = tmp_path / "copy.pt"
    ckpt.save(copy)
    batch = collate(tiny_data().split("dev"), MODALITIES)
    with torch.no_grad():
        assert torch.equal(Checkpoint.load(copy).model()(batch).logits, ckpt.model()(batch).logits)
    # what needs spikes refuses it, saying why
    for command in (["export", "nir", "--out", str(tmp_path / "m.nir")],
                    ["plot", "raster", "--dataset", "synthetic", "--dialogue", "dev-0000", "--utterance", "0",
                     "--out", str(tmp_path / "r.png")]):
        assert main([*command, "--checkpoint", str(run / "best.pt")]) == 2
    assert not (tmp_path / "m.nir").exists() and not (tmp_path / "r.png").exists()


def test_bench_ann_twin_trains_the_twin_once_and_writes_its_wf1_in_every_row(tiny_dataset, tmp_path):
    config = tmp_path / "stream.json"
    config.write_text(json.dumps({"arch": "stream", "batch_size": 8, "threads": 1, "model": MODEL}))
    out = tmp_path / "bench"
    args = ["bench", "--dataset", "synthetic", "--T", "2,4", "--epochs", "1", "--config", str(config), "--out", str(out),
            "--ann-twin", "--quiet"]
    assert main(args) == 0
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    twin_report = json.loads((out / "ann_twin" / "report_dev.json").read_text())
    assert [int(r["T"]) for r in rows] == [2, 4]
    assert all(float(r["ann_weighted_f1"]) == twin_report["weighted_f1"] for r in rows)
    assert Checkpoint.load(out / "ann_twin" / "best.pt").config.ann_twin
    assert not (out / "ann_twin" / "energy.json").exists()  # nothing spikes: the twin is not measured as an SNN


def test_bench_refuses_the_twin_for_an_arch_without_one(tiny_dataset, tmp_path, capsys):
    assert main(["bench", "--dataset", "synthetic", "--T", "2", "--epochs", "1", "--out", str(tmp_path / "b"),
                 "--ann-twin", "--quiet"]) == 2
    assert "--ann-twin: the ANN twin is built for arch stream; not for 'spikemo'" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()  # refused before training anything


@pytest.mark.parametrize("ann_twin", [False, True])
@pytest.mark.parametrize("mlp_input", ["stream", "attention"])
def test_the_mlp_reads_what_stream_mlp_input_says_in_the_model_and_its_twin(ann_twin, mlp_input, data):
    model_cfg = {**MODEL, "input_dims": {m: DIMS[m] for m in MODALITIES}, "n_classes": 7, "stream": {"mlp_input": mlp_input}}
    torch.manual_seed(0)
    model = build_model(from_dict(TrainConfig, {"arch": "stream", "ann_twin": ann_twin, "model": model_cfg})).eval()
    block = (model.paths if ann_twin else model.streams)["t"].blocks[0]
    seen = {}
    hooks = [block.attn.register_forward_hook(lambda m, args, out: seen.__setitem__("attention", out)),
             block.fc1.register_forward_hook(lambda m, args, out: seen.__setitem__("mlp_input", args[0]))]
    with torch.no_grad():
        model(collate(data.split("dev"), MODALITIES))
    for h in hooks:
        h.remove()
    assert float(seen["attention"].abs().sum()) > 0
    assert torch.equal(seen["mlp_input"], seen["attention"]) == (mlp_input == "attention")
