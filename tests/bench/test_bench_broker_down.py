"""bench/intake.py --broker-down: intake measured with the Celery broker unreachable (issue 13,
item 2), next to the normal intake of the same run. Runs at tiny sizes like the other smoke tests;
the figures are not judged here, the target's arithmetic is."""

import re

import pytest

from tests.bench.test_bench_smoke import (  # noqa: F401 (fixtures)
    NUMBER,
    REDIS_BROKER_DB,
    REDIS_CACHE_DB,
    _figures,
    _intake_module,
    _redis_url,
    bench_database,
    run_bench,
    template_database,
)
from tests.conftest import requires_postgres, requires_redis


@requires_postgres
@requires_redis
@pytest.mark.postgres
def test_intake_broker_down(bench_database):  # noqa: F811
    # when: unique people from 1 client, against the normal server and the one whose broker is down
    out = run_bench(
        "intake.py",
        *("--broker-down", "--only", "unique", "--clients", "1"),
        *("--seconds", "1", "--warmup", "0.3", "--workers", "2"),
        *("--database-url", bench_database),
        *("--redis-url", _redis_url(REDIS_CACHE_DB), "--broker-url", _redis_url(REDIS_BROKER_DB)),
    )
    # then: both rows, the comparison, its target judged, and no request failed
    for scenario in ("intake, unique people, 1 client", "intake, unique people, 1 client, broker down"):
        assert re.search(rf"^{re.escape(scenario)} +{NUMBER} +{NUMBER}", out, re.M), scenario
    assert re.search(rf"intake, unique people, 1 client: {NUMBER} / {NUMBER} ms = {NUMBER}x", out)
    assert re.search(r"^  \[(?:pass|FAIL)\] p95 with the broker down <= 2x the normal p95 at 1 client", out, re.M)
    assert "[pass] zero errors in every scenario" in out


@pytest.mark.parametrize(("down_p95", "met"), [(19.0, True), (20.0, True), (21.0, False)])
def test_broker_down_target_is_twice_the_normal_p95_of_the_same_run(down_p95, met):
    # given: unique people at 8 clients, p95 10 ms normally
    intake = _intake_module()
    plan = {(s.kind, s.clients, s.broker_down): s for s in intake.scenarios([8], {"unique"}, broker_down=True)}
    results = {
        plan["unique", 8, False]: _figures(intake, rps=300.0, p99=10.0),
        plan["unique", 8, True]: _figures(intake, rps=300.0, p99=down_p95),
    }
    # when
    checks = [(text, ok) for text, ok in intake.target_checks(results) if "broker down" in text]
    # then: judged against the normal scenario, not mistaken for it
    assert len(checks) == 1 and checks[0][1] is met
    assert f"{down_p95:.1f} / 10.0 ms" in checks[0][0]
