"""The seeded catalogue, users, records and ranking metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cliffaudit.demo import catalogue
from cliffaudit.demo.schema import K


@pytest.fixture(scope="module")
def small() -> catalogue.DemoData:
    return catalogue.generate(3, n_sft=200, n_selection=16, n_probes=16, n_train_probes=8)


def test_generator_is_deterministic_for_a_seed(small):
    again = catalogue.generate(3, n_sft=200, n_selection=16, n_probes=16, n_train_probes=8)
    assert again.catalogue == small.catalogue
    for split in ("sft", "selection", "probes", "train_probes"):
        assert json.dumps(getattr(again, split)) == json.dumps(getattr(small, split))


def test_another_seed_gives_other_data(small):
    other = catalogue.generate(4, n_sft=200, n_selection=16, n_probes=16, n_train_probes=8)
    assert other.catalogue != small.catalogue
    assert [r["target"] for r in other.probes] != [r["target"] for r in small.probes]


def test_split_sizes_do_not_change_other_splits(small):
    # each split draws from its own child stream
    bigger = catalogue.generate(3, n_sft=300, n_selection=16, n_probes=16, n_train_probes=8)
    assert json.dumps(bigger.probes) == json.dumps(small.probes)


def test_records_are_well_formed(small):
    for record in small.sft + small.probes:
        codes = record["candidates"]
        assert len(codes) == K == len(set(codes))
        assert sorted(record["target"]) == sorted(codes)
        assert record["schema"]["properties"]["ranking"]["items"]["enum"] == codes
        prompt = record["messages"][0]["content"]
        assert record["messages"][0]["role"] == "user"
        assert all(f"\n{code}: " in prompt for code in codes)


def test_held_out_prompts_are_not_training_prompts(small):
    seen = {r["messages"][0]["content"] for r in small.sft}
    assert not seen & {r["messages"][0]["content"] for r in small.probes + small.selection}


def test_listing_codes_are_slot_letter_plus_distinct_two_digit_lot(small):
    for record in small.probes:
        codes = record["candidates"]
        assert [code[0] for code in codes] == list(catalogue.SLOTS)
        lots = [code[1:] for code in codes]
        assert all(lot.isdigit() and 10 <= int(lot) <= 99 for lot in lots)
        assert len(set(lots)) == K


def test_target_orders_candidates_by_hidden_utility():
    rng = np.random.default_rng(0)
    items = catalogue.make_catalogue(rng, n_items=K)
    codes = [catalogue.listing_code(slot, 10 + slot) for slot in range(K)]
    user = catalogue.make_user(rng)
    ranking = catalogue.true_ranking(user, items, codes)
    assert sorted(ranking) == sorted(codes)
    utility = {code: user.utility(item) for code, item in zip(codes, items)}
    scores = [utility[code] for code in ranking]
    assert scores == sorted(scores, reverse=True)


def test_ties_are_broken_by_slot():
    user = catalogue.User(frozenset({"coat"}), frozenset({"red"}), frozenset({"wool"}), budget=1, rating_weight=0.5)
    same = catalogue.Item("bag", "blue", "silk", 1, 3)
    assert catalogue.true_ranking(user, [same, same], ["A10", "B20"]) == ["A10", "B20"]


def test_liked_attributes_raise_utility():
    user = catalogue.User(frozenset({"coat"}), frozenset({"red"}), frozenset({"wool"}), budget=1, rating_weight=0.5)
    liked = catalogue.Item("coat", "red", "wool", 1, 3)
    plain = catalogue.Item("bag", "blue", "silk", 1, 3)
    assert user.utility(liked) == pytest.approx(user.utility(plain) + 4.5)
    assert user.utility(catalogue.Item("bag", "blue", "silk", 1, 5)) == pytest.approx(user.utility(plain) + 1.0)
    assert user.utility(catalogue.Item("bag", "blue", "silk", 3, 3)) == pytest.approx(user.utility(plain) - 1.4)
