"""README.md stays a front door, and the documentation's relative links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_is_a_front_door(project_root: Path) -> None:
    readme = (project_root / "README.md").read_bytes()
    assert len(readme) <= 12 * 1024, "README.md is a front door: move details to docs/*.md"


def test_every_relative_link_of_the_docs_resolves(project_root: Path) -> None:
    pages = [project_root / "README.md", *sorted((project_root / "docs").glob("*.md"))]
    broken = [
        f"{page.name}: {target}"
        for page in pages
        for target in LINK.findall(page.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
        and not (page.parent / target).exists()
    ]
    assert broken == []
