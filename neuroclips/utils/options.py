"""A stage's settings block (``keyframe:``, ``video:``) as one typed, frozen dataclass: the YAML states each value
once, the dataclass names and types them, and a key the one has and the other lacks is one sentence."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

from neuroclips.errors import ConfigError

T = TypeVar("T")


def options_from_config(cls: type[T], values: Mapping | T, config_file: str, block: str) -> T:
    """``cls(**values)``, refusing unknown or missing keys with the file and block that state them."""
    if isinstance(values, cls):
        return values
    names = {f.name for f in dataclasses.fields(cls)}
    unknown, missing = sorted(set(values) - names), sorted(names - set(values))
    if unknown or missing:
        found = " and ".join(
            part
            for part in (f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else "")
            if part
        )
        raise ConfigError(f"{config_file}: the {block} settings are {sorted(names)}; found {found}.")
    return cls(**dict(values))
