"""CSV import in a real browser with a real Celery worker: ops uploads a small CSV, maps a column,
sees the preview, starts, and watches the progress reach 100% with the counts.

Screenshots land in tests/_screenshots/ (git-ignored).
"""

import pytest

from core.roles import Role
from leads.models import ImportJob, Lead, Source, Stage
from tests.conftest import SCREENSHOTS
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker]


CSV = (
    "E-mail;Vorname;Nachname;Firma;Land;Abschluss;Notiz\n"
    "ada@analytical.example;Ada;Lovelace;Analytical Engines;GB;won;met at booth\n"
    "grace@cobol.example;Grace;Hopper;Cobol Inc;US;lost;\n"
    "alan@bletchley.example;Alan;Turing;Bletchley Park;GB;;Preisanfrage für Pläne\n"
    "known@acme.example;Kim;Known;Acme;DE;;\n"
    "not-an-email;Nobody;;;;;\n"
    "ADA@analytical.example;;;;;;second visit\n"
)


def test_ops_imports_a_csv_and_sees_it_finish(browser, celery_worker_process, live_server):
    from playwright.sync_api import expect

    # given
    UserFactory(username="olivia", first_name="Olivia", last_name="Ops", with_role=Role.MARKETING_OPS)
    LeadFactory(email="known@acme.example", first_name="Kim", last_name="")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    # when: upload
    page.goto(f"{live_server.url}/leads/import/")
    page.set_input_files(
        "#id_file", files=[{"name": "trade-show.csv", "mimeType": "text/csv", "buffer": CSV.encode("cp1252")}]
    )
    page.fill("#id_new_source", "Trade show Berlin")
    page.screenshot(path=SCREENSHOTS / "import-upload-desktop.png", full_page=True)
    page.click("text=Upload and map columns")
    expect(page.locator("h1")).to_have_text("Map columns")

    # when: map the German headers (the email column is recognised on its own)
    for column, target in [
        ("Vorname", "first_name"),
        ("Nachname", "last_name"),
        ("Firma", "company_name"),
        ("Land", "country"),
        ("Abschluss", "outcome"),
        ("Notiz", "message"),
    ]:
        page.get_by_label(column, exact=True).select_option(target)
    expect(page.locator("#import-preview")).to_contain_text("Updates existing lead")
    expect(page.locator("#import-preview")).to_contain_text("Enter a valid email address")
    expect(page.locator("#import-preview")).to_contain_text("Lovelace")
    expect(page.locator("#import-preview thead")).to_contain_text("Outcome")
    expect(page.locator("#import-preview thead")).not_to_contain_text("abschluss")
    page.screenshot(path=SCREENSHOTS / "import-mapping-desktop.png", full_page=True)
    page.click("#import-start")

    # then: the progress bar, polled by htmx, reaches 100% with the counts
    expect(page.get_by_test_id("import-percent")).to_have_text("100%", timeout=30_000)
    expect(page.get_by_test_id("import-created")).to_have_text("3")
    expect(page.get_by_test_id("import-merged")).to_have_text("2")
    expect(page.get_by_test_id("import-rejected")).to_have_text("1")
    expect(page.locator("[data-status]")).to_have_text("Completed")
    expect(page.get_by_text("Download rejected rows (CSV)")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "import-progress-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=SCREENSHOTS / "import-progress-phone.png", full_page=True)

    job = ImportJob.objects.get()
    assert job.status == "completed" and job.encoding == "cp1252" and job.delimiter == ";"
    assert Lead.objects.get(email_normalized="ada@analytical.example").stage == Stage.WON
    assert Source.objects.get(name="Trade show Berlin").import_mapping["Abschluss"] == "outcome"

    # and the list of imports shows it
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/leads/import/")
    expect(page.locator("table")).to_contain_text("trade-show.csv")
    page.screenshot(path=SCREENSHOTS / "import-list-desktop.png", full_page=True)
    job.file.delete(save=False)
