"""The blob service client for the `AzureWebJobsStorage` account, one way for every user of it.

The health snapshot and the idempotency store both keep small blobs there: a connection string
locally (Azurite), the managed identity in Azure (`AzureWebJobsStorage__blobServiceUri`). Each
client gets its own pool through the httpx2 transport, and one quick retry: storage's default first
backoff (15 s) would hold a request past any deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobServiceClient

    from ..config.settings import BridgeSettings


def blob_service(settings: BridgeSettings, *, credential: Any = None) -> BlobServiceClient:
    """A blob service client for the settings' storage account (imported on first use)."""
    from azure.storage.blob.aio import BlobServiceClient

    from .http_client import azure_http_client
    from .transport import Httpx2Transport

    options: dict[str, Any] = {
        "transport": Httpx2Transport(azure_http_client(), owns_client=True),
        "retry_total": 1,
        "initial_backoff": 0.2,
        "increment_base": 0,
        "random_jitter_range": 0.1,
    }
    if settings.storage_connection_string:
        return BlobServiceClient.from_connection_string(settings.storage_connection_string, **options)
    assert settings.storage_blob_url is not None
    return BlobServiceClient(settings.storage_blob_url, credential=credential, **options)
