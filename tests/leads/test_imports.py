"""CSV import: sniffing, mapping, preview, the batch run (dedupe, outcomes, rejects, cancel, resume),
the pages, and a real worker. The bank-marketing test reads a committed slice of the real data set
(tests/data/bank-marketing/README.md says where it comes from and how it was cut)."""

import csv
import io
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection
from django.urls import reverse

from core.exceptions import ApplicationError
from leads.imports import (
    BATCH_SIZE,
    csv_sniff,
    import_cancel,
    import_files_purge,
    import_job_create,
    import_mapping_suggest,
    import_mapping_validate,
    import_preview,
    import_run,
    import_start,
)
from leads.models import (
    Activity,
    ActivityKind,
    ImportJob,
    ImportStatus,
    IntakeOutcome,
    IntakeSubmission,
    Lead,
    Source,
    Stage,
    StageChange,
)
from leads.services import IntakeContext, LeadData, lead_capture
from leads.services import lead_store as real_lead_store
from leads.tasks import lead_import_run_task
from tests.conftest import requires_postgres
from tests.core.factories import UserFactory
from tests.leads.factories import CampaignFactory, LeadFactory, SourceFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
BANK_CSV = ROOT / "tests" / "data" / "bank-marketing" / "bank-additional-slice.csv"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def upload(content: str | bytes, name: str = "leads.csv", encoding: str = "utf-8") -> SimpleUploadedFile:
    raw = content.encode(encoding) if isinstance(content, str) else content
    return SimpleUploadedFile(name, raw, content_type="text/csv")


def new_job(content: str | bytes, *, user=None, source=None, encoding: str = "utf-8") -> ImportJob:
    return import_job_create(
        user=user or UserFactory(), upload=upload(content, encoding=encoding), source=source or SourceFactory()
    )


def run_import(content: str | bytes, *, mapping: dict | None = None, campaign=None, **kwargs) -> ImportJob:
    job = new_job(content, **kwargs)
    with mock.patch("leads.tasks.lead_import_run_task.apply_async"):
        import_start(job_id=job.pk, mapping=mapping or job.mapping, source=job.source, campaign=campaign)
    while import_run(job_id=job.pk):
        pass
    job.refresh_from_db()
    return job


# --- reading the file ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoding", "delimiter"),
    [
        ("\ufeffEmail;Name\na@x.example;Zoë\n".encode(), "utf-8-sig", ";"),
        ("Email,Name\na@x.example,Zoë\n".encode(), "utf-8", ","),
        ("Email;Name\na@x.example;Zoë\n".encode("cp1252"), "cp1252", ";"),
        (b"Email;Name\na@x.example;Zo\xeb \x81\n", "latin-1", ";"),  # 0x81: undefined in Windows-1252
        (b'"Email","Name; title"\na@x.example,"x"\n', "utf-8", ","),
    ],
)
def test_sniff_detects_encoding_and_delimiter(raw, encoding, delimiter):
    assert csv_sniff(head=raw) == (encoding, delimiter)


def test_upload_stores_the_file_and_reads_the_header(settings):
    # when
    job = new_job("\ufeffE-mail;First name;Société;Plan\nzoe@x.example;Zoë;Acme;pro\n")
    # then
    assert job.status == ImportStatus.DRAFT
    assert job.headers == ["E-mail", "First name", "Société", "Plan"]
    assert (job.encoding, job.delimiter) == ("utf-8-sig", ";")
    assert Path(job.file.path).is_relative_to(Path(settings.MEDIA_ROOT))
    assert job.mapping == {
        "E-mail": "email",
        "First name": "first_name",
        "Société": "custom:societe",
        "Plan": "custom:plan",
    }


@pytest.mark.parametrize("content", ["", "   \n", "a,a\n1,2\n"])
def test_upload_refuses_empty_files_and_duplicate_columns(content):
    with pytest.raises(ApplicationError):
        new_job(content)


