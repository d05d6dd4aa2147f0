"""JSON inside HTML: every place a page or report inlines JSON goes through here.

A JSON string may hold ``</script>`` (a feature or category name), which ends the ``<script>``
element that carries it whatever the JSON means, and ``<!--`` switches a script block's parsing
mode. ``<``, ``>`` and ``&`` are therefore written as ``\\u003c``-style escapes, which JSON and
JavaScript read back as the same characters; so are ``'`` (for JSON placed in an attribute) and
U+2028/U+2029, which older JavaScript engines took for line ends inside string literals. The
escapes are only valid inside JSON strings, which is the only place these characters can occur in
JSON text.
"""

from __future__ import annotations

import json
import re
from typing import Any

from markupsafe import Markup

_UNSAFE = re.compile("[<>&'\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_json_text(text: str) -> str:
    """``text`` (valid JSON) with every character that HTML could act on escaped."""
    return _UNSAFE.sub(_escape, text)


def script_json(value: Any) -> Markup:
    """``value`` as JSON that is safe inside ``<script type="application/json">`` or an
    attribute (the replacement of Jinja's ``htmlsafe_json_dumps``, which leaves U+2028/9 to
    ``ensure_ascii``)."""
    return Markup(escape_json_text(json.dumps(value, separators=(",", ":"))))
