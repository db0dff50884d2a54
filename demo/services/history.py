"""The life of each demo lead over the last 90 days, planned in memory, then written through the
same services as production, in time order:

- the submission that created it (and a later one through another source, for some) through
  `lead_capture`, with routing's capture step skipped: the seeder chooses the owner itself;
- its owner (or the pull queue) through `assignment_record` at the time it happened, which also
  takes the rep's capacity and starts the response clock from the SLA policy that applies;
- calls, emails, meetings, notes, page views through `activity_log` (the first call or email is
  the first contact: it stops the clock and moves a new lead to working);
- stage changes through `lead_stage_change` (closing a lead frees its owner's capacity).

A plan's random numbers come from the lead's own seeded sequence, so lead i has the same history
relative to the time it is seeded. One lead in 50 arrived in the last few hours and has no
first touch yet: the SLA board shows their clocks running, some still within the SLA, some past it.
"""

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from demo.services.org import SOURCES, TAGS, Org
from demo.services.people import DEMO_SEED, SENIOR_TITLES, Person, weighted
from leads.locks import leads_for_update
from leads.models import CLOSED_STAGES, Account, ActivityKind, Campaign, Channel, CompanySize, Lead, Source, Stage
from leads.services import IntakeContext, LeadData, activity_log, lead_capture, lead_stage_change
from routing.hooks import ASSIGN_STEP
from routing.models import Method, RepProfile
from routing.services import assignment_record

DAYS = 90
# Lead i arrived a few minutes or hours ago when i % LIVE_EVERY == LIVE_OFFSET; the k-th such lead
# is LIVE_AGES_MINUTES[k % len] old and waits in the pull queue when k % 4 == 3.
LIVE_EVERY, LIVE_OFFSET = 50, 3
LIVE_AGES_MINUTES = (3, 40, 1.5, 20, 120, 4, 15, 240)

# (weight, the moves after "new"). Each move happens a while after the previous one; moves that
# would lie in the future have not happened yet, so young leads are still in progress.
PATHS: list[tuple[int, list[str]]] = [
    (3, []),
    (4, [Stage.WORKING]),
    (6, [Stage.WORKING, Stage.MQL]),
    (12, [Stage.WORKING, Stage.DISQUALIFIED]),
    (5, [Stage.DISQUALIFIED]),
    (8, [Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.WON]),
    (5, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON]),
    (9, [Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.LOST]),
    (6, [Stage.WORKING, Stage.MQL, Stage.SQL, Stage.LOST]),
    (7, [Stage.WORKING, Stage.RECYCLED]),
    (4, [Stage.WORKING, Stage.SQL, Stage.DISQUALIFIED]),
    (3, [Stage.MQL, Stage.WORKING, Stage.SQL, Stage.OPPORTUNITY, Stage.LOST]),
    (4, [Stage.WORKING, Stage.MQL, Stage.RECYCLED]),
    (3, [Stage.MQL, Stage.SQL, Stage.OPPORTUNITY]),
    (3, [Stage.WORKING, Stage.SQL]),
]
REASONS = {
    Stage.WORKING: ["first contact"],
    Stage.MQL: ["downloaded the pricing guide", "attended the webinar", "engaged with three emails"],
    Stage.SQL: ["budget and timeline confirmed", "asked for a proposal", "decision maker engaged"],
    Stage.OPPORTUNITY: ["discovery call done", "proposal sent", "technical evaluation started"],
    Stage.WON: ["contract signed", "annual plan purchased"],
    Stage.LOST: ["went with a competitor", "no budget this year", "no decision", "price too high"],
    Stage.DISQUALIFIED: ["student", "company too small", "no purchasing authority", "not a fit for the product"],
    Stage.RECYCLED: ["no response after five attempts", "not ready, revisit next quarter"],
}
JUNK_REASONS = ["spam submission", "fake details", "test entry"]
EMAIL_SUBJECTS = [
    "Following up on your demo request",
    "Quick question about your lead flow",
    "Pricing overview as promised",
    "Case study: how Northwind cut response time by 60%",
    "Checking in",
]
NOTES = [
    "Evaluating us against two other vendors.",
    "Wants SSO and an audit log before buying.",
    "Budget owner is the VP of Sales; intro next week.",
    "Team of 12 reps, uses spreadsheets today.",
    "Asked for a trial extension.",
    'Left a voicemail, will retry Thursday. Said "call me after 3pm".',
]
MEETINGS = [("Discovery call", 30), ("Product demo", 45), ("Pricing review", 30), ("Security review", 60)]
PAGES = ["/pricing", "/features/routing", "/customers", "/integrations", "/blog/lead-response-time"]
MESSAGES = [
    "We'd like to see a demo for our sales team.",
    "How does pricing work for 20 users?",
    "Do you integrate with our CRM?",
    "",
    "",
]
_UTM = {
    Channel.WEB_FORM: ("website", "form"),
    Channel.PAID_ADS: ("google", "cpc"),
    Channel.ORGANIC: ("google", "organic"),
    Channel.PARTNER: ("partner", "referral"),
    Channel.EVENT: ("event", "booth"),
    Channel.IMPORT: ("list", "import"),
    Channel.CHAT: ("website", "chat"),
}
_BY_PERSON = {ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.MEETING}


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class Submission:
    data: LeadData
    context: IntakeContext


