"""Text preprocessing: word or character tokens with stop-word removal and a vocabulary fitted on the
training split only, or a pretrained Hugging Face tokenizer."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as _SKLEARN_STOP_WORDS

from optikube_operator.api.data import TextPreprocessing

ENGLISH_STOP_WORDS: frozenset[str] = frozenset(_SKLEARN_STOP_WORDS)
PAD_ID = 0
UNKNOWN_ID = 1
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def tokenize(text: str, *, lowercase: bool = True, stop_words: frozenset[str] = frozenset()) -> list[str]:
    tokens = _TOKEN.findall(text.lower() if lowercase else text)
    if stop_words:
        tokens = [t for t in tokens if t.lower() not in stop_words]
    return tokens


def stop_words_for(config: TextPreprocessing) -> frozenset[str]:
    if not config.remove_stop_words:
        return frozenset()
    return ENGLISH_STOP_WORDS | {w.lower() for w in config.extra_stop_words}


@dataclass
class Vocabulary:
    """Token ids: 0 is padding, 1 is unknown, then the most frequent training tokens (words or characters)."""

    config: TextPreprocessing
    index: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.index) + 2

    @property
    def pad_id(self) -> int:
        return PAD_ID

    def _tokens(self, text: str) -> list[str]:
        words = tokenize(text, lowercase=self.config.lowercase, stop_words=stop_words_for(self.config))
        return list(" ".join(words)) if self.config.tokenizer == "char" else words

    def fit(self, texts: Iterable[str]) -> Vocabulary:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self._tokens(text))
        # ties broken alphabetically so that every rank builds the same vocabulary
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.config.vocab_size - 2]
        self.index = {word: i + 2 for i, (word, _) in enumerate(ranked)}
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = np.full((len(texts), self.config.max_length), PAD_ID, dtype=np.int64)
        for row, text in enumerate(texts):
            tokens = self._tokens(text)[: self.config.max_length]
            ids[row, : len(tokens)] = [self.index.get(t, UNKNOWN_ID) for t in tokens]
        return ids


class PretrainedTokenizer:
    """A Hugging Face tokenizer (hub id or local path), with optikube's stop-word removal first."""

    def __init__(self, config: TextPreprocessing, source: str) -> None:
        from transformers import AutoTokenizer  # optional dependency

        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(source)

    @property
    def size(self) -> int:
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad) if pad is not None else 0

    def fit(self, texts: Iterable[str]) -> PretrainedTokenizer:
        return self  # a pretrained vocabulary is fixed

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        stop_words = stop_words_for(self.config)
        cleaned = [
            " ".join(tokenize(t, lowercase=self.config.lowercase, stop_words=stop_words)) for t in texts
        ]
        encoded = self.tokenizer(
            cleaned,
            padding="max_length",
            truncation=True,
            max_length=self.config.max_length,
            return_tensors="np",
        )
        return np.asarray(encoded["input_ids"], dtype=np.int64)


def build_text_encoder(
    config: TextPreprocessing, pretrained: str | None = None
) -> Vocabulary | PretrainedTokenizer:
    """The encoder ``config.tokenizer`` names; `pretrained` uses the tokenizer of model ``pretrained``."""
    if config.tokenizer != "pretrained":
        return Vocabulary(config)
    if pretrained is None:
        raise ValueError(
            "data.preprocessing.text.tokenizer: pretrained needs a Hugging Face model"
            " (spec.model.huggingface)"
        )
    return PretrainedTokenizer(config, pretrained)
