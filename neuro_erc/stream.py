"""``neuro-erc stream``: utterances in as JSON lines, one prediction out per utterance as it arrives.

Input, one JSON object per line (``--input FILE``, or ``-`` for stdin)::

    {"dialogue": "d7", "speaker": "Ross", "text": "Oh my God!"}
    {"dialogue": "d7", "speaker": "Rachel", "features": {"t": [0.01, ...], "a": [...]}}

``dialogue`` and ``speaker`` are strings or integers; ``text`` is embedded with the
checkpoint's own text encoder (``config.text_model``: MiniLM or a fine-tuned directory, in the
input format it was tuned on; accepted only from a checkpoint trained on MELD/IEMOCAP text);
``features`` gives one vector per modality of the model, of the widths it was trained on.

Output, one line per utterance, flushed at once::

    {"dialogue": "d7", "index": 0, "emotion": "surprise", "probabilities": {"neutral": 0.12, ...},
     "latency_ms": 3.9, "embed_ms": 6.1}

``latency_ms`` is the model's step (the spiking cores and readout for one utterance window,
and the host's few tensor ops around it); ``embed_ms``, for text only, the encoder's time.

``--backend lava`` runs the checkpoint's exported streaming graph as one compiled Lava network
(float, spike-exact against Norse: docs/export.md §7): the network holds one dialogue's state,
so one dialogue is open at a time and an utterance of another resets it (said on stderr).

Each dialogue keeps its neuron state (a :class:`~neuro_erc.model.stream.StreamModel` state),
its speakers (indices in order of first turn, as in training batches) and its utterance
count; a new dialogue id starts from rest, and dialogues may interleave. At most
``--max-dialogues`` are kept: the one used longest ago is dropped (said on stderr) and would
start from rest again. A bad line gets one line on stderr, ``neuro-erc stream: line N: ...``,
and the stream goes on; the exit status is 1 if any line was refused. Predictions equal the
batch model's (``evaluate``) for the same dialogues: the stream model is causal and computes
every current the same way alone or in a batch.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

import torch

from .cli_types import positive_int
from .config import show
from .data.types import DataError
from .errors import ConfigError

TEXT_DATASETS = ("meld", "iemocap")  # their text features come from config.text_model
_ID_TYPES = "a string or an integer"


@dataclass
class DialogueState:
    """What the stream keeps of one open dialogue."""

    neurons: dict = field(default_factory=dict)  # population -> Norse state ({} = at rest)
    speakers: dict = field(default_factory=dict)  # speaker -> index, in order of first turn
    last_speaker: Any = None
    index: int = 0  # utterances seen
    texts: list[str] = field(default_factory=list)  # earlier texts the encoder's input format reads


@dataclass
class Utterance:
    """A parsed input line."""

    dialogue: Any  # as given (echoed back)
    speaker: Any
    text: str | None = None
    features: dict[str, list[float]] | None = None


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def parse_line(line: str, dims: dict[str, int], takes_text: bool, why_no_text: str) -> Utterance:
    """One input line → :class:`Utterance`; a DataError says what is wrong with it."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got {show(obj)}")
    for key in ("dialogue", "speaker"):
        if key not in obj:
            raise DataError(f"no {key!r} (each line needs \"dialogue\", \"speaker\" and \"text\" or \"features\")")
        if not _is_id(obj[key]):
            raise DataError(f"{key!r} must be {_ID_TYPES}, got {show(obj[key])}")
    has_text, has_features = "text" in obj, "features" in obj
    if has_text == has_features:
        raise DataError("give exactly one of \"text\" and \"features\"" if has_text else "no \"text\" and no \"features\"")
    utt = Utterance(obj["dialogue"], obj["speaker"])
    if has_text:
        if not takes_text:
            raise DataError(f"this checkpoint takes \"features\", not text: {why_no_text}")
        if not isinstance(obj["text"], str):
            raise DataError(f"\"text\" must be a string, got {show(obj['text'])}")
        utt.text = obj["text"]
        return utt
    feats = obj["features"]
    if not isinstance(feats, dict) or set(feats) != set(dims):
        got = sorted(feats) if isinstance(feats, dict) else show(feats)
        raise DataError(f"\"features\" must map exactly the model's modalities {sorted(dims)} to vectors; got {got}")
    for m, width in dims.items():
        vec = feats[m]
        if not (isinstance(vec, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec)):
            raise DataError(f"features[{m!r}] must be a list of numbers")
        if len(vec) != width:
            raise DataError(f"features[{m!r}] has {len(vec)} numbers; the model takes {width}")
        bad = next((i for i, x in enumerate(vec) if not math.isfinite(x)), None)
        if bad is not None:
            raise DataError(f"features[{m!r}][{bad}] is {vec[bad]}: every number must be finite")
    utt.features = feats
    return utt