@dataclass
class Step:
    """One thing that happens to the lead after its capture: a later submission, an activity or a
    stage change."""

    at: datetime
    submission: Submission | None = None
    activity_kind: str = ""
    to_stage: str = ""
    actor: Any = None
    payload: dict = field(default_factory=dict)
    reason: str = ""


@dataclass
class LeadPlan:
    person: Person
    created_at: datetime
    first: Submission
    score: int
    owner: RepProfile | None  # None: the pull queue
    method: str
    reason: str
    assigned_at: datetime
    steps: list[Step]  # in time order
    stage: str  # where the lead ends up

    @property
    def holds_capacity(self) -> bool:
        """Whether the lead ends up open on its owner's desk."""
        return self.owner is not None and self.stage not in CLOSED_STAGES


def lead_plan(*, person: Person, org: Org, accounts: dict[str, Account], drop_phone: bool, now: datetime) -> LeadPlan:
    rng = random.Random(f"{DEMO_SEED}:life:{person.index}")  # the lead's history, separate from its identity
    live = person.index % LIVE_EVERY == LIVE_OFFSET
    live_rank = person.index // LIVE_EVERY
    if live:
        created_at = now - timedelta(minutes=LIVE_AGES_MINUTES[live_rank % len(LIVE_AGES_MINUTES)])
    else:
        created_at = now - timedelta(seconds=rng.uniform(600, DAYS * 86400))
    source = org.sources[weighted(rng, [(name, weight) for name, _, _, weight in SOURCES])]
    options = org.campaigns_of(source)
    campaign = rng.choice(options) if options and rng.random() < 0.8 else None
    account = accounts.get(person.company.domain) if person.company else None
    path = [] if live else weighted(rng, [(moves, weight) for weight, moves in PATHS])

    # Ownership: the router gives most leads a rep within seconds; the account owner gets the
    # company's leads; some new ones wait in the pull queue.
    owner, method, reason = rng.choice(org.reps), Method.ROUND_ROBIN, ""
    sticky = next((rep for rep in org.reps if account is not None and rep.user_id == account.owner_id), None)
    if sticky is not None:
        owner, method, reason = sticky, Method.ACCOUNT_OWNER, f"owner of the account {account.domain}"
    else:
        reason = f"round-robin in {owner.team.name if owner.team else 'all reps'}"
    if (live and live_rank % 4 == 3) or (not live and not path and rng.random() < 0.5):
        owner, method, reason = None, Method.QUEUE, "waiting in the pull queue: nobody eligible was free"
    elif not path and not live:
        path = [Stage.WORKING]  # an owned lead gets its first call, however late, and is worked
    assigned_at = created_at + timedelta(seconds=rng.uniform(2, 30))

    steps: list[Step] = []

    def log(kind: str, at: datetime, actor: Any = None, payload: dict | None = None) -> None:
        steps.append(Step(at=at, activity_kind=kind, actor=actor, payload=payload or {}))

    # The moves, each a while after the previous one; the future has not happened yet.
    stage, at, contacted = Stage.NEW, assigned_at, False
    for position, to_stage in enumerate(path):
        gap = timedelta(hours=rng.uniform(0.2, 30)) if position == 0 else timedelta(days=rng.uniform(1, 12))
        move_at = at + gap
        if not contacted and to_stage != Stage.DISQUALIFIED:
            # The rep's first call or email: the lead's first contact (it stops the response clock and
            # moves a new lead to working). About half within 5 minutes, most within the hour.
            minutes = weighted(rng, [(rng.uniform(0.5, 5), 55), (rng.uniform(5, 60), 30), (rng.uniform(60, 600), 15)])
            touched_at = min(move_at, at + timedelta(minutes=minutes))
            if touched_at >= now:
                break
            _activities_between(rng, log=log, start=at, end=touched_at, stage=stage, owner=owner)
            kind = rng.choice([ActivityKind.CALL, ActivityKind.EMAIL_SENT])
            log(kind, touched_at, owner.user, _contact_payload(rng, kind))
            contacted, at = True, touched_at
            if stage == Stage.NEW:
                stage = Stage.WORKING
        if move_at >= now:
            break
        if to_stage == stage:
            continue  # the first contact made it "working" already
        _activities_between(rng, log=log, start=at, end=move_at, stage=stage, owner=owner)
        junk = to_stage == Stage.DISQUALIFIED and stage == Stage.NEW  # thrown out before anyone called
        reason_text = rng.choice(JUNK_REASONS if junk else REASONS[to_stage])
        actor = owner.user if owner else None
        steps.append(Step(at=move_at, to_stage=to_stage, actor=actor, reason=reason_text))
        stage, at = to_stage, move_at
    if stage not in CLOSED_STAGES and stage != Stage.RECYCLED and owner is not None and at < now:
        _activities_between(rng, log=log, start=at, end=min(now, at + timedelta(days=10)), stage=stage, owner=owner)

    imported = source.channel in {Channel.IMPORT, Channel.EVENT}
    consent = rng.random() < 0.6
    first = _submission(
        rng,
        person=person,
        source=source,
        campaign=campaign,
        at=created_at,
        org=org,
        drop_phone=drop_phone,
        message="" if imported else rng.choice(MESSAGES),
        consent_method=("event badge scan" if imported else "demo form checkbox") if consent else "",
    )
    first.data.tags = rng.sample(TAGS, k=rng.choice([0, 0, 0, 1, 1, 2]))
    if rng.random() < 0.3:
        first.data.custom_fields = {
            "team_size": rng.choice([5, 12, 25, 40, 100]),
            "timeline": rng.choice(["this quarter", "next quarter", "just researching"]),
        }

    # Some people come back through another source later: a second touch updates last-touch attribution.
    if not live and rng.random() < 0.25:
        again_at = created_at + timedelta(days=rng.uniform(1, 30))
        if again_at < now:
            again = org.sources[weighted(rng, [(n, w) for n, c, _, w in SOURCES if c != Channel.IMPORT])]
            options = org.campaigns_of(again)
            second = _submission(
                rng,
                person=person,
                source=again,
                campaign=rng.choice(options) if options else None,
                at=again_at,
                org=org,
                drop_phone=drop_phone,
                message="",
                consent_method="",
            )
            steps.append(Step(at=again_at, submission=second))

    steps.sort(key=lambda step: step.at)  # stable: a first contact stays before the move it makes
    engagement = sum(1 for step in steps if step.activity_kind or step.submission)
    return LeadPlan(
        person=person,
        created_at=created_at,
        first=first,
        score=_score(rng, person=person, stage=stage, engagement=engagement),
        owner=owner,
        method=method,
        reason=reason,
        assigned_at=assigned_at,
        steps=steps,
        stage=stage,
    )


