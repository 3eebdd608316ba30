"""The HTTP backend: plait requests against an OpenAI-compatible server (``vllm serve`` and others).

Requests of a batch are sent concurrently over one pooled ``httpx`` client,
so the server can batch them. The server is untrusted, like model output:

- ``timeout`` is a total deadline per request: connecting, waiting, reading
  the whole reply (a stream included) and any retries all fit inside it, so
  a server trickling bytes or streaming forever cannot hold a run;
- ``idle_timeout`` ends a reply that stops arriving (a stream's keep-alive
  comments do not count as progress);
- a reply is read in pieces and counted against ``max_response_bytes``;
- every malformed reply (not UTF-8, not JSON, wrong shape, wrong number of
  choices, a stream cut before ``[DONE]``, absurd token counts) is a
  :class:`~plait.errors.BackendError` naming the URL and the fault.

Connection failures, 5xx and 429 answers are retried a bounded number of
times with exponential backoff, or after the server's ``Retry-After``
(capped by ``max_retry_after``) when it sends one.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from plait._retry import RetryDeadlineError, RetryPolicy, retry
from plait.errors import BackendError, ConfigError
from plait.executors._base import Backend, Completion, Request, serve_concurrently
from plait.executors._constraints import check_request_constraint
from plait.executors._openai_http import (
    ERROR_BODY_BYTES, ReplyError, error_text, read_body, read_events, retry_after_seconds, snippet)
from plait.executors._openai_reply import StreamAccumulator, parse_models, parse_reply
from plait.executors._openai_wire import endpoint, request_body

__all__ = ["OpenAIBackend", "ServerUnavailable", "ROUTE_HEADER"]

log = logging.getLogger("plait.openai")

_RETRY_STATUS = {429, 500, 502, 503, 504}
_T = TypeVar("_T")
ROUTE_HEADER = "X-Plait-Route"  # a request's routing key, for server-side routers (and the endpoint pool's tests)
_ROUTE_VALUE = re.compile(r"[\x21-\x7e]{1,128}")


class ServerUnavailable(BackendError):
    """The server could not serve the request (unreachable, 5xx or 429 after the retries, deadline passed).

    Another replica of the same model may: :class:`~plait.executors.EndpointPool` fails over on it.
    """


class OpenAIBackend(Backend):
    """Serve requests from an OpenAI-compatible HTTP server.

    ``base_url`` is the server root or its ``/v1`` URL. ``model`` defaults to
    the first model the server lists. ``timeout`` is the total deadline of
    one request in seconds (retries and a whole stream included);
    ``idle_timeout`` the longest wait for the next piece of a reply once it
    started (the next event of a stream, counted from the headers);
    ``max_response_bytes`` caps a reply's size. ``max_retries`` and ``backoff``
    bound the retrying of connection errors, 5xx and 429 (waits of
    ``backoff * 2**attempt``, or the server's ``Retry-After`` up to
    ``max_retry_after``). ``stream=True`` streams responses (server-sent
    events) and assembles them.
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
        idle_timeout: float = 60.0,
        max_response_bytes: int = 64 * 2**20,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_retry_after: float = 30.0,
        stream: bool = False,
        max_connections: int = 64,
    ):
        _check_options(positive={"timeout": timeout, "idle_timeout": idle_timeout,
                                 "max_response_bytes": max_response_bytes, "max_connections": max_connections},
                       non_negative={"max_retries": max_retries, "backoff": backoff,
                                     "max_retry_after": max_retry_after})
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else f"{root}/v1"
        self.model = model
        self._declared_model = model  # `model` may be discovered later; the identity must not change
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.max_response_bytes = max_response_bytes
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.stream_responses = stream  # (not `self.stream`: that is the streaming method)
        self._headers = {"Accept-Encoding": "identity"}  # so that the size cap counts what is decoded
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._limits = max_connections
        self._client: Any = None

    @property
    def identity(self) -> str:
        """The declared model; without ``model=``, whatever this server lists first (named by its URL)."""
        return self._declared_model or f"first model listed by {self.base_url}"

    async def start(self) -> None:
        self._open_client()
        if self.model is None:
            self.model = (await self.list_models())[0]

    async def list_models(self) -> list[str]:
        """The ids of the models this server lists (``GET /models``), first the one it serves by default."""
        self._open_client()
        return await self._send("GET", "/models", None, self._read_models)

    def _open_client(self) -> None:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=None,  # every exchange runs under the request's own total deadline instead
                limits=httpx.Limits(max_connections=self._limits, max_keepalive_connections=self._limits),
            )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def generate(self, requests: list[Request]) -> list[Completion]:
        for i, request in enumerate(requests):
            check_request_constraint(request, i)
        await self.start()
        return await serve_concurrently(requests, self._generate_one)

    async def stream(self, request: Request, on_text: Callable[[str], Any]) -> Completion:
        """Serve one request as a server-sent-event stream, handing the first sample's text to ``on_text``."""
        check_request_constraint(request)
        await self.start()
        return await self._post(request, stream=True, on_text=on_text)

    async def _generate_one(self, request: Request) -> Completion:
        return await self._post(request, stream=self.stream_responses)

    async def _post(self, request: Request, *, stream: bool, on_text: Callable | None = None) -> Completion:
        body = request_body(request, self.model or "", stream=stream)
        n, chat = request.params.n, request.is_chat

        async def read_json(response: Any) -> Completion:
            raw = await read_body(response, max_bytes=self.max_response_bytes, idle_timeout=self.idle_timeout)
            return parse_reply(raw, n=n, chat=chat, model=self.model or "")

        delivered = False  # text that reached on_text cannot be taken back: such a stream is never retried

        async def read_stream(response: Any) -> Completion:
            nonlocal delivered
            accumulator = StreamAccumulator(self.model or "", n=n, chat=chat)

            async def on_data(data: bytes) -> None:
                nonlocal delivered
                piece = accumulator.add(data)
                if piece and on_text is not None:
                    delivered = True
                    result = on_text(piece)
                    if inspect.isawaitable(result):
                        await result

            await read_events(response, on_data, max_bytes=self.max_response_bytes, idle_timeout=self.idle_timeout)
            return accumulator.completion()

        return await self._send("POST", endpoint(request), body, read_stream if stream else read_json,
                                resumable=lambda: not delivered, headers=route_headers(request.route))

    async def _read_models(self, response: Any) -> list[str]:
        return parse_models(await read_body(response, max_bytes=self.max_response_bytes,
                                            idle_timeout=self.idle_timeout))

    async def _send(self, method: str, path: str, body: dict | None, read: Callable[[Any], Awaitable[_T]], *,
                    resumable: Callable[[], bool] = lambda: True, headers: dict[str, str] | None = None) -> _T:
        """One request under its total deadline: bounded retries, each reply read by ``read``."""
        url = f"{self.base_url}{path}"
        deadline = anyio.current_time() + self.timeout
        policy = RetryPolicy(attempts=self.max_retries + 1, backoff=self.backoff, multiplier=2.0,
                             max_backoff=math.inf, jitter=0.0, retry_on=(_Transient,))

        def retried(exc: BaseException, number: int, wait: float) -> None:
            log.info("retrying %s in %gs after %s (attempt %d)", url, wait, exc, number + 1)

        with anyio.CancelScope(deadline=deadline):
            try:
                return await retry(policy, lambda n: self._exchange(method, path, body, read, url, resumable, headers),
                                   on_retry=retried, deadline=deadline)
            except RetryDeadlineError as exc:
                raise ServerUnavailable(f"{url} failed after {exc.attempts} attempt(s): {exc.error}; waiting "
                                        f"{exc.wait:g}s more would pass timeout={self.timeout:g}s") from None
            except _Transient as exc:
                raise ServerUnavailable(f"{url} failed after {self.max_retries + 1} attempt(s): {exc}; "
                                        "is the server running?") from None
        raise ServerUnavailable(f"{url} did not complete the request within timeout={self.timeout:g}s (a total "
                                "deadline: connecting, waiting, reading the reply and retries); raise timeout= "
                                "if the server is only slow")

    async def _exchange(self, method: str, path: str, body: dict | None, read: Callable[[Any], Awaitable[_T]],
                        url: str, resumable: Callable[[], bool], headers: dict[str, str] | None) -> _T:
        """One attempt: the reply read by ``read``, :class:`_Transient` for what is worth sending again."""
        import httpx

        try:
            async with self._client.stream(method, path, json=body, headers=headers) as response:
                status = response.status_code
                if 300 <= status < 400:  # not followed: the request would go to a server nobody named
                    target = snippet(response.headers.get("location", "nowhere"), 200)
                    raise BackendError(f"{url} redirected the request (HTTP {status}) to {target}; "
                                       "pass the final URL as base_url")
                if status < 400:
                    return await read(response)
                text = error_text(await read_body(response, max_bytes=ERROR_BODY_BYTES,
                                                  idle_timeout=self.idle_timeout, truncate=True))
                if status not in _RETRY_STATUS:
                    raise BackendError(f"{url} refused the request: HTTP {status}: {text}")
                asked = retry_after_seconds(response.headers.get("retry-after"))
                raise _Transient(f"HTTP {status}: {text}", None if asked is None else min(asked, self.max_retry_after))
        except ReplyError as exc:
            raise BackendError(f"{url} {exc}") from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            # refused, reset or dropped (a server restarting): the request is sent again
            last = f"{type(exc).__name__}: {snippet(str(exc) or 'connection failed', 200)}"
            if not resumable():
                raise BackendError(f"{url} dropped the connection mid-stream: {last}") from exc
            raise _Transient(last) from None
        except httpx.HTTPError as exc:
            raise BackendError(f"{url}: {type(exc).__name__}: {snippet(str(exc), 200)}") from exc


def route_headers(route: str | None) -> dict[str, str] | None:
    """The routing-key header for ``route``: the key itself when it is short printable ASCII, else its digest."""
    if not route:
        return None
    if _ROUTE_VALUE.fullmatch(route):
        return {ROUTE_HEADER: route}
    return {ROUTE_HEADER: "h-" + hashlib.blake2b(route.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()}


class _Transient(Exception):
    """A failure worth sending the request again for; ``retry_after``: the server's wait (capped), if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _check_options(positive: dict[str, Any], non_negative: dict[str, Any], who: str = "OpenAIBackend") -> None:
    """ValueError naming the first option that is not a number in its range."""
    for option, value in {**positive, **non_negative}.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
        if not number or value < 0 or (value == 0 and option in positive):
            kind = "positive" if option in positive else "non-negative"
            raise ConfigError(f"{who}: {option}={value!r} is not allowed; give a {kind} number")