class LavaStep:
    """``StreamModel.step``'s signature on the model's exported streaming graph, compiled once into
    one Lava network (:class:`~neuro_erc.export.lava_stream.StreamLava`, float: spike-exact).

    The network holds one dialogue's state, so the stream keeps one dialogue open
    (``max_dialogues`` 1): an utterance of another dialogue resets the network to rest.
    """

    def __init__(self, model):
        from .export.lava_stream import StreamLava
        from .export.stream_graph import stream_to_nir

        self.network = StreamLava(stream_to_nir(model))  # on the CPU, in eval mode: Streamer, Checkpoint.model
        self.owner: dict | None = None  # the neuron state (a DialogueState's) the network now holds

    def __call__(self, features: dict[str, torch.Tensor], index: torch.Tensor, same: torch.Tensor, state: dict):
        if state is not self.owner:
            self.network.reset()
            self.owner = state
        logits, _ = self.network.utterance({m: x[0].cpu().numpy() for m, x in features.items()}, int(index[0]),
                                           bool(same[0]))
        return torch.from_numpy(logits)[None]

    def close(self) -> None:
        self.network.close()


class Streamer:
    """A stream model checkpoint with the states of the open dialogues; :meth:`predict` one utterance.

    ``backend`` ``"norse"`` runs :meth:`StreamModel.step`; ``"lava"`` a :class:`LavaStep` (one
    open dialogue at a time). :meth:`close` releases the backend.
    """

    def __init__(self, ckpt, device: torch.device, max_dialogues: int, backend: str = "norse"):
        cfg = ckpt.config
        if cfg.arch != "stream":
            raise ConfigError(f"{ckpt.source}: a {cfg.arch!r} checkpoint cannot stream: its context reads the whole "
                              "dialogue, later utterances included. Train a causal model with `neuro-erc train --arch stream`")
        if backend == "lava":
            if cfg.ann_twin:
                raise ConfigError(f"{ckpt.source}: the ANN twin of a stream model (ReLU, no spikes) does not run on "
                                  "Lava; use --backend norse")
            device, max_dialogues = torch.device("cpu"), 1  # the network holds one dialogue; its host part is numpy
        self.model = ckpt.model(device)
        self.step = LavaStep(self.model) if backend == "lava" else self.model.step
        self.device, self.labels, self.max_dialogues = device, ckpt.labels, max_dialogues
        self.dims = dict(cfg.model.input_dims)
        self.text_model = cfg.text_model if cfg.dataset in TEXT_DATASETS and list(self.dims) == ["t"] else None
        self.why_no_text = (f"it was trained on dataset {cfg.dataset!r}, whose features do not come from a text "
                            f"encoder; give \"features\": {{{', '.join(f'{m!r}: [{w} numbers]' for m, w in self.dims.items())}}}")
        self.dialogues: OrderedDict[str, DialogueState] = OrderedDict()

    def dialogue(self, utt: Utterance) -> tuple[DialogueState, str | None]:
        """The state of ``utt``'s dialogue (new ones at rest), and the id of one dropped to make room."""
        key, dropped = json.dumps(utt.dialogue), None
        if key in self.dialogues:
            self.dialogues.move_to_end(key)
        else:
            if len(self.dialogues) >= self.max_dialogues:
                dropped = self.dialogues.popitem(last=False)[0]
            self.dialogues[key] = DialogueState()
        return self.dialogues[key], dropped

    def embed(self, utt: Utterance, state: DialogueState) -> torch.Tensor:
        """The text's feature vector [1, D] from the checkpoint's encoder, in its input format."""
        from .features.text import InputFormat, crossfit_folds, embed_texts, fold_of

        text_input = InputFormat.of(self.text_model)
        folds = crossfit_folds(self.text_model)
        encoder = str(Path(self.text_model) / f"fold{fold_of(str(utt.dialogue), folds)}") if folds else self.text_model
        state.texts = (state.texts + [utt.text])[-(text_input.past_utterances + 1):]
        vector = embed_texts(text_input.inputs(state.texts)[-1:], model=encoder, batch_size=1, progress=False)
        return torch.from_numpy(vector)

    @torch.no_grad()
    def predict(self, utt: Utterance, state: DialogueState) -> dict:
        """Advance ``state`` by ``utt``'s window; the output line's fields."""
        out: dict[str, Any] = {"dialogue": utt.dialogue, "index": state.index}
        if utt.text is not None:
            t0 = time.perf_counter()
            features = {"t": self.embed(utt, state)}
            embed_ms = 1000 * (time.perf_counter() - t0)
        else:
            features = {m: torch.tensor(utt.features[m], dtype=torch.float32)[None] for m in self.dims}
            embed_ms = None
        t0 = time.perf_counter()
        index = torch.tensor([state.speakers.setdefault(utt.speaker, len(state.speakers))], device=self.device)
        same = torch.tensor([state.index > 0 and state.last_speaker == utt.speaker], device=self.device)
        logits = self.step({m: x.to(self.device) for m, x in features.items()}, index, same, state.neurons)
        probabilities = torch.softmax(logits[0].double(), dim=-1).cpu()
        latency_ms = 1000 * (time.perf_counter() - t0)
        state.index, state.last_speaker = state.index + 1, utt.speaker
        out["emotion"] = self.labels[int(probabilities.argmax())]
        out["probabilities"] = {label: round(float(p), 6) for label, p in zip(self.labels, probabilities)}
        out["latency_ms"] = round(latency_ms, 3)
        if embed_ms is not None:
            out["embed_ms"] = round(embed_ms, 3)
        return out

    def close(self) -> None:
        if isinstance(self.step, LavaStep):
            self.step.close()


