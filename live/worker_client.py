"""Talking to the worker's HTTP server: one user's state, and its metrics text."""

from __future__ import annotations

import logging
from urllib.parse import quote

import aiohttp

log = logging.getLogger(__name__)


class WorkerUnreachable(Exception):
    """The worker did not answer (not running, or too slow)."""


class WorkerClient:
    def __init__(self, base_url: str, timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def user(self, user_id: str) -> tuple[int, bytes]:
        """(status, JSON body) of the worker's GET /users/{user_id}, passed through as is."""
        return await self._get(f"/users/{quote(user_id, safe='')}")

    async def metrics(self) -> str:
        status, body = await self._get("/metrics")
        if status != 200:
            raise WorkerUnreachable(f"/metrics answered {status}")
        return body.decode("utf-8", errors="replace")

    async def _get(self, path: str) -> tuple[int, bytes]:
        assert self._session is not None, "start() first"
        try:
            async with self._session.get(self.base_url + path) as resp:
                return resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WorkerUnreachable(f"{type(exc).__name__}: {exc}") from None
