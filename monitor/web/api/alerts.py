"""API: alerts and their events, silences (create/end), deliveries, rules, channels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from monitor.alerts import silences
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


class RuleIn(BaseModel):
    model: str = Field(..., min_length=1, max_length=200)
    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[^\x00]+$")
    metric: str = Field(
        ...,
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]+$",
        description="family.metric, e.g. drift.drifted or quality.null_share",
    )
    column_selector: str = Field("*", max_length=500, pattern=r"^[^\x00]*$")
    operator: str = Field(">", pattern="^(>|>=|<|<=|==|!=)$")
    threshold: float | None = Field(None, allow_inf_nan=False)
    for_windows: int = Field(1, ge=1, le=1000)
    of_windows: int = Field(1, ge=1, le=1000)
    resolve_after: int = Field(1, ge=1, le=1000)
    severity: str = Field("warning", pattern="^(info|warning|critical)$")
    channels: list[str] = Field(default_factory=list, max_length=20)
    enabled: bool = True


@router.post("/rules", status_code=201, summary="Create an alert rule")
def create_rule(request: Request, body: RuleIn, who: Principal = Depends(ADMIN)) -> FastJSON:
    if body.for_windows > body.of_windows:
        raise InputError("for_windows cannot exceed of_windows")
    if any("\x00" in c or not c.strip() for c in body.channels):
        raise InputError("channel names must be non-empty text")
    with session_scope(request.app.state.engine) as session:
        model_id = session.execute(
            sa.text("SELECT id FROM models WHERE name = :n"), {"n": body.model}
        ).scalar()
        if model_id is None:
            raise NotFoundError(f"no model named {body.model!r}")
        exists = session.execute(
            sa.select(AlertRule.id).where(
                AlertRule.model_id == model_id, AlertRule.name == body.name
            )
        ).scalar()
        if exists is not None:
            raise InputError(f"model {body.model!r} already has a rule named {body.name!r}")
        fields = body.model_dump(exclude={"model"})
        rule = AlertRule(model_id=model_id, source="api", **fields)
        session.add(rule)
        session.flush()
        rule_id = rule.id
    return ok({"id": rule_id}, 201)


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
    with session_scope(request.app.state.engine) as session:
        done = session.execute(sa.delete(AlertRule).where(AlertRule.id == rule_id)).rowcount  # type: ignore[attr-defined]
    if not done:
        raise NotFoundError(f"no rule with id {rule_id}")
    return ok({"id": rule_id, "deleted": True})
