"""The lead workspace in a real browser: filter, open, log a call; a rep cannot open another rep's lead.

Screenshots (1366x768 and 375x812) land in tests/_screenshots/ (git-ignored) for anyone to look at.
"""

import re

import pytest

from core.roles import Role
from leads.models import Stage
from tests.conftest import SCREENSHOTS
from tests.core.factories import UserFactory
from tests.leads.factories import LeadFactory, SourceFactory, TagFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 375, "height": 812}}


def sign_in(browser, live_server, username: str, viewport: str):
    page = browser.new_page(viewport=VIEWPORTS[viewport])
    page.goto(f"{live_server.url}/login/")
    page.screenshot(path=SCREENSHOTS / f"leads-login-{viewport}.png")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page


@pytest.fixture
def workspace(db):
    ops = UserFactory(username="olivia", first_name="Olivia", last_name="Ops", with_role=Role.MARKETING_OPS)
    rep = UserFactory(username="rory", first_name="Rory", last_name="Rep", with_role=Role.SALES_REP)
    other = UserFactory(username="sam", first_name="Sam", last_name="Seller", with_role=Role.SALES_REP)
    web, event = SourceFactory(name="Website demo form"), SourceFactory(name="SaaStr booth")
    vip = TagFactory(name="enterprise")
    ada = LeadFactory(
        first_name="Ada",
        last_name="Lovelace",
        company_name="Analytical Engines",
        title="CTO",
        owner=rep,
        score=88,
        source=web,
        stage=Stage.NEW,
    )
    ada.tags.add(vip)
    LeadFactory(first_name="Grace", last_name="Hopper", company_name="Cobol Inc", owner=rep, score=55, source=event)
    LeadFactory(first_name="<script>alert(1)</script>", last_name="Mallory", owner=other, score=12, source=web)
    theirs = LeadFactory(first_name="Alan", last_name="Turing", company_name="Bletchley", owner=other, score=70)
    for n in range(12):
        LeadFactory(owner=other if n % 2 else rep, source=event if n % 3 else web, score=n * 7)
    return {"ops": ops, "rep": rep, "ada": ada, "theirs": theirs}


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_ops_filters_opens_a_lead_and_logs_a_call(browser, live_server, workspace, viewport):
    from playwright.sync_api import expect

    dialogs: list[str] = []
    # given: ops signed in, on the lead list
    page = sign_in(browser, live_server, "olivia", viewport)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/leads/")
    expect(page.locator("#lead-count")).to_have_text("16 leads")
    expect(page.locator("#lead-table")).to_contain_text("<script>alert(1)</script>")  # shown as text
    page.screenshot(path=SCREENSHOTS / f"leads-list-{viewport}.png")

    # when: typing a search filters the table through htmx and the URL keeps the filter
    page.fill("#f-q", "lovelace")
    expect(page).to_have_url(re.compile(r"/leads/\?.*q=lovelace"))
    expect(page.locator("#lead-table tbody tr")).to_have_count(1)
    expect(page.locator("#lead-count")).to_have_text("1 lead")
    page.screenshot(path=SCREENSHOTS / f"leads-list-filtered-{viewport}.png")

    # and: open the lead, log a call
    page.click("a.lead-link:has-text('Ada Lovelace')")
    expect(page.locator("#lead-header h1")).to_have_text("Ada Lovelace")
    page.screenshot(path=SCREENSHOTS / f"leads-detail-{viewport}.png", full_page=True)
    page.locator("#activity-form label:has-text('Call')").click()
    page.fill("#id_note", "Spoke to Ada: demo booked for Tuesday")
    page.click("#activity-form button[type=submit]")

    # then: the call is in the timeline, the form is fresh, the header moved to Working (first contact)
    expect(page.locator("#activity-form")).to_contain_text("Call logged")
    expect(page.locator("#lead-timeline .tl-call")).to_contain_text("Spoke to Ada: demo booked for Tuesday")
    expect(page.locator("#lead-header .stage")).to_have_text("Working")
    expect(page.locator("#stage-form")).to_contain_text("Move from Working to")
    expect(page.locator("#id_note")).to_have_value("")
    page.screenshot(path=SCREENSHOTS / f"leads-detail-call-logged-{viewport}.png", full_page=True)
    assert dialogs == []


def test_ops_changes_stage_and_sees_the_refusal_inline(browser, live_server, workspace):
    from playwright.sync_api import expect

    page = sign_in(browser, live_server, "olivia", "desktop")
    page.goto(f"{live_server.url}/leads/{workspace['ada'].pk}/")
    page.select_option("#id_to_stage", "mql")
    page.fill("#id_reason", "Asked for pricing")
    page.click("#stage-form button[type=submit]")
    expect(page.locator("#stage-form")).to_contain_text("Moved to MQL.")
    expect(page.locator("#lead-header .stage")).to_have_text("MQL")
    expect(page.locator("#lead-timeline")).to_contain_text("Asked for pricing")


def test_rep_cannot_open_another_reps_lead(browser, live_server, workspace):
    from playwright.sync_api import expect

    for viewport in VIEWPORTS:
        # given: a rep signed in sees only their own leads
        page = sign_in(browser, live_server, "rory", viewport)
        page.goto(f"{live_server.url}/leads/")
        expect(page.locator("h1")).to_have_text("My leads")
        expect(page.locator("#lead-table")).not_to_contain_text("Turing")
        page.screenshot(path=SCREENSHOTS / f"leads-rep-list-{viewport}.png")

        # when: they open another rep's lead by its URL
        response = page.goto(f"{live_server.url}/leads/{workspace['theirs'].pk}/")

        # then
        assert response.status == 404
        expect(page.locator(".error-page")).to_contain_text("Page not found")
        expect(page.locator("body")).not_to_contain_text("Turing")
        page.screenshot(path=SCREENSHOTS / f"leads-rep-404-{viewport}.png")
        page.close()
