"""The API's OpenAPI document: what every operation may answer, in the shapes it really answers.

FastAPI derives each operation's parameters and request body from its signature; what it cannot
know is added here, in one place, when the document is built:

- every error answer is a :class:`Problem` (``{"detail": "...", "errors": [...]}`` for 422), and
  each operation lists the statuses it can return: 400 (a value it cannot use: a bad timestamp,
  a NUL byte), 401 (with ``WWW-Authenticate``), 403, 422, 429 (``Retry-After``), 503 (the
  database is unreachable), and 404 where a path names something (a model, an alert, a rule);
- the bearer security scheme, required by every operation but ``/healthz``;
- the collector's request bodies (its routes read the raw body to validate each record on its
  own, so FastAPI sees none) and answers;
- ``/metrics`` as Prometheus text, the Evidently report as HTML.

``tests/web/test_schemathesis.py`` runs ``schemathesis run --checks all`` against the live
document: a status, body or content type that the code and this description disagree on fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

BEARER = "bearerAuth"
SCHEMA_REF = "#/components/schemas/{model}"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: ['query', 'limit'], ['body', 'name']...")
    msg: str


class Problem(BaseModel):
    """Every error answer of the API (and of ``/metrics``)."""

    detail: str = Field(description="What went wrong, for a person.")
    errors: list[FieldError] | None = Field(
        None, description="422 only: each invalid field and why."
    )


ERRORS: dict[int, str] = {
    400: "A value the service cannot use (a bad timestamp or range, a NUL byte, a bad regex).",
    401: "Missing or invalid bearer token.",
    403: "The token lacks the scope this operation needs (or a session's CSRF token is wrong).",
    404: "What the path names does not exist.",
    409: "Conflicts with the current state (e.g. a rule of that name was just created).",
    413: "The body exceeds MONITOR_MAX_INGEST_BODY_BYTES (after gzip decompression).",
    415: "A Content-Encoding other than gzip.",
    422: "The request does not match this document (each field's problem is listed).",
    429: "Too many wrong tokens from this client, or too much ingest at once: see Retry-After.",
    503: "The database is unreachable or the service is busy: retry later.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
AUTHENTICATE = {
    "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}},
}
ALWAYS = (400, 401, 403, 422, 429, 503)

# --- the collector's bodies and answers (its handlers validate records one by one) -----------

_SCALAR = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}
# the collector's rules for names (monitor.web.ingest.validate): no control characters
_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "pattern": "^[^\x00-\x1f\x7f-\x9f\ufffd]+$",
}
_ID = {
    "anyOf": [
        {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[^\x00]+$"},
        {"type": "integer"},
    ]
}
_TIMESTAMP = {
    "description": "ISO 8601 (UTC if no offset) or Unix seconds (from 1970, below 1e11: a "
    "larger number is refused as milliseconds, microseconds or nanoseconds); absent or null: "
    "when it arrived.",
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1e11},
        {"type": "null"},
    ],
}
_NULL = {"type": "null"}
PREDICTION = {
    "type": "object",
    "required": ["features"],
    "properties": {
        "id": {"anyOf": [_ID, _NULL], "description": "Absent or null: a UUIDv7 is made."},
        "timestamp": _TIMESTAMP,
        "features": {
            "type": "object",
            "description": "Numbers, strings, booleans or null; any other value is stored as "
            "its text and counted (cleaned.stringified). Names: no NUL, not starting with @, "
            "at most 500 characters.",
            "propertyNames": {"minLength": 1, "maxLength": 500, "pattern": "^[^@\x00][^\x00]*$"},
        },
        "prediction": _SCALAR,
        "proba": {
            "anyOf": [
                {"type": "object", "propertyNames": _NAME},
                {"type": "array"},
                {"type": "number"},
                _NULL,
            ],
            "description": "Class probabilities; a value that is not a number is stored as null "
            "and counted.",
        },
        "latency_ms": {"anyOf": [{"type": "number"}, _NULL]},
        "segment": {
            "anyOf": [
                {
                    "type": "object",
                    "propertyNames": _NAME,
                    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}]},
                },
                _NULL,
            ]
        },
        "version": {
            "anyOf": [_NAME, _NULL],
            "description": "Absent or null: the version query parameter (one of them is "
            "required: a record with neither is rejected).",
        },
    },
}
ACTUAL = {
    "type": "object",
    "required": ["id", "actual"],
    "properties": {"id": _ID, "timestamp": _TIMESTAMP, "actual": _SCALAR},
}
INGEST_RESULT = {
    "type": "object",
    "required": [
        "received",
        "accepted",
        "inserted",
        "duplicates",
        "dead_letters",
        "rejected_count",
        "rejected",
    ],
    "properties": {
        "received": {"type": "integer"},
        "accepted": {"type": "integer"},
        "inserted": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "dead_letters": {"type": "integer"},
        "too_large": {"type": "integer"},
        "cleaned": {"type": "object", "additionalProperties": {"type": "integer"}},
        "rejected_count": {"type": "integer", "description": "All rejected records."},
        "rejected": {
            "type": "array",
            "description": "The first 1,000 rejected records, by index, with the reason.",
            "items": {
                "type": "object",
                "required": ["index", "error"],
                "properties": {
                    "index": {"type": "integer"},
                    "id": {},
                    "error": {"type": "string"},
                },
            },
        },
    },
}
SDK_REPORT = {
    "type": "object",
    "required": ["model", "instance", "stats"],
    "properties": {
        "model": _NAME,
        "instance": {
            "type": "string",
            "minLength": 1,
            "pattern": _NAME["pattern"],
            "description": "Kept to its first 200 characters.",
        },
        "stats": {
            "type": "object",
            "description": "Counters: finite numbers, strings without NUL, nested at most 32 "
            "levels.",
        },
    },
}


def _records(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "required": False,  # an empty body is an empty batch
        "description": "Records, each validated on its own: rejected ones are listed in the "
        "answer with their index and reason, the others are written.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": item}},
            "application/x-ndjson": {
                "schema": {"type": "string", "description": "One JSON record per line."}
            },
        },
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ingest(op: dict[str, Any], item: dict[str, Any]) -> None:
    op["requestBody"] = _records(item)
    result = {"$ref": SCHEMA_REF.format(model="IngestResult")}
    op["responses"]["200"] = _json(result, "What was received, written and rejected.")
    problem = {"$ref": SCHEMA_REF.format(model="Problem")}
    op["responses"]["400"] = _json(
        {"anyOf": [result, problem]},
        "Every record was rejected (the answer lists each with its reason), or the body is "
        "not JSON or NDJSON at all.",
    )


EXTRA: dict[tuple[str, str], Callable[[dict[str, Any]], None]] = {
    ("post", "/v1/models/{model}/predictions"): lambda op: _ingest(op, PREDICTION),
    ("post", "/v1/models/{model}/actuals"): lambda op: _ingest(op, ACTUAL),
    ("post", "/v1/sdk/report"): lambda op: op.update(
        requestBody={"required": True, "content": {"application/json": {"schema": SDK_REPORT}}}
    ),
}
EXTRA_STATUSES: dict[str, tuple[int, ...]] = {"/v1/": (413, 415), "/api/v1/rules": (404, 409)}


def _problem_components() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template=SCHEMA_REF)
    components = dict(schema.pop("$defs", {}))
    components["Problem"] = schema
    components["IngestResult"] = INGEST_RESULT
    return components


def document(spec: dict[str, Any]) -> dict[str, Any]:
    """Add errors, security and the collector's bodies to FastAPI's ``spec`` (in place)."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_problem_components())
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token: `monitor token create --name NAME --scope read`.",
        }
    }
    problem = {"$ref": SCHEMA_REF.format(model="Problem")}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            if path == "/healthz":
                op["security"] = []
                continue
            op["security"] = [{BEARER: []}]
            responses = op.setdefault("responses", {})
            statuses = set(ALWAYS)
            if "{" in path:
                statuses.add(404)
            for prefix, extra in EXTRA_STATUSES.items():
                if path.startswith(prefix) and method != "get":
                    statuses.update(extra)
            for status in sorted(statuses):
                answer = _json(problem, ERRORS[status])
                if status in (429, 503):
                    answer["headers"] = RETRY_AFTER
                if status == 401:
                    answer["headers"] = AUTHENTICATE
                responses[str(status)] = answer
            fix = EXTRA.get((method, path))
            if fix is not None:
                fix(op)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return spec


def install(app: FastAPI) -> None:
    """Build ``app``'s document with :func:`document` (once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = document(spec)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
