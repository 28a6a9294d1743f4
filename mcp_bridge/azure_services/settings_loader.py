"""Settings with their Key Vault references resolved: the async first step of every request.

`load_settings()` is synchronous and cannot read a vault, so an app setting the platform left as
`@Microsoft.KeyVault(...)` is resolved here, on first use, never at import: one task reads every
pending reference (concurrent requests wait on the same task), the values are kept in memory only
(`config.loader.use_resolved_references`), and settings are parsed again with them in place.

A reference that cannot be resolved fails the request naming the setting, never its value:
`misconfigured` (500) when configuration decides it (no such secret, access denied, malformed),
`keyvault-unavailable` (503) when waiting may fix it. A failure is remembered for a few seconds
so a broken vault is not asked again by every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config.keyvault_settings import VaultAccess
from ..config.loader import SettingsError, UnresolvedReferences, load_settings, use_resolved_references
from ..config.settings import BridgeSettings
from .keyvault import KeyVaultUnavailable, VaultFailure, VaultReader

_LOGGER = logging.getLogger(__name__)

FAILURE_MEMORY_SECONDS = 5.0

_inflight: asyncio.Task[BridgeSettings] | None = None
_failure: tuple[object, float, Exception] | None = None


async def ensure_settings(credential_source: Callable[[VaultAccess], tuple[Any, bool]]) -> BridgeSettings:
    """The settings, resolving Key Vault references first if any are pending.

    `credential_source` gives the process's one Azure credential (the composition root's
    `runtime.shared_credential`); it is called only when a vault is really read.
    Raises `SettingsError` (500 `misconfigured`) or `KeyVaultUnavailable` (503).
    """
    global _inflight
    try:
        return load_settings()
    except UnresolvedReferences as unresolved:
        pending = unresolved
    key = (frozenset((name, text) for name, (text, _) in pending.pending.items()), pending.access)
    if _failure is not None and _failure[0] == key and time.monotonic() < _failure[1]:
        raise _failure[2]
    if _inflight is None:
        _inflight = asyncio.create_task(
            _resolve(pending, key, credential_source), name="scheduler-bridge-keyvault-references"
        )
        _inflight.add_done_callback(_forget_task)
    # Shielded: one caller giving up must not cancel the resolution the others wait on.
    return await asyncio.shield(_inflight)


async def _resolve(
    unresolved: UnresolvedReferences,
    key: object,
    credential_source: Callable[[VaultAccess], tuple[Any, bool]],
) -> BridgeSettings:
    global _failure
    access = unresolved.access
    credential, _ = credential_source(access)
    reader = VaultReader(credential, ca_file=access.keyvault_ca_file)
    names = list(unresolved.pending)
    try:
        outcomes = await asyncio.gather(
            *(
                reader.read(
                    reference.resolve_vault_url(access.keyvault_url_template),
                    reference.secret_name,
                    reference.version,
                )
                for _, reference in unresolved.pending.values()
            ),
            return_exceptions=True,
        )
    finally:
        await reader.aclose()
    resolved: dict[str, tuple[str, str]] = {}
    misconfigured: list[tuple[str, str]] = []
    unavailable: list[dict[str, Any]] = []
    for name, outcome in zip(names, outcomes, strict=True):
        if isinstance(outcome, VaultFailure):
            message = f"its Key Vault reference could not be resolved: {outcome.detail}"
            if outcome.transient:
                [(shown, message)] = unresolved.attribute([(name, message)])
                unavailable.append({"name": shown, "problem": message})
            else:
                misconfigured.append((name, message))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            resolved[name] = (unresolved.pending[name][0], outcome)
    error: Exception | None = None
    if misconfigured:
        error = SettingsError(unresolved.attribute(misconfigured))
    elif unavailable:
        error = KeyVaultUnavailable(
            "Key Vault did not answer for " + ", ".join(entry["name"] for entry in unavailable),
            settings=unavailable,
        )
    if error is not None:
        _LOGGER.warning("Key Vault references not resolved: %s", error)
        _failure = (key, time.monotonic() + FAILURE_MEMORY_SECONDS, error)
        raise error
    _failure = None
    _LOGGER.info("Resolved Key Vault references for %s", ", ".join(sorted(resolved)))
    use_resolved_references(resolved)
    return load_settings()


def _forget_task(task: asyncio.Task[BridgeSettings]) -> None:
    global _inflight
    if _inflight is task:
        _inflight = None
    if not task.cancelled():
        task.exception()  # retrieved: every waiter already got it
