"""The ranking contract: template file, per-record schemas, and strict validation against them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from cliffaudit.contract import strict_validate
from cliffaudit.demo import catalogue
from cliffaudit.demo.schema import RANKING_TEMPLATE, K, record_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "ranking.schema.json"


@pytest.fixture(scope="module")
def record() -> dict:
    rng = np.random.default_rng(7)
    return catalogue.make_record(rng, catalogue.make_catalogue(rng), "t-0")


def test_schema_file_is_the_template_the_code_uses():
    assert json.loads(SCHEMA_FILE.read_text()) == RANKING_TEMPLATE


def test_record_schema_is_template_plus_candidate_enum(record):
    schema = copy.deepcopy(record["schema"])
    assert schema["properties"]["ranking"]["items"]["enum"] == record["candidates"]
    del schema["properties"]["ranking"]["items"]["enum"]
    assert schema == RANKING_TEMPLATE


def test_record_schema_refuses_wrong_candidate_lists():
    with pytest.raises(ValueError):
        record_schema(["AB12"] * K)
    with pytest.raises(ValueError):
        record_schema([f"AB{i}" for i in range(10, 10 + K - 1)])


def test_accepts_the_target_and_any_permutation(record):
    assert strict_validate(catalogue.render_answer(record["target"]), record["schema"]).valid
    shuffled = list(reversed(record["target"]))
    verdict = strict_validate(json.dumps({"ranking": shuffled}), record["schema"])
    assert verdict.valid and verdict.value == {"ranking": shuffled}


def _violations(record: dict) -> dict[str, str]:
    codes = record["target"]
    # a near miss: a real slot letter with a lot number no candidate has (a typical copy slip)
    used_lots = {code[1:] for code in codes}
    outsider = codes[-1][0] + next(str(lot) for lot in range(10, 100) if str(lot) not in used_lots)
    return {
        "not JSON": '{"ranking": [' + ", ".join(f'"{c}"' for c in codes) + "]",  # unclosed
        "wrong key": json.dumps({"rank": codes}),
        "extra key": json.dumps({"ranking": codes, "reason": "taste"}),
        "K-1 items": json.dumps({"ranking": codes[:-1]}),
        "K+1 items": json.dumps({"ranking": codes + [codes[0]]}),
        "duplicate code": json.dumps({"ranking": codes[:-1] + [codes[0]]}),
        "code not a candidate": json.dumps({"ranking": codes[:-1] + [outsider]}),
        "not a string": json.dumps({"ranking": codes[:-1] + [7]}),
        "duplicate key": '{"ranking": %s, "ranking": %s}' % (json.dumps(codes), json.dumps(codes)),
    }


@pytest.mark.parametrize("kind", ["not JSON", "wrong key", "extra key", "K-1 items", "K+1 items",
                                  "duplicate code", "code not a candidate", "not a string", "duplicate key"])
def test_rejects_each_violation(record, kind):
    text = _violations(record)[kind]
    verdict = strict_validate(text, record["schema"])
    assert not verdict.valid
    assert verdict.reason
    if kind == "not JSON":
        assert verdict.reason.startswith("not JSON")
    else:
        # every other violation parses (or is a duplicate key) and is caught by the contract
        assert kind == "duplicate key" or verdict.value is not None
