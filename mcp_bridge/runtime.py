"""The one `SchedulerBridge` per worker process: created lazily, shared by every function.

The Functions Python worker runs every async invocation on one event loop, so a single pooled
client with open MCP sessions and a warm token serves them all. Creating it on first use (not at
import) keeps indexing fast and keeps a bad setting from stopping the host from indexing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any, Protocol

import httpx2

from . import process_memory, redaction
from .azure_services import settings_loader
from .azure_services.http_client import USER_AGENT, azure_http_client
from .azure_services.scheduler_secrets import SchedulerSecrets, load_scheduler_secrets
from .callers import audit
from .calls.bridge import SchedulerBridge
from .config.settings import BridgeSettings
from .config.upstreams import DEFAULT_UPSTREAM
from .problems import UnknownServer
from .telemetry import configure_telemetry
from .upstream.addresses import guard_connections
from .upstream.auth import BearerTokenAuth, HeaderKeyAuth
from .upstream.keepalive import KeepAliveTuner
from .upstream.tokens import TokenProvider
from .upstream.wire import ShieldedTransport

_LOGGER = logging.getLogger(__name__)

_bridge: SchedulerBridge | None = None  # the default upstream's: the hot path reads one global
_bridges: dict[str, SchedulerBridge] = {}
_creating: dict[str, asyncio.Lock] = {}
_credential: tuple[Any, bool] | None = None


async def get_bridge(upstream: str | None = None) -> SchedulerBridge:
    """The bridge to `upstream` (default: the Scheduler), built on first use: one per upstream, each
    with its own session, pool, retry budget, health board and token provider, so one upstream's
    trouble never queues another's calls. Raises `UnknownServer` for a name not in MCP_UPSTREAMS,
    `SettingsError` for bad settings, and `KeyVaultUnavailable` while Key Vault cannot supply what
    the settings point at."""
    if upstream is None:
        if _bridge is not None:
            return _bridge
        upstream = DEFAULT_UPSTREAM
    else:
        bridge = _bridges.get(upstream)
        if bridge is not None:
            return bridge
    redaction.install()
    settings = await ensure_settings()
    own = settings.upstreams.get(upstream)
    if own is None:
        known = list(settings.upstreams)
        raise UnknownServer(f"no server is named {upstream!r}; known: {', '.join(known)}", servers=known)
    connection_string = settings.applicationinsights_connection_string
    # Once per process; a no-op after the first call.
    configure_telemetry(connection_string=connection_string.get_secret_value() if connection_string else None)
    process_memory.start_trimming(settings.memory_trim_seconds)  # once per process
    lock = _creating.setdefault(upstream, asyncio.Lock())
    async with lock:
        if upstream not in _bridges:
            secrets = await load_scheduler_secrets(own, lambda: shared_credential(own)[0])
            _install(build_bridge(own, secrets=secrets, credential_source=shared_credential))
    return _bridges[upstream]


async def all_bridges() -> dict[str, SchedulerBridge | Exception]:
    """Every configured upstream's bridge, default first, each built on first use (concurrently),
    or why it cannot be built yet (`KeyVaultUnavailable` for its credentials): one upstream's
    outage must not hide the others from the probe timer and `/api/health`."""
    settings = await ensure_settings()
    names = list(settings.upstreams)
    built = await asyncio.gather(*(get_bridge(name) for name in names), return_exceptions=True)
    for outcome in built:
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome
    return dict(zip(names, built, strict=True))  # type: ignore[arg-type]


async def ensure_settings() -> BridgeSettings:
    """The settings, Key Vault references resolved through the process's one credential.

    Raises `SettingsError` (500 `misconfigured`) or `KeyVaultUnavailable` (503)."""
    return await settings_loader.ensure_settings(shared_credential)


def _install(bridge: SchedulerBridge) -> None:
    global _bridge
    name = bridge.settings.upstream_name
    _bridges[name] = bridge
    bridge.upstreams = _bridges  # the live registry: the shared snapshot holds every upstream
    if name == DEFAULT_UPSTREAM:
        _bridge = bridge


async def reset_bridge() -> None:
    """Close and forget every upstream's bridge (tests; hosts that change settings in place)."""
    global _bridge, _credential
    audit.flush()  # the lines of calls that ended in this loop turn
    bridges = list(_bridges.values())
    _bridge = None
    _bridges.clear()
    _creating.clear()
    for bridge in bridges:
        await bridge.aclose()
    await process_memory.stop_trimming()
    credential, _credential = _credential, None
    if credential is not None:
        await credential[0].close()  # closing twice (the token provider did too) is harmless


