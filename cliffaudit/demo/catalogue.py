"""A seeded synthetic fashion catalogue, users with hidden tastes, and ranking records.

Modelled on listwise product ranking over an Amazon-Fashion-like catalogue: each
prompt shows a short purchase history and K candidate items; the answer ranks all
K item codes. A user's hidden preference model scores every item, so every prompt
has one ground-truth ranking (ties broken by display slot) for exact-match and NDCG@1.
The purchase history is drawn from the user's favourite items, so the preference is
visible to a model through the history, as in real recommendation logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from cliffaudit.demo.schema import K, record_schema  # K: candidates per prompt and items per ranking

HISTORY_LEN = 3

CATEGORIES = ("dress", "shirt", "jeans", "coat", "sneakers", "boots", "scarf", "bag", "skirt", "jacket")
COLOURS = ("black", "white", "red", "blue", "green", "beige", "grey", "pink", "navy", "brown")
MATERIALS = ("cotton", "wool", "denim", "leather", "silk", "linen", "suede", "polyester")
PRICE_BANDS = ("$", "$$", "$$$", "$$$$")
SLOTS = "ABCDEFGH"  # display-slot letters; a candidate's code starts with its slot


@dataclass(frozen=True)
class Item:
    category: str
    colour: str
    material: str
    price_band: int  # index into PRICE_BANDS
    rating: int  # 1..5 stars

    def describe(self) -> str:
        return f"{self.colour} {self.material} {self.category}"


def listing_code(slot: int, lot: int) -> str:
    """The code a prompt shows for a candidate: slot letter + two-digit lot number, e.g. ``C48``.

    Like the bracketed labels of listwise-ranking prompts, codes are per prompt. Byte-level
    BPE splits letters from digits, so every code is at least two tokens.
    """
    return f"{SLOTS[slot]}{lot}"


@dataclass(frozen=True)
class User:
    """Hidden preference model: liked categories, colours, materials, a budget and rating taste."""

    categories: frozenset[str]
    colours: frozenset[str]
    materials: frozenset[str]
    budget: int  # preferred price band
    rating_weight: float  # how much stars matter to this user

    def utility(self, item: Item) -> float:
        return float(self.utilities(ItemTable.of([item]))[0])

    def utilities(self, table: ItemTable) -> np.ndarray:
        """Utility of every item in ``table`` (vectorised: records score the whole catalogue)."""
        likes = (2.0 * _mask(CATEGORIES, self.categories)[table.category]
                 + 1.5 * _mask(COLOURS, self.colours)[table.colour]
                 + 1.0 * _mask(MATERIALS, self.materials)[table.material])
        return likes - 0.7 * np.abs(table.price_band - self.budget) + self.rating_weight * (table.rating - 3)


def _mask(vocabulary: tuple[str, ...], liked: frozenset[str]) -> np.ndarray:
    return np.array([value in liked for value in vocabulary], dtype=float)


@dataclass(frozen=True)
class ItemTable:
    """Item attributes as integer columns (indices into the attribute tuples), built once."""

    category: np.ndarray
    colour: np.ndarray
    material: np.ndarray
    price_band: np.ndarray
    rating: np.ndarray

    @classmethod
    def of(cls, items: list[Item]) -> ItemTable:
        return cls(
            category=np.array([CATEGORIES.index(item.category) for item in items]),
            colour=np.array([COLOURS.index(item.colour) for item in items]),
            material=np.array([MATERIALS.index(item.material) for item in items]),
            price_band=np.array([item.price_band for item in items], dtype=float),
            rating=np.array([item.rating for item in items], dtype=float),
        )


def make_catalogue(rng: np.random.Generator, n_items: int = 900) -> list[Item]:
    return [
        Item(
            category=str(rng.choice(CATEGORIES)),
            colour=str(rng.choice(COLOURS)),
            material=str(rng.choice(MATERIALS)),
            price_band=int(rng.integers(len(PRICE_BANDS))),
            rating=int(rng.integers(1, 6)),
        )
        for _ in range(n_items)
    ]


def make_user(rng: np.random.Generator) -> User:
    return User(
        categories=frozenset(rng.choice(CATEGORIES, 2, replace=False).tolist()),
        colours=frozenset(rng.choice(COLOURS, 2, replace=False).tolist()),
        materials=frozenset(rng.choice(MATERIALS, 2, replace=False).tolist()),
        budget=int(rng.integers(len(PRICE_BANDS))),
        rating_weight=float(rng.choice([0.2, 0.5, 0.8])),
    )


def true_ranking(user: User, candidates: list[Item], codes: list[str]) -> list[str]:
    """Candidate codes by descending utility; equal utilities by slot, so the target is unique."""
    scores = np.round(user.utilities(ItemTable.of(candidates)), 6)
    order = sorted(range(len(candidates)), key=lambda slot: (-scores[slot], slot))
    return [codes[slot] for slot in order]


def render_prompt(history: list[Item], candidates: list[Item], codes: list[str]) -> str:
    bought = "; ".join(f"{item.describe()} ({PRICE_BANDS[item.price_band]})" for item in history)
    lines = [f"Purchase history: {bought}", "Candidates:"]
    lines += [
        f"{code}: {item.describe()}, {PRICE_BANDS[item.price_band]}, rated {item.rating}"
        for code, item in zip(codes, candidates)
    ]
    lines.append(f"Rank all {len(candidates)} candidates for this user as JSON.")
    return "\n".join(lines)


def render_answer(ranking: list[str]) -> str:
    """The assistant's reply: JSON with the spaced separators most LLMs emit."""
    return json.dumps({"ranking": ranking})


