"""Credentials never leave in text: URLs' user info and secret-named values are masked."""

from __future__ import annotations

import logging
import string
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.redact import RedactingFilter, redact, redact_error


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "API request to http://svc:S3cretPassw0rd@mlflow:5000/api/2.0/x failed",
            "API request to http://***@mlflow:5000/api/2.0/x failed",
        ),
        ("postgres://registry_ui:pa@ss@db:5432/r", "postgres://***@db:5432/r"),
        ("redis://:hunter2@redis:6379/0", "redis://***@redis:6379/0"),
        ("https://ghp_tokenasuser@github.com/x", "https://***@github.com/x"),
        ("host=db user=r password=hunter2 dbname=r", "host=db user=r password=*** dbname=r"),
        ("GET /x?user=a&api_key=abc123&page=2", "GET /x?user=a&api_key=***&page=2"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ("{'token': 'abc', 'n': 1}", "{'token': '***', 'n': 1}"),
        ('{"client_secret": "abc def", "n": 1}', '{"client_secret": "***", "n": 1}'),
        ("PASSWORD=abc", "PASSWORD=***"),
    ],
)
def test_it_masks_credentials_in_urls_and_secret_named_values(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/search?max_results=1",
        "password authentication failed for user registry_ui",
        "max_tokens=512 temperature=0.2",
        "signature does not match",
        "see https://example.com/a@b for details",
        "alice@example.com approved request #12",
    ],
)
def test_it_leaves_text_without_credentials_as_it_was(text):
    assert redact(text) == text


# RFC 3986 user info: unreserved characters, sub-delimiters and percent-escapes (":" splits
# the user from the password); what a password in a real URL can hold unescaped.
USERINFO = string.ascii_letters + string.digits + "-._~!$&'()*+,;=%"


@given(
    user=st.text(USERINFO, max_size=12),
    password=st.text(USERINFO, min_size=4, max_size=30),
    scheme=st.sampled_from(["http", "https", "postgres", "redis", "mysql+pymysql"]),
    before=st.text(string.ascii_letters + " :(", max_size=20),
)
def test_no_password_in_a_url_survives(user, password, scheme, before):
    text = f"{before}{scheme}://{user}:{password}@svc.internal:5000/path?x=1 failed"

    shown = redact(text)

    assert password not in shown.removeprefix(before)
    assert shown.endswith("://***@svc.internal:5000/path?x=1 failed")


@given(
    name=st.sampled_from(["password", "PASSWORD", "db_password", "passwd", "secret", "token"]),
    value=st.text(string.ascii_letters + string.digits + "!$%*+-./:<>?@^_|~", min_size=6),
)
def test_no_secret_named_value_survives(name, value):
    shown = redact(f"connect failed ({name}={value} host=db)")

    # The whole line is compared: `value not in shown` fails by chance when Hypothesis
    # draws a value such as "failed" that the fixed text around it contains.
    assert shown == f"connect failed ({name}=*** host=db)"


def test_an_exception_is_shown_as_its_class_and_redacted_message():
    error = ConnectionError("could not reach http://svc:S3cret@mlflow:5000")

    assert redact_error(error) == "ConnectionError: could not reach http://***@mlflow:5000"
    assert redact_error(TimeoutError()) == "TimeoutError"


def test_the_logging_filter_masks_the_message_its_arguments_and_the_traceback():
    try:
        raise ValueError("bad answer from http://svc:S3cret@mlflow:5000/x")
    except ValueError as error:
        record = logging.LogRecord(
            "registry_ui",
            logging.WARNING,
            __file__,
            1,
            "MLflow failed: %s",
            (error,),
            sys.exc_info(),
        )

    assert RedactingFilter().filter(record) is True

    line = logging.Formatter("%(message)s").format(record)
    assert "S3cret" not in line
    assert "MLflow failed: bad answer from http://***@mlflow:5000/x" in line
    assert "Traceback" in line