def test_mapping_is_remembered_per_source():
    # given
    source = SourceFactory()
    job = run_import(
        "Mail address,Org\nann@a.example,Initech\n",
        source=source,
        mapping={
            "Mail address": "email",
            "Org": "company_name",
        },
    )
    assert job.status == ImportStatus.COMPLETED
    # when
    source.refresh_from_db()
    suggested = import_mapping_suggest(headers=["Mail address", "Org", "New"], source=source)
    # then
    assert suggested == {"Mail address": "email", "Org": "company_name", "New": "custom:new"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"A": "first_name", "B": ""}, "Map a column to email or phone"),
        ({"A": "email", "B": "email"}, "both mapped to email"),
        ({"A": "email", "B": "shoe_size"}, "Unknown target"),
    ],
)
def test_mapping_validation(mapping, message):
    with pytest.raises(ApplicationError, match=message):
        import_mapping_validate(headers=["A", "B"], mapping=mapping)


# --- preview -------------------------------------------------------------------------------------


def test_preview_validates_each_row_with_the_intake_rules():
    # given
    LeadFactory(email="known@acme.example")
    job = new_job(
        "email,phone,country,y\n"
        "known@acme.example,,,yes\n"
        "new@acme.example,,,no\n"
        "not-an-email,,,\n"
        ",12345,DE,\n"
        ",,,\n"
        "x@acme.example,,,maybe\n"
        "NEW@acme.example,,,\n"
    )
    # when
    rows = import_preview(job=job, mapping=job.mapping)
    # then
    assert [r.number for r in rows] == [1, 2, 3, 4, 6, 7]  # the blank row is skipped
    assert rows[0].matches_existing and rows[0].outcome == Stage.WON and not rows[0].error
    assert not rows[1].matches_existing and rows[1].outcome == Stage.LOST
    assert rows[2].error == "email: Enter a valid email address."
    assert rows[3].error.startswith("phone:")
    assert "is not an outcome" in rows[4].error
    assert rows[5].duplicate_of == 2 and not rows[1].duplicate_of


# --- the run -------------------------------------------------------------------------------------


def test_import_creates_leads_like_the_api_does():
    # given
    campaign = CampaignFactory()
    # when
    job = run_import(
        "Email,First name,Last name,Phone,Country,Tags,Plan\n"
        'ada@acme.example,Ada,Lovelace,+44 20 7946 0958,GB,"vip, conf",pro\n',
        campaign=campaign,
    )
    # then
    assert (job.status, job.total_rows, job.processed_rows) == (ImportStatus.COMPLETED, 1, 1)
    assert (job.created_count, job.merged_count, job.rejected_count) == (1, 0, 0)
    lead = Lead.objects.get()
    assert lead.email_normalized == "ada@acme.example" and lead.phone_e164 == "+442079460958"
    assert (lead.source, lead.campaign, lead.channel) == (job.source, campaign, job.source.channel)
    assert lead.custom_fields == {"plan": "pro"}
    assert sorted(lead.tags.values_list("name", flat=True)) == ["conf", "vip"]
    assert lead.stage == Stage.NEW and lead.enriched_at is None  # the enrichment sweep picks it up
    submission = IntakeSubmission.objects.get()
    assert (submission.lead, submission.outcome, submission.submitted_by) == (
        lead,
        IntakeOutcome.CREATED,
        job.created_by,
    )
    assert submission.payload["email"] == "ada@acme.example"
    activity = Activity.objects.get(lead=lead)  # the capture's intake log, as for an API submission
    assert (activity.kind, activity.actor) == (ActivityKind.IMPORTED, job.created_by)
    assert activity.payload["submission_id"] == submission.pk and activity.payload["import_job_id"] == job.pk
    assert list(StageChange.objects.values_list("from_stage", "to_stage", "reason")) == [("", Stage.NEW, "imported")]