def _submission(
    rng: random.Random,
    *,
    person: Person,
    source: Source,
    campaign: Campaign | None,
    at: datetime,
    org: Org,
    drop_phone: bool,
    message: str,
    consent_method: str,
) -> Submission:
    """What the person sent through `source` at `at`: a web form (with the visitor's address), or
    an imported row or a badge scan (an import by marketing ops, logged as such)."""
    channel = source.channel
    utm_source, utm_medium = _UTM.get(channel, ("website", "form"))
    if source.name == "LinkedIn Ads":
        utm_source = "linkedin"
    touch = {
        "utm_source": utm_source,
        "utm_medium": utm_medium,
        "landing_page": f"https://www.leadops.example{rng.choice(['/', '/demo', '/pricing', '/features'])}",
    }
    if campaign is not None:
        touch["utm_campaign"] = campaign.utm_campaign
    if channel in {Channel.PAID_ADS, Channel.ORGANIC}:
        touch["referrer"] = "https://www.google.com/" if utm_source == "google" else "https://www.linkedin.com/"
    phone, phone_e164 = ("", "") if drop_phone else (person.phone, person.phone_e164)
    company = person.company
    payload = {
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "company_name": person.company_name,
        "title": person.title,
        "country": person.country,
        **({"phone": phone} if phone else {}),
        **touch,
        **({"message": message} if message else {}),
    }
    data = LeadData(
        email=person.email,
        phone=phone,
        phone_e164=phone_e164,
        first_name=person.first_name,
        last_name=person.last_name,
        title=person.title,
        company_name=person.company_name,
        company_domain=company.domain if company else "",
        industry=company.industry if company else "",
        company_size=company.size if company else "",
        country=person.country,
        region=person.region,
        channel=channel,
        campaign=campaign.name if campaign else "",
        message=message,
        marketing_consent=bool(consent_method) or None,
        consent_method=consent_method,
        occurred_at=at,
        **touch,
    )
    imported = channel in {Channel.IMPORT, Channel.EVENT}
    visitor = f"{rng.choice(['192.0.2', '198.51.100', '203.0.113'])}.{rng.randrange(1, 255)}"  # documentation ranges
    context = IntakeContext(
        raw_payload=payload,
        source=source,
        submitted_by=org.ops if imported else None,
        remote_addr=None if imported else visitor,
        activity_kind=ActivityKind.IMPORTED if imported else ActivityKind.FORM_SUBMITTED,
        skip_steps=frozenset({ASSIGN_STEP}),  # the seeder gives the owner itself, at the time it happened
    )
    return Submission(data=data, context=context)


