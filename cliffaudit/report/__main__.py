"""python -m cliffaudit.report: regenerate schemas/report.schema.json from the model."""

from cliffaudit.report.model import REPORT_SCHEMA_PATH, report_json_schema, write_json_atomically

write_json_atomically(report_json_schema(), REPORT_SCHEMA_PATH)
print(f"wrote {REPORT_SCHEMA_PATH}")
