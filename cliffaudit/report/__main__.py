"""python -m cliffaudit.report: regenerate schemas/report.schema.json and schemas/sweep.schema.json."""

from cliffaudit.report.model import REPORT_SCHEMA_PATH, SWEEP_SCHEMA_PATH, report_json_schema, sweep_json_schema
from cliffaudit.report.model import write_json_atomically

for text, path in ((report_json_schema(), REPORT_SCHEMA_PATH), (sweep_json_schema(), SWEEP_SCHEMA_PATH)):
    write_json_atomically(text, path)
    print(f"wrote {path}")
