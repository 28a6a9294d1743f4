"""The Scheduler's client id and API key when they live in Key Vault (`KEYVAULT_URI`).

The original integration guide kept `SCHEDULER-CLIENT-ID` and `SCHEDULER-API-KEY` in a vault and
copied them into environment variables at start-up. Here they are read when the bridge is created
(awaited, never at import), kept in memory only, and handed to `HeaderKeyAuth` per request. The
vault fills only what app settings leave unset, so a non-secret client id can stay an app setting.

A key rotated in the vault shows up as a 401 from the Scheduler. Then the vault-held values are
read again, by one task however many requests hit the 401, and at most once a minute (a wrong key
must not turn every request into a vault read); the request is resent once if they changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config.loader import SettingsError
from ..config.settings import BridgeSettings
from .keyvault import KeyVaultUnavailable, VaultFailure, VaultReader

_LOGGER = logging.getLogger(__name__)

REREAD_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class VaultValue:
    """One of the two values, read from the vault: which secret, and which setting names it."""

    secret_name: str
    name_setting: str  # KEYVAULT_CLIENT_ID_SECRET or KEYVAULT_API_KEY_SECRET


class _ReadFailed(Exception):
    """Reading one value failed; which one matters for the message (`source.name_setting`)."""

    def __init__(self, source: VaultValue, failure: VaultFailure) -> None:
        super().__init__(failure.detail)
        self.source = source
        self.failure = failure


class SchedulerSecrets:
    """Client id and API key, each either fixed (an app setting) or read from one vault."""

    def __init__(
        self,
        reader: VaultReader,
        vault_url: str,
        *,
        client_id: str | VaultValue,
        api_key: str | VaultValue,
        upstream: str = "scheduler",
        reread_interval: float = REREAD_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self.upstream = upstream
        self._vault_url = vault_url
        self._sources = {"client_id": client_id, "api_key": api_key}
        self._values = {field: source for field, source in self._sources.items() if isinstance(source, str)}
        self._reread_interval = reread_interval
        self._clock = clock
        self._last_reread: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self.rereads = 0

    @property
    def vault_reads(self) -> int:
        return self._reader.reads

    async def load(self) -> None:
        """Read the vault-held values. Raises `SettingsError` (500) or `KeyVaultUnavailable` (503)."""
        try:
            self._values.update(await self._read_all())
        except _ReadFailed as failed:
            message = f"the secret it names could not be read from KEYVAULT_URI: {failed.failure.detail}"
            if failed.failure.transient:
                raise KeyVaultUnavailable(
                    f"Key Vault did not answer for the {self.upstream} upstream's credentials",
                    settings=[{"name": failed.source.name_setting, "problem": message}],
                ) from None
            raise SettingsError([(failed.source.name_setting, message)]) from None

    def credentials(self) -> tuple[str, str]:
        """What `HeaderKeyAuth` sends on every request: the latest values."""
        return self._values["client_id"], self._values["api_key"]

    async def refresh_after_unauthorized(self) -> bool:
        """After a 401: re-read the vault (at most once per interval); True if anything changed."""
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        now = self._clock()
        if self._last_reread is not None and now - self._last_reread < self._reread_interval:
            _LOGGER.info(
                "Scheduler answered 401; not re-reading Key Vault (last re-read %.0f s ago)",
                now - self._last_reread,
            )
            return False
        self._last_reread = now
        task = asyncio.create_task(self._reread(), name="scheduler-bridge-secrets-reread")
        self._inflight = task
        task.add_done_callback(self._forget)
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        await self._reader.aclose()

    async def _reread(self) -> bool:
        self.rereads += 1
        try:
            fresh = await self._read_all()
        except _ReadFailed as failed:
            _LOGGER.warning("Scheduler answered 401; re-reading Key Vault failed: %s", failed.failure)
            return False
        changed = [field for field, value in fresh.items() if self._values.get(field) != value]
        self._values.update(fresh)
        _LOGGER.info(
            "Scheduler answered 401; re-read Key Vault: %s",
            f"{' and '.join(changed)} changed, resending once" if changed else "nothing changed",
        )
        return bool(changed)

    async def _read_all(self) -> dict[str, str]:
        held = {field: source for field, source in self._sources.items() if isinstance(source, VaultValue)}
        outcomes = await asyncio.gather(
            *(self._reader.read(self._vault_url, source.secret_name) for source in held.values()),
            return_exceptions=True,
        )
        values: dict[str, str] = {}
        for (field, source), outcome in zip(held.items(), outcomes, strict=True):
            if isinstance(outcome, VaultFailure):
                raise _ReadFailed(source, outcome)
            if isinstance(outcome, BaseException):
                raise outcome
            values[field] = outcome
        return values

    def _forget(self, task: asyncio.Task[Any]) -> None:
        if self._inflight is task:
            self._inflight = None
        if not task.cancelled():
            task.exception()


async def load_scheduler_secrets(
    settings: BridgeSettings, credential: Callable[[], Any]
) -> SchedulerSecrets | None:
    """The loaded holder when `api_key` mode takes anything from `KEYVAULT_URI`; else None.

    `credential` returns the shared credential; it is called only when the vault is really read.
    """
    vault_url = settings.secrets_vault_url
    if settings.keyvault_uri is not None and vault_url is None:
        _LOGGER.warning("USE_AZURE_SERVICES=false: KEYVAULT_URI is not read")
        return None
    if vault_url is None:
        return None
    if settings.scheduler_auth != "api_key":
        auth = settings.setting_name("scheduler_auth")
        _LOGGER.info("KEYVAULT_URI is set, but %s=%s needs no API key", auth, settings.scheduler_auth)
        return None
    # Named for the upstream they belong to: ROOMS_KEYVAULT_API_KEY_SECRET, not the Scheduler's.
    client_id: str | VaultValue = settings.scheduler_client_id or VaultValue(
        settings.keyvault_client_id_secret, settings.setting_name("keyvault_client_id_secret")
    )
    api_key: str | VaultValue = (
        settings.scheduler_api_key.get_secret_value()
        if settings.scheduler_api_key is not None and settings.scheduler_api_key.get_secret_value()
        else VaultValue(settings.keyvault_api_key_secret, settings.setting_name("keyvault_api_key_secret"))
    )
    if isinstance(client_id, str) and isinstance(api_key, str):
        _LOGGER.info("KEYVAULT_URI is set, but both Scheduler credentials are app settings; not reading it")
        return None
    holder = SchedulerSecrets(
        VaultReader(credential(), ca_file=settings.keyvault_ca_file),
        vault_url,
        client_id=client_id,
        api_key=api_key,
        upstream=settings.upstream_name,
    )
    try:
        await holder.load()
    except BaseException:
        await holder.aclose()
        raise
    return holder
