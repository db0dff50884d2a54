"""The rejected rows of an import as a CSV download."""

from collections.abc import Iterator

from leads.exports import csv_stream_writer
from leads.models import ImportJob


def import_rejects_csv_lines(*, job: ImportJob) -> Iterator[str]:
    """The rejected rows as CSV: row number, reason, then the original columns; headers and cells
    come from the uploaded file, so every one is escaped (`csv_stream_writer`)."""
    writer = csv_stream_writer()
    yield writer.writerow(["row", "reason", *job.headers])
    errors = job.row_errors.order_by("row_number").values_list("row_number", "reason", "values")
    for number, reason, values in errors.iterator(chunk_size=2000):
        yield writer.writerow([number, reason, *values])
