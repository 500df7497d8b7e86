"""The repository's own documents are the only ones it points to: no committed file outside tests/ cites the
developers' planning notes, the reference notes kept outside the repository, or the source documents by their
file names. Users have docs/ (methods, protocols, the stand-in, speed) and the papers by name."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN = re.compile(r"STUDY\.md|\.\./shared|reference/(?:official-implementations|protocols|ecosystem)\.md"
                       r"|seeds/00|\bseeds? 00[0-4]\b|(?<![\w/])protocols\.md §|(?<![\w/])official-implementations\.md")
DOCS = ("docs/methods.md", "docs/protocols.md", "docs/speed.md", "docs/standin.md",
        "docs/paper_datasets.md", "docs/paper_insclr_benchmarks.md", "docs/paper_insclr_ablations.md",
        "docs/paper_tables.md")
DOCS += ("docs/paper_isl_figures.md", "docs/paper_spreading_unseen.md")


def committed_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: the committed files are unknown")
    return [f for f in out.stdout.decode().split("\0") if f]


def offenders() -> dict[str, list[str]]:
    found = {}
    for name in committed_files():
        path = REPO / name
        if name.startswith("tests/") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (figures)
        hits = sorted({m.group(0) for m in FORBIDDEN.finditer(text)})
        if hits:
            found[name] = hits
    return found




def test_the_pattern_catches_each_kind_of_pointer():
    for text in ("see STUDY.md §7", "../shared/reference/protocols.md", "reference/official-implementations.md §2",
                 "reference/protocols.md §1.3", "reference/ecosystem.md", "seeds/004_0f4b.txt", "(seed 004)", "seeds 002/003",
                 "(protocols.md §4)",
                 "official-implementations.md"):
        assert FORBIDDEN.search(text), text
    for text in ("docs/protocols.md", "docs/methods.md", "the thesis §4.2", "the Spreading paper's Eq. 3"):
        assert not FORBIDDEN.search(text), text


def test_no_committed_file_points_outside_the_repository():
    assert offenders() == {}, "replace these pointers with docs/*.md (or the paper or thesis by name)"


def test_the_documents_users_are_pointed_to_exist():
    for name in DOCS:
        assert (REPO / name).is_file(), name
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in DOCS:
        assert name in readme, f"README links {name}"
    for name in committed_files():
        if name.endswith((".py", ".md", ".yaml", ".sh")) and not name.startswith("tests/"):
            text = (REPO / name).read_text(encoding="utf-8")
            for doc in re.findall(r"docs/[\w-]+\.md", text):
                assert (REPO / doc).is_file(), f"{name} points to {doc}, which does not exist"


def test_relative_links_in_the_readme_and_docs_lead_to_committed_files():
    """README's results column and the docs link files that exist in a fresh clone (not ones a run makes)."""
    committed = set(committed_files())
    for doc in ("README.md", *DOCS, "params/README.md"):
        text = (REPO / doc).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            path = ((REPO / doc).parent / target).resolve()
            name = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else target
            assert name in committed or any(f.startswith(name.rstrip("/") + "/") for f in committed), \
                f"{doc} links {target}, which is not a committed file or folder"
