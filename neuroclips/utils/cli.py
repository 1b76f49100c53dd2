"""Command-line conveniences shared by the entry points."""

from __future__ import annotations

import re

# Hydra parses `subj=1` as the integer 1 and refuses it as a config-group choice; the options of these groups are
# named by numbers, so we quote them before Hydra sees the command line (`subj=1,2,3` becomes `subj='1','2','3'`,
# a sweep; `subj=[1,2]`, one run over several subjects, becomes `subj=['1','2']`).
NUMERIC_GROUPS = ("subj",)
_GROUPS = "|".join(NUMERIC_GROUPS)
_PATTERN = re.compile(rf"^(?P<key>[+~]?(?:{_GROUPS}))=(?P<vals>\d+(?:,\d+)*)$")
_LIST_PATTERN = re.compile(rf"^(?P<key>[+~]?(?:{_GROUPS}))=\[(?P<vals>\s*\d+(?:\s*,\s*\d+)*\s*)\]$")


def quote_numeric_group_overrides(argv: list[str]) -> list[str]:
    out = []
    for a in argv:
        m, listed = _PATTERN.match(a), _LIST_PATTERN.match(a)
        if listed:
            out.append(
                f"{listed['key']}=[" + ",".join(f"'{v.strip()}'" for v in listed["vals"].split(",")) + "]"
            )
        else:
            out.append(f"{m['key']}=" + ",".join(f"'{v}'" for v in m["vals"].split(",")) if m else a)
    return out
