"""Response SLAs, the 5-minute rule (docs/sla.md): a clock per lead and owner, started on assignment,
stopped by the first touch, enforced by a beat sweep running an escalation ladder
(warn the rep -> breach, tell the manager -> reassign). Lock order: routing/locks.py."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.utils import timezone

from core.db import rows_update
from core.exceptions import ApplicationError
from core.models import Notification
from leads.models import CLOSED_STAGES, Lead
from routing.locks import alerts_unsent_for_update, clocks_due_for_update
from routing.models import (
    RUNNING_CLOCK_STATUSES,
    Assignment,
    ClockStatus,
    ResponseClock,
    SlaAlert,
    SlaAlertKind,
    SlaEscalation,
    SlaPolicy,
    TeamCalendar,
)
from routing.selectors import sla_policies_active

logger = logging.getLogger(__name__)

# Used when no SlaPolicy row applies: first touch within 5 minutes, wall-clock time.
DEFAULT_POLICY = SlaPolicy(
    name="Built-in: 5 minutes", first_touch_seconds=300, warn_percent=80, escalate_after_seconds=300
)
# A clock handed to a reassignment (or an email handed to a sender) is retried by a later sweep if
# the worker doing it died: after this long.
ESCALATION_LEASE = timedelta(seconds=120)
EMAIL_LEASE = timedelta(seconds=120)


# --- due times (pure) ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days (0 = Monday) and hours in a time zone, minus holidays. work_start == work_end:
    around the clock on working days; work_end < work_start: a shift past midnight."""

    timezone: str = "UTC"
    work_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    work_start: time = time(9, 0)
    work_end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()


def business_deadline(*, start: datetime, seconds: float, calendar: BusinessCalendar | None) -> datetime:
    """When `seconds` of working time have passed since `start`. Without a calendar: wall-clock time.
    Window edges are local wall times converted to UTC, so DST days are 23 or 25 hours long and
    every sum is done on UTC instants."""
    if calendar is None or not calendar.work_days:
        return start + timedelta(seconds=seconds)
    tz = ZoneInfo(calendar.timezone)
    remaining = timedelta(seconds=seconds)
    cursor = start.astimezone(UTC)
    day = start.astimezone(tz).date() - timedelta(days=1)  # a shift that started yesterday may still run
    for _ in range(800):
        if day.weekday() in calendar.work_days and day not in calendar.holidays:
            opens = datetime.combine(day, calendar.work_start, tzinfo=tz)
            end_day = day if calendar.work_end > calendar.work_start else day + timedelta(days=1)
            closes = datetime.combine(end_day, calendar.work_end, tzinfo=tz)
            opens, closes = opens.astimezone(UTC), closes.astimezone(UTC)
            if closes > cursor:
                cursor = max(cursor, opens)
                if cursor + remaining <= closes:
                    return cursor + remaining
                remaining -= closes - cursor
                cursor = closes
        day += timedelta(days=1)
    return start + timedelta(seconds=seconds)  # a calendar with no working time left (all holidays)


def calendar_for_team(*, team_id: int | None) -> BusinessCalendar | None:
    if team_id is None:
        return None
    row = TeamCalendar.objects.select_related("team").filter(team_id=team_id).first()
    if row is None:
        return None
    return BusinessCalendar(
        timezone=row.team.timezone or "UTC",
        work_days=frozenset(int(d) for d in row.work_days),
        work_start=row.work_start,
        work_end=row.work_end,
        holidays=frozenset(date.fromisoformat(d) for d in row.holidays),
    )


@dataclass(frozen=True)
class ClockTimes:
    warn_at: datetime
    due_at: datetime
    escalate_at: datetime


def clock_times_compute(*, policy: SlaPolicy, start: datetime, calendar: BusinessCalendar | None) -> ClockTimes:
    calendar = calendar if policy.business_hours else None
    warn = policy.first_touch_seconds * min(policy.warn_percent, 100) / 100
    due_at = business_deadline(start=start, seconds=policy.first_touch_seconds, calendar=calendar)
    return ClockTimes(
        warn_at=business_deadline(start=start, seconds=warn, calendar=calendar),
        due_at=due_at,
        escalate_at=business_deadline(start=due_at, seconds=policy.escalate_after_seconds, calendar=calendar),
    )


# --- policies --------------------------------------------------------------------------------------


