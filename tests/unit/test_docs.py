"""The front door stays a front door: the README is small, starts with the two commands, and every link and file
path in it and in docs/ points at something that exists in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PATH = re.compile(r"`((?:streams|models|sinks|infra|tests|docs)/[\w./-]+)`")


def test_readme_is_at_most_15000_bytes_and_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= 15_000, f"README.md is {len(readme)} bytes; move detail into docs/"
    first_block = readme.decode().split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_paths_point_into_the_repository(page: Path) -> None:
    text = page.read_text()
    links = re.findall(r"\]\(([^)#]+)\)", text)
    missing = [link for link in links if not link.startswith("http") and not (page.parent / link).exists()]
    missing += [path for path in PATH.findall(text) if not (ROOT / path.rstrip("/.")).exists()]
    assert not missing, f"{page.name} points at what does not exist: {missing}"
    assert "GUIDE.md" not in text