def test_import_deduplicates_against_existing_leads_and_within_the_file():
    # given: a lead captured through the API earlier
    existing = lead_capture(
        data=LeadData(email="John.Smith@gmail.com", first_name="John"), context=IntakeContext(raw_payload={})
    ).lead
    content = (
        "email,phone,last_name,company_name\n"
        "johnsmith+news@gmail.com,,Smith,\n"  # same person as the API lead (Gmail normalisation)
        "eve@corp.example,+49 30 901820,,Corp\n"  # new
        "EVE@corp.example,,Evans,Other\n"  # same person again, later in the file
        ",+4930901820,,\n"  # same phone as Eve
        "bad-email,,,\n"
    )
    # when
    job = run_import(content)
    # then
    assert (job.created_count, job.merged_count, job.rejected_count) == (1, 3, 1)
    assert Lead.objects.count() == 2
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name) == ("John", "Smith")  # blanks filled, never overwritten
    eve = Lead.objects.get(email_normalized="eve@corp.example")
    assert (eve.phone_e164, eve.last_name, eve.company_name) == ("+4930901820", "Evans", "Corp")
    assert eve.submissions.count() == 3
    assert list(eve.submissions.order_by("id").values_list("outcome", flat=True)) == ["created", "merged", "merged"]
    assert eve.activities.filter(kind=ActivityKind.IMPORTED).count() == 3
    assert eve.stage_changes.count() == 1


def test_dedupe_across_batches(monkeypatch):
    # given: the same person in two batches of two rows
    monkeypatch.setattr("leads.imports.BATCH_SIZE", 2)
    job = new_job("email\na@x.example\nb@x.example\nA@x.example\nc@x.example\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    # when
    while import_run(job_id=job.pk, batch_size=2):
        pass
    # then
    job.refresh_from_db()
    assert (job.created_count, job.merged_count) == (3, 1)
    assert Lead.objects.count() == 3


def test_excel_windows_semicolon_file_keeps_accents_quotes_and_the_euro_sign():
    job = run_import(
        "Email;Nom;Titre\nrene@x.example;René Müller;“Head” of sales \u2013 €\n".encode("cp1252"),
        mapping={"Email": "email", "Nom": "last_name", "Titre": "title"},
    )
    assert job.encoding == "cp1252" and job.delimiter == ";"
    lead = Lead.objects.get()
    assert (lead.last_name, lead.title) == ("René Müller", "“Head” of sales \u2013 €")


def test_historical_outcomes_close_leads_with_a_consistent_stage_history():
    # given
    existing_open = LeadFactory(email="open@x.example", stage=Stage.WORKING)
    existing_won = LeadFactory(email="won@x.example", stage=Stage.WON)
    content = (
        "email,converted,created\n"
        "a@x.example,yes,2024-03-01\n"
        "b@x.example,no,2024-03-02\n"
        "c@x.example,,2024-03-03\n"
        "open@x.example,won,\n"
        "won@x.example,lost,\n"
    )
    # when
    job = run_import(content)
    # then
    assert job.mapping["converted"] == "outcome" and job.mapping["created"] == "created_at"
    assert (job.created_count, job.merged_count, job.rejected_count) == (3, 2, 0)
    stages = dict(Lead.objects.values_list("email", "stage"))
    assert stages == {
        "a@x.example": Stage.WON,
        "b@x.example": Stage.LOST,
        "c@x.example": Stage.NEW,
        "open@x.example": Stage.WON,
        "won@x.example": Stage.WON,  # a closed lead keeps its result
    }
    a = Lead.objects.get(email="a@x.example")
    assert a.created_at.date().isoformat() == "2024-03-01" and a.stage_changed_at == a.created_at
    assert list(a.stage_changes.values_list("from_stage", "to_stage")) == [("", Stage.NEW), (Stage.NEW, Stage.WON)]
    assert a.activities.filter(kind=ActivityKind.STAGE_CHANGED, payload__to=Stage.WON).exists()
    existing_open.refresh_from_db()
    assert existing_open.stage_changes.get().from_stage == Stage.WORKING
    # every lead's stage is the last stage change's target
    for lead in Lead.objects.exclude(pk__in=[existing_open.pk, existing_won.pk]):
        assert lead.stage_changes.order_by("changed_at", "id").last().to_stage == lead.stage


def test_rejected_rows_download_with_reason_and_formula_guard(client, ops_user):
    # given
    job = run_import("email,first_name\n=HYPERLINK(1),x\nok@x.example,Ok\n,Nobody\n", user=ops_user)
    client.force_login(ops_user)
    # when
    response = client.get(reverse("leads-import:rejects", args=[job.pk]))
    # then
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["row", "reason", "email", "first_name"]
    assert rows[1] == ["1", "email: Enter a valid email address.", "'=HYPERLINK(1)", "x"]
    assert rows[2] == ["3", "email: Provide an email address or a phone number.", "", "Nobody"]


def test_progress_is_committed_batch_by_batch_and_a_rerun_resumes():
    # given
    job = new_job("email\n" + "".join(f"p{n}@x.example\n" for n in range(5)))
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    # when: a run with no time left stops after its first batch
    more = import_run(job_id=job.pk, time_budget=0, batch_size=2)
    # then
    job.refresh_from_db()
    assert more and (job.status, job.total_rows, job.processed_rows, job.percent) == ("running", 5, 2, 40)
    # when: the re-enqueued run (or a redelivery) resumes
    while import_run(job_id=job.pk, batch_size=2):
        pass
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.percent) == (ImportStatus.COMPLETED, 5, 5, 100)
    # and a redelivered message for a finished job is a no-op
    assert import_run(job_id=job.pk) is False
    lead_import_run_task(job_id=job.pk)
    assert Lead.objects.count() == 5 and IntakeSubmission.objects.count() == 5


