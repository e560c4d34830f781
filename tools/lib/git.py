"""Files as a commit holds them: earlier releases' models and cards, pinned cores."""
from __future__ import annotations

import subprocess

from lib.paths import REPO_ROOT


class GitError(RuntimeError):
    pass


def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def file_at_commit(commit: str, path: str) -> bytes:
    """The bytes of `path` (relative to the repository root) as `commit` holds it."""
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{commit}:{path}"], capture_output=True)
    if done.returncode != 0:
        raise GitError(f"{commit}:{path} cannot be read ({done.stderr.decode().strip()})")
    return done.stdout
