"""The demo seeder, split by sub-domain: the organisation (users, teams, reps, rules, sources,
campaigns), the people (identities, accounts) and their history (written through the services
of leads and routing)."""

from demo.services.history import PATHS, lead_history_write, lead_plan
from demo.services.org import DEMO_PASSWORD, DEMO_USERS, DemoUser, org_ensure
from demo.services.people import people
from demo.services.seed import DEFAULT_LEAD_COUNT, DemoSeedResult, demo_data_seed

__all__ = [
    "DEFAULT_LEAD_COUNT",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "PATHS",
    "DemoSeedResult",
    "DemoUser",
    "demo_data_seed",
    "lead_history_write",
    "lead_plan",
    "org_ensure",
    "people",
]
