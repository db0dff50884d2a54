import time

from django.core.management.base import BaseCommand, CommandParser

from demo.services import DEFAULT_LEAD_COUNT, DEMO_PASSWORD, DEMO_USERS, demo_data_seed


class Command(BaseCommand):
    help = (
        "Load demo data: users for every role, teams, sources, campaigns, accounts and N leads with their "
        "history over the last 90 days, written through the same services as production. Idempotent: a "
        "second run adds only what is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--leads",
            type=int,
            default=DEFAULT_LEAD_COUNT,
            help=f"How many demo leads there should be ({DEFAULT_LEAD_COUNT}).",
        )

    def handle(self, *args, leads: int, **options) -> None:
        if leads < 0:
            self.stderr.write("--leads must be 0 or more.")
            return
        started = time.monotonic()
        result = demo_data_seed(lead_count=leads)
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"Demo data: created {result.summary()} in {elapsed:.1f}s; {result.leads_total} demo leads in all."
        )
        if result.created["users"]:
            names = ", ".join(user.username for user in DEMO_USERS)
            self.stdout.write(f"Demo logins ({names}), password: {DEMO_PASSWORD}")
