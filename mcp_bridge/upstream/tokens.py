"""The one place token caching and refresh policy lives.

Policy (after azure-identity's own get_token_mixin, tightened for a hot path):
- serve the cached token until it is close to expiry; never block a request on a refresh that can
  happen in the background;
- refresh ahead of `refresh_on` (or of expiry) by a random jitter, so a fleet of instances does not
  hit the identity endpoint in the same second;
- single-flight: any number of concurrent callers cause exactly one identity request;
- if a refresh fails while the cached token is still valid, keep serving it and try again later;
- with no valid token and a failing identity endpoint, fail fast (`IdentityUnavailable`, 503 with
  `Retry-After`) instead of making every request wait on a dead endpoint.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions

from .. import telemetry
from ..problems import IdentityUnavailable

_LOGGER = logging.getLogger(__name__)

EXPIRY_SAFETY_SECONDS = 10.0
"""A token this close to expiry (or a tenth of its life, if shorter) is treated as expired."""
MAX_REFRESH_AHEAD_SECONDS = 300.0
RETRY_AFTER_FAILURE_SECONDS = 5.0
ACQUIRE_TIMEOUT_SECONDS = 10.0


class AsyncTokenInfoCredential(Protocol):
    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class TokenState:
    """What `/api/health` may say about the token: never the value."""

    has_token: bool
    expires_in_seconds: float | None
    refresh_in_seconds: float | None
    last_error: str | None
    refreshes: int


class TokenProvider:
    """Caches one bearer token for one scope and refreshes it ahead of time, single-flight."""

    def __init__(
        self,
        credential: AsyncTokenInfoCredential,
        scope: str,
        *,
        bypass_credential_cache: bool = False,
        clock: Callable[[], float] = time.time,
        acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
    ) -> None:
        self._credential = credential
        self._scope = scope
        # azure-identity's managed identity caches too and would hand back the token we are trying
        # to replace until it expires. An explicit (empty) claims value skips that cache; the
        # managed-identity client drops claims from the wire request.
        self._fresh_options: TokenRequestOptions | None = {"claims": ""} if bypass_credential_cache else None
        self._clock = clock
        self._acquire_timeout = acquire_timeout
        self._token: AccessTokenInfo | None = None
        self._refresh_at = 0.0
        self._usable_until = 0.0
        self._next_attempt_at = 0.0
        self._inflight: asyncio.Task[AccessTokenInfo] | None = None
        self._last_error: str | None = None
        self.refreshes = 0

    async def get_token(self) -> str:
        """A valid token, from cache when possible. Raises `IdentityUnavailable`."""
        now = self._clock()
        token = self._token
        if token is not None and now < self._usable_until:
            if now >= self._refresh_at and now >= self._next_attempt_at:
                self._start_refresh()
            return token.token
        if self._inflight is None and now < self._next_attempt_at:
            raise IdentityUnavailable(
                "the managed identity endpoint is failing and no valid token is cached",
                retry_after=self._next_attempt_at - now,
            )
        return (await self._await_refresh()).token

    async def force_refresh(self, rejected_token: str | None) -> str:
        """A different token than `rejected_token` (the one the Scheduler just answered 401 to)."""
        current = self._token
        if current is not None and rejected_token is not None and current.token != rejected_token:
            return current.token
        self._refresh_at = 0.0
        self._next_attempt_at = 0.0
        return (await self._await_refresh()).token

    def state(self) -> TokenState:
        now = self._clock()
        token = self._token
        return TokenState(
            has_token=token is not None,
            expires_in_seconds=None if token is None else round(token.expires_on - now, 1),
            refresh_in_seconds=None if token is None else round(max(0.0, self._refresh_at - now), 1),
            last_error=self._last_error,
            refreshes=self.refreshes,
        )

    async def close(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        await self._credential.close()

    def _start_refresh(self) -> asyncio.Task[AccessTokenInfo]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._refresh(), name="scheduler-bridge-token-refresh")
            self._inflight.add_done_callback(_consume_exception)
        return self._inflight

    async def _await_refresh(self) -> AccessTokenInfo:
        # Shielded: a caller that gives up (deadline, client gone) must not cancel the refresh that
        # everybody else is waiting on.
        return await asyncio.shield(self._start_refresh())

    async def _refresh(self) -> AccessTokenInfo:
        started = self._clock()
        try:
            with telemetry.token_refresh():
                async with asyncio.timeout(self._acquire_timeout):
                    token = await self._credential.get_token_info(self._scope, options=self._fresh_options)
        except Exception as exc:
            self._last_error = type(exc).__name__
            self._next_attempt_at = self._clock() + RETRY_AFTER_FAILURE_SECONDS
            still_valid = self._token is not None and self._clock() < self._token.expires_on
            _LOGGER.warning(
                "Token refresh failed (%s); %s",
                type(exc).__name__,
                "serving the cached token" if still_valid else "no valid token is cached",
            )
            raise IdentityUnavailable(
                "the managed identity endpoint did not issue a token",
                retry_after=RETRY_AFTER_FAILURE_SECONDS,
            ) from None
        finally:
            self._inflight = None
        self._token = token
        self._last_error = None
        self.refreshes += 1
        self._refresh_at = self._plan_refresh(token, started)
        lifetime = max(0.0, token.expires_on - started)
        self._usable_until = token.expires_on - min(EXPIRY_SAFETY_SECONDS, lifetime / 10)
        _LOGGER.info("Token refreshed; expires in %.0f s", token.expires_on - self._clock())
        return token

    def _plan_refresh(self, token: AccessTokenInfo, issued_at: float) -> float:
        lifetime = max(0.0, token.expires_on - issued_at)
        ahead = min(MAX_REFRESH_AHEAD_SECONDS, lifetime / 2)
        target = token.expires_on - ahead
        if token.refresh_on is not None:
            target = min(target, float(token.refresh_on))
        # Jitter earlier, never later, by up to a fifth of the margin we keep.
        return target - random.uniform(0, ahead / 5)


def _consume_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