def run_stream(streamer: Streamer, lines: Iterator[str], out: IO[str], err: IO[str]) -> int:
    """Answer every line of ``lines`` on ``out`` as it arrives; problems go to ``err``. Returns the
    number of refused lines. Blank lines are skipped."""
    refused = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            utt = parse_line(line, streamer.dims, streamer.text_model is not None, streamer.why_no_text)
            state, dropped = streamer.dialogue(utt)
            if dropped is not None:
                print(f"neuro-erc stream: line {number}: note: more than {streamer.max_dialogues} open dialogues; "
                      f"dialogue {dropped} was dropped (it restarts from rest if it continues)", file=err, flush=True)
            answer = streamer.predict(utt, state)
        except DataError as error:
            refused += 1
            print(f"neuro-erc stream: line {number}: {error}", file=err, flush=True)
            continue
        print(json.dumps(answer), file=out, flush=True)
    return refused


def run(args: argparse.Namespace) -> int:
    from .checkpoint import Checkpoint
    from .run_config import resolve_device

    device = resolve_device(args.device)
    ckpt = Checkpoint.load(args.checkpoint, device)
    torch.set_num_threads(args.threads)
    streamer = Streamer(ckpt, device, args.max_dialogues, args.backend)
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    try:
        refused = run_stream(streamer, iter(source.readline, ""), sys.stdout, sys.stderr)
    finally:
        streamer.close()
        if source is not sys.stdin:
            source.close()
    if refused:
        print(f"neuro-erc stream: {refused} line(s) refused", file=sys.stderr)
    return 1 if refused else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stream", help="run a stream checkpoint on JSON lines, one prediction line per utterance as it arrives",
        description="Reads {\"dialogue\", \"speaker\", \"text\" | \"features\"} JSON lines and writes "
        "{\"dialogue\", \"index\", \"emotion\", \"probabilities\", \"latency_ms\"} lines; each dialogue keeps its "
        "neuron state between lines.",
    )
    parser.add_argument("--checkpoint", required=True, help="a checkpoint of `train --arch stream`")
    parser.add_argument("--backend", choices=["norse", "lava"], default="norse",
                        help="norse (default), or lava: the exported streaming graph as one compiled Lava network "
                             "(float, spike-exact; Python 3.10 with lava-nc; one open dialogue at a time)")
    parser.add_argument("--input", default="-", help="JSON-lines file, or - for stdin (default)")
    parser.add_argument("--max-dialogues", dest="max_dialogues", type=positive_int, default=1024,
                        help="open dialogues kept at most (default 1024); the least recently used is dropped")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch CPU threads for the model (default 1: one utterance is too small to share)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.set_defaults(func=run)
