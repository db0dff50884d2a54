"""The API against its own OpenAPI schema (drf-spectacular), fuzzed with schemathesis: every operation,
as an admin, as a sales rep and with an intake API key, valid and invalid inputs. It fails on any
5xx, any response that breaks its schema and any status code the schema does not document.

The schema is generated in process, the requests go through Django's WSGI application into the
test's transaction, and `max_examples` bounds the run (a few hundred requests per identity).
An endpoint added later joins the test by being in the schema.
"""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.roles import Role
from routing.models import QueueEntry
from tests.core.factories import UserFactory
from tests.leads.factories import ApiKeyFactory, LeadFactory
from tests.routing.factories import QueueFactory, RepProfileFactory

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 20  # per operation and identity: the whole file runs in about a minute
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,  # the same examples on every run: a failure in CI is one you can reproduce
    database="none",
)

IDENTITIES = ["admin", "rep", "api_key"]


@pytest.fixture
def wsgi_app():
    # Django's WSGI handler closes "old" connections as a request starts and ends, which would close
    # the test's own transaction; its test client disconnects the same signals.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def world(db):
    """Rows for the generated ids to land on: leads the rep owns and leads in a queue."""
    admin = UserFactory(is_superuser=True, is_staff=True, with_role=Role.ADMIN)
    rep = RepProfileFactory()
    other = RepProfileFactory()
    queue = QueueFactory()
    owned = [LeadFactory(owner=rep.user) for _ in range(3)]
    queued = [LeadFactory() for _ in range(3)]
    now = timezone.now()
    for lead in queued:
        QueueEntry.objects.create(lead=lead, queue=queue, score=0, enqueued_at=now, due_at=now)
    return {
        "headers": {
            "admin": {"Authorization": f"Token {Token.objects.create(user=admin).key}"},
            "rep": {"Authorization": f"Token {Token.objects.create(user=rep.user).key}"},
            "api_key": {"Authorization": f"Api-Key {ApiKeyFactory().raw_key}"},
        },
        "lead_ids": [lead.pk for lead in owned + queued],
        "rep_ids": [rep.pk, other.pk],
    }


def _aim_at_real_rows(case, world) -> None:
    """Half the generated ids point at rows that exist, so the 200 paths are fuzzed too."""
    params = case.path_parameters or {}
    for name, ids in (("lead_id", world["lead_ids"]), ("rep_id", world["rep_ids"])):
        value = params.get(name)
        if isinstance(value, int) and value % 2 == 0:
            params[name] = ids[(value // 2) % len(ids)]


@pytest.mark.parametrize("identity", IDENTITIES)
@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case, identity, world, wsgi_app):
    # given
    _aim_at_real_rows(case, world)
    # when / then
    case.call_and_validate(app=wsgi_app, headers=world["headers"][identity], checks=CHECKS)


@pytest.mark.parametrize("path", ["/api/v1/leads/-5/", "/api/v1/leads/null/stage/", "/api/v1/no-such-thing/"])
def test_an_api_path_no_route_matches_answers_a_json_404(client, path):
    # Found by the fuzzing above: an id the URL converter refuses (negative, not a number) fell
    # through to the HTML 404 page, a content type the schema does not give.
    # when
    response = client.get(path)
    # then
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