def sla_policy_for(*, lead: Lead, rule_id: int | None, policies: list[SlaPolicy]) -> SlaPolicy:
    """The first active policy (by position) whose filled-in criteria all match; else the default."""
    default = None
    for policy in policies:
        if not policy.is_active:
            continue
        if policy.is_default:
            default = default or policy
            continue
        if policy.rule_id is None and not policy.company_sizes and not policy.countries and policy.min_score is None:
            continue  # no criteria: only a default applies to everything
        if policy.rule_id is not None and policy.rule_id != rule_id:
            continue
        if policy.company_sizes and lead.company_size not in policy.company_sizes:
            continue
        if policy.countries and (lead.country or "").upper() not in {c.upper() for c in policy.countries}:
            continue
        if policy.min_score is not None and lead.score < policy.min_score:
            continue
        return policy
    return default or DEFAULT_POLICY


# --- clock start / stop (hooks) --------------------------------------------------------------------


def sla_clock_restart(*, lead: Lead, assignment: Assignment, running_clock: bool = True) -> ResponseClock | None:
    """Part of routing's assignment writer, inside its transaction (which holds the lead): the
    lead's running clock closes (`running_clock=False`: it cannot have one, it was captured in
    this transaction), and a new owner gets a fresh clock from the assignment time."""
    now = assignment.created_at
    if running_clock:
        ResponseClock.objects.filter(lead_id=lead.pk, status__in=RUNNING_CLOCK_STATUSES).update(
            status=ClockStatus.CLOSED, closed_at=now, next_action_at=None
        )
    clock = sla_clock_build(lead=lead, assignment=assignment)
    if clock is not None:
        clock.save(force_insert=True)
    return clock


def sla_clock_build(*, lead: Lead, assignment: Assignment) -> ResponseClock | None:
    """The unsaved clock a new owner gets (None for a queue assignment): the policy that applies,
    its deadlines from the assignment time."""
    rep = assignment.rep
    if rep is None:
        return None
    now = assignment.created_at
    policy = sla_policy_for(lead=lead, rule_id=assignment.rule_id, policies=sla_policies_active())
    calendar = calendar_for_team(team_id=rep.team_id) if policy.business_hours else None
    times = clock_times_compute(policy=policy, start=now, calendar=calendar)
    return ResponseClock(
        lead_id=lead.pk,
        rep=rep,
        team_id=rep.team_id,
        policy=policy if policy.pk else None,
        assignment=assignment,
        escalation=policy.escalation,
        started_at=now,
        warn_at=times.warn_at,
        due_at=times.due_at,
        escalate_at=times.escalate_at,
        next_action_at=times.warn_at,
    )


def sla_clock_stop(*, lead_id: int, touched_at: datetime) -> int:
    """Hook of leads' activity_log for a call, email, meeting or message: the running clock stops and
    keeps the time to first touch. A status guard: only a running clock changes (idempotent)."""
    return ResponseClock.objects.filter(lead_id=lead_id, status__in=RUNNING_CLOCK_STATUSES).update(
        status=ClockStatus.TOUCHED,
        first_touch_at=touched_at,
        time_to_first_touch=ExpressionWrapper(
            Value(touched_at, output_field=DateTimeField()) - F("started_at"), output_field=DurationField()
        ),
        next_action_at=None,
    )


# --- enforcement -----------------------------------------------------------------------------------


@dataclass
class SweepResult:
    found: int = 0
    warned: int = 0
    breached: int = 0
    escalated: int = 0
    reassigned: int = 0
    emails: int = 0
    full: bool = False
    reassign_ids: list[int] = field(default_factory=list)


# What the sweep reads of each due clock (one values_list row, no model instances).
DUE_CLOCK_COLUMNS = (
    *("id", "status", "escalation", "lead_id", "rep_id", "team_id", "warn_at", "due_at", "escalate_at"),
    *("next_action_at", "warned_at", "breached_at", "escalated_at", "rep__user_id", "team__manager_id"),
    *("lead__first_name", "lead__last_name", "lead__email", "lead__phone"),
    *("rep__user__first_name", "rep__user__last_name", "rep__user__username", "lead__stage"),
)


