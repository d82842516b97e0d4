"""Losses: hand/numpy references, contrastive sanity, gradients, and the LossConfig switchboard."""
import math

import numpy as np
import pytest
import torch

from neuro_erc.data import DataError
from neuro_erc.losses import (
    LossConfig,
    class_weights_from_counts,
    cross_entropy,
    dsc_loss,
    inter_class_contrastive_loss,
    soft_hgr_loss,
    total_loss,
)


def test_dsc_matches_hand_computation():
    # softmax rows are [0.25, 0.5, 0.25] and [0.5, 0.25, 0.25]; gold probabilities 0.5 and 0.25
    logits = torch.log(torch.tensor([[1.0, 2.0, 1.0], [2.0, 1.0, 1.0]]))
    labels = torch.tensor([1, 2])
    # p̃ = (1-p)^1.5 p: 0.5^2.5 = 0.1767767, 0.75^1.5 * 0.25 = 0.1623798
    # 1 - (2p̃ + 0.5) / (p̃ + 1.5): 0.4909558, 0.5038682; mean 0.4974120
    assert dsc_loss(logits, labels, alpha=1.5, gamma=0.5).item() == pytest.approx(0.4974120, abs=1e-6)


def _soft_hgr_numpy(feats):
    total = 0.0
    for i in range(len(feats)):
        for j in range(i + 1, len(feats)):
            f = feats[i] - feats[i].mean(0)
            g = feats[j] - feats[j].mean(0)
            n = len(f)
            cov_f, cov_g = np.cov(f, rowvar=False), np.cov(g, rowvar=False)
            total += -np.trace(f.T @ g) / (n - 1) + 0.5 * np.trace(cov_f @ cov_g)
    return total


def test_soft_hgr_matches_numpy():
    rng = np.random.default_rng(0)
    feats = [rng.normal(size=(7, 4)) + 3.0 for _ in range(3)]  # an offset: centring matters
    ours = soft_hgr_loss([torch.tensor(f) for f in feats]).item()
    assert ours == pytest.approx(_soft_hgr_numpy(feats), rel=1e-9)


def test_soft_hgr_rewards_correlated_features():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(64, 4, generator=g)
    assert soft_hgr_loss([f, f]) < soft_hgr_loss([f, torch.randn(64, 4, generator=g)])


def test_soft_hgr_edge_cases():
    with pytest.raises(ValueError, match="two modalities"):
        soft_hgr_loss([torch.randn(5, 3)])
    with pytest.raises(DataError, match="one shape"):
        soft_hgr_loss([torch.randn(5, 3), torch.randn(5, 4)])
    assert soft_hgr_loss([torch.randn(1, 3), torch.randn(1, 3)]).item() == 0.0


def test_supcon_lower_for_clustered_features():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat(8)
    centres = torch.randn(4, 16, generator=g) * 3
    clustered = centres[labels] + 0.3 * torch.randn(32, 16, generator=g)
    shuffled = clustered[torch.randperm(32, generator=g)]
    assert inter_class_contrastive_loss(clustered, labels) < inter_class_contrastive_loss(shuffled, labels)


