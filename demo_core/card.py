"""``ModelCard``: the typed ``config.json`` of a model folder.

The card says what a model is (task, languages, architecture and its config, tokenizer
files), how to present it (names, examples and what to look for in each, decoding defaults)
and where its data comes from. It is read once per folder; everything else reads its fields,
never the JSON. A missing or unknown field, or a field of the wrong type, is a
``CardError`` that names the file and the field.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_MAX_SOURCE_TOKENS = 200
IMPLIED_ATTENTION = {"transformer": "multi-head", "tacotron2-lsa": "location-sensitive"}  # architectures with one kind


class CardError(ValueError):
    """A config.json that is not a valid model card."""


@dataclass(frozen=True)
class DataCredit:
    """Where the training data comes from, as its SOURCE.md asks to credit it."""

    name: str
    licence: str
    attribution: str


@dataclass(frozen=True)
class TokenizerFiles:
    """SentencePiece files in the model folder (the same file twice for a joint vocabulary)."""

    source: str
    target: str
    source_normalizer: str | None = None
    target_normalizer: str | None = None


@dataclass(frozen=True)
class SpeechCard:
    """What a speech-synthesis model needs beyond its weights: its phone inventory, audio
    features and the espeak-ng voice it learned to imitate."""

    symbols: tuple[str, ...]  # the phone embedding's rows, in order
    audio: dict[str, Any]  # demo_core.tts.audio.AudioConfig fields
    voice: str = "en-us"  # espeak-ng voice of the training audio
    words_per_minute: int = 175  # espeak-ng speaking rate of the training audio
    stop_threshold: float = 0.5  # decoding stops once the stop probability passes it
    griffin_lim_iters: int = 32


@dataclass(frozen=True)
class ModelCard:
    """Everything a model folder says about its model."""

    id: str
    task: str  # translation | g2p | summarization | dates | tts
    source_lang: str
    target_lang: str
    architecture: str  # a name in demo_core.models.registry.ARCHITECTURES
    model: dict[str, Any]  # the architecture's config; checked by the registry when built
    tokenizer: TokenizerFiles | None = None  # None: the model reads phones, not SentencePiece pieces
    display_name: str = ""
    description: str = ""
    task_label: str = ""
    group: str = "Other"  # the task menu's section
    menu_order: int = 100  # within a group; lower first
    examples: tuple[str, ...] = ()
    example_notes: tuple[str, ...] = ()  # what to look for in each example
    data: DataCredit | None = None
    max_source_tokens: int = DEFAULT_MAX_SOURCE_TOKENS
    decode_defaults: dict[str, Any] = field(default_factory=dict)  # decoding option -> value
    dataset: str | None = None  # demo_core.tasks.datasets name, for evaluation
    dataset_options: dict[str, Any] | None = None
    splits: dict[str, str] = field(default_factory=dict)  # train / valid / test -> the data set's split
    metric: str = "bleu"
    weights_sha256: str | None = None  # of model.safetensors, written at export, checked on load
    speech: SpeechCard | None = None  # speech-synthesis models only
    notes: dict[str, str] = field(default_factory=dict)  # topic (voice, training, decoding, ...) -> prose for docs

    @property
    def name(self) -> str:
        """What menus call the model."""
        return self.display_name or self.id

    @property
    def attention(self) -> str | None:
        """The attention of the model's card (additive, dot, general), multi-head for a Transformer."""
        kind = self.model.get("attention")
        return str(kind) if kind else IMPLIED_ATTENTION.get(self.architecture)

    def split(self, role: str, default: str) -> str:
        """The data set's name for the ``role`` split (train, valid, test)."""
        return self.splits.get(role, default)

    def to_json(self) -> dict[str, Any]:
        """The card as config.json holds it: unset optional fields left out."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, (DataCredit, TokenizerFiles, SpeechCard)):
                value = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(value).items() if v is not None}
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, values: Any, where: str = "config.json") -> "ModelCard":
        """A card from parsed JSON; ``where`` (the file) is named in every error."""
        return build_checked(cls, values, where)

    @classmethod
    def read(cls, path: Path) -> "ModelCard":
        """The card in ``path`` (a config.json)."""
        path = Path(path)
        if not path.is_file():
            raise CardError(f"{path.name} is missing")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"{path.name} is not valid JSON: {exc}") from exc
        return cls.from_json(values, path.name)


# ---- checked construction from JSON ----------------------------------------------------------


def build_checked(cls: type, values: Any, where: str) -> Any:
    """``cls`` (a dataclass) from a JSON object, every field checked against its type hint."""
    if not isinstance(values, dict):
        raise CardError(f"{where} must hold a JSON object for {cls.__name__}, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise CardError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")
    missing = [n for n, f in known.items() if n not in values and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise CardError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
    return cls(**{name: _value(hints[name], value, f"{where}: field {name!r}") for name, value in values.items()})


def _value(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked against ``hint`` (str, int, bool, X | None, tuple[str, ...], dict, dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if hasattr(hint, "__dataclass_fields__"):
        return build_checked(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, args[0]) for v in value):
            raise CardError(f"{where} must be a list of {args[0].__name__}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise CardError(f"{where} must be a JSON object, got {type(value).__name__}")
        return value
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise CardError(f"{where} must be a whole number, got {value!r}")
    if hint is str and not isinstance(value, str):
        raise CardError(f"{where} must be text, got {type(value).__name__}")
    return value
