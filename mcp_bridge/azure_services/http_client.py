"""The httpx2 client under each Azure SDK client: identity, Key Vault and storage.

Every SDK client gets a pool of its own (`Httpx2Transport(azure_http_client(), owns_client=True)`),
closed with it; the limits and timeouts live here, once, instead of beside each SDK client.
"""

from __future__ import annotations

import httpx2

USER_AGENT = "scheduler-bridge/0.1"
"""The bridge's user agent on every request it makes, Azure's and the Scheduler's alike."""


def azure_http_client() -> httpx2.AsyncClient:
    """The pooled client for Azure SDK traffic (identity, Key Vault, storage)."""
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0),
        limits=httpx2.Limits(max_connections=32, max_keepalive_connections=8, keepalive_expiry=60),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )
