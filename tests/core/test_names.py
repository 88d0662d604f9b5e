import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry_ui.core.names import (
    InvalidNameError,
    from_registered_model_name,
    to_registered_model_name,
)


def test_it_maps_hierarchical_names_to_names_mlflow_accepts():
    registered = to_registered_model_name("persona/entrepreneur/hook-generator")
    assert registered == "persona.entrepreneur.hook-generator"
    assert "/" not in registered and ":" not in registered


def test_it_maps_back_to_the_original_name():
    assert from_registered_model_name("persona.entrepreneur.hook-generator") == (
        "persona/entrepreneur/hook-generator"
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "required"),
        ("a//b", "segment 2 '(empty)'"),
        ("/a", "segment 1"),
        ("a/b.c", "segment 2 'b.c'"),
        ("a:b", "segment 1 'a:b'"),
        ("hook generator", "letters, digits, '-' and '_'"),
        ("-hook", "starting and ending with a letter or digit"),
        ("x" * 201, "at most 200"),
    ],
)
def test_it_refuses_names_it_cannot_map_reversibly(name, problem):
    with pytest.raises(InvalidNameError) as caught:
        to_registered_model_name(name)
    assert problem in str(caught.value)


segment = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_-]{0,10}[A-Za-z0-9])?", fullmatch=True)


@given(st.lists(segment, min_size=1, max_size=5))
def test_the_mapping_is_reversible_and_injective_for_every_valid_name(segments):
    name = "/".join(segments)
    registered = to_registered_model_name(name)
    assert from_registered_model_name(registered) == name