def _contact_payload(rng: random.Random, kind: str) -> dict:
    if kind == ActivityKind.CALL:
        outcome = rng.choice(["connected", "voicemail", "no answer"])
        return {"outcome": outcome, "duration_seconds": rng.randrange(120, 1500) if outcome == "connected" else 0}
    if kind == ActivityKind.MEETING:
        title, minutes = rng.choice(MEETINGS)
        return {"title": title, "duration_minutes": minutes}
    if kind == ActivityKind.NOTE:
        return {"note": rng.choice(NOTES)}
    if kind == ActivityKind.PAGE_VIEW:
        return {"url": rng.choice(PAGES)}
    return {"subject": rng.choice(EMAIL_SUBJECTS)}


def _activities_between(
    rng: random.Random, *, log, start: datetime, end: datetime, stage: str, owner: RepProfile | None
) -> None:
    """A few things that happen while a lead sits in a stage: emails, opens, calls, notes, meetings
    (by the owner only once the lead is worked: a new lead's first contact is planned apart)."""
    kinds = [ActivityKind.PAGE_VIEW, ActivityKind.EMAIL_OPENED, ActivityKind.EMAIL_CLICKED]
    if owner is not None and stage != Stage.NEW:
        kinds += [ActivityKind.CALL, ActivityKind.EMAIL_SENT, ActivityKind.NOTE, ActivityKind.EMAIL_SENT]
        if stage in {Stage.SQL, Stage.OPPORTUNITY}:
            kinds += [ActivityKind.MEETING, ActivityKind.MEETING]
    span = (end - start).total_seconds()
    if span <= 60:
        return
    times = sorted(start + timedelta(seconds=rng.uniform(30, span - 30)) for _ in range(rng.choice([0, 1, 1, 2, 3])))
    for at in times:
        kind = rng.choice(kinds)
        actor = owner.user if owner is not None and kind in _BY_PERSON else None
        log(kind, at, actor, _contact_payload(rng, kind))