class _DueClock:
    """A locked clock as the sweep reads it: the ladder's columns and the names its notifications
    need, from one values_list row (no model instances: a batch of 500 is read in a few ms)."""

    COLUMNS = DUE_CLOCK_COLUMNS
    __slots__ = (
        *("pk", "status", "escalation", "lead_id", "rep_id", "team_id", "warn_at", "due_at", "escalate_at"),
        *("next_action_at", "warned_at", "breached_at", "escalated_at", "rep_user_id", "manager_id"),
        *("lead_label", "rep_label", "lead_closed"),
    )

    def __init__(self, row: tuple) -> None:
        (self.pk, self.status, self.escalation, self.lead_id, self.rep_id, self.team_id, self.warn_at) = row[:7]
        (self.due_at, self.escalate_at, self.next_action_at, self.warned_at, self.breached_at) = row[7:12]
        (self.escalated_at, self.rep_user_id, self.manager_id) = row[12:15]
        first, last, email, phone, rep_first, rep_last, rep_username, stage = row[15:]
        self.lead_closed = stage in CLOSED_STAGES
        self.lead_label = f"{first} {last}".strip() or email or phone or f"Lead {self.lead_id}"
        self.rep_label = f"{rep_first} {rep_last}".strip() or rep_username


def _alert_texts(*, kind: str, clock: _DueClock, now: datetime) -> tuple[str, str]:
    lead, rep = clock.lead_label, clock.rep_label
    if kind == SlaAlertKind.WARNING:
        left = max(int((clock.due_at - now).total_seconds()), 0)
        return f"Respond now: {lead}", f"First touch due in {left // 60} min {left % 60} s."
    if kind == SlaAlertKind.BREACH:
        return f"SLA breached: {lead}", f"{rep} has not touched {lead} within the response SLA."
    action = "is being reassigned" if clock.escalation == SlaEscalation.REASSIGN else "still has no first touch"
    return f"SLA escalated: {lead}", f"{lead} {action} ({rep})."


def _steps_apply(*, clocks: list[_DueClock], now: datetime, result: SweepResult) -> list[tuple]:
    """Advance each locked clock through every step that is due (a sweep after an outage catches
    up on all of them). Returns the alerts owed: (clock, kind, recipient id)."""
    alerts: list[tuple] = []
    for clock in clocks:
        manager_id = clock.manager_id
        if clock.lead_closed:  # won, lost or disqualified without a touch: nothing to enforce
            clock.status, clock.next_action_at = ClockStatus.CLOSED, None
            continue
        if clock.status == ClockStatus.ESCALATING:  # the reassignment never finished: try again
            clock.next_action_at = now + ESCALATION_LEASE
            result.reassign_ids.append(clock.pk)
            continue
        if clock.warned_at is None and clock.warn_at <= now:
            clock.warned_at = now
            result.warned += 1
            alerts.append((clock, SlaAlertKind.WARNING, clock.rep_user_id))
        if clock.breached_at is None and clock.due_at <= now:
            clock.breached_at = now
            result.breached += 1
            if manager_id:
                alerts.append((clock, SlaAlertKind.BREACH, manager_id))
        if clock.escalated_at is None and clock.escalate_at <= now:
            clock.escalated_at = now
            result.escalated += 1
            if manager_id:
                alerts.append((clock, SlaAlertKind.ESCALATION, manager_id))
            if clock.escalation == SlaEscalation.REASSIGN:
                clock.status = ClockStatus.ESCALATING
                clock.next_action_at = now + ESCALATION_LEASE
                result.reassign_ids.append(clock.pk)
                continue
        pending = [
            at for at, done in ((clock.warn_at, clock.warned_at), (clock.due_at, clock.breached_at)) if done is None
        ]
        if clock.escalated_at is None:
            pending.append(clock.escalate_at)
        clock.next_action_at = min(pending) if pending else None
    return alerts


def _alerts_record(*, alerts: list[tuple], now: datetime) -> None:
    """In-app notifications and their alert rows, in the step's transaction (exactly once with it)."""
    if not alerts:
        return
    from routing.services.reps import lead_url, notification_title

    url_template = lead_url(lead_id=987654321)  # one reverse() per batch, not per alert
    rows = []  # (recipient id, title, body, url)
    for clock, kind, recipient_id in alerts:
        title, body = _alert_texts(kind=kind, clock=clock, now=now)
        url = url_template.replace("987654321", str(clock.lead_id))
        rows.append((recipient_id, notification_title(title), body, url))
    notifications = Notification.objects.bulk_create(
        [Notification(recipient_id=r, title=t, body=b, url=u) for r, t, b, u in rows]
    )
    SlaAlert.objects.bulk_create(
        [
            SlaAlert(clock_id=clock.pk, kind=kind, recipient_id=recipient_id, notification=notification, created_at=now)
            for (clock, kind, recipient_id), notification in zip(alerts, notifications, strict=True)
        ],
        ignore_conflicts=True,
    )


