"""Settings: rules across fields, and values read from the environment's text."""

from __future__ import annotations

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
