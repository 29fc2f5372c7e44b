"""Settings: rules across fields, and values read from the environment's text."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    Settings,
    SettingsError,
    load_settings,
)
from resolvers.context import Context
from resolvers.limits import DocumentLimits


def test_page_sizes_have_one_source():
    assert Settings.model_fields["page_size_default"].default == PAGE_SIZE_DEFAULT
    assert Settings.model_fields["page_size_max"].default == PAGE_SIZE_MAX
    fields = Context.__dataclass_fields__
    assert fields["page_size_default"].default == PAGE_SIZE_DEFAULT
    assert fields["page_size_max"].default == PAGE_SIZE_MAX
    assert DocumentLimits().max_page_size == PAGE_SIZE_MAX


def test_a_default_page_above_the_cap_is_refused():
    with pytest.raises(SettingsError, match="PAGE_SIZE_DEFAULT=300 is above PAGE_SIZE_MAX=200"):
        load_settings(page_size_default=300)
    assert load_settings(page_size_default=300, page_size_max=300).page_size_default == 300


def test_comma_lists_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRUSTED_PROXIES", " 10.0.0.0/8, ,192.0.2.1 ")
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://a.example, HTTPS://B.example,")
    settings = load_settings()
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32"]
    assert settings.cors_allow_origins == ["https://a.example", "https://b.example"]
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "")
    empty = load_settings()
    assert (empty.trusted_proxies, empty.cors_allow_origins) == ([], [])


def test_every_setting_is_in_the_readme_s_configuration_table():
    """The table is what operators read: a setting added without a row fails here."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Endpoint map")]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in table]
    assert missing == []
