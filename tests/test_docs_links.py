"""The documentation holds together: every relative link (and anchor) in README.md and docs/*.md resolves, every
pointer from code or configs into a doc page names a heading that page has, and no text speaks of a design document
outside the repository ("DESIGN §") or of how the work was organised ("session").

Anchors are GitHub's: explicit ``<a id="...">`` tags and the slugs GitHub derives from headings (lower case,
punctuation dropped, spaces -> hyphens, ``-1``, ``-2`` ... for repeats). Code blocks and inline code are not links.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# where a stray "DESIGN §" or "session" must not appear (tests may name them, as this file does)
PROSE_ROOTS = ("spiketrack", "configs", "tools", "docs", "README.md")
PROSE_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml"}

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_EXPLICIT_ID = re.compile(r"""<a\s+[^>]*?(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# 'docs/benchmarks.md, "Heading"' / 'docs/data.md, section "Heading"' in code, configs and tools
_POINTER = re.compile(r"docs/([\w-]+\.md),\s*(?:section\s+)?\"([^\"]+)\"")


def _prose_lines(text: str) -> list[str]:
    """The lines of a Markdown page outside fenced code blocks."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor of a heading text (without the duplicate suffix)."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    """Heading texts of a page, in order, code blocks excluded."""
    return [m.group(2) for line in _prose_lines(path.read_text(encoding="utf-8")) if (m := _HEADING.match(line))]


def anchors(path: Path) -> set[str]:
    """Every anchor a link into ``path`` may name."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose_lines(path.read_text(encoding="utf-8")):
        found.update(_EXPLICIT_ID.findall(line))
        if m := _HEADING.match(line):
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link and image outside code."""
    out, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out += [(number, m.group(1)) for m in _LINK.finditer(_INLINE_CODE.sub("", line))]
    return out


def broken_links(path: Path) -> list[str]:
    """'file:line: target (why)' for each relative link of ``path`` that does not resolve."""
    bad = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / file_part).resolve()
        where = f"{path.relative_to(ROOT)}:{number}: {target}"
        if not dest.exists():
            bad.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{where} (no anchor '{anchor}' in {dest.name})")
    return bad


def _prose_files() -> list[Path]:
    files = []
    for name in PROSE_ROOTS:
        p = ROOT / name
        files += [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.suffix in PROSE_SUFFIXES)
    return [f for f in files if "__pycache__" not in f.parts]


def test_slug_follows_github() -> None:
    """Known answers of GitHub's heading anchors."""
    assert slug("Sequence files (native format)") == "sequence-files-native-format"
    assert slug("Tracking a dataset (`spiketrack track`)") == "tracking-a-dataset-spiketrack-track"
    assert slug("Memory of `track --energy`") == "memory-of-track---energy"
    heading = "Protocol `eventvot` (EventVOT/LaSOT MATLAB toolkit)"
    assert slug(heading) == "protocol-eventvot-eventvotlasot-matlab-toolkit"


def test_checker_finds_a_broken_link_and_anchor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checker itself fails on what it should: a missing file, a missing anchor; code is not a link."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "b.md").write_text("# Title\n\n<a id=\"here\"></a>\n## Part two\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text(
        "[ok](b.md) [ok](b.md#here) [ok](b.md#part-two) [ok](#top) [web](https://example.org/x)\n"
        "[gone](c.md) [bad anchor](b.md#nowhere)\n"
        "`[not a link](d.md)`\n```\n[not a link](e.md)\n```\n<a id=\"top\"></a>\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "a.md:2: c.md (no such file)",
        "a.md:2: b.md#nowhere (no anchor 'nowhere' in b.md)",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    bad = broken_links(page)
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_docs_pages_exist() -> None:
    """The pages the README's map promises."""
    names = {p.name for p in PAGES}
    for name in ("architecture.md", "data.md", "models.md", "training.md", "tracking.md", "evaluation.md",
                 "energy.md", "deployment.md", "benchmarks.md"):
        assert name in names, name


def test_readme_is_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def broken_pointers(files: list[Path], docs: Path) -> list[str]:
    """'file: docs/PAGE.md, "Heading"' for each pointer whose page has no heading starting with that text."""
    bad = []
    for f in files:
        # join wrapped comment and docstring lines so a quoted heading may span two lines
        text = re.sub(r"\n\s*(?:#\s*)?", " ", f.read_text(encoding="utf-8"))
        for page, heading in _POINTER.findall(text):
            target = docs / page
            wanted = " ".join(heading.split())
            names = [re.sub(r"[`*]", "", h) for h in headings(target)] if target.exists() else []
            if not any(h.startswith(wanted) for h in names):
                bad.append(f"{f.name}: docs/{page}, \"{wanted}\"")
    return bad


def test_pointer_checker_finds_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Sequence files (native format)\n", encoding="utf-8")
    code = tmp_path / "m.py"
    code.write_text('# see docs/page.md, "Sequence\n# files"; docs/page.md, "Third session"\n', encoding="utf-8")
    assert broken_pointers([code], tmp_path / "docs") == ['m.py: docs/page.md, "Third session"']


def test_code_pointers_name_existing_headings() -> None:
    """'docs/PAGE.md, "Heading"' in code, configs, tools and tests names the start of a heading of that page."""
    files = [f for f in [*_prose_files(), *sorted((ROOT / "tests").rglob("*.py"))]
             if f.suffix != ".md" and f != Path(__file__).resolve()]
    bad = broken_pointers(files, ROOT / "docs")
    assert not bad, "pointers to headings that do not exist:\n" + "\n".join(bad)


def test_no_design_or_session_wording() -> None:
    """Docs and code cite the project's own docs, not an outside design sketch, and say nothing of sessions."""
    pattern = re.compile(r"DESIGN §|\bsessions?\b", re.IGNORECASE)
    bad = [
        f"{f.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for f in _prose_files()
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not bad, "\n".join(bad)