def scheduler_http_client(settings: BridgeSettings, auth: httpx2.Auth | None) -> httpx2.AsyncClient:
    """The pooled client for Scheduler traffic: explicit limits and timeouts, no redirects, every
    connection checked against the endpoint address policy, answers capped in size."""
    deadline = settings.scheduler_timeout_seconds
    ca_file = settings.scheduler_ca_file
    # Few idle connections: the pool probes every idle socket on each request, twice, at 7 µs or more
    # each; after a burst of 100 calls, 100 idle connections added over 1 ms to every later call.
    pool = httpx2.AsyncHTTPTransport(
        # Idle connections are kept as long as the server keeps them: a `Keep-Alive: timeout=` it
        # sends wins (`KeepAliveTuner`), else the setting. Dropping them before the server does keeps
        # the keep-alive race away; `upstream.keepalive` says what happens if it is lost anyway.
        limits=httpx2.Limits(
            max_connections=256,
            max_keepalive_connections=20,
            keepalive_expiry=settings.scheduler_idle_connection_seconds,
        ),
        retries=0,
        **({"verify": ssl.create_default_context(cafile=settings.scheduler_ca_file)} if ca_file else {}),
    )
    guard_connections(pool, allow_private=settings.scheduler_allow_private_endpoints)
    transport = ShieldedTransport(
        pool, max_response_bytes=settings.max_upstream_response_bytes, keep_alive=KeepAliveTuner(pool)
    )
    return httpx2.AsyncClient(
        auth=auth,
        transport=transport,
        timeout=httpx2.Timeout(
            connect=min(5.0, deadline), read=deadline + 5, write=10.0, pool=min(5.0, deadline)
        ),
        follow_redirects=False,
        headers={"user-agent": USER_AGENT},
    )


class _IdentitySettings(Protocol):
    @property
    def azure_client_id(self) -> str | None: ...


def shared_credential(settings: _IdentitySettings) -> tuple[Any, bool]:
    """The process's one Azure credential (`build_credential`), built on first use: the Scheduler's
    tokens, Key Vault and storage share it, and so its token cache. `reset_bridge` closes it."""
    global _credential
    if _credential is None:
        _credential = build_credential(settings)
    return _credential


def build_credential(settings: _IdentitySettings) -> tuple[object, bool]:
    """The aio credential for the token scope, and whether it is a managed identity.

    In Azure (`IDENTITY_ENDPOINT` set by App Service / Functions) that is `ManagedIdentityCredential`,
    user-assigned when `AZURE_CLIENT_ID` is set. Elsewhere `DefaultAzureCredential` lets a developer
    use their Azure CLI login.
    """
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    from .azure_services.transport import Httpx2Transport

    transport = Httpx2Transport(azure_http_client(), owns_client=True)
    # Few, quick retries: a request waits on this, and a dead endpoint must turn into a fast 503.
    retry = {"retry_total": 2, "retry_backoff_factor": 0.2, "retry_backoff_max": 1}
    if os.environ.get("IDENTITY_ENDPOINT") or os.environ.get("MSI_ENDPOINT"):
        return ManagedIdentityCredential(
            client_id=settings.azure_client_id, transport=transport, **retry
        ), True
    return (
        DefaultAzureCredential(
            managed_identity_client_id=settings.azure_client_id,
            exclude_interactive_browser_credential=True,
            transport=transport,
            **retry,
        ),
        False,
    )


