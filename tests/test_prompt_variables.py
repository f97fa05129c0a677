"""The `{{variables}}` syntax of prompts/variables.py: what is a variable, escapes, refusals, filling."""

import pytest

from prompts.variables import MAX_VARIABLES, VariableError, fill, names, parts


def test_it_splits_a_body_into_text_and_variables():
    assert parts("Translate into {{language}}: {{ text }}") == [
        ("text", "Translate into "),
        ("var", "language"),
        ("text", ": "),
        ("var", "text"),
    ]


def test_a_name_used_twice_is_one_variable_filled_in_both_places():
    body = "{{who}} meets {{other}}; {{ who }} waves"

    assert names(body) == ["who", "other"]
    assert fill(body, {"who": "Ann", "other": "Bo"}) == "Ann meets Bo; Ann waves"


def test_a_backslash_before_the_braces_writes_them_as_text():
    body = r"Use \{{name}} in Jinja, not {{lang}}"

    assert names(body) == ["lang"]
    assert fill(body, {"lang": "Go"}) == "Use {{name}} in Jinja, not Go"


@pytest.mark.parametrize("body", ["Hello {{First name}}", "{{}}", "{{Topic}}", "{{a-b}}", "{{" + "x" * 33 + "}}"])
def test_a_malformed_variable_is_refused_with_the_rule(body):
    with pytest.raises(VariableError, match="is not a variable: a name is 1 to 32"):
        parts(body)


@pytest.mark.parametrize("body", ["a {{ never closed", "{{a\n}}", "{ {x} }", "}} {{", "single {braces}"])
def test_braces_that_are_no_variable_stay_text(body):
    assert names(body) == []
    assert fill(body, {}) == body


def test_too_many_variables_are_refused():
    body = " ".join(f"{{{{v{i}}}}}" for i in range(MAX_VARIABLES + 1))

    with pytest.raises(VariableError, match=f"at most {MAX_VARIABLES}"):
        parts(body)
    assert len(names(" ".join(f"{{{{v{i}}}}}" for i in range(MAX_VARIABLES)))) == MAX_VARIABLES


def test_values_are_put_in_as_typed_and_never_read_for_variables():
    body = "Say {{a}} then {{b}}"

    assert fill(body, {"a": "{{b}}", "b": "<b>x</b>", "unknown": "ignored"}) == "Say {{b}} then <b>x</b>"


def test_filling_without_a_value_for_each_variable_is_refused():
    with pytest.raises(VariableError, match="Fill in b"):
        fill("{{a}} {{b}}", {"a": "x"})
