"""The HTTP backend: plait requests against an OpenAI-compatible server (``vllm serve`` and others).

Requests of a batch are sent concurrently over one pooled ``httpx`` client,
so the server can batch them. Connection failures, 5xx and 429 answers are
retried a bounded number of times with exponential backoff; a server that
stays down gives a :class:`~plait.errors.BackendError` naming the URL. Each
HTTP request has a timeout, so a stuck server never hangs a run.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio

from plait.errors import BackendError
from plait.executors._base import Backend, Completion, Request
from plait.executors._constraints import check_request_constraint
from plait.executors._openai_wire import StreamAccumulator, endpoint, parse_response, request_body

__all__ = ["OpenAIBackend"]

log = logging.getLogger("plait.openai")

_RETRY_STATUS = {429, 500, 502, 503, 504}


class OpenAIBackend(Backend):
    """Serve requests from an OpenAI-compatible HTTP server.

    ``base_url`` is the server root or its ``/v1`` URL. ``model`` defaults to
    the first model the server lists. ``timeout`` bounds each HTTP request
    (seconds); ``max_retries`` and ``backoff`` bound the retrying of
    connection errors, 5xx and 429 (waits of ``backoff * 2**attempt``).
    ``stream=True`` streams responses (server-sent events) and assembles them.
    """

    name = "openai"
    supports_structured_output = True
    supports_logprobs = True
    supports_streaming = True

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        stream: bool = False,
        max_connections: int = 64,
    ):
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        self.model = model
        self._declared_model = model  # `model` may be discovered later; the identity must not change
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.stream_responses = stream  # (not `self.stream`: that is the streaming method)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._limits = max_connections
        self._client: Any = None

    @property
    def identity(self) -> str:
        """The declared model; without ``model=``, whatever this server lists first (named by its URL)."""
        return self._declared_model or f"first model listed by {self.base_url}"

    async def start(self) -> None:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=self._limits, max_keepalive_connections=self._limits),
            )
        if self.model is None:
            models = await self._send("GET", "/models", None)
            try:
                self.model = models["data"][0]["id"]
            except (KeyError, IndexError, TypeError):
                raise BackendError(f"{self.base_url}/models lists no model; pass model=...") from None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def generate(self, requests: list[Request]) -> list[Completion]:
        for i, request in enumerate(requests):
            check_request_constraint(request, i)
        await self.start()
        results: list[Completion | None] = [None] * len(requests)

        async def serve(i: int, request: Request) -> None:
            results[i] = await self._generate_one(request)

        if len(requests) == 1:
            await serve(0, requests[0])
            return [r for r in results if r is not None]
        try:
            async with anyio.create_task_group() as tg:
                for i, request in enumerate(requests):
                    tg.start_soon(serve, i, request)
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        return [r for r in results if r is not None]

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Serve one request as a server-sent-event stream, handing the first sample's text to ``on_text``."""
        check_request_constraint(request)
        await self.start()
        body = request_body(request, self.model or "", stream=True)
        return await self._send("POST", endpoint(request), body, stream=True, on_text=on_text)

    async def _generate_one(self, request: Request) -> Completion:
        body = request_body(request, self.model or "", stream=self.stream_responses)
        if not self.stream_responses:
            return parse_response(await self._send("POST", endpoint(request), body), self.model or "")
        return await self._send("POST", endpoint(request), body, stream=True)

    async def _send(
        self, method: str, path: str, body: dict | None, *, stream: bool = False, on_text: Callable | None = None
    ) -> Any:
        """One HTTP exchange with bounded retries; JSON (or an assembled stream) back."""
        import httpx

        url = f"{self.base_url}{path}"
        last = ""
        delivered = False  # a stream whose text already reached on_text cannot be retried from scratch

        def tracking(chunk: str) -> Any:
            nonlocal delivered
            delivered = True
            return on_text(chunk)

        for attempt in range(self.max_retries + 1):
            if attempt:
                await anyio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                if stream:
                    return await self._stream(path, body, url, tracking if on_text else None)
                response = await self._client.request(method, path, json=body, timeout=self.timeout)
            except _Retryable as exc:
                last = str(exc)
                continue
            except (httpx.NetworkError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # refused, reset or dropped (a server restarting): the request is sent again
                last = f"{type(exc).__name__}: {exc or 'connection failed'}"
                if delivered:
                    raise BackendError(f"{url} dropped the connection mid-stream: {last}") from exc
                log.info("retrying %s after %s (attempt %d)", url, last, attempt + 1)
                continue
            except httpx.TimeoutException:
                raise BackendError(f"{url} did not answer within the timeout of {self.timeout:g}s") from None
            except httpx.HTTPError as exc:
                raise BackendError(f"{url}: {type(exc).__name__}: {exc}") from exc
            if response.status_code in _RETRY_STATUS:
                last = f"HTTP {response.status_code}: {_error_text(response.text)}"
                continue
            if response.status_code >= 400:
                raise BackendError(f"{url} refused the request: HTTP {response.status_code}: "
                                   f"{_error_text(response.text)}")
            return response.json()
        raise BackendError(f"{url} failed after {self.max_retries + 1} attempt(s): {last}; is the server running?")

    async def _stream(self, path: str, body: dict | None, url: str, on_text: Callable | None = None) -> Completion:
        accumulator = StreamAccumulator(self.model or "")
        async with self._client.stream("POST", path, json=body, timeout=self.timeout) as response:
            if response.status_code in _RETRY_STATUS:
                raise _Retryable(f"HTTP {response.status_code}: {_error_text((await response.aread()).decode())}")
            if response.status_code >= 400:
                text = _error_text((await response.aread()).decode())
                raise BackendError(f"{url} refused the request: HTTP {response.status_code}: {text}")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                chunk = json.loads(payload)
                if "error" in chunk:
                    raise BackendError(f"{url} failed mid-stream: {_error_text(payload)}")
                accumulator.add(chunk)
                if on_text is not None:
                    await _deliver(on_text, chunk)
        return accumulator.completion()


async def _deliver(on_text: Callable[[str], Any], chunk: dict) -> None:
    """Hand the first sample's new text in ``chunk`` to ``on_text`` (sync or async)."""
    for choice in chunk.get("choices") or []:
        if choice.get("index", 0) != 0:
            continue
        piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
        if piece:
            result = on_text(piece)
            if inspect.isawaitable(result):
                await result


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The first real error of a task group (the siblings it cancelled carry no news)."""
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


class _Retryable(Exception):
    """A streamed response that started with a retryable status."""


def _error_text(text: str) -> str:
    try:
        data = json.loads(text)
        error = data.get("error", data)
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:500]
    except (ValueError, AttributeError):
        return text[:500]
