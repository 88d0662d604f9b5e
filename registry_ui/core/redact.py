"""Take credentials out of text before it is shown, logged or stored.

Exception messages quote what failed, and what failed is often a URL with a password in it
(``http://svc:S3cret@mlflow:5000``, a database DSN) or a ``password=...`` option. Anything
that puts an exception's text or a URL in front of people (a page, a JSON answer, a log
line, an audit event, an operation's last error) passes it through ``redact()`` first.

Pure: the standard library only. ``RedactingFilter`` is a logging filter settings.LOGGING
puts on the console handler, so every log line goes through it.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

# scheme://userinfo@ : everything between "//" and the last "@" before the host ends (a "/",
# "?", "#" or white space). A password holding one of those must be percent-encoded to be a
# URL at all; an "@" inside it need not be, so the match runs to the last "@".
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/?#@]*(?:@[^\s/?#@]*)*@")

# A name that holds a secret, followed by = or : and the value: query strings
# (?password=x&...), libpq DSNs (password=x), headers (Authorization: Bearer x), JSON
# ("api_key": "x") and Python reprs ('token': 'x').
_SECRET_NAME = (
    r"[A-Za-z0-9_\-]*(?:passw(?:or)?d|pwd|secret|token|api[_\-]?key|access[_\-]?key|"
    r"private[_\-]?key|credentials?|authorization|signature|session[_\-]?id|cookie)"
)
_SECRET_PAIR = re.compile(
    rf"""(?P<name>(?P<quote>["']?)\b{_SECRET_NAME}(?P=quote))"""
    r"""(?P<sep>\s*[=:]\s*)"""
    r"""(?:(?P<scheme>(?:Bearer|Basic|Token|Digest)\s+))?"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s&;,"'\)\]\}]+)""",
    re.IGNORECASE,
)


def redact(text: object) -> str:
    """``text`` (any object, as str() shows it) with passwords in URLs and secret values masked.

    ``http://svc:S3cret@host/x`` becomes ``http://***@host/x`` (the user name goes too: some
    services take a token as the user name); ``password=S3cret`` becomes ``password=***``.
    """
    text = str(text)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PAIR.sub(_mask_pair, text)


def _mask_pair(match: re.Match) -> str:
    value = match["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match['name']}{match['sep']}{match['scheme'] or ''}{quote}{MASK}{quote}"


def redact_error(error: BaseException) -> str:
    """How to show an exception: its class and its redacted message."""
    message = redact(error)
    name = type(error).__name__
    return f"{name}: {message}" if message else name


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message, traceback and stack before any handler
    writes it (settings.LOGGING puts it on the console handler)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
