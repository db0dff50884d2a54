"""Spreadsheet formula escaping in every CSV export (issue 13 item 6, OWASP CSV injection): a cell
that would run as a formula gets a leading apostrophe, a cell that could start a formula in another
cell once a spreadsheet splits it on its own separator is quoted, headers included; a phone number
stays as it is (issue 16)."""

import csv
import io

import pytest
from django.urls import reverse

from leads.exports import csv_safe, csv_stream_writer, lead_csv_rows
from leads.imports import import_job_create, import_run, import_start
from leads.models import Lead
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

SEMICOLON_ATTACK = "x;=cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\x00=1", "'\x00=1"),
        ('  =HYPERLINK("http://evil.example")', '\'  =HYPERLINK("http://evil.example")'),
        # phone numbers and plain numbers compute nothing: left as they are
        ("+353 1 234 5678", "+353 1 234 5678"),
        ("+1 (555) 010-9999", "+1 (555) 010-9999"),
        ("-5", "-5"),
        ("-12.50", "-12.50"),
        ("Ada", "Ada"),
        ("", ""),
        (42, 42),
    ],
)
def test_csv_safe_prefixes_only_cells_that_would_run_as_a_formula(value, cell):
    assert csv_safe(value) == cell


@pytest.mark.parametrize(
    "value",
    [SEMICOLON_ATTACK, "x\t=cmd", "x; +cmd", "x|@cmd", 'x;"=cmd', "x\n=cmd"],
)
def test_a_cell_that_could_start_a_formula_after_another_separator_is_quoted(value):
    # when
    line = csv_stream_writer().writerow(["a", value, "b"])
    # then: one quoted field, so a spreadsheet that splits on ";", tab or "|" keeps it one text cell
    quoted = '"' + value.replace('"', '""') + '"'
    assert line == f"a,{quoted},b\r\n"
    assert next(csv.reader(io.StringIO(line))) == ["a", value, "b"]


def test_plain_cells_are_written_as_the_csv_module_writes_them():
    line = csv_stream_writer().writerow(["Ada", "O'Brien", "Smith, John", 'say "hi"', 7, "+353 1 234 5678", ""])
    assert line == 'Ada,O\'Brien,"Smith, John","say ""hi""",7,+353 1 234 5678,\r\n'


def test_the_header_row_is_escaped_too():
    line = csv_stream_writer().writerow(["=cmd", SEMICOLON_ATTACK])
    assert next(csv.reader(io.StringIO(line))) == ["'=cmd", SEMICOLON_ATTACK]
    assert f'"{SEMICOLON_ATTACK}"' in line


def test_lead_export_quotes_a_semicolon_formula_and_keeps_phones():
    # given
    lead = LeadFactory(first_name=SEMICOLON_ATTACK, company_name="=1+1", phone="+353 1 234 5678")
    # when
    lines = list(lead_csv_rows(leads=Lead.objects.filter(pk=lead.pk)))
    # then
    assert f'"{SEMICOLON_ATTACK}"' in lines[1]
    row = dict(zip(*csv.reader(io.StringIO("".join(lines))), strict=True))
    assert (row["first_name"], row["company"]) == (SEMICOLON_ATTACK, "'=1+1")
    assert row["phone"] == lead.phone and not row["phone"].startswith("'")


def test_rejected_rows_file_escapes_headers_and_cells(client, settings, tmp_path):
    # given: hostile column names and a hostile cell in a rejected row
    settings.MEDIA_ROOT = str(tmp_path / "media")
    user = UserFactory(is_superuser=True, is_staff=True)
    content = f'email,"=HYPERLINK(""http://evil"")","{SEMICOLON_ATTACK}"\nnot-an-email,@x,"{SEMICOLON_ATTACK}"\n'
    from django.core.files.uploadedfile import SimpleUploadedFile

    job = import_job_create(
        user=user, upload=SimpleUploadedFile("l.csv", content.encode(), "text/csv"), source=SourceFactory()
    )
    mapping = {header: "" for header in job.headers} | {"email": "email"}
    import_start(job_id=job.pk, mapping=mapping, source=job.source)
    while import_run(job_id=job.pk):
        pass
    client.force_login(user)
    # when
    response = client.get(reverse("leads-import:rejects", args=[job.pk]))
    body = b"".join(response.streaming_content).decode()
    # then
    header, row = list(csv.reader(io.StringIO(body)))
    assert header == ["row", "reason", "email", '\'=HYPERLINK("http://evil")', SEMICOLON_ATTACK]
    assert row[3:] == ["'@x", SEMICOLON_ATTACK]
    assert body.count(f'"{SEMICOLON_ATTACK}"') == 2
