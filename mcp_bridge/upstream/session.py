"""One endpoint's long-lived MCP session, entered and exited by a dedicated owner task.

The SDK's transport and session are anyio task groups: whichever task enters them must exit them,
and a cancellation that reaches them tears the session down. Request handlers therefore never
enter a session. The owner task enters it once and holds it open across invocations; handlers only
borrow the connected `mcp.Client`. A handler that times out or is cancelled cancels only its own
request; the session lives on and concurrent callers share it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import task_progress
from .catalog import ToolCatalog
from .wire import WireTrace, current_trace

_LOGGER = logging.getLogger(__name__)

CLIENT_INFO = types.Implementation(name="scheduler-bridge", version="0.1.0")
MAX_LIST_PAGES = 100
MIN_MISS_REFRESH_INTERVAL = 2.0
"""An unknown tool name re-lists at most this often, so junk names cannot flood the Scheduler."""


class ConnectFailed(Exception):
    """The session could not be opened; `trace` says whether anything reached the server."""

    def __init__(self, url: str, trace: WireTrace, cause: BaseException | None) -> None:
        super().__init__(f"could not open an MCP session with {url}")
        self.url = url
        self.trace = trace
        self.cause_name = type(cause).__name__ if cause is not None else None


class UpstreamSession:
    """The shared MCP session and tool catalog for one Scheduler endpoint."""

    def __init__(
        self,
        url: str,
        http_client: httpx2.AsyncClient,
        *,
        connect_timeout: float,
        tools_ttl: float,
        max_event_bytes: int | None = 1024 * 1024,
    ) -> None:
        self.url = url
        self._max_event_bytes = max_event_bytes
        self._http = http_client
        self._connect_timeout = connect_timeout
        self._tools_ttl = tools_ttl
        self._client: Client | None = None
        self._generation = 0
        self._connecting: asyncio.Future[Client] | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._catalog: ToolCatalog | None = None
        self._catalog_task: asyncio.Task[ToolCatalog] | None = None
        self._catalog_generation = -1
        self._last_miss_refresh = float("-inf")
        self.connections_opened = 0
        self.protocol_version: str | None = None
        self.session_id: str | None = None
        """The open session's `Mcp-Session-Id` (handshake era), where its tasks live (operations/)."""
        self.serves_tasks_extension = False
        """The server declared `io.modelcontextprotocol/tasks` (2026-07-28): it may make any call a task."""
        # Weakly: a lost client is asked about only by the calls still holding it. A strong
        # reference kept a whole closed client (~0.5 MiB) per restart alive (the soak found it).
        self._lost: weakref.WeakValueDictionary[int, Client] = weakref.WeakValueDictionary()

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def has_session_id(self) -> bool:
        return self.protocol_version is not None and self.protocol_version not in MODERN_PROTOCOL_VERSIONS

    async def client(self) -> Client:
        """The connected client, connecting first if needed. Concurrent callers share one connect."""
        client = self._client
        if client is not None:
            return client
        if self._connecting is None:
            self._spawn_owner()
        assert self._connecting is not None
        return await asyncio.shield(self._connecting)

    async def reconnect(self, stale: Client) -> Client:
        """Replace `stale` (lost session) with a new one; callers racing here share one reconnect."""
        self._lost[id(stale)] = stale
        if self._client is stale:
            await self._stop_owner()
        return await self.client()

    def was_lost(self, client: Client) -> bool:
        """Whether `client`'s session was found lost. Its calls still in flight end when it closes;
        each carried the forgotten session id, so the server refused it unrun: resending is safe."""
        return self._lost.get(id(client)) is client

    async def catalog(self, *, missing: str | None = None) -> ToolCatalog:
        """The tool listing; stale entries are served while a refresh runs in the background.

        `missing` names a tool the caller did not find: it forces one re-list (rate-limited).
        """
        client = await self.client()
        catalog = self.cached_catalog(missing=missing)
        if catalog is not None:
            return catalog
        if missing is not None:
            self._last_miss_refresh = time.monotonic()  # the first miss always re-lists
        return await asyncio.shield(self._refresh_catalog(client))

    def cached_catalog(self, *, missing: str | None = None) -> ToolCatalog | None:
        """The listing `catalog()` would answer without waiting on the Scheduler, else None."""
        client, catalog = self._client, self._catalog
        if client is None or catalog is None or self._catalog_generation != self._generation:
            return None
        if missing is None:
            if not catalog.fresh:
                self._refresh_catalog(client)
            return catalog
        recently = time.monotonic() - self._last_miss_refresh < MIN_MISS_REFRESH_INTERVAL
        if missing in catalog.tools or recently:
            return catalog
        return None

    def invalidate_catalog(self) -> None:
        if self._catalog is not None:
            self._catalog.expires_at = 0.0
            self._catalog_generation = -1

    async def aclose(self) -> None:
        await self._stop_owner()
        if self._catalog_task is not None:
            self._catalog_task.cancel()

    # -- owner task ---------------------------------------------------------------------------

    def _spawn_owner(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        stop = asyncio.Event()
        self._connecting, self._stop = ready, stop
        # A fresh context: the owner must not inherit (and write into) the first caller's trace.
        owner = asyncio.create_task(
            self._own(ready, stop), name=f"mcp-owner {self.url}", context=contextvars.Context()
        )
        self._owner = owner
        watchdog = loop.call_later(self._connect_timeout, _cancel_if_pending, ready, owner)
        ready.add_done_callback(lambda _f: watchdog.cancel())
        ready.add_done_callback(_retrieve)

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        trace = WireTrace(wants_session_id=True)
        current_trace.set(trace)
        try:
            async with Client(
                # The SDK's own 1 MiB cap per SSE event would cut answers the bridge's cap allows
                # (wire.ShieldedTransport enforces MAX_UPSTREAM_RESPONSE_BYTES per event, first).
                streamable_http_client(
                    self.url, http_client=self._http, max_sse_event_size=self._max_event_bytes
                ),
                mode="auto",
                cache=None,
                client_info=CLIENT_INFO,
                message_handler=self._on_message,
            ) as client:
                refuse_input_requests(client)
                self._generation += 1
                self.connections_opened += 1
                self.protocol_version = client.protocol_version
                self.session_id = trace.session_id
                extensions = client.server_capabilities.extensions or {}
                self.serves_tasks_extension = "io.modelcontextprotocol/tasks" in extensions
                self._client = client
                _LOGGER.info("MCP session open: %s (protocol %s)", self.url, client.protocol_version)
                ready.set_result(client)
                async with anyio.create_task_group() as tg:
                    if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                        tg.start_soon(self._follow_tool_changes, client)
                    await stop.wait()
                    tg.cancel_scope.cancel()
        except asyncio.CancelledError:
            if not ready.done():
                ready.set_exception(ConnectFailed(self.url, trace, TimeoutError()))
            else:
                raise
        except Exception as exc:
            if not ready.done():
                ready.set_exception(ConnectFailed(self.url, trace, exc))
            else:
                _LOGGER.warning("MCP session with %s ended: %s", self.url, type(exc).__name__)
        finally:
            if self._connecting is ready:
                self._client = None
                self._connecting = None
            if not ready.done():
                ready.cancel()

    async def _stop_owner(self) -> None:
        owner, stop = self._owner, self._stop
        self._client = None
        self._connecting = None
        self._owner = None
        if stop is not None:
            stop.set()
        if owner is not None and not owner.done():
            try:
                async with asyncio.timeout(2.0):
                    await asyncio.shield(owner)
            except (TimeoutError, Exception):
                owner.cancel()

    async def _on_message(self, message: object) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message, types.ToolListChangedNotification
        ):
            _LOGGER.info("Tool list changed at %s", self.url)
            self.invalidate_catalog()
        elif isinstance(message, types.ProgressNotification):
            task_progress.note(message)  # a task's progress, after its tools/call answered

    async def _follow_tool_changes(self, client: Client) -> None:
        """On 2026-07-28 sessions list_changed arrives only through `subscriptions/listen`."""
        while True:
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    async for _event in subscription:
                        _LOGGER.info("Tool list changed at %s", self.url)
                        self.invalidate_catalog()
            except Exception as exc:  # not supported, or the stream dropped: try again later
                _LOGGER.debug("Tool-change subscription at %s ended: %s", self.url, type(exc).__name__)
            await anyio.sleep(30)

    # -- catalog ------------------------------------------------------------------------------

    def _refresh_catalog(self, client: Client) -> asyncio.Task[ToolCatalog]:
        if self._catalog_task is None:
            self._catalog_task = asyncio.create_task(
                self._list_tools(client, self._generation), context=contextvars.Context()
            )
            self._catalog_task.add_done_callback(_retrieve)
        return self._catalog_task

    async def _list_tools(self, client: Client, generation: int) -> ToolCatalog:
        trace = WireTrace()
        current_trace.set(trace)
        try:
            try:
                tools, ttl_hint = await self._list_pages(client)
            except Exception:
                if not (trace.session_lost or self.was_lost(client)):
                    raise
                # Listing runs nothing: reopen the lost session (shared with any caller doing the
                # same) and list once more. A refusal on the fresh session is an ordinary failure.
                _LOGGER.info("Session lost at %s while listing tools; reconnecting once", self.url)
                client = await self.reconnect(client)
                generation = self._generation
                current_trace.set(WireTrace())
                tools, ttl_hint = await self._list_pages(client)
            catalog = ToolCatalog.from_listing(
                tools, ttl_hint_ms=ttl_hint, default_ttl=self._tools_ttl, previous=self._catalog
            )
            self._catalog = catalog
            self._catalog_generation = generation
            return catalog
        finally:
            self._catalog_task = None

    @staticmethod
    async def _list_pages(client: Client) -> tuple[list[types.Tool], int | None]:
        tools: list[types.Tool] = []
        cursor: str | None = None
        ttl_hint: int | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(page.tools)
            if cursor is None and "ttl_ms" in page.model_fields_set:
                ttl_hint = page.ttl_ms
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools, ttl_hint