def test_cancel_stops_between_batches_and_keeps_what_was_imported():
    # given
    job = new_job("email\n" + "".join(f"p{n}@x.example\n" for n in range(6)))
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    import_run(job_id=job.pk, time_budget=0, batch_size=2)
    # when
    import_cancel(job_id=job.pk)
    more = import_run(job_id=job.pk, batch_size=2)
    # then
    job.refresh_from_db()
    assert not more and job.status == ImportStatus.CANCELLED and job.finished_at
    assert job.processed_rows == 2 and Lead.objects.count() == 2


def test_cancel_before_the_worker_starts():
    job = new_job("email\na@x.example\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    assert import_cancel(job_id=job.pk).status == ImportStatus.CANCELLED
    assert import_run(job_id=job.pk) is False and Lead.objects.count() == 0


def test_start_enqueues_the_task_after_commit_and_only_once(django_capture_on_commit_callbacks):
    job = new_job("email\na@x.example\n")
    with (
        mock.patch("leads.tasks.lead_import_run_task.apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    apply_async.assert_called_once_with(kwargs={"job_id": job.pk}, retry=False, producer=mock.ANY)
    with pytest.raises(ApplicationError, match="already been started"):
        import_start(job_id=job.pk, mapping=job.mapping, source=job.source)


def test_a_failing_import_is_marked_failed():
    job = new_job("email\na@x.example\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    with mock.patch("leads.imports.run.lead_store", side_effect=RuntimeError("disk on fire")):
        import_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "disk on fire" in job.error


def test_a_batch_is_stored_whole_or_not_at_all():
    # given: the second row of a batch fails in a way no row is rejected for (as a killed worker would)
    job = new_job("email,converted\na@x.example,won\nb@x.example,\nc@x.example,\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    calls = []

    def dies_on_the_second_row(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real_lead_store(**kwargs)

    # when
    with mock.patch("leads.imports.run.lead_store", side_effect=dies_on_the_second_row):
        import_run(job_id=job.pk)
    # then: nothing of the batch is left, the first row's lead and outcome included, and no progress
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.processed_rows == 0
    assert not Lead.objects.exists() and not IntakeSubmission.objects.exists() and not StageChange.objects.exists()


def test_bank_marketing_history_import():
    """A slice of the real UCI bank-marketing file (semicolon, quoted, outcome `y`; every 68th row).
    It has no contact details, so the test adds a synthetic email per row: bank-<row>@example.invalid."""
    # given
    with open(BANK_CSV, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter=";")
        header = next(reader)
        rows = list(reader)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerow(["email", *header])
    for number, row in enumerate(rows, start=1):
        writer.writerow([f"bank-{number}@example.invalid", *row])
    yes = sum(1 for row in rows if row[-1] == "yes")
    # when
    job = run_import(out.getvalue(), source=SourceFactory(name="Bank telemarketing"))
    # then
    assert job.mapping["y"] == "outcome" and job.mapping["job"] == "custom:job"
    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.COMPLETED, len(rows), 0)
    assert Lead.objects.filter(stage=Stage.WON).count() == yes > 0
    assert Lead.objects.filter(stage=Stage.LOST).count() == len(rows) - yes > 0
    assert StageChange.objects.filter(to_stage__in=[Stage.WON, Stage.LOST]).count() == len(rows)
    lead = Lead.objects.get(email="bank-1@example.invalid")
    assert lead.custom_fields["job"] == "housemaid" and lead.custom_fields["age"] == "56"


# --- pages ---------------------------------------------------------------------------------------


def test_import_pages_need_the_import_permission(client, rep_user):
    client.force_login(rep_user)
    assert client.get(reverse("leads-import:list")).status_code == 403


def test_a_rejected_upload_leaves_no_new_source_behind(client, ops_user):
    # given
    client.force_login(ops_user)
    # when: an empty file, with a new source named
    response = client.post(reverse("leads-import:upload"), {"file": upload("   \n"), "new_source": "Fair 2027"})
    # then
    assert response.status_code == 400 and "The file is empty." in response.content.decode()
    assert not Source.objects.filter(name="Fair 2027").exists() and not ImportJob.objects.exists()


def test_upload_map_preview_start_and_follow_progress(client, ops_user):
    # given
    client.force_login(ops_user)
    CampaignFactory(name="Spring webinar")
    assert client.get(reverse("leads-import:list")).status_code == 200
    # when: upload
    response = client.post(
        reverse("leads-import:upload"),
        {"file": upload("Mail,Name,Won\nann@a.example,Ann,yes\nbad,Bob,no\n"), "new_source": "Fair 2026"},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("leads-import:detail", args=[job.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200 and b"Map columns" in page.content and b"New lead" in page.content
    # when: the mapping changes, htmx asks for the preview only
    preview = client.post(
        reverse("leads-import:preview", args=[job.pk]),
        {"map-0": "", "map-1": "first_name", "map-2": "outcome"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="import-preview",
    )
    assert preview.status_code == 200 and b'id="import-preview"' in preview.content
    assert b"Map a column to email or phone" in preview.content and b"<html" not in preview.content
    # when: start
    with mock.patch("leads.tasks.lead_import_run_task.apply_async"):
        started = client.post(
            reverse("leads-import:start", args=[job.pk]),
            {"map-0": "email", "map-1": "first_name", "map-2": "outcome", "campaign": ""},
        )
    assert started.status_code == 302
    assert Source.objects.get(name="Fair 2026").import_mapping == {
        "Mail": "email",
        "Name": "first_name",
        "Won": "outcome",
    }
    import_run(job_id=job.pk)
    # then: the progress partial shows 100% and the counts, and stops polling
    progress = client.get(reverse("leads-import:progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    html = progress.content.decode()
    assert 'data-testid="import-percent">100%' in html and 'data-testid="import-created">1<' in html
    assert 'data-testid="import-rejected">1<' in html and "every 1s" not in html
    assert client.get(reverse("leads-import:detail", args=[job.pk])).status_code == 200


def test_start_with_a_bad_mapping_shows_the_error(client, ops_user):
    client.force_login(ops_user)
    job = new_job("Mail,Name\nann@a.example,Ann\n", user=ops_user)
    response = client.post(reverse("leads-import:start", args=[job.pk]), {"map-0": "", "map-1": "first_name"})
    assert response.status_code == 400 and b"Map a column to email or phone" in response.content
    job.refresh_from_db()
    assert job.status == ImportStatus.DRAFT


def test_cancel_through_htmx_returns_the_progress_partial(client, ops_user):
    client.force_login(ops_user)
    job = new_job("email\na@x.example\n", user=ops_user)
    response = client.post(reverse("leads-import:cancel", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'data-status="cancelled"' in response.content


# --- a real worker -------------------------------------------------------------------------------


@pytest.mark.worker
def test_a_real_worker_runs_an_import_to_the_end(celery_worker_process, settings):
    # given: the worker reads the upload from the default MEDIA_ROOT (it does not see this test's settings)
    settings.MEDIA_ROOT = str(ROOT / "var" / "media")
    rows = BATCH_SIZE + 500
    job = new_job("email,y\n" + "".join(f"w{n}@worker.example,{'yes' if n % 3 == 0 else 'no'}\n" for n in range(rows)))
    # when
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            break
        time.sleep(0.3)
    # then
    assert (job.status, job.percent, job.created_count) == (ImportStatus.COMPLETED, 100, rows)
    assert Lead.objects.filter(stage=Stage.WON).count() == len(range(0, rows, 3))
    job.file.delete(save=False)


# --- races with the intake API -------------------------------------------------------------------


def test_a_row_the_database_refuses_is_rejected_and_the_batch_goes_on():
    # given: the database refuses one row after its capture wrote the lead (a constraint, say)
    job = new_job("email,converted\nok@x.example,\nboom@x.example,won\nalso@x.example,\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)

    def refuses_boom(**kwargs):
        result = real_lead_store(**kwargs)
        if kwargs["data"].email == "boom@x.example":
            raise IntegrityError('duplicate key value violates unique constraint "some_constraint"')
        return result

    # when
    with mock.patch("leads.imports.run.lead_store", side_effect=refuses_boom):
        import_run(job_id=job.pk)
    # then: that row is rolled back to its savepoint and rejected with the reason; the others stored
    job.refresh_from_db()
    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.COMPLETED, 2, 1)
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["also@x.example", "ok@x.example"]
    assert IntakeSubmission.objects.count() == 2
    error = job.row_errors.get()
    assert error.row_number == 2 and error.reason.startswith("not stored: duplicate key value")


@pytest.mark.django_db(transaction=True)
@requires_postgres
def test_import_and_api_submissions_of_the_same_people_at_once_give_one_lead_each():
    # given
    people = [f"p{n}@race.example" for n in range(300)]
    job = new_job("email\n" + "\n".join(people) + "\n")
    import_start(job_id=job.pk, mapping=job.mapping, source=job.source)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def importer() -> None:
        try:
            barrier.wait()
            while import_run(job_id=job.pk, batch_size=50):
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def api(offset: int) -> None:
        try:
            barrier.wait()
            for email in people[offset::2]:
                lead_capture(data=LeadData(email=email.upper()), context=IntakeContext(raw_payload={}))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=importer), threading.Thread(target=api, args=(0,))]
    threads.append(threading.Thread(target=api, args=(1,)))
    # when
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    assert not errors, errors
    job.refresh_from_db()
    assert job.status == ImportStatus.COMPLETED and job.created_count + job.merged_count == 300
    assert Lead.objects.count() == 300
    assert IntakeSubmission.objects.count() == 600  # one per import row and one per API call


def test_import_list_query_count_does_not_grow_with_jobs(client, ops_user, django_assert_max_num_queries):
    # given
    for n in range(15):
        job = new_job(f"email\nq{n}@x.example\n", user=ops_user, source=SourceFactory())
        job.campaign = CampaignFactory()
        job.save()
    client.force_login(ops_user)
    # when / then: session, user, permissions, the jobs with their source/campaign/user in one query
    with django_assert_max_num_queries(8):
        response = client.get(reverse("leads-import:list"))
    assert response.status_code == 200 and response.content.count(b"import-status-draft") == 15


def test_an_outcome_that_closes_an_owned_lead_gives_its_rep_the_capacity_back():
    # given: a rep holding one open lead
    from routing.models import RepProfile

    lead = LeadFactory(email="mine@x.example", stage=Stage.WORKING, assigned=True)
    rep = RepProfile.objects.create(user=lead.owner, capacity=5, open_leads=1)
    # when: a historical import says that lead was won
    run_import("email,converted\nmine@x.example,won\n")
    # then: at once, not at the next recount sweep
    rep.refresh_from_db()
    assert rep.open_leads == 0


# --- retention -----------------------------------------------------------------------------------


def _aged(job: ImportJob, *, days: int, field: str) -> ImportJob:
    from datetime import timedelta

    from django.utils import timezone

    ImportJob.objects.filter(pk=job.pk).update(**{field: timezone.now() - timedelta(days=days)})
    job.refresh_from_db()
    return job


def test_files_and_rejected_rows_are_deleted_once_the_retention_period_is_over(settings, client, ops_user):
    # given: 30 days of retention; an import that ended 31 days ago and one that just ended (each with
    # a rejected row), an upload abandoned 31 days ago and one from today
    settings.LEADOPS_IMPORT_RETENTION_DAYS = 30
    content = "email,first_name\nkeep@x.example,Kept\nnot-an-email,Bad\n"
    old = _aged(run_import(content, user=ops_user), days=31, field="finished_at")
    recent = run_import(content.replace("keep@", "recent@"))
    abandoned = _aged(new_job(content), days=31, field="created_at")
    fresh_draft = new_job(content)
    storage = old.file.storage

    # when: the hourly job runs, twice
    purged, again = import_files_purge(), import_files_purge()

    # then: the old import and the abandoned upload lost their file and rejected rows, nothing else
    assert (purged, again) == (2, 0)
    for job in (old, abandoned):
        job.refresh_from_db()
        assert job.purged_at is not None and not storage.exists(job.file.name)
        assert not job.row_errors.exists()
    assert (old.created_count, old.rejected_count) == (1, 1) and Lead.objects.filter(email="keep@x.example").exists()
    assert abandoned.status == ImportStatus.CANCELLED and "Not started within 30 days" in abandoned.error
    for job in (recent, fresh_draft):
        job.refresh_from_db()
        assert job.purged_at is None and storage.exists(job.file.name)
    assert recent.row_errors.count() == 1

    # and the import's page says so instead of offering the download
    client.force_login(ops_user)
    page = client.get(reverse("leads-import:detail", args=[old.pk])).content.decode()
    assert "were deleted on" in page and "kept 30 days" in page
    assert reverse("leads-import:rejects", args=[old.pk]) not in page


def test_a_retention_of_zero_days_keeps_every_file(settings):
    # given
    settings.LEADOPS_IMPORT_RETENTION_DAYS = 0
    job = _aged(run_import("email\nnot-an-email\n"), days=3650, field="finished_at")
    # when
    purged = import_files_purge()
    # then
    job.refresh_from_db()
    assert purged == 0 and job.purged_at is None and job.row_errors.count() == 1
    assert job.file.storage.exists(job.file.name)


# --- hostile files (issue 13 item 5) ---------------------------------------------------------------

BIG_CELL = "x" * 200_000  # over the csv module's field limit (128 KB)
PAST_THE_SNIFF = "p" * 70_000  # pushes what follows past the first 64 KB the upload looks at


def test_a_nul_byte_after_the_first_64_kb_rejects_its_row_and_the_import_goes_on():
    # given: a NUL inside a mapped cell, far past the bytes the upload sniffs
    content = (
        f"email,first_name,notes\na@x.example,Ann,{PAST_THE_SNIFF}\nb@x.example,B\x00b,\n"
        "=c@x.example\x00,Cy,\nd@x.example,Dee,\n"
    )
    # when
    job = run_import(content, mapping={"email": "email", "first_name": "first_name", "notes": ""})
    # then: the two bad rows are rejected with a reason, the rest imported, the job completed
    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.COMPLETED, 2, 2), job.error
    assert sorted(Lead.objects.values_list("email", flat=True)) == ["a@x.example", "d@x.example"]
    errors = list(job.row_errors.order_by("row_number"))
    assert [e.row_number for e in errors] == [2, 3]
    assert "first_name: the cell contains a NUL character" in errors[0].reason
    assert "email: the cell contains a NUL character" in errors[1].reason
    # the rejected cells are kept, with the NUL shown as U+FFFD (PostgreSQL JSON cannot hold U+0000)
    assert errors[0].values == ["b@x.example", "B\ufffdb", ""]


def test_a_nul_byte_in_a_row_shows_as_an_error_in_the_preview():
    # given
    job = new_job(f"email,first_name,notes\na@x.example,Ann,{PAST_THE_SNIFF}\nb@x.example,B\x00b,\n")
    # when
    rows = import_preview(job=job, mapping={"email": "email", "first_name": "first_name", "notes": ""})
    # then
    assert [r.error for r in rows] == ["", "first_name: the cell contains a NUL character."]


def test_a_cell_over_the_field_limit_is_refused_at_upload_with_a_clear_message(client, ops_user):
    # given
    client.force_login(ops_user)
    content = f"email,notes\na@x.example,short\nb@x.example,{BIG_CELL}\n"
    # when
    response = client.post(reverse("leads-import:upload"), {"file": upload(content), "new_source": "Fair 2028"})
    # then
    assert response.status_code == 400
    assert "Row 2 has a cell longer than 128 KB" in response.content.decode()
    assert not ImportJob.objects.exists() and not Source.objects.filter(name="Fair 2028").exists()


def _file_replaced(job: ImportJob, content: str) -> ImportJob:
    """A job whose stored file changed after upload (uploaded before the size check existed)."""
    Path(job.file.path).write_bytes(content.encode())
    return job


def test_a_cell_over_the_field_limit_in_a_stored_file_is_a_rejected_row_in_the_preview_not_a_500(client, ops_user):
    # given
    client.force_login(ops_user)
    job = new_job("email,notes\na@x.example,x\n", user=ops_user)
    _file_replaced(job, f"email,notes\na@x.example,x\nb@x.example,{BIG_CELL}\nc@x.example,y\n")
    # when
    page = client.get(reverse("leads-import:detail", args=[job.pk]))
    rows = import_preview(job=job, mapping={"email": "email", "notes": ""})
    # then
    assert page.status_code == 200
    assert [r.number for r in rows] == [1, 2, 3]
    assert rows[1].error.startswith("This row has a cell longer than 128 KB")


def test_a_cell_over_the_field_limit_rejects_its_row_and_the_job_completes():
    # given
    job = new_job("email,notes\na@x.example,x\n")
    _file_replaced(job, f"email,notes\na@x.example,x\nb@x.example,{BIG_CELL}\nc@x.example,y\n")
    import_start(job_id=job.pk, mapping={"email": "email", "notes": ""}, source=job.source)
    # when
    while import_run(job_id=job.pk):
        pass
    # then
    job.refresh_from_db()
    assert (job.status, job.total_rows, job.created_count, job.rejected_count) == (
        ImportStatus.COMPLETED,
        3,
        2,
        1,
    ), job.error
    error = job.row_errors.get()
    assert error.row_number == 2 and error.reason.startswith("This row has a cell longer than 128 KB")
    assert error.values == []


def test_one_row_whose_rejection_cannot_be_stored_does_not_fail_the_job(monkeypatch):
    # given: the database refuses the rejected-row insert of one batch (whatever the cause)
    from leads.imports import run as run_module

    real_bulk_create = run_module.ImportRowError.objects.bulk_create
    calls = {"n": 0}

    def refuses_once(objs, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            from django.db import DataError

            raise DataError("unsupported Unicode escape sequence")
        return real_bulk_create(objs, **kwargs)

    monkeypatch.setattr(run_module.ImportRowError.objects, "bulk_create", refuses_once)
    # when
    job = run_import("email\nbad\nok@x.example\n")
    # then
    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.COMPLETED, 1, 1), job.error


def test_a_large_upload_spooled_to_disk_is_checked_and_stored_whole(client, ops_user, settings):
    # given: over FILE_UPLOAD_MAX_MEMORY_SIZE, so Django hands the view a temporary file on disk
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(ops_user)
    rows = "".join(f"p{n}@x.example,Name {n}\n" for n in range(2000))
    good, bad = f"email,first_name\n{rows}", f"email,first_name\n{rows}late@x.example,{BIG_CELL}\n"
    # when
    refused = client.post(reverse("leads-import:upload"), {"file": upload(bad), "new_source": "Fair A"})
    accepted = client.post(reverse("leads-import:upload"), {"file": upload(good), "new_source": "Fair B"})
    # then
    assert refused.status_code == 400 and "Row 2001 has a cell longer than 128 KB" in refused.content.decode()
    assert accepted.status_code == 302
    job = ImportJob.objects.get()
    assert Path(job.file.path).read_text() == good
