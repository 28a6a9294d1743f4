"""The docs stay honest: a short front page, every page reachable, every link live, every setting named."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MARKDOWN = [README, *PAGES]
MAX_README_CHARS = 12_000

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def links(path: Path) -> list[str]:
    """Markdown link targets outside code blocks."""
    return _LINK.findall(_FENCE.sub("", path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {
        re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        for heading in _HEADING.findall(text)
    }


def test_readme_is_a_front_page() -> None:
    assert len(README.read_text(encoding="utf-8")) < MAX_README_CHARS


def test_every_docs_page_is_linked_from_the_readme_or_the_index() -> None:
    linked = {
        (path.parent / target.split("#")[0]).resolve()
        for path in (README, DOCS / "README.md")
        for target in links(path)
        if not target.startswith(("http://", "https://", "#"))
    }
    unlinked = [page.name for page in PAGES if page.name != "README.md" and page.resolve() not in linked]
    assert unlinked == []
    assert (DOCS / "README.md").resolve() in linked


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = []
    for target in links(path):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_docs_page_opens_with_who_needs_it(path: Path) -> None:
    if path == README or path.name == "README.md":
        return
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# ")
    assert lines[1].startswith("For "), "the first sentence says who needs the page"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_prehistory_word(path: Path) -> None:
    assert re.findall(r"(?i)\w*seed\w*", path.read_text(encoding="utf-8")) == []


def settings_module():
    """The settings module, wherever the layout puts it."""
    for name in ("mcp_bridge.config.settings", "mcp_bridge.settings"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise AssertionError("no mcp_bridge settings module found")


def test_every_setting_the_bridge_reads_is_documented() -> None:
    settings = settings_module()
    names = {
        value
        for key, value in vars(settings.EnvVar).items()
        if not key.startswith("_") and isinstance(value, str)
    }
    names |= set(settings.BridgeSettings.model_fields)
    documented = (DOCS / "settings.md").read_text(encoding="utf-8").upper()
    missing = sorted(name for name in names if f"`{name.upper()}`" not in documented)
    assert missing == []
