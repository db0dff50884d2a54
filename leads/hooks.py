"""Extension points of the leads app. Apps above `leads` (routing, qualification, nurture,
integrations) register here in their `AppConfig.ready()`; `leads` imports none of them.

Two kinds:

- **Capture steps** run inside the capture transaction, after the lead and its intake log rows
  are stored, in the order of the `LEADOPS_CAPTURE_STEPS` setting (the one place that lists
  them; a system check refuses a registered step that is not listed, or a listed one that no app
  registered). A step writes through its own app's services and may queue after-commit work on
  `capture.on_commit`.
- **Lifecycle hooks** are called by the leads use cases: `STAGE_CHANGED`, `FIRST_TOUCHED`,
  `MERGED` and `ERASED` inside the use case's transaction (so a failing hook rolls it back),
  `CAPTURED` after the capture's commit. Several apps may register on one hook; they run in
  registration order (the order of `INSTALLED_APPS`).
- **Lead page panels**, **lead list filters** and **lead bulk actions** that other apps add to
  the leads pages (no template probes, no imports from leads into them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.core import checks

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest

    from leads.models import IntakeSubmission, Lead
    from leads.services.intake import IntakeContext, LeadData


# --- capture steps -----------------------------------------------------------------------------


@dataclass
class Capture:
    """One stored submission, as the capture steps see it."""

    data: LeadData
    context: IntakeContext
    lead: Lead  # saved: new, or the person's existing lead
    created: bool
    submission: IntakeSubmission
    at: datetime  # when the touch happened (an import's date, else now)
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def step_enabled(self, name: str) -> bool:
        """Whether the caller asked to skip the step called `name` (e.g. a historical import or the
        demo seeder, which assign owners themselves)."""
        return name not in self.context.skip_steps


CaptureStep = Callable[[Capture], None]
_capture_steps: dict[str, CaptureStep] = {}


def capture_step_register(name: str, step: CaptureStep) -> None:
    """Register a capture step under a dotted name (e.g. "routing.assign"); the setting
    LEADOPS_CAPTURE_STEPS says where it runs."""
    _capture_steps[name] = step


def capture_steps() -> list[tuple[str, CaptureStep]]:
    """The registered steps in the order of LEADOPS_CAPTURE_STEPS."""
    return [(name, _capture_steps[name]) for name in settings.LEADOPS_CAPTURE_STEPS if name in _capture_steps]


@checks.register()
def capture_steps_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    listed, registered = list(settings.LEADOPS_CAPTURE_STEPS), set(_capture_steps)
    errors = [
        checks.Error(f"Capture step {name!r} is registered but not listed in LEADOPS_CAPTURE_STEPS.", id="leads.E001")
        for name in sorted(registered - set(listed))
    ]
    errors += [
        checks.Error(f"LEADOPS_CAPTURE_STEPS lists {name!r}, which no installed app registers.", id="leads.E002")
        for name in listed
        if name not in registered
    ]
    return errors


# --- lifecycle hooks ---------------------------------------------------------------------------

CAPTURED = "lead_captured"  # after commit: (lead_id: int, created: bool)
STAGE_CHANGED = "lead_stage_changed"  # in transaction: (lead, from_stage, to_stage, actor, at)
FIRST_TOUCHED = "lead_first_touched"  # in transaction: (lead_id, at, actor) on a rep's call/email/...
CONTACTED = "lead_contacted"  # in transaction: (lead_id, at) on every call/email/meeting/message
MERGED = "lead_merged"  # in transaction, after the survivor is saved: (survivor, duplicates: list[Lead])
ERASED = "lead_erased"  # in transaction: (lead, summary) — blank this app's personal data, add counts
HOOK_NAMES = (CAPTURED, STAGE_CHANGED, FIRST_TOUCHED, CONTACTED, MERGED, ERASED)

_hooks: dict[str, list[Callable[..., Any]]] = {name: [] for name in HOOK_NAMES}


def hook_register(name: str, fn: Callable[..., Any]) -> None:
    if name not in _hooks:
        raise ValueError(f"Unknown lead hook {name!r}; one of {', '.join(HOOK_NAMES)}.")
    if fn not in _hooks[name]:
        _hooks[name].append(fn)


def hooks_run(name: str, **kwargs: Any) -> None:
    for fn in _hooks[name]:
        fn(**kwargs)


def hooks_registered(name: str) -> list[Callable[..., Any]]:
    return list(_hooks[name])


# --- what other apps add to the leads pages ----------------------------------------------------
#
# Each returns a template and its context; the leads views include the template where the
# placement says, with the page's context plus that one. Permission checks are the context
# functions' (None: not for this user), never only an {% if %} in the template.

PanelPlacement = Literal["facts", "side"]
PANEL_PLACEMENTS: tuple[PanelPlacement, ...] = ("facts", "side")


@dataclass(frozen=True)
class LeadPanel:
    """A panel on the lead page: `context(request, lead)` returns the template's context, or None
    to leave the panel out for this user or lead.

    `placement`: "side", a card in the side column after the stage form; "facts", a
    `<div><dt>…</dt><dd>…</dd></div>` in the header's facts, re-rendered with the header.
    `assets`: a template of <link>/<script> tags the page includes once when the panel is shown."""

    name: str
    template: str
    context: Callable[[HttpRequest, Lead], dict | None]
    order: int = 100
    placement: PanelPlacement = "side"
    assets: str = ""


@dataclass(frozen=True)
class LeadListExtension:
    """What an app adds to the lead list (HTML and API alike): `filter(queryset, params)` narrows
    the queryset by the request parameters it owns (`params` names them; it gets those that are
    not blank) and raises django.core.exceptions.ValidationError ({param: messages}) for a value
    it cannot read.

    The HTML list also shows `filters_template` under "More filters" with the page's context plus
    `page_context(request)` (full page only), and, when `row_context(request, leads)` is not None,
    `row_template` under each lead's name with that context and `lead` (`assets` then on the full
    page)."""

    name: str
    params: tuple[str, ...]
    filter: Callable[[Any, dict[str, str]], Any]
    page_context: Callable[[HttpRequest], dict] | None = None
    filters_template: str = ""
    row_template: str = ""
    row_context: Callable[[HttpRequest, list[Lead]], dict | None] | None = None
    assets: str = ""


@dataclass(frozen=True)
class LeadBulkAction:
    """A bulk action on selected leads offered by another app: `apply(user, lead_id, prepared)`
    runs for each lead the user may see and raises ApplicationError to refuse one;
    `prepare(user, params)` validates the form once (raising ApplicationError) and returns what
    `apply` needs.

    Offered to, and run for, users with `permission` only. `params` names the POST fields handed
    to `prepare` (a "reason" shares the bulk bar's reason input); the bulk bar shows
    `fields_template` with `fields_context(request)`: inputs with class "for-<name>", which
    static/css/app.css shows while the action is chosen."""

    name: str
    label: str
    prepare: Callable[[AbstractBaseUser, dict[str, str]], Any]
    apply: Callable[[AbstractBaseUser, int, Any], None]
    permission: str
    params: tuple[str, ...] = ()
    fields_template: str = ""
    fields_context: Callable[[HttpRequest], dict] | None = None


_panels: list[LeadPanel] = []
_list_extensions: list[LeadListExtension] = []
_bulk_actions: dict[str, LeadBulkAction] = {}


def lead_panel_register(panel: LeadPanel) -> None:
    if panel.placement not in PANEL_PLACEMENTS:
        raise ValueError(f"Unknown lead panel placement {panel.placement!r}; one of {', '.join(PANEL_PLACEMENTS)}.")
    if all(p.name != panel.name for p in _panels):
        _panels.append(panel)
        _panels.sort(key=lambda p: p.order)


def lead_panels(placement: PanelPlacement | None = None) -> list[LeadPanel]:
    return [p for p in _panels if placement is None or p.placement == placement]


def lead_list_extension_register(extension: LeadListExtension) -> None:
    if all(e.name != extension.name for e in _list_extensions):
        _list_extensions.append(extension)


def lead_list_extensions() -> list[LeadListExtension]:
    return list(_list_extensions)


LEADS_BULK_ACTIONS = ("stage", "tag")  # the leads app's own


def lead_bulk_action_register(action: LeadBulkAction) -> None:
    if action.name in LEADS_BULK_ACTIONS:
        raise ValueError(f"Bulk action {action.name!r} is the leads app's own.")
    _bulk_actions[action.name] = action


def lead_bulk_action_get(name: str) -> LeadBulkAction | None:
    return _bulk_actions.get(name)


def lead_bulk_actions() -> list[LeadBulkAction]:
    return list(_bulk_actions.values())