def build_bridge(
    settings: BridgeSettings,
    *,
    secrets: SchedulerSecrets | None = None,
    credential_source: Callable[[BridgeSettings], tuple[Any, bool]] = build_credential,
) -> SchedulerBridge:
    """A bridge; `secrets` supplies api_key credentials read from Key Vault (`load_scheduler_secrets`)."""
    # httpx2 logs every request URL at INFO; a SAS URL's signature must not reach the logs.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    redaction.install(
        header_names=[settings.scheduler_api_key_header],
        secrets=[
            settings.scheduler_api_key.get_secret_value() if settings.scheduler_api_key else None,
            settings.storage_connection_string,
            os.environ.get("IDENTITY_HEADER"),
            os.environ.get("MSI_SECRET"),
        ],
    )
    tokens: TokenProvider | None = None
    auth: httpx2.Auth | None = None
    credential: object | None = None
    if settings.scheduler_auth == "managed_identity":
        assert settings.scheduler_token_scope is not None
        credential, is_managed_identity = credential_source(settings)
        tokens = TokenProvider(
            credential,  # type: ignore[arg-type]
            settings.scheduler_token_scope,
            bypass_credential_cache=is_managed_identity,
        )
        auth = BearerTokenAuth(tokens)
    elif settings.scheduler_auth == "api_key":
        client_id = settings.scheduler_client_id or ""
        api_key = settings.scheduler_api_key

        def credentials() -> tuple[str, str]:
            return client_id, api_key.get_secret_value() if api_key is not None else ""

        auth = HeaderKeyAuth(
            client_id_header=settings.scheduler_client_id_header,
            api_key_header=settings.scheduler_api_key_header,
            credentials=credentials if secrets is None else secrets.credentials,
            on_unauthorized=None if secrets is None else secrets.refresh_after_unauthorized,
        )
    _LOGGER.info(
        "Upstream %s: %d endpoint(s), auth=%s",
        settings.upstream_name,
        len(settings.scheduler_endpoints),
        settings.scheduler_auth,
    )
    bridge = SchedulerBridge(settings, scheduler_http_client(settings, auth), tokens=tokens, secrets=secrets)
    if settings.has_shared_storage:
        from .failover.snapshot import BlobSnapshotStore

        if settings.storage_connection_string is None and credential is None:
            credential, _ = credential_source(settings)
        bridge.share_health_through(BlobSnapshotStore(settings, credential=credential))
    return bridge


async def warm_up() -> dict[str, str]:
    """Pay before traffic arrives what the first request would: the deferred imports, the settings,
    the credential and a token, then for every configured endpoint of every upstream an MCP session
    and its tool listing, and a first probe round. Returns each endpoint's outcome ("ready" or why not); never
    raises for an endpoint, since an instance must still start when a region is down (the call
    path fails over)."""
    # What the request handlers import on first use (functions/tool_handlers.py; the warm-up
    # function imports that module itself).
    from . import models  # noqa: F401
    from .callers import access, audit  # noqa: F401
    from .calls import outcomes  # noqa: F401

    await get_bridge()  # the default's failure (bad settings, Key Vault down) is the warm-up's
    built = await all_bridges()
    warmed = await asyncio.gather(
        *(_warm(bridge) for bridge in built.values() if not isinstance(bridge, Exception))
    )
    return {url: state for states in warmed for url, state in states.items()}


async def _warm(bridge: SchedulerBridge) -> dict[str, str]:
    """One upstream's warm-up: its token, each endpoint's session and listing, a probe round."""
    if bridge.tokens is not None:
        await bridge.tokens.get_token()
    limit = bridge.settings.scheduler_timeout_seconds

    async def ready(session: Any) -> str:
        try:
            async with asyncio.timeout(limit):
                await session.client()
                await session.catalog()
        except Exception as exc:  # reported, not raised: see warm_up
            return f"not ready ({type(exc).__name__})"
        return "ready"

    states = await asyncio.gather(*(ready(session) for session in bridge.endpoints))
    # The first probe round too, which the first request would otherwise start beside itself.
    from .failover.probe import probe_all

    try:
        async with asyncio.timeout(limit):
            await probe_all(bridge, publish=False)
    except Exception as exc:  # as above: health stays unknown, and a request starts a round
        _LOGGER.warning("Warm-up probe round failed: %s", type(exc).__name__)
    return {session.url: state for session, state in zip(bridge.endpoints, states, strict=True)}
