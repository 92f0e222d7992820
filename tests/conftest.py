"""Shared fixtures: a private hashviz home per test, small synthetic embeddings."""

from __future__ import annotations

import os

import pytest

from tests.helpers import clustered_embeddings


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """Each test gets its own empty hashviz home (never the user's ~/.hashviz, never another test's)."""
    if "HASHVIZ_HOME_KEEP" not in os.environ:
        monkeypatch.setenv("HASHVIZ_HOME", str(tmp_path_factory.mktemp("hashviz_home")))


@pytest.fixture
def blobs():
    return clustered_embeddings()
