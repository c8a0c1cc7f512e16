"""The dashboard's commands to kiosks (central/commands.py): the page, its form, a command's logs.

    GET  /dashboard/commands?device=ID&batch=B      the newest commands and what became of each (sent,
                                                    delivered, done, refused and why, expired), of one
                                                    kiosk or one batch; the send form   (every role sees it,
                                                                                         operators get the form)
    POST /dashboard/commands                        send one: to kiosks by id, a governorate, every kiosk
                                                    (operator, publisher; also the form on a kiosk's page)
    GET  /dashboard/commands/{command_id}/logs      the log lines a collect-logs command brought back
                                                    (operator, publisher)

The form goes through the dashboard's guard (web.py: session, form token, role). What the form gets
wrong is shown on the page again, field by field, in the staff's language (command_form.py), and written
in the staff audit trail as failed; a reboot or out-of-service to a governorate or every kiosk is first
shown for confirmation, naming how many kiosks it reaches. Every send is one entry in the staff audit
trail: the action, to whom, how many kiosks, the batch.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' Annotated aliases from the live
# annotations (as web.py).
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse, Response

from central.commands import CohortError, Commands
from central.dashboard import command_form, pages
from central.dashboard.audit import Outcome
from central.dashboard.command_form import CommandRequest, Problem
from central.dashboard.roles import Permission, may
from central.dashboard.sessions import Staff
from central.dashboard.web import PREFIX, Action, Dashboard
from kiosk import wire

PAGE = PREFIX + "/commands"
STATES = ("sent", "delivered", "done", "refused", "expired")
SHOWN = 200                    # the newest commands a page lists
CONFIRM_NAMES = 12             # the kiosks a confirmation names one by one


def install(app: FastAPI, commands: Commands) -> None:
    """The commands' page and forms on `app`, behind the dashboard `install`ed there already."""
    dashboard: Dashboard = app.state.dashboard
    SignedIn = Annotated[Staff, Depends(dashboard.signed_in)]
    Filter = Annotated[str | None, Query(max_length=64)]
    CommandId = Annotated[str, PathParam(pattern=wire.ID_PATTERN)]

    def get(path: str) -> Callable:
        return app.get(PAGE + path, include_in_schema=False)

    def post(path: str) -> Callable:
        return app.post(PAGE + path, include_in_schema=False)

    def list_page(staff: Staff, *, device: str | None = None, batch: str | None = None,
                  problems: Sequence[Problem] = (), refusal: str = "", form: dict[str, str] | None = None
                  ) -> Response:
        device = device if wire.is_id(device) else None
        batch = batch if wire.is_id(batch) else None
        rows = commands.list(device_id=device, batch_id=batch, limit=SHOWN)
        counts = Counter(row.state for row in rows)
        here = PAGE + ("?" + urlencode({k: v for k, v in (("device", device), ("batch", batch)) if v})
                       if device or batch else "")
        return pages.render("commands.html", staff.language, status_code=422 if problems else 200, staff=staff,
                            page="commands", here=here, rows=rows, device=device, batch=batch,
                            counts=[(state, counts[state]) for state in STATES if counts[state]],
                            may_operate=may(staff.role, Permission.OPERATE),
                            governorates=dashboard.fleet.governorates(), form=form or {},
                            problems={p.field: p.code for p in problems}, refusal=refusal)

    @get("")
    def commands_page(staff: SignedIn, device: Filter = None, batch: Filter = None) -> Response:
        return list_page(staff, device=device, batch=batch)

    def confirm_page(action: Action, request: CommandRequest, targets: list[str], *, changed: bool) -> Response:
        return pages.render("command_confirm.html", action.staff.language, staff=action.staff, page="commands",
                            here=PAGE, request=request, count=len(targets), named=targets[:CONFIRM_NAMES],
                            changed=changed)

    @post("")
    def send(action: Annotated[Action, Depends(dashboard.guard(Permission.OPERATE, "command.send"))]) -> Response:
        request, problems = command_form.read(action.form)
        if request is None:
            action.done(Outcome.FAILED, "invalid: %s" % ",".join(p.field for p in problems))
            return list_page(action.staff, problems=problems, form=action.form)
        try:
            targets = commands.cohort(**request.cohort())
        except CohortError as exc:
            action.done(Outcome.FAILED, "%s to %s: %s" % (request.action.value, request.whom(), exc))
            return list_page(action.staff, problems=[Problem("target", "cohort")], refusal=str(exc),
                             form=action.form)
        confirmed = action.form.get("confirmed")
        if request.needs_confirming() and confirmed != str(len(targets)):
            # Nothing is sent, nothing to audit yet: the member of staff is asked, naming how many kiosks.
            return confirm_page(action, request, targets, changed=confirmed is not None)
        rows = commands.send(request.action, targets, lifetime=request.lifetime, issued_by=action.staff.username)
        batch = rows[0].batch_id
        single = targets[0] if request.target == command_form.DEVICES and len(targets) == 1 else None
        replace(action, target=single).done(Outcome.OK, "%s to %d kiosk%s (%s), batch %s, %d min" % (
            request.action.value, len(rows), "" if len(rows) == 1 else "s", request.whom(), batch, request.minutes))
        return RedirectResponse("%s?%s" % (PAGE, urlencode({"batch": batch})), status_code=303)

    @get("/{command_id}/logs")
    def logs(command_id: CommandId, request: Request, staff: Annotated[Staff, Depends(
            dashboard.allowed(Permission.OPERATE, "command.logs", target_param="command_id"))]) -> Response:
        kept = commands.logs(command_id)
        if kept is None:
            return pages.render("not_found.html", staff.language, status_code=404, staff=staff, page="commands",
                                reason="not_found.logs", here=PAGE)
        return pages.render("command_logs.html", staff.language, staff=staff, page="commands",
                            here=request.url.path, logs=kept)
