"""CSV import of leads, split by sub-domain and re-exported here:

- `files`: upload (encoding and delimiter sniffed, header read), reading the file back as a
  stream, and deleting files and rejected rows once the retention period is over;
- `mapping`: which field each column fills (suggested, validated, compiled to positions);
- `rows`: one row → a validated `LeadData` (the intake API's rules) or the reason it is rejected;
- `preview`: the first rows as the run will read them;
- `jobs`: reading, starting and cancelling an import;
- `run`: the batches behind `lead_import_run_task`;
- `rejects`: the rejected rows as a CSV download.
"""

from leads.imports.errors import InvalidImport
from leads.imports.files import MAX_COLUMNS, SNIFF_BYTES, csv_sniff, import_files_purge, import_job_create
from leads.imports.jobs import import_cancel, import_job_get, import_job_list, import_start, imports_cancel
from leads.imports.mapping import (
    CUSTOM_PREFIX,
    LEAD_FIELD_TARGETS,
    TARGET_CREATED_AT,
    TARGET_IGNORE,
    TARGET_OUTCOME,
    custom_target,
    import_mapping_suggest,
    import_mapping_validate,
)
from leads.imports.preview import PREVIEW_ROWS, PreviewRow, import_preview
from leads.imports.rejects import import_rejects_csv_lines
from leads.imports.rows import OUTCOME_VALUES, RowReader, RowRejected
from leads.imports.run import BATCH_SIZE, OUTCOME_REASON, TIME_BUDGET_SECONDS, import_run

__all__ = [
    "BATCH_SIZE",
    "CUSTOM_PREFIX",
    "LEAD_FIELD_TARGETS",
    "MAX_COLUMNS",
    "OUTCOME_REASON",
    "OUTCOME_VALUES",
    "PREVIEW_ROWS",
    "SNIFF_BYTES",
    "TARGET_CREATED_AT",
    "TARGET_IGNORE",
    "TARGET_OUTCOME",
    "TIME_BUDGET_SECONDS",
    "InvalidImport",
    "PreviewRow",
    "RowReader",
    "RowRejected",
    "csv_sniff",
    "custom_target",
    "import_cancel",
    "import_files_purge",
    "import_job_create",
    "import_job_get",
    "import_job_list",
    "import_mapping_suggest",
    "import_mapping_validate",
    "import_preview",
    "import_rejects_csv_lines",
    "import_run",
    "import_start",
    "imports_cancel",
]