_STEP_FIELDS = ["status", "next_action_at", "warned_at", "breached_at", "escalated_at"]


def _clocks_save(*, clocks: list[_DueClock]) -> None:
    """Write the advanced clocks back, in one UPDATE per batch."""
    rows_update(
        ResponseClock, [(c.pk, {name: getattr(c, name) for name in _STEP_FIELDS}) for c in clocks], _STEP_FIELDS
    )


def sla_steps_run(*, batch_size: int = 500, now: datetime | None = None) -> SweepResult:
    """One bounded batch of due clocks, locked with SKIP LOCKED (a concurrent sweep takes others), each
    advanced under its row lock: every step of every clock happens exactly once."""
    result = SweepResult()
    with transaction.atomic(durable=True):
        now = now or timezone.now()
        clocks = [
            _DueClock(row) for row in clocks_due_for_update(now=now, limit=batch_size).values_list(*_DueClock.COLUMNS)
        ]
        result.found, result.full = len(clocks), len(clocks) >= batch_size
        alerts = _steps_apply(clocks=clocks, now=now, result=result)
        _clocks_save(clocks=clocks)
        _alerts_record(alerts=alerts, now=now)
    return result


def sla_clock_escalate(*, clock_id: int) -> Assignment | None:
    """The last rung: move the lead to the next eligible rep (routing's rules, the late owner
    excluded; nobody eligible: the rule's queue). Runs outside the sweep's transaction. A no-op when
    the clock is no longer escalating (touched, or already reassigned: the assignment hook closed it
    in the reassignment's own transaction)."""
    from routing.services.assignment import lead_reassign

    clock = ResponseClock.objects.select_related("rep").filter(pk=clock_id, status=ClockStatus.ESCALATING).first()
    if clock is None:
        return None
    owner_id = Lead.objects.filter(pk=clock.lead_id).values_list("owner_id", flat=True).first()
    if owner_id != clock.rep.user_id:  # moved on by someone else meanwhile
        ResponseClock.objects.filter(pk=clock.pk, status=ClockStatus.ESCALATING).update(
            status=ClockStatus.CLOSED, closed_at=timezone.now(), next_action_at=None
        )
        return None
    try:
        # lead_reassign retries the rep-row deadlock of two reassignments trading reps itself.
        return lead_reassign(
            lead_id=clock.lead_id,
            actor=None,
            reason="Response SLA breached: no first touch in time",
            exclude_rep_ids=frozenset({clock.rep_id}),
        )
    except ApplicationError:
        logger.warning("SLA escalation of clock %s could not reassign; retried later", clock_id, exc_info=True)
        return None


def sla_alert_emails_send(*, limit: int = 500) -> int:
    """Send the emails of alerts not sent yet (claimed in a short transaction, sent outside it)."""
    now = timezone.now()
    with transaction.atomic():
        alerts = list(
            alerts_unsent_for_update(lease_expired_before=now - EMAIL_LEASE, limit=limit).select_related(
                "recipient", "notification"
            )
        )
        SlaAlert.objects.filter(pk__in=[a.pk for a in alerts]).update(email_claimed_at=now)
    sent: list[int] = []
    for alert in alerts:
        email = alert.recipient.email
        if email and alert.notification is not None:
            try:
                send_mail(
                    subject=f"[LeadOps] {alert.notification.title}",
                    message=f"{alert.notification.body}\n\n{alert.notification.url}\n",
                    from_email=settings.DEFAULT_FROM_EMAIL,
                    recipient_list=[email],
                )
            except Exception:  # the lease runs out and a later sweep sends it again
                logger.warning("SLA alert email %s not sent", alert.pk, exc_info=True)
                continue
        sent.append(alert.pk)
    SlaAlert.objects.filter(pk__in=sent).update(email_sent_at=timezone.now())
    return len(sent)


def sla_sweep(*, batch_size: int | None = None, now: datetime | None = None) -> SweepResult:
    """The beat job: one batch of ladder steps, then the reassignments it asked for (each in its own
    transaction), then every email still owed. `full`: a whole batch was found, run again."""
    batch_size = batch_size or settings.LEADOPS_SLA_SWEEP_BATCH
    result = sla_steps_run(batch_size=batch_size, now=now)
    for clock_id in result.reassign_ids:
        result.reassigned += sla_clock_escalate(clock_id=clock_id) is not None
    result.emails = sla_alert_emails_send(limit=batch_size)
    result.full = result.full or result.emails >= batch_size
    return result
