"""The operations list names the templates a batch touches, not only how many."""

from __future__ import annotations

import pytest

from tests.support.mirror_rows import batch, signed_in

pytestmark = pytest.mark.django_db


def test_a_batch_row_names_its_templates_and_counts_the_rest(reader):
    batch("alice", {"template_name": "t/a", "version": "1.2.0"})
    batch("alice", *({"template_name": f"t/bulk-{n}"} for n in range(5)))

    page = signed_in(reader).get("/operations/")

    assert "Register: t/a 1.2.0</td>" in page.text
    assert "Register: t/bulk-0 1.0.0, t/bulk-1 1.0.0, t/bulk-2 1.0.0 and 2 more" in page.text
