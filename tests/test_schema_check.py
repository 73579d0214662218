"""`cliffaudit schema check`: a contract's pre-flight, from a file or a pydantic model."""

from __future__ import annotations

import json
import textwrap

import pytest

from cliffaudit.cli import main
from cliffaudit.inputs import AuditInputError, read_schema, schema_fingerprint

MODELS = textwrap.dedent('''
    from typing import Literal, Optional
    from pydantic import BaseModel, Field

    class Line(BaseModel):
        sku: str
        qty: int = Field(ge=1)

    class Invoice(BaseModel):
        lines: list[Line]
        currency: Literal["EUR", "USD"]
        note: Optional[str] = None
''')


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "shop_models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_an_exact_schema_lists_its_keywords(tmp_path, capsys):
    path = tmp_path / "ranking.json"
    path.write_text(json.dumps({"type": "object", "properties": {"r": {"type": "array", "items": {"enum": ["a", "b"]},
                                                                       "uniqueItems": True}},
                                "required": ["r"], "additionalProperties": False, "title": "R"}))
    assert main(["schema", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "can be audited; the token-level contract is exact" in out
    assert "/properties/r/uniqueItems uniqueItems: exact" in out and "1 annotation(s)" in out


def test_a_pydantic_model_is_read_by_its_import_path(models, capsys):
    assert main(["schema", "check", "shop_models:Invoice", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["auditable"] and not result["exact"]  # pydantic admits extra keys: a repeated one is admitted
    approximate = {k["keyword"]: k["direction"] for k in result["keywords"] if k["status"] == "approximate"}
    assert approximate["additionalProperties"] == "admits too much"
    assert any(k["pointer"] == "/$defs/Line/properties/qty/minimum" and k["status"] == "exact"
               for k in result["keywords"])
    schema = read_schema("shop_models:Invoice")
    assert schema["properties"]["currency"]["enum"] == ["EUR", "USD"]
    assert schema_fingerprint("shop_models:Invoice") == schema_fingerprint("shop_models:Invoice")


@pytest.mark.parametrize(("source", "fragment"), [
    ("shop_models:Missing", "shop_models has no Missing"),
    ("no_such_module:Model", "cannot import no_such_module: ModuleNotFoundError"),
    ("shop_models:Literal", "not a pydantic model or type"),
])
def test_a_model_that_cannot_be_read_is_one_line(models, capsys, source, fragment):
    assert main(["schema", "check", source]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_the_first_refused_keyword_is_named_with_its_pointer(tmp_path, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string", "$dynamicRef": "#x"}}}))
    assert main(["schema", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: unsupported keyword '$dynamicRef' at /properties/a" in err and err.count("\n") == 1
    assert main(["schema", "check", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_audit_takes_a_model_as_its_schema(tiny_checkpoints, models, capsys):
    probes = models / "p.jsonl"
    probes.write_text('{"id": "a", "prompt": "invoice please"}\n')
    out = models / "out"
    code = main(["audit", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
                 "--probes", str(probes), "--schema", "shop_models:Invoice", "--samples-per-prompt", "2",
                 "--max-new-tokens", "4", "--fixed-point-lambdas", "0", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["schema_path"] == "shop_models:Invoice"
    assert report["fingerprints"]["schema_file"] == schema_fingerprint("shop_models:Invoice")
    with pytest.raises(AuditInputError, match="cannot import"):
        read_schema("absent_package.models:Thing")