def _score(rng: random.Random, *, person: Person, stage: str, engagement: int) -> int:
    score = rng.randrange(0, 15) + min(engagement, 6) * 5
    if person.title in SENIOR_TITLES:
        score += 20
    if person.company and person.company.size in {CompanySize.S201_1000, CompanySize.S1001_5000}:
        score += 15
    score += {Stage.MQL: 10, Stage.SQL: 20, Stage.OPPORTUNITY: 30, Stage.WON: 35}.get(stage, 0)
    if stage == Stage.DISQUALIFIED:
        score //= 3
    return max(0, min(100, score))


# --- writing it --------------------------------------------------------------------------------


def lead_history_write(*, plan: LeadPlan, org: Org) -> Lead:
    """Replay a plan through the services: the capture (its own transaction), then each stretch
    of activities and stage changes up to the next submission in one transaction that holds the
    lead, as a request or a task would."""
    lead = lead_capture(data=plan.first.data, context=plan.first.context).lead
    pending = list(plan.steps)
    first_stretch = True
    while first_stretch or pending:
        stretch = []
        while pending and pending[0].submission is None:
            stretch.append(pending.pop(0))
        if first_stretch or stretch:
            with transaction.atomic():
                locked = leads_for_update(lead_ids=[lead.pk]).first()
                if first_stretch:
                    _owner_give(lead=locked, plan=plan, org=org)
                for step in stretch:
                    _step_write(lead_id=lead.pk, step=step)
            first_stretch = False
        if pending:
            submission = pending.pop(0).submission
            lead_capture(data=submission.data, context=submission.context)
    return lead


def _step_write(*, lead_id: int, step: Step) -> None:
    if step.to_stage:
        lead_stage_change(lead_id=lead_id, to_stage=step.to_stage, actor=step.actor, reason=step.reason, at=step.at)
    else:
        activity_log(
            lead_id=lead_id, kind=step.activity_kind, actor=step.actor, payload=step.payload, occurred_at=step.at
        )


def _owner_give(*, lead: Lead, plan: LeadPlan, org: Org) -> None:
    """The lead's score, then its owner or its place in the pull queue, as the router would have
    given them when the lead arrived (assignment, owner, capacity, timeline entry, response clock)."""
    # No service writes a lead's score yet (qualification will own scoring): the seeder sets the
    # demo value itself, on the locked lead, before the assignment reads it (queue priority, SLA
    # policies with a minimum score).
    Lead.objects.filter(pk=lead.pk).update(score=plan.score)
    lead.score = plan.score
    if plan.owner is None and org.queue is None:
        return
    assignment_record(
        lead=lead,
        rep=plan.owner,
        queue=org.queue if plan.owner is None else None,
        method=plan.method,
        reason=plan.reason,
        at=plan.assigned_at,
        notify=False,  # history, not news
    )
