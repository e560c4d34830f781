"""The synthetic dataset with planted duplicates, contradictions and leaks (knee_fixtures.py) that the audit
and the split are tested on, made once per test module, and its inventory."""
import pytest

import knee_fixtures


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    return knee_fixtures.make_datasets(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def planted_inventory(datasets):
    return knee_fixtures.planted_inventory(datasets)
