"""train.py's start from a file as a commit holds it (`init_from: "<commit>:<path>"`)."""
import subprocess

import pytest

from lib.git import GitError
from lib.paths import REPO_ROOT
from model import train


def test_a_committed_file_is_written_once_with_the_commits_bytes():
    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    expected = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{commit}:package.json"], check=True,
                              capture_output=True).stdout
    copy = train.committed_file(f"{commit[:10]}:package.json")
    assert copy.read_bytes() == expected and commit in str(copy)
    assert train.committed_file(f"{commit}:package.json") == copy


def test_an_unknown_commit_fails_clearly():
    with pytest.raises(GitError, match="0000000000000000000000000000000000000000"):
        train.committed_file("0000000000000000000000000000000000000000:package.json")
