"""Fixtures of the Azure Blob tests (helpers live in ``blob_helpers``)."""

from __future__ import annotations

import pytest
from blob_helpers import Blobs

from support.azurite_server import AzuriteServer, BlobContainer


@pytest.fixture
def blobs(azurite: AzuriteServer, blob_container: BlobContainer) -> Blobs:
    return Blobs(azurite, blob_container)
