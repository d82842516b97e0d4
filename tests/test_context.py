"""Context encoders: shapes, masking (padding changes nothing for real utterances), causality."""
import pytest
import torch

from neuro_erc.data import DataError
from neuro_erc.model.context import CONTEXT_KINDS, DialogueRNN, build_context_encoder, reverse_dialogues

D = 8


def _dialogue(n: int, n_speakers: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g), torch.randint(0, n_speakers, (n,), generator=g)


def _batch(dialogues):
    """Pad dialogues [(x [n, D], speakers [n])] into x [L, B, D], mask [L, B], speakers [L, B]."""
    L, B = max(len(x) for x, _ in dialogues), len(dialogues)
    x = torch.zeros(L, B, D)
    mask = torch.zeros(L, B, dtype=torch.bool)
    spk = torch.zeros(L, B, dtype=torch.long)
    for b, (xb, sb) in enumerate(dialogues):
        x[: len(xb), b], mask[: len(xb), b], spk[: len(xb), b] = xb, True, sb
    return x, mask, spk


def _encoders():
    torch.manual_seed(0)
    encoders = {kind: build_context_encoder(kind, D, dropout=0.5) for kind in CONTEXT_KINDS}
    encoders["dialoguernn_listener"] = DialogueRNN(D, 0.5, bidirectional=True, listener_state=True)
    return {k: e.eval() for k, e in encoders.items()}


@pytest.mark.parametrize("kind", [*CONTEXT_KINDS, "dialoguernn_listener"])
def test_shape_and_zero_padding(kind):
    enc = _encoders()[kind]
    x, mask, spk = _batch([_dialogue(5, 3, 1), _dialogue(3, 2, 2)])
    y = enc(x, mask, spk)
    assert y.shape == (5, 2, D)
    assert torch.all(y[~mask] == 0)
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("kind", [*CONTEXT_KINDS, "dialoguernn_listener"])
def test_padding_changes_nothing_for_real_utterances(kind):
    enc = _encoders()[kind]
    short, long = _dialogue(4, 3, 3), _dialogue(7, 4, 4)
    with torch.no_grad():
        alone = enc(*_batch([short]))[:, 0]
        padded = enc(*_batch([long, short]))[:4, 1]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-6)


def test_dialoguernn_forward_pass_is_causal():
    torch.manual_seed(0)
    enc = DialogueRNN(D, 0.0, bidirectional=False).eval()
    x, spk = _dialogue(6, 3, 5)
    x2 = x.clone()
    x2[4:] += 10.0
    with torch.no_grad():
        y1 = enc(*_batch([(x, spk)]))[:, 0]
        y2 = enc(*_batch([(x2, spk)]))[:, 0]
    torch.testing.assert_close(y1[:4], y2[:4])
    assert not torch.allclose(y1[4:], y2[4:])


@pytest.mark.parametrize("kind", ["dialoguernn", "bigru"])
def test_bidirectional_encoders_see_the_future_and_the_speaker(kind):
    enc = _encoders()[kind]
    x, _ = _dialogue(6, 2, 6)
    alternating, one_speaker = torch.tensor([0, 1, 0, 1, 0, 1]), torch.zeros(6, dtype=torch.long)
    x2 = x.clone()
    x2[5] += 10.0
    with torch.no_grad():
        y = enc(*_batch([(x, alternating)]))[:, 0]
        later_changed = enc(*_batch([(x2, alternating)]))[:, 0]
        speakers_changed = enc(*_batch([(x, one_speaker)]))[:, 0]
    assert not torch.allclose(y[0], later_changed[0])
    assert not torch.allclose(y, speakers_changed)


def test_dialoguernn_ignores_how_speakers_are_numbered():
    # party states start equal and share one cell: only who-speaks-when matters, not the index
    enc = _encoders()["dialoguernn"]
    x, _ = _dialogue(5, 2, 10)
    spk = torch.tensor([0, 1, 1, 0, 2])
    with torch.no_grad():
        torch.testing.assert_close(enc(*_batch([(x, spk)])), enc(*_batch([(x, (spk + 1) % 3)])))


def test_gradients_reach_every_parameter_of_dialoguernn():
    torch.manual_seed(0)
    enc = DialogueRNN(D, 0.1, bidirectional=True, listener_state=True)
    enc(*_batch([_dialogue(5, 3, 7), _dialogue(3, 2, 8)])).pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_reverse_dialogues_reverses_real_part_only():
    x = torch.arange(8.0).view(4, 2)
    lengths = torch.tensor([4, 2])
    out = reverse_dialogues(x, lengths)
    assert out[:, 0].tolist() == [6.0, 4.0, 2.0, 0.0]
    assert out[:, 1].tolist() == [3.0, 1.0, 5.0, 7.0]
    assert torch.equal(reverse_dialogues(out, lengths), x)


def test_bad_inputs_are_rejected():
    enc = build_context_encoder("bigru", D, 0.0)
    x, mask, spk = _batch([_dialogue(3, 2, 9)])
    holey = mask.clone()
    holey[1, 0] = False
    with pytest.raises(DataError, match="prefix"):
        enc(x, holey, spk)
    with pytest.raises(DataError, match=r"\[L, B, 8\]"):
        enc(x[..., :4], mask, spk)
    with pytest.raises(ValueError, match="unknown context encoder"):
        build_context_encoder("lstm", D, 0.0)
