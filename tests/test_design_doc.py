"""README's Design section names real places: every path exists, every package and required concept has a row."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONCEPTS = ["backend", "event", "budget", "retry", "re-ask", "JSON extraction", "journal", "store"]


def design_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Design\n")
    end = text.find("\n## ", start + 1)
    return text[start: end if end != -1 else len(text)]


def test_every_path_named_exists():
    section = design_section()
    paths = re.findall(r"`(plait/[\w/.]*)`", section)
    assert len(paths) > 10
    for path in paths:
        assert (ROOT / path).exists(), f"README Design names {path}, which does not exist"
    for row in section.splitlines():  # bare module names in a row live in that row's package
        folder = re.search(r"`(plait/\w+)/", row)
        for module in re.findall(r"`(_\w+\.py)`", row):
            assert folder and (ROOT / folder.group(1) / module).exists(), f"{module} in: {row}"


def test_every_package_and_concept_has_a_row():
    section = design_section()
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    packages = {f"`plait/{p.name}/`" for p in (ROOT / "plait").iterdir() if (p / "__init__.py").exists()}
    assert packages <= rows
    assert set(CONCEPTS) <= rows