INPUT_REFUSAL_GRACE_SECONDS = 0.5
"""After refusing a server's request for input, how long the call may still take to end."""


def refuse_input_requests(client: Client) -> None:
    """Answer every request a server makes of the client (elicitation, sampling, roots) with a
    prompt refusal, and mark the call it belongs to.

    The bridge declares none of these capabilities (there is no user behind an HTTP call), so the
    SDK's own callbacks stay in place and nothing is advertised. Servers may still ask, during a
    handshake-era call or inside a 2026-07-28 `InputRequiredResult`. Both arrive through
    `dispatch_input_request`, in the context of the call that caused them, so the call's
    `WireTrace` records what the server wanted, and its time limit is cut to a short grace: the
    caller learns `422 input-required` within a second even from a server that then waits forever.
    """
    session = client.session

    async def refusing(ctx: Any, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        trace = current_trace.get()
        what = _describe_input_request(request)
        if trace is not None and trace.input_requested is None:
            trace.input_requested = what
            if trace.call_scope is not None:
                loop = asyncio.get_running_loop()
                when = loop.time() + INPUT_REFUSAL_GRACE_SECONDS
                current = trace.call_scope.when()
                if current is None or current > when:
                    trace.call_scope.reschedule(when)
        _LOGGER.info("Refused a server request for input (%s)", request.method)
        return types.ErrorData(
            code=types.INVALID_REQUEST,
            message=f"{CLIENT_INFO.name} cannot answer {request.method}: it bridges HTTP and has no user",
        )

    # Replaces the SDK's dispatch, which would only reach its default refusals, and say less.
    session.dispatch_input_request = refusing  # type: ignore[method-assign]


def _describe_input_request(request: types.InputRequest) -> str:
    if isinstance(request, types.ElicitRequest):
        message = getattr(request.params, "message", None) or "the server asked for input"
        return str(message)[:300]
    if isinstance(request, types.CreateMessageRequest):
        return "the server asked the client for an LLM completion (sampling)"
    return "the server asked for the client's roots"


def _cancel_if_pending(ready: asyncio.Future[Client], owner: asyncio.Task[None]) -> None:
    if not ready.done():
        owner.cancel()


def _retrieve(future: asyncio.Future[object]) -> None:
    # Waiters may all have given up; reading the outcome keeps asyncio from logging it as lost.
    if not future.cancelled():
        future.exception()
