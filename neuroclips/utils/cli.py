"""Command-line conveniences shared by the entry points."""

from __future__ import annotations

import re

# Hydra parses `subj=1` as the integer 1 and refuses it as a config-group choice; the options of these groups are
# named by numbers, so we quote them before Hydra sees the command line (`subj=1,2,3` becomes `subj='1','2','3'`).
NUMERIC_GROUPS = ("subj",)
_GROUPS = "|".join(NUMERIC_GROUPS)
_PATTERN = re.compile(rf"^(?P<key>[+~]?(?:{_GROUPS}))=(?P<vals>\d+(?:,\d+)*)$")


def quote_numeric_group_overrides(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        m = _PATTERN.match(a)
        out.append(f"{m['key']}=" + ",".join(f"'{v}'" for v in m["vals"].split(",")) if m else a)
    return out
