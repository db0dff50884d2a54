"""Run by test_capture_atomicity.py in a process of its own: capture one submission and die with
SIGKILL at the point named by argv[1] (what a crashed web worker or an OOM kill does: no
exception handler, no rollback from Python, the connection just drops)."""

import os
import signal
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from leads.services import IntakeContext, LeadData, lead_capture  # noqa: E402
from leads.services import intake as intake_services  # noqa: E402
from routing.services import assignment as assignment_services  # noqa: E402


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def after(module, name: str) -> None:
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        die()
        return result

    setattr(module, name, wrapper)


def before(module, name: str) -> None:
    def wrapper(*args, **kwargs):
        die()

    setattr(module, name, wrapper)


POINTS = {
    "after-lead-insert": lambda: after(intake_services, "insert_unless_conflict"),
    "after-intake-log": lambda: after(intake_services, "_intake_log_write"),
    "after-rep-take": lambda: after(assignment_services, "rep_front_take"),
    "after-owner-set": lambda: after(assignment_services, "lead_owner_set"),
    "before-response-clock": lambda: before(assignment_services, "sla_clock_restart"),
    "before-commit": lambda: after(assignment_services, "_owner_notification_request"),
}

if __name__ == "__main__":
    point, email = sys.argv[1], sys.argv[2]
    POINTS[point]()
    lead_capture(data=LeadData(email=email, first_name="Killed"), context=IntakeContext(raw_payload={"email": email}))
    print("survived")  # the kill point was never reached
