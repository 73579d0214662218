"""Real tokenizers for contract tests, trained in a second on JSON text.

Two byte-level BPE tokenizers with different merges: ``split`` pre-tokenizes
like GPT-2 (letters, digits and punctuation apart, so merges such as ``"]}``
and ``",`` form), ``fused`` learns merges across those boundaries (tokens such
as ``"A`` or ``1","`` that cross into and out of strings). The demo checkpoints'
tokenizer joins them when it is packaged.
"""

from __future__ import annotations

import json
import random

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from cliffaudit.contract import TokenContract

RANKING_CANDIDATES = ["AB12", "CD34", "EF56", "GH78", "JK90"]
COLOURS = ["red", "navy blue", "olive/green"]


def ranking_schema(candidates=RANKING_CANDIDATES, k=None):
    k = len(candidates) if k is None else k
    return {
        "type": "object",
        "properties": {"ranking": {"type": "array", "items": {"type": "string", "enum": list(candidates)},
                                   "minItems": k, "maxItems": k, "uniqueItems": True}},
        "required": ["ranking"],
        "additionalProperties": False,
    }


ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "colour": {"type": "string", "enum": COLOURS},
        "size": {"type": "integer"},
        "note": {"type": "string"},
        "price": {"type": "number"},
        "in_stock": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["colour", "size"],
    "additionalProperties": False,
}


def _corpus(seed: int = 0, n: int = 300) -> list[str]:
    rng = random.Random(seed)
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    texts = []
    for _ in range(n):
        codes = ["".join(rng.choice(letters) for _ in range(2)) + str(rng.randint(10, 99)) for _ in range(8)]
        texts.append(json.dumps({"ranking": codes}))
        item = {"colour": rng.choice(COLOURS), "size": rng.randint(0, 120), "note": rng.choice(["nice \"fit\"", "ok"]),
                "price": round(rng.random() * 100, 2), "in_stock": rng.random() < 0.5, "tags": ["a", "b"]}
        texts.append(json.dumps(item, indent=rng.choice([None, 2])))
    return texts


def train_byte_level(vocab_size: int, use_regex: bool) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|eos|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|eos|>", pad_token="<|pad|>")


_TOKENIZERS = {
    "split": lambda: train_byte_level(420, use_regex=True),
    "fused": lambda: train_byte_level(600, use_regex=False),
}


def _demo_tokenizer():
    from transformers import AutoTokenizer

    from cliffaudit.demo import paths

    return AutoTokenizer.from_pretrained(str(paths.TEACHER_DIR))


def _demo_available() -> bool:
    try:
        from cliffaudit.demo import paths
    except ImportError:
        return False
    return (paths.TEACHER_DIR / "tokenizer.json").exists()


if _demo_available():
    _TOKENIZERS["demo"] = _demo_tokenizer


@pytest.fixture(scope="session", params=sorted(_TOKENIZERS))
def tokenizer(request):
    return _TOKENIZERS[request.param]()


@pytest.fixture(scope="session")
def contract(tokenizer):
    return TokenContract.from_tokenizer(tokenizer)
