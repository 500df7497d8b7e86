"""Where the official code comes from: local checkouts under ``--official-root``, never fetched at run time.

Each repository is expected at ``<official-root>/<owner>+<name>/`` (the GitHub owner and name joined by "+",
e.g. ``mangye16+Unsupervised_Embedding_Learning``). A plain ``git clone`` into that folder is enough; the suite
only reads the files named in REPOS. Without a checkout its blocks are skipped, and :func:`missing_message`
says what to put where.
"""
from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Repo:
    folder: str          # <owner>+<name>
    url: str
    files: tuple         # the files the suite reads, relative to the checkout
    what: str            # what the suite takes from it


REPOS = {
    "spreading": Repo("mangye16+Unsupervised_Embedding_Learning",
                      "https://github.com/mangye16/Unsupervised_Embedding_Learning",
                      ("BatchAverage.py", "utils.py"),
                      "BatchCriterion (the loss); eval_recall_K and eval_nmi from utils.py (the evaluation)"),
    "insclr": Repo("justforforfor+insclr", "https://github.com/justforforfor/insclr",
                   ("benchmark/models/xbmv2.py", "benchmark/losses/contrastive_loss.py",
                    "benchmark/utils/memory_bank.py", "tools/compute_candidate_pool.py"),
                   "XBMv2.get (memory v2 mining), ContrastiveLoss, the candidate pool (compute_candidate_pool.run)"),
    "stml": Repo("tjddus9597+STML-CVPR22", "https://github.com/tjddus9597/STML-CVPR22", ("code/loss.py",),
                 "STML_loss (relaxed contrastive + KL self-distillation)"),
    "isl": Repo("ZiweiWangTHU+ISL", "https://github.com/ZiweiWangTHU/ISL",
                ("lib/__init__.py", "lib/LinearAverage.py", "lib/alias_multinomial.py"),
                "LinearAverage.add_affinity (ISL mining)"),
    "revisitop": Repo("filipradenovic+revisitop", "https://github.com/filipradenovic/revisitop",
                      ("python/evaluate.py",), "compute_map (revisited Oxford/Paris mAP)"),
}


def find_checkouts(root: str | Path | None) -> dict[str, Path | None]:
    """Repository key -> its checkout folder, or None where it (or one of its files) is missing."""
    out: dict[str, Path | None] = {}
    for key, repo in REPOS.items():
        folder = Path(root) / repo.folder if root else None
        ok = folder is not None and all((folder / f).is_file() for f in repo.files)
        out[key] = folder if ok else None
    return out


def missing_message(root: str | Path | None, found: dict[str, Path | None]) -> str:
    """What to put where, for every repository not found."""
    lines = [f"official checkouts not found under --official-root {root or '(not given)'}:" if root else
             "no --official-root given: every block that needs official code is skipped."]
    base = Path(root) if root else Path("<official-root>")
    for key, repo in REPOS.items():
        if found.get(key) is None:
            lines.append(f"  {key}: git clone {repo.url} {base / repo.folder}   (needs {', '.join(repo.files)}; "
                         f"for {repo.what})")
    lines.append("Then: python -m benchmarks.run --suite official --official-root " + str(base))
    return "\n".join(lines)


def describe(key: str, folder: Path) -> dict:
    """Provenance of a checkout: the git commit where it is a git work tree, and the SHA-256 of each file read."""
    repo = REPOS[key]
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=20)
        commit = out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    files = {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()[:16] for f in repo.files}
    return {"repository": repo.url, "folder": repo.folder, "commit": commit, "file_sha256_16": files}


__all__ = ["REPOS", "Repo", "describe", "find_checkouts", "missing_message"]