def test_supcon_matches_direct_formula_with_focal_and_class_weights():
    g = torch.Generator().manual_seed(2)
    x, labels = torch.randn(6, 3, generator=g), torch.tensor([0, 0, 1, 1, 1, 2])  # class 2: no positive
    cw = torch.tensor([1.0, 2.0, 5.0])
    z = torch.nn.functional.normalize(x, dim=-1).tolist()
    dot = lambda a, b: sum(p * q for p, q in zip(a, b)) / 0.1
    num, den = 0.0, 0.0
    for i in range(6):
        pos = [p for p in range(6) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        norm = sum(math.exp(dot(z[i], z[a])) for a in range(6) if a != i)
        probs = [math.exp(dot(z[i], z[p])) / norm for p in pos]
        li = -sum((1 - q) ** 2 * math.log(q) for q in probs) / len(pos)
        num, den = num + cw[labels[i]].item() * li, den + cw[labels[i]].item()
    ours = inter_class_contrastive_loss(x, labels, 0.1, focal_gamma=2.0, class_weights=cw)
    assert ours.item() == pytest.approx(num / den, rel=1e-5)


def test_supcon_without_positives_is_zero_and_attached():
    x = torch.randn(3, 4, requires_grad=True)
    loss = inter_class_contrastive_loss(x, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0 and loss.requires_grad


def test_class_weights_from_counts():
    w = class_weights_from_counts([30, 10, 0, 60])
    torch.testing.assert_close(w, torch.tensor([100 / 90, 100 / 30, 0.0, 100 / 180]))
    assert float((w * torch.tensor([30.0, 10, 0, 60])).sum()) == pytest.approx(100.0)
    with pytest.raises(DataError):
        class_weights_from_counts([0, 0])


def test_cross_entropy_ignores_padding_label():
    logits, labels = torch.randn(3, 4), torch.tensor([1, -100, 2])
    torch.testing.assert_close(cross_entropy(logits, labels), cross_entropy(logits[[0, 2]], labels[[0, 2]]))


def _inputs(seed=0, n=12, c=4, d=5):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=g, requires_grad=True)
    labels = torch.arange(n) % c
    mods = {m: torch.randn(n, d, generator=g, requires_grad=True) for m in "tav"}
    fused = torch.randn(n, d, generator=g, requires_grad=True)
    return logits, labels, mods, fused


@pytest.mark.parametrize(
    "term,reaches",
    [("ce", ["logits"]), ("dsc", ["logits"]), ("hgr", ["t", "a", "v"]), ("contrastive", ["fused"])],
)
def test_each_term_alone_reaches_its_inputs(term, reaches):
    weights = {"ce": 0.0, "dsc": 0.0, "hgr": 0.0, "contrastive": 0.0, term: 1.0}
    logits, labels, mods, fused = _inputs()
    loss, parts = total_loss(LossConfig(**weights), logits, labels, mods, fused)
    assert set(parts) == {term, "total"} and parts[term] == pytest.approx(parts["total"])
    loss.backward()
    tensors = {"logits": logits, "fused": fused, **mods}
    for name, t in tensors.items():
        has_grad = t.grad is not None and t.grad.abs().sum() > 0
        assert has_grad == (name in reaches), (term, name)


def test_total_combines_weighted_terms():
    logits, labels, mods, fused = _inputs(1)
    cfg = LossConfig(ce=1.0, dsc=0.5, hgr=0.1, contrastive=0.2, class_weights=True)
    cw = class_weights_from_counts([1, 2, 3, 4])
    loss, parts = total_loss(cfg, logits, labels, list(mods.values()), fused, class_weights=cw)
    expected = parts["ce"] + 0.5 * parts["dsc"] + 0.1 * parts["hgr"] + 0.2 * parts["contrastive"]
    assert loss.item() == pytest.approx(expected, rel=1e-6) and parts["total"] == pytest.approx(expected, rel=1e-6)
    assert parts["ce"] == pytest.approx(cross_entropy(logits, labels, cw).item())


def test_bad_configs_and_inputs_are_rejected():
    logits, labels, mods, fused = _inputs()
    with pytest.raises(ValueError):
        LossConfig(ce=0.0)
    with pytest.raises(ValueError):
        LossConfig(dsc=-1.0)
    with pytest.raises(ValueError, match="class_weights"):
        total_loss(LossConfig(class_weights=True), logits, labels)
    with pytest.raises(ValueError, match="fused_feats"):
        total_loss(LossConfig(contrastive=1.0), logits, labels)
    with pytest.raises(DataError, match="remove padding"):
        total_loss(LossConfig(), logits, torch.full_like(labels, -100))


# ---- the spike budget ----------------------------------------------------------------------------

from neuro_erc.config import FieldError, from_dict  # noqa: E402
from neuro_erc.data.batching import collate  # noqa: E402
from neuro_erc.data.synthetic import make_synthetic  # noqa: E402
from neuro_erc.errors import ConfigError  # noqa: E402
from neuro_erc.losses import rate_penalty  # noqa: E402
from neuro_erc.model import build_model  # noqa: E402
from neuro_erc.run_config import TrainConfig  # noqa: E402
from neuro_erc.snn.lif import LIF  # noqa: E402
from neuro_erc.snn.rates import SplitFiringRate, mean_firing_rate, population_rates  # noqa: E402
from neuro_erc.snn.stateful import BoxLIF, CubaLIF  # noqa: E402


def test_rate_penalty_is_one_sided_and_squared_and_per_layer_the_mean_over_populations():
    assert [rate_penalty(torch.tensor(r), 0.05).item() for r in (0.02, 0.05, 0.25)] == pytest.approx([0.0, 0.0, 0.04])
    rates = torch.tensor([0.02, 0.05, 0.25], requires_grad=True)  # one per population
    penalty = rate_penalty(rates, 0.05)
    assert penalty.item() == pytest.approx(0.04 / 3)
    penalty.backward()
    assert rates.grad.tolist() == pytest.approx([0.0, 0.0, 0.4 / 3])  # 2 (r − r*) / P, above the budget only


def test_total_loss_adds_the_weighted_rate_term_and_needs_a_rate():
    logits, labels = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    cfg = LossConfig(rate=10.0, rate_target=0.1)
    loss, parts = total_loss(cfg, logits, labels, firing_rate=torch.tensor(0.3))
    assert parts["rate"] == pytest.approx(0.04)
    assert loss.item() == pytest.approx(parts["ce"] + 10 * 0.04, rel=1e-6)
    with pytest.raises(ConfigError, match="no spiking populations"):
        total_loss(cfg, logits, labels)
    with pytest.raises(FieldError, match="rate_target"):
        LossConfig(rate_target=1.5)
    with pytest.raises(FieldError, match="rate"):
        LossConfig(rate=-1.0)


@pytest.mark.parametrize("arch", ["spikemo", "stream"])
def test_mean_firing_rate_is_the_counted_rate_and_reaches_the_weights(arch):
    dims = {"t": 6, "a": 4}
    cfg = from_dict(TrainConfig, {"arch": arch, "model": {
        "modalities": list(dims), "input_dims": dims, "n_classes": 3, "dim": 8, "classifier_hidden": 8,
        "fusion_layers": 1, "fusion_heads": 2, "context": "none", "core": {"dim": 8, "depth": 1, "mlp_ratio": 1, "T": 3}}})
    torch.manual_seed(0)
    model = build_model(cfg).train()
    data = make_synthetic(seed=0, n_train=3, n_dev=1, n_test=1, dims=dims, min_len=2, max_len=5)
    batch = collate(data.split("train"), list(dims))
    model(batch)
    rate = mean_firing_rate(model)
    populations = [m for m in model.modules() if isinstance(m, (LIF, BoxLIF, CubaLIF))]
    spikes = sum(float(m.last_spike_sum) for m in populations)
    steps = sum(float(m.last_neuron_steps) for m in populations)
    assert 0 < float(rate) < 1 and float(rate) == pytest.approx(spikes / steps)
    per_layer = population_rates(model)
    assert per_layer.tolist() == pytest.approx([float(m.last_spike_sum) / float(m.last_neuron_steps) for m in populations])
    rate.backward()
    grads = [p.grad for name, p in model.named_parameters() if "encoder" in name and p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)


def test_the_per_synapse_rate_weights_each_population_by_its_fan_out_and_only_the_stream_model_declares_it():
    dims = {"t": 6}
    model_cfg = {"modalities": ["t"], "input_dims": dims, "n_classes": 3, "dim": 8, "classifier_hidden": 8,
                 "fusion_layers": 1, "fusion_heads": 2, "context": "none", "core": {"dim": 8, "depth": 1, "mlp_ratio": 2, "T": 3}}
    data = make_synthetic(seed=0, n_train=3, n_dev=1, n_test=1, dims=dims, min_len=2, max_len=5)
    batch = collate(data.split("train"), ["t"])
    stream = build_model(from_dict(TrainConfig, {"arch": "stream", "model": model_cfg})).train()
    stream(batch)
    populations = [m for m in stream.modules() if isinstance(m, (BoxLIF, CubaLIF))]
    events = sum(float(m.last_spike_sum) * m.synapses_per_spike for m in populations)
    synapse_steps = sum(float(m.last_neuron_steps) * m.synapses_per_spike for m in populations)
    rate = mean_firing_rate(stream, per_synapse=True)
    assert float(rate) == pytest.approx(events / synapse_steps) and float(rate) != pytest.approx(float(mean_firing_rate(stream)))
    meter = SplitFiringRate()
    meter.add(stream)
    assert meter.synaptic_rate == pytest.approx(float(rate)) and meter.rate == pytest.approx(float(mean_firing_rate(stream)))
    rate.backward()
    assert any(float(p.grad.abs().sum()) > 0 for name, p in stream.named_parameters() if "encoder" in name and p.grad is not None)

    spikemo = build_model(from_dict(TrainConfig, {"model": {**model_cfg, "input_dims": dims}}))
    spikemo(batch)
    with pytest.raises(ConfigError, match="does not declare it"):
        mean_firing_rate(spikemo, per_synapse=True)
    meter = SplitFiringRate()
    meter.add(spikemo)
    assert meter.rate is not None and meter.synaptic_rate is None
    with pytest.raises(ConfigError, match="rate_per_synapse.*only the stream model"):
        from_dict(TrainConfig, {"loss": {"rate": 1.0, "rate_per_synapse": True}})
    with pytest.raises(FieldError, match="rate_per_synapse.*one budget"):
        LossConfig(rate=1.0, rate_per_layer=True, rate_per_synapse=True)
