"""The demo's output contract: ``{"ranking": [code, ...]}`` with exactly K unique candidate codes.

``RANKING_TEMPLATE`` mirrors ``schemas/ranking.schema.json`` (a test keeps them equal);
the package builds schemas in code because ``schemas/`` is not shipped inside it.
"""

from __future__ import annotations

import json
from typing import Any

K = 8

RANKING_TEMPLATE: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Listwise ranking of one prompt's K = 8 candidate items",
    "description": (
        "Contract template. A record's own schema is this one with items.enum set to that "
        "prompt's 8 candidate codes; cliffaudit's demo probes carry that full per-record schema."
    ),
    "type": "object",
    "properties": {
        "ranking": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": K,
            "maxItems": K,
            "uniqueItems": True,
        }
    },
    "required": ["ranking"],
    "additionalProperties": False,
}


_TEMPLATE_JSON = json.dumps(RANKING_TEMPLATE)


def record_schema(candidates: list[str]) -> dict[str, Any]:
    """The template with ``items.enum`` set to this prompt's candidate codes."""
    if len(candidates) != K or len(set(candidates)) != K:
        raise ValueError(f"need {K} distinct candidate codes, got {candidates!r}")
    schema = json.loads(_TEMPLATE_JSON)  # a fresh deep copy, faster than copy.deepcopy
    schema["properties"]["ranking"]["items"]["enum"] = list(candidates)
    return schema
