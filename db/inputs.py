"""The base of every input model: strict about unknown fields and about text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


class Input(BaseModel):
    """What clients write. Unknown fields are errors (no mass assignment), and text
    may not contain NUL characters, which PostgreSQL cannot store."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text may not contain NUL (\\u0000) characters")
        return value
