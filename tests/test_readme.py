"""The README's commands and example work as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def run_block(code: str, cwd=None, timeout: int = 120) -> subprocess.CompletedProcess:
    """A README example run as a user would, in a fresh interpreter on NumPy."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"BPGPU_BACKEND": "numpy", "PATH": ""},
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr
    return out


def test_quick_start_runs_as_written():
    code = blocks("python")[0]
    assert len(code.strip().splitlines()) <= 10
    out = run_block(code)
    name, before, arrow, after, err = out.stdout.split()
    assert name == "numpy" and float(after) < float(before) and float(err) < 1e-6


def test_ci_runs_the_readme_test_command():
    train, test = blocks("bash")[0].strip().splitlines()
    assert train.endswith("&& bpgpu train")
    test_part = test.split("&&")[-1].strip()
    assert test_part == "python -m pytest -q"
    assert "pip install -e '.[test]'" in test
    assert test_part in (ROOT / ".ci" / "run").read_text()


def test_training_example_runs_as_written(tmp_path):
    code = blocks("python")[1]
    score = "\nprint(net.evaluate(s.X_test, s.y_test)['accuracy'])"
    out = run_block(code + score, cwd=tmp_path, timeout=300)
    assert float(out.stdout.split()[-1]) > 0.95
    assert (tmp_path / "digits.npz").exists()


def test_every_test_the_promise_table_names_exists():
    """A promise held by a renamed or deleted test is held by nothing (the table is on
    the testing page of the docs)."""
    page = (ROOT / "docs" / "testing.md").read_text()
    table = page[page.index("## What bpgpu promises") : page.index("Not promised")]
    missing = []
    for row in table.splitlines():
        current = None
        for ref in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", row):
            path, name = ref
            if path:
                current = ROOT / path
                if not current.exists():
                    missing.append(path)
                    continue
            if name and current is not None and f"def {name}(" not in current.read_text():
                missing.append(f"{current.name}::{name}")
    assert not missing, missing
    assert table.count("tests/") >= 30


def test_the_readme_is_a_front_page_that_links_into_the_docs():
    """About 150-250 lines: what bpgpu is, install, the two commands, one example each
    for Python, the command line and scikit-learn, the backends, links into the docs
    (every one of which exists)."""
    lines = README.splitlines()
    assert 150 <= len(lines) <= 250, len(lines)
    links = re.findall(r"\]\(((?:docs|examples)/[^)#]+)", README)
    assert len(links) >= 15, links
    assert [p for p in links if not (ROOT / p).exists()] == []
    for needed in (
        "## Two commands",
        "## Python",
        "## Command line",
        "## scikit-learn",
        "## Backends at a glance",
        "## Documentation",
    ):
        assert needed in README, needed
