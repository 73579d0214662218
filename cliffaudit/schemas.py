"""``python -m cliffaudit.schemas`` (``make schemas``): regenerate the JSON Schemas
under ``schemas/`` from the pydantic models of report.json, a line of samples.jsonl and
sweep.json."""

from __future__ import annotations

from cliffaudit.report.model import REPORT_SCHEMA_PATH, report_json_schema
from cliffaudit.report.samples import SAMPLES_SCHEMA_PATH, samples_json_schema
from cliffaudit.report.write import write_json_atomically
from cliffaudit.sweep.model import SWEEP_SCHEMA_PATH, sweep_json_schema


def main() -> None:
    for text, path in ((report_json_schema(), REPORT_SCHEMA_PATH), (samples_json_schema(), SAMPLES_SCHEMA_PATH),
                       (sweep_json_schema(), SWEEP_SCHEMA_PATH)):
        write_json_atomically(text, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
