"""Sphinx extension: the benchmarks' result files as pages of the site.

At ``builder-inited`` every Markdown file in ``benchmarks/results/`` is copied to
``docs/generated/results/`` (a folder the build owns; never edited by hand), with a
title where the file has none and its chart (``NAME.png`` beside ``NAME.md``) shown
below it; ``index.md`` there lists them, GPU runs first, each with its date and machine
as the file records them. The benchmarks page includes that index in its toctree, so a
new result file is on the site at the next build.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _when_and_where(text: str) -> str:
    """The date and machine a result file records (its provenance line), shortly."""
    date = re.search(r"20\d\d-\d\d-\d\d", text)
    machine = re.search(
        r"(NVIDIA \w+|AMD EPYC, \d+ cores|Intel\(R\) Xeon\(R\) [\w ]+?, \d+ cores)", text
    )
    parts = [m.group(0) for m in (date, machine) if m]
    return "; ".join(parts) if parts else "no date recorded"


def _no_skipped_levels(text: str) -> str:
    """Headings moved up so that none below the title skips a level (a file whose
    sections are ``###`` under its ``#`` title)."""
    levels = {len(m.group(1)) for m in re.finditer(r"^(#+) ", text, flags=re.M)} - {1}
    if not levels or min(levels) <= 2:
        return text
    shift = min(levels) - 2

    def up(m):
        return m.group(0) if len(m.group(1)) == 1 else m.group(1)[shift:] + " "

    return re.sub(r"^(#+) ", up, text, flags=re.M)


def write_pages(app) -> None:
    out = Path(app.srcdir) / "generated" / "results"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = []
    for md in sorted(RESULTS.glob("*.md")):
        text = md.read_text()
        if not text.lstrip().startswith("# "):
            text = f"# {md.stem}\n\n{text}"
        title = text.lstrip().splitlines()[0][2:].strip()
        text = _no_skipped_levels(text)
        png = md.with_suffix(".png")
        if png.exists():
            shutil.copy(png, out / png.name)
            text += f"\n\n![{md.stem}]({png.name})\n"
        text += f"\n\nThe file: `benchmarks/results/{md.name}` (and its JSON, if any).\n"
        (out / md.name).write_text(text)
        gpu = "gpu" in md.stem or "cupy" in md.stem
        rows.append((not gpu, md.stem, title, _when_and_where(text)))
    rows.sort()
    lines = [
        "# Result files",
        "",
        "Every result file in `benchmarks/results/`, as the benchmark that measured it "
        "wrote it (GPU runs first). The date and machine are the file's own.",
        "",
        "| file | what it measured | when, where |",
        "|---|---|---|",
        *(
            f"| [{stem}]({stem}.md) | {title.replace('|', '/')} | {when} |"
            for _, stem, title, when in rows
        ),
        "",
        "```{toctree}",
        ":hidden:",
        "",
        *(stem for _, stem, _, _ in rows),
        "```",
        "",
    ]
    (out / "index.md").write_text("\n".join(lines))


def setup(app):
    app.connect("builder-inited", write_pages)
    return {"parallel_read_safe": True, "version": "1"}
