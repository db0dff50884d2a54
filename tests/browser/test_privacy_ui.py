"""Privacy page in a real browser: an admin erases a lead and sees the audit log.
Screenshots land in tests/_screenshots/ (git-ignored)."""

import pytest

from leads.models import Lead
from tests.conftest import SCREENSHOTS
from tests.core.factories import UserFactory
from tests.leads.factories import ActivityFactory, LeadFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_erases_a_lead(browser, live_server):
    from playwright.sync_api import expect

    # given
    UserFactory(username="root", first_name="Ada", last_name="Admin", is_superuser=True, is_staff=True)
    lead = LeadFactory(first_name="Grace", last_name="Hopper", email="grace@navy.example")
    ActivityFactory(lead=lead, payload={"note": "Grace asked for a call back"})
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    # when
    page.goto(f"{live_server.url}/leads/{lead.pk}/privacy/")
    page.screenshot(path=SCREENSHOTS / "privacy-page-desktop.png", full_page=True)
    page.fill("#erase-reference", "DSR-2026-17")
    page.fill("#erase-confirm", "ERASE")
    page.click("text=Erase this lead")
    # then
    expect(page.get_by_text("has been erased")).to_be_visible()
    expect(page.locator("table")).to_contain_text("Erasure")
    expect(page.locator("table")).to_contain_text("DSR-2026-17")
    page.screenshot(path=SCREENSHOTS / "privacy-erased-desktop.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 812})
    page.screenshot(path=SCREENSHOTS / "privacy-erased-phone.png", full_page=True)
    assert Lead.objects.get(pk=lead.pk).email == ""
