"""API: alerts and their events, silences (create/end), deliveries, rules, channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from monitor.alerts import rules, silences
from monitor.alerts.rules import RuleSpec
from monitor.errors import InputError, NotFoundError
from monitor.storage.engine import session_scope
from monitor.storage.tables import AlertRule
from monitor.web.auth import Principal, require_scope
from monitor.web.deps import FastJSON, Page, ok, page, read_conn
from monitor.web.reads import alerting

router = APIRouter(prefix="/api/v1", tags=["alerts"])
READ = Depends(require_scope("read"))
ADMIN = require_scope("admin")
MAX_SILENCE = timedelta(days=366)
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/alerts", summary="Alerts, open first, newest first", dependencies=[READ])
def list_alerts(
    state: str | None = Query(None, pattern="^(open|pending|firing|resolved)$"),
    model: str | None = Query(None, max_length=200),
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    items, more = alerting.list_alerts(conn, state, model, p.limit, p.offset)
    return ok(p.envelope(items, more))


@router.get("/alerts/{alert_id}", summary="An alert with its state changes", dependencies=[READ])
def get_alert(alert_id: Id, conn: sa.Connection = Depends(read_conn)) -> FastJSON:
    return ok(alerting.get_alert(conn, alert_id))


class Matcher(BaseModel):
    """Alertmanager's matcher: equal (or not) to ``value``, or (not) matching it as a regex."""

    name: str = Field(
        ...,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Label name: model, rule, column, segment, severity...",
    )
    value: str = Field(..., max_length=1000, pattern=r"^[^\x00]*$")
    isRegex: StrictBool = False
    isEqual: StrictBool = True


class SilenceIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["ends_at"]}, {"required": ["duration_hours"]}]}
    )

    matchers: list[Matcher] = Field(..., min_length=1, max_length=20)
    ends_at: datetime | None = Field(None, description="End (ISO 8601); or give duration_hours.")
    duration_hours: float | None = Field(None, gt=0, le=24 * 365, strict=True)
    comment: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


@router.get("/silences", summary="Silences, active first", dependencies=[READ])
def list_silences(
    active: bool = Query(False, description="Only silences that have not ended."),
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    items, more = alerting.list_silences(conn, active, p.limit, p.offset)
    return ok(p.envelope(items, more))


def _ends_at(body: SilenceIn) -> datetime:
    if body.ends_at is not None:
        ends = body.ends_at if body.ends_at.tzinfo else body.ends_at.replace(tzinfo=UTC)
        return ends
    if body.duration_hours is None:
        raise InputError("give ends_at or duration_hours")
    return datetime.now(UTC) + timedelta(hours=body.duration_hours)


@router.post("/silences", status_code=201, summary="Create a silence")
def create_silence(request: Request, body: SilenceIn, who: Principal = Depends(ADMIN)) -> FastJSON:
    ends_at = _ends_at(body)
    if ends_at - datetime.now(UTC) > MAX_SILENCE:
        raise InputError("a silence may last at most 365 days")
    with session_scope(request.app.state.engine) as session:
        row = silences.create_silence(
            session,
            matchers=[m.model_dump() for m in body.matchers],
            ends_at=ends_at,
            created_by=who.token.name,
            comment=body.comment,
        )
        silence_id = row.id
    return ok({"id": silence_id}, 201)


@router.delete("/silences/{silence_id}", summary="End a silence now")
def end_silence(request: Request, silence_id: Id, who: Principal = Depends(ADMIN)) -> FastJSON:
    with session_scope(request.app.state.engine) as session:
        silences.end_silence(session, silence_id)
    return ok({"id": silence_id, "ended": True})


@router.get(
    "/deliveries", summary="Notification deliveries and their attempts", dependencies=[READ]
)
def list_deliveries(p: Page = Depends(page), conn: sa.Connection = Depends(read_conn)) -> FastJSON:
    items, more = alerting.list_deliveries(conn, p.limit, p.offset)
    return ok(p.envelope(items, more))


@router.get("/channels", summary="Notification channels (targets masked)", dependencies=[READ])
def list_channels(conn: sa.Connection = Depends(read_conn)) -> FastJSON:
    items = alerting.list_channels(conn)
    return ok({"items": items, "limit": len(items), "offset": 0, "next_offset": None})


@router.get("/rules", summary="Alert rules", dependencies=[READ])
def list_rules(
    model: str | None = Query(None, max_length=200),
    p: Page = Depends(page),
    conn: sa.Connection = Depends(read_conn),
) -> FastJSON:
    items, more = alerting.list_rules(conn, model, p.limit, p.offset)
    return ok(p.envelope(items, more))


class RuleIn(RuleSpec):
    """A rule for ``model``: the same fields, defaults, limits and messages as a rules file
    (``monitor alerts apply``)."""

    model: str = Field(..., min_length=1, max_length=200, description="The model's name.")


_RULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": RuleIn.model_json_schema()}},
    }
}


@router.post("/rules", status_code=201, summary="Create an alert rule", openapi_extra=_RULE_BODY)
def create_rule(
    request: Request, body: dict[str, Any] = Body(...), who: Principal = Depends(ADMIN)
) -> FastJSON:
    """Validated by the rules file's own model: a rule refused here is refused by
    ``monitor alerts apply`` with the same message (400), and the other way round."""
    data = dict(body)
    model = data.pop("model", None)
    if not isinstance(model, str) or not model.strip():
        raise InputError("'model' must name a model")
    spec, problems = rules.validate_rule(data, "rule")
    if spec is None:
        raise InputError("; ".join(problems))
    with session_scope(request.app.state.engine) as session:
        rule_id = rules.create_rule(session, model.strip(), spec, source="api")
    return ok({"id": rule_id, **spec.to_yaml_dict()}, 201)


class RulePatch(BaseModel):
    enabled: StrictBool


@router.patch("/rules/{rule_id}", summary="Enable or disable a rule")
def patch_rule(
    request: Request, body: RulePatch, rule_id: Id, who: Principal = Depends(ADMIN)
) -> FastJSON:
    with session_scope(request.app.state.engine) as session:
        done = session.execute(
            sa.update(AlertRule)
            .where(AlertRule.id == rule_id)
            .values(enabled=body.enabled, updated_at=sa.func.now())
        ).rowcount  # type: ignore[attr-defined]
    if not done:
        raise NotFoundError(f"no rule with id {rule_id}")
    return ok({"id": rule_id, "enabled": body.enabled})


@router.delete("/rules/{rule_id}", summary="Delete a rule (and its alerts)")
def delete_rule(request: Request, rule_id: Id, who: Principal = Depends(ADMIN)) -> FastJSON:
    """Its alerts resolve; receivers told they fired get a "resolved" (reason rule_deleted)."""
    from monitor.alerts.evaluate import delete_rule as delete

    with session_scope(request.app.state.engine) as session:
        rule = session.get(AlertRule, rule_id)
        if rule is None:
            raise NotFoundError(f"no rule with id {rule_id}")
        delete(session, rule)
    return ok({"id": rule_id, "deleted": True})
