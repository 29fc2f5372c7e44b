"""The input rules of ``db.inputs``, as every door applies them: types, null, text, times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import MISSING

from db.api_keys import ApiKeyInput
from db.customers import CustomerPatch
from db.errors import ValidationFailed
from db.inputs import Input, Text, validate_input
from db.orders import OrderInput, OrderPatch
from db.products import ProductInput, ProductPatch


def errors_of(model: type[Input], data: object, at: str = "body") -> list[tuple[tuple, str]]:
    with pytest.raises(ValidationFailed) as exc:
        validate_input(model, data, at=at)
    assert exc.value.code == "VALIDATION_ERROR"
    return [(e.loc, e.type) for e in exc.value.errors]


PRODUCT = {"sku": "P-1", "name": "Mug", "price_cents": 100}


@pytest.mark.parametrize("value", [True, False, "100", "1e2", 100.0, 1.5, [1], {"v": 1}])
def test_an_integer_is_a_json_integer_and_nothing_else(value):
    assert errors_of(ProductInput, {**PRODUCT, "price_cents": value}) == [
        (("body", "price_cents"), "int_type")
    ]


@pytest.mark.parametrize("value", [1, 1.5, True, ["Mug"], {"n": "Mug"}])
def test_text_is_a_json_string_and_nothing_else(value):
    assert errors_of(ProductInput, {**PRODUCT, "name": value}) == [
        (("body", "name"), "string_type")
    ]


def test_null_is_refused_where_a_field_is_not_nullable():
    for model, field in (
        (ProductInput, "name"),
        (ProductPatch, "name"),
        (ProductPatch, "stock"),
        (CustomerPatch, "email"),
        (OrderPatch, "note"),
        (ApiKeyInput, "scopes"),
    ):
        data = {**PRODUCT, field: None} if model is ProductInput else {field: None}
        errors = errors_of(model, data, at="body")
        assert ((("body", field), "null_not_allowed")) in errors, (model, field, errors)
    assert errors_of(OrderInput, {"customer_id": 1, "items": [None]}) == [
        (("body", "items", 0), "null_not_allowed")
    ]
    # A body that is null is not a field: it keeps pydantic's own answer.
    assert errors_of(ProductInput, None) == [(("body",), "model_type")]
    # Nullable fields stay nullable.
    key = validate_input(
        ApiKeyInput, {"name": "k", "scopes": ["orders:read"], "expires_at": None}, at="body"
    )
    assert key.expires_at is None


def test_a_patch_dumps_only_what_was_sent():
    assert validate_input(ProductPatch, {}, at="body").model_dump() == {}
    patch = validate_input(ProductPatch, {"stock": 0, "description": ""}, at="body")
    assert patch.model_dump() == {"stock": 0, "description": ""}
    assert patch.name is MISSING


REFUSED = [
    *[(chr(c), "control_character") for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))],
    ("\u2028", "control_character"),
    ("\u2029", "control_character"),
    *[(chr(c), "bidi_character") for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))],
    ("\u200e", "bidi_character"),
    ("\u200f", "bidi_character"),
    ("\u061c", "bidi_character"),
    *[
        (c, "invisible_character")
        for c in "\u00ad\u180e\u200b\u2060\u2061\u2064\u206a\u206f\u3164\ufeff\uffa0\ufff9"
    ],
    ("\U0001bca0", "invisible_character"),
    ("\U0001d173", "invisible_character"),
    ("\U000e0001", "invisible_character"),
    ("\U000e0041", "invisible_character"),
    ("\ud800", "invalid_character"),  # only Python callers (the CLI) can send one
]


@pytest.mark.parametrize(("char", "kind"), REFUSED, ids=[f"U+{ord(c):04X}" for c, _ in REFUSED])
def test_one_line_text_refuses(char, kind):
    for text in (f"{char}Mug", f"Mu{char}g", f"Mug{char}"):
        with pytest.raises(ValidationFailed) as exc:
            validate_input(ProductPatch, {"name": text}, at="body")
        (error,) = exc.value.errors
        assert (error.loc, error.type) == (("body", "name"), kind)
        assert f"U+{ord(char):04X} at character {text.index(char) + 1}" in error.msg
        assert "remove it" in error.msg


@pytest.mark.parametrize(("char", "kind"), REFUSED, ids=[f"U+{ord(c):04X}" for c, _ in REFUSED])
def test_multi_line_text_refuses_the_same_but_newlines_tabs_and_soft_hyphens(char, kind):
    text = f"first line\n\tsecond {char} line"
    if char in "\n\t\u00ad":
        assert validate_input(ProductPatch, {"description": text}, at="body").description == text
        return
    assert errors_of(ProductPatch, {"description": text}) == [(("body", "description"), kind)]


@pytest.mark.parametrize(
    "name",
    [
        "Zo\u00eb Ba\u00f1os",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # ZWNJ (Persian)
        "\u0915\u094d\u200d\u0937",  # ZWJ (Devanagari)
        "\U0001f468\u200d\U0001f469\u200d\U0001f467 family",  # emoji ZWJ sequence
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f Alba",  # a flag
        "\u05e9\u05dc\u05d5\u05dd",  # right-to-left letters need no controls
        "non\u00a0breaking\u2011hyphen\u3000space",  # visible spaces and hyphens are text
        "e\u0301",  # combining marks
    ],
)
def test_one_line_text_keeps_real_text(name):
    assert validate_input(ProductPatch, {"name": name}, at="body").name == name


def test_a_tag_outside_a_flag_is_refused_even_next_to_one():
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f"
    assert errors_of(ProductPatch, {"name": f"{flag}\U000e0041"}) == [
        (("body", "name"), "invisible_character")
    ]
    assert errors_of(ProductPatch, {"name": "\U0001f3f4\U000e0067"}) == [
        (("body", "name"), "invisible_character")
    ]


def test_text_is_checked_before_it_is_stripped_and_measured():
    assert errors_of(ProductPatch, {"name": "\tMug"}) == [(("body", "name"), "control_character")]
    assert validate_input(ProductPatch, {"name": "  Mug "}, at="body").name == "Mug"
    assert errors_of(ProductPatch, {"name": "   "}) == [(("body", "name"), "string_too_short")]
    assert errors_of(ProductPatch, {"sku": "A\u200b"}) == [(("body", "sku"), "invisible_character")]


def test_every_text_in_a_list_is_checked():
    errors = errors_of(ApiKeyInput, {"name": "k", "scopes": ["orders:read", "x\u202e"]})
    assert errors == [(("body", "scopes"), "bidi_character")]


def test_text_that_does_not_say_is_held_to_one_line():
    class Loose(Input):
        label: str
        labels: list[str] = []
        body: Text | MISSING = MISSING

    assert errors_of(Loose, {"label": "a\nb"}) == [(("body", "label"), "control_character")]
    assert errors_of(Loose, {"label": "a", "labels": ["b\x00"]}) == [
        (("body", "labels"), "control_character")
    ]
    assert validate_input(Loose, {"label": "a", "body": "x\ny"}, at="body").body == "x\ny"


PLUS_2 = timezone(timedelta(hours=2))
MINUS_5_30 = timezone(-timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2100-01-01T00:00:00Z", datetime(2100, 1, 1, tzinfo=UTC)),
        ("2100-01-01t00:00:00z", datetime(2100, 1, 1, tzinfo=UTC)),
        ("2100-01-01 00:00:00.5+02:00", datetime(2100, 1, 1, 0, 0, 0, 500_000, tzinfo=PLUS_2)),
        ("2100-01-01T00:00:00.123456789-05:30", datetime(2100, 1, 1, 0, 0, 0, 123456, MINUS_5_30)),
    ],
)
def test_times_are_rfc_3339(text, expected):
    key = validate_input(
        ApiKeyInput, {"name": "k", "scopes": ["orders:read"], "expires_at": text}, at="body"
    )
    assert key.expires_at == expected


@pytest.mark.parametrize(
    "text",
    [
        "2100-01-01",
        "2100-01-01T00:00:00",  # no zone
        "2100-01-01T00:00Z",  # no seconds
        "20300101T000000Z",  # ISO 8601 basic, not RFC 3339
        "2100-02-30T00:00:00Z",
        "2100-01-01T24:00:00Z",
        "2100-01-01T23:59:60Z",  # leap seconds are not representable
        "4102444800",
        "tomorrow",
        "\u0662\u0661\u0660\u0660-01-01T00:00:00Z",  # Arabic-Indic digits
    ],
)
def test_other_time_formats_are_refused(text):
    assert errors_of(ApiKeyInput, {"name": "k", "scopes": ["orders:read"], "expires_at": text}) == [
        (("body", "expires_at"), "datetime_parsing")
    ]


def test_python_callers_still_pass_datetimes():
    when = datetime.now(UTC) + timedelta(days=1)
    assert ApiKeyInput(name="k", scopes=["orders:read"], expires_at=when).expires_at == when


def test_the_detail_names_the_first_problem():
    with pytest.raises(ValidationFailed) as exc:
        validate_input(
            ProductInput, {"sku": "P-1", "name": "\u202e", "price_cents": "1"}, at="body"
        )
    assert exc.value.detail.startswith("the body is not valid: name: contains U+202E")
    assert exc.value.detail.endswith("(and 1 more; see errors)")
