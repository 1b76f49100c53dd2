"""``python -m neuroclips.report RUN_DIR [RUN_DIR ...]``: re-render metrics.md of finished eval runs; given several
subjects' eval dirs, write the across-subject table into the first one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from neuroclips.report.markdown import render_markdown
from neuroclips.report.write import write_text


def main(argv: list[str] | None = None) -> int:
    """Re-render Markdown for finished eval dirs; several dirs -> across-subject table in the first one."""
    dirs = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not dirs:
        raise SystemExit("report: usage: python -m neuroclips.report RUN_DIR [RUN_DIR ...] (eval run dirs)")
    docs = [json.loads((d / "metrics.json").read_text()) for d in dirs]
    write_text(dirs[0] / "metrics.md", render_markdown(docs[0], None, docs if len(docs) > 1 else []))
    print(dirs[0] / "metrics.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