def make_record(rng: np.random.Generator, catalogue: list[Item], record_id: str,
                table: ItemTable | None = None) -> dict[str, Any]:
    """One probe record: chat messages, its own schema (candidate enum), candidates, target."""
    user = make_user(rng)
    scores = user.utilities(table if table is not None else ItemTable.of(catalogue))
    favourites = np.argsort(-scores, kind="stable")[:20]
    history_idx = rng.choice(favourites, HISTORY_LEN, replace=False)
    # Two candidates from the user's favourites so the top of the ranking is informative;
    # the rest from anywhere. Never an item already bought.
    available = np.ones(len(catalogue), dtype=bool)
    available[history_idx] = False
    liked = rng.choice(favourites[available[favourites]], 2, replace=False)
    available[liked] = False
    rest = rng.choice(np.flatnonzero(available), K - 2, replace=False)
    candidate_idx = rng.permutation(np.concatenate([liked, rest]))
    history = [catalogue[i] for i in history_idx]
    candidates = [catalogue[i] for i in candidate_idx]
    lots = [10 * (slot + 1) + int(rng.integers(10)) for slot in range(K)]
    codes = [listing_code(slot, int(lot)) for slot, lot in enumerate(lots)]
    return {
        "id": record_id,
        "messages": [{"role": "user", "content": render_prompt(history, candidates, codes)}],
        "schema": record_schema(codes),
        "candidates": codes,
        "target": true_ranking(user, candidates, codes),
    }


def make_records(rng: np.random.Generator, catalogue: list[Item], n: int, prefix: str) -> list[dict[str, Any]]:
    table = ItemTable.of(catalogue)
    return [make_record(rng, catalogue, f"{prefix}-{i:05d}", table) for i in range(n)]


@dataclass(frozen=True)
class DemoData:
    catalogue: list[Item]
    sft: list[dict[str, Any]]  # supervised fine-tuning records (prompt + target answer)
    selection: list[dict[str, Any]]  # held-out prompts for picking the student checkpoint
    probes: list[dict[str, Any]]  # held-out prompts shipped for the audit and `demo eval`
    train_probes: list[dict[str, Any]]  # a few training prompts for a later OPD sweep


def generate(seed: int, n_sft: int = 12000, n_selection: int = 128, n_probes: int = 64,
             n_train_probes: int = 64) -> DemoData:
    """All demo data for ``seed``; each split has its own child stream so sizes don't interact."""
    catalogue_rng, sft_rng, selection_rng, probe_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    catalogue = make_catalogue(catalogue_rng)
    sft = make_records(sft_rng, catalogue, n_sft, "train")
    seen = {record["messages"][0]["content"] for record in sft}
    # Held-out splits must not repeat a training prompt (vanishingly rare, but check).
    selection = [r for r in make_records(selection_rng, catalogue, n_selection, "select")
                 if r["messages"][0]["content"] not in seen]
    probes = [r for r in make_records(probe_rng, catalogue, n_probes, "probe")
              if r["messages"][0]["content"] not in seen]
    return DemoData(catalogue, sft, selection, probes, sft[:n_train_probes])
