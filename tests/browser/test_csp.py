"""The Content-Security-Policy in a real browser: every role signs in and opens the pages it can
reach (its navigation, the home tiles, a lead, the admin for admins, the API docs); any
`securitypolicyviolation` event or CSP console error fails the test. The pages' own scripts still
work under the policy (htmx requests, the confirm before deleting a rule, the team's load bars).
"""

import pytest
from django.utils import timezone

from demo.services import DEMO_PASSWORD, demo_data_seed
from tests.routing.factories import RoutingRuleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects violations on every page (added before any script of the page runs).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  var where = e.sourceFile + ":" + e.lineNumber;
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + where);
});
"""
ROLES = {"admin": "Admin", "ops": "Marketing ops", "manager": "Sales manager", "rep1": "Sales rep"}


@pytest.fixture
def demo(db):
    demo_data_seed(lead_count=40, now=timezone.now())
    RoutingRuleFactory(name="Enterprise first")  # a rule ops can delete (the fallback cannot be)


class CspWatch:
    def __init__(self, page):
        self.page = page
        self.found: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on(
            "console",
            lambda msg: self.found.append(f"console: {msg.text}") if "Content Security Policy" in msg.text else None,
        )

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.status < 500, f"{url}: {response and response.status}"
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe" not in policy.split("script-src")[1].split(";")[0], url
        self.page.wait_for_load_state("networkidle")
        self.collect(url)

    def collect(self, where: str) -> None:
        for violation in self.page.evaluate("window.__cspViolations || []"):
            self.found.append(f"{where}: {violation}")
        self.page.evaluate("window.__cspViolations = []")


def sign_in(browser, live_server, username: str) -> CspWatch:
    watch = CspWatch(browser.new_page(viewport={"width": 1366, "height": 768}))
    watch.visit(f"{live_server.url}/login/")
    watch.page.fill("#id_username", username)
    watch.page.fill("#id_password", DEMO_PASSWORD)
    watch.page.click("button[type=submit]")
    watch.page.wait_for_url(f"{live_server.url}/")
    watch.page.wait_for_load_state("networkidle")
    watch.collect("home")
    return watch


@pytest.mark.parametrize("username", list(ROLES))
def test_every_roles_pages_pass_the_csp(browser, live_server, demo, username):
    # given: the role signed in, its pages as its home page links them
    watch = sign_in(browser, live_server, username)
    page = watch.page
    urls = {href for href in page.eval_on_selector_all("a.tile, nav.nav a", "els => els.map(e => e.href)")}
    assert urls, "the home page links no page"

    # when: each page is opened, and the first lead of the lead list
    for url in sorted(urls):
        watch.visit(url)
    watch.visit(f"{live_server.url}/leads/")
    lead_links = page.eval_on_selector_all("a.lead-link", "els => els.map(e => e.href)")
    assert lead_links
    watch.visit(lead_links[0])
    if username == "admin":
        for path in ["/admin/", "/admin/leads/lead/", "/admin/auth/user/", "/admin/leads/lead/add/"]:
            watch.visit(f"{live_server.url}{path}")

    # then
    assert watch.found == []
    assert page.evaluate("document.querySelector('style') === null")  # htmx injected no <style>


def test_the_pages_scripts_still_work_under_the_csp(browser, live_server, demo):
    from playwright.sync_api import expect

    from routing.models import RoutingRule

    # given: ops on the routing rules
    watch = sign_in(browser, live_server, "ops")
    page = watch.page
    watch.visit(f"{live_server.url}/routing/rules/")
    rules_before = RoutingRule.objects.count()
    asked: list[str] = []

    # when: deleting a rule, and saying no when asked
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("form[data-confirm] button").first.click()

    # then: the question came from app.js, nothing was deleted
    assert asked == ["Delete this rule?"]
    assert RoutingRule.objects.count() == rules_before

    # and: htmx still fills the lead count (hx-trigger=load) and filters the list
    watch.visit(f"{live_server.url}/leads/")
    expect(page.locator("#lead-count")).to_contain_text("lead")
    assert watch.found == []


def test_team_load_bars_get_their_width_without_inline_styles(browser, live_server, demo):
    watch = sign_in(browser, live_server, "manager")
    page = watch.page
    watch.visit(f"{live_server.url}/routing/team/")
    bars = page.locator("[data-width-percent]")
    assert bars.count() > 0
    for n in range(bars.count()):
        bar = bars.nth(n)
        expected = min(100.0, float(bar.get_attribute("data-width-percent")))
        assert bar.evaluate("el => el.style.width") == f"{expected:g}%"
    assert watch.found == []
