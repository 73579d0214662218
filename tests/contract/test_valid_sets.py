"""The valid-token sets the contract computes equal their definition, token by token.

Definition (docs/contract.md): at a position, token v keeps the contract when the
outlines-core index allows it from the regex state and, unless it is the
end-of-sequence, the walker accepts its bytes from the walker state. The contract
skips walks it can decide without one; this test walks every token of the
vocabulary at every position of outputs with escapes, whitespace and violations.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from cliffaudit.contract import load_contract_schema, walker
from cliffaudit.contract.regex import contract_regex
from cliffaudit.contract.tokens import index_for

from .conftest import RANKING_CANDIDATES, ranking_schema, ITEM_SCHEMA
from .helpers import random_segmentation
from .test_agreement import MUTATIONS, _dump, _item, _mutate

RANKING = ranking_schema()
# Values whose raw bytes hold a quote, a backslash, a control character and
# multi-byte characters: the spellings where skipping a walk would go wrong.
AWKWARD = ['say "hi"', "back\\slash", "tab\there", "ünï ✓", "say"]
AWKWARD_SCHEMA = {"type": "object", "properties": {"quote": {"type": "string", "enum": AWKWARD}},
                  "required": ["quote"], "additionalProperties": False}


def _by_definition(contract, index, regex_state: int, state: walker.WalkerState) -> np.ndarray:
    allowed = set(index.get_allowed_tokens(regex_state))
    eos = contract.vocab.eos_token_id
    valid = np.zeros(contract.vocab.size, dtype=bool)
    for token_id, data in enumerate(contract.vocab.token_bytes):
        if token_id not in allowed:
            continue
        if token_id == eos:
            valid[token_id] = True
            continue
        try:
            walker.step_bytes(state, data)
        except walker.ContractViolation:
            continue
        valid[token_id] = True
    return valid


def _outputs(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(n):
        ws = lambda: rng.choice(["", "", " ", "\n  "])  # noqa: E731
        if i % 3 == 2:
            out.append((_dump({"quote": rng.choice(AWKWARD)}, rng, ws), AWKWARD_SCHEMA))
        elif i % 3 == 1:
            out.append((_mutate(_dump(_item(rng), rng, ws), rng.choice(MUTATIONS), rng), ITEM_SCHEMA))
        else:
            order = rng.sample(RANKING_CANDIDATES, len(RANKING_CANDIDATES))
            out.append((_mutate(_dump({"ranking": order}, rng, ws), rng.choice(MUTATIONS), rng), RANKING))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_valid_sets_equal_the_definition_at_every_position(contract, seed):
    rng = random.Random(seed)
    checked = inside_strings = 0
    for text, schema in _outputs(rng, 18):
        index = index_for(contract_regex(load_contract_schema(schema)), contract.vocab)
        regex_state, state = index.get_initial_state(), walker.initial_state(load_contract_schema(schema))
        for token_id in random_segmentation(contract, text.encode(), rng):
            expected = _by_definition(contract, index, regex_state, state)
            got = contract.valid_mask(index, regex_state, state)
            assert np.array_equal(got, expected), (text, checked, np.flatnonzero(got ^ expected))
            checked += 1
            inside_strings += state.in_constrained_string
            next_regex = index.get_next_state(regex_state, token_id)
            try:
                state, _ = walker.step_bytes(state, contract.vocab.token_bytes[token_id])
            except walker.ContractViolation:
                break
            if next_regex is None:
                break
            regex_state = next_regex
    assert checked > 200 and inside_strings > 30
