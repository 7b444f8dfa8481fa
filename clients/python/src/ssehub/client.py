"""Sync and asyncio clients for the hub's native HTTP API (``POST /publish``,
``GET /events``, ``GET /topics``)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import (
    Any,
    AsyncIterator,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import httpx

from .sse import Event, SSEParser

__all__ = ["Client", "AsyncClient", "Subscription", "AsyncSubscription", "SSEHubError"]

Topics = Union[str, Sequence[str]]
Message = Union[Mapping[str, Any], Tuple[Any, ...]]

#: Reconnect delay before the hub has sent ``retry:`` (the hub's own default).
DEFAULT_RETRY_MS = 3000


class SSEHubError(Exception):
    """The hub refused a request: ``status`` is the HTTP status, ``message`` and ``field``
    come from its JSON error body when it has one."""

    def __init__(self, status: int, message: str, field: Optional[str] = None) -> None:
        super().__init__(f"{status}: {message}" + (f" (field {field})" if field else ""))
        self.status = status
        self.message = message
        self.field = field


def _topics(topics: Topics) -> List[str]:
    out = [topics] if isinstance(topics, str) else list(topics)
    if not out:
        raise ValueError("at least one topic is needed")
    return out


def _publish_body(
    topic: Topics,
    data: Any,
    event: Optional[str],
    id: Optional[str],
    retry: Optional[int],
    close: bool,
    private: bool,
) -> Dict[str, Any]:
    topics = _topics(topic)
    body: Dict[str, Any] = {"topic": topics[0] if len(topics) == 1 else topics, "data": data}
    if event is not None:
        body["event"] = event
    if id is not None:
        body["id"] = id
    if retry is not None:
        body["retry"] = retry
    if close:
        body["close"] = True
    if private:
        body["private"] = True
    return body


def _message_kwargs(message: Message) -> Dict[str, Any]:
    if isinstance(message, Mapping):
        return dict(message)
    topic, data, *rest = message
    if rest:
        raise ValueError("a message tuple is (topic, data); use a dict for more fields")
    return {"topic": topic, "data": data}


def _error(response: httpx.Response) -> SSEHubError:
    message, field = response.reason_phrase or "error", None
    try:
        body = response.json()
        if isinstance(body, dict):
            message = str(body.get("error", message))
            field = body.get("field")
    except ValueError:
        text = response.text.strip()
        if text:
            message = text
    return SSEHubError(response.status_code, message, field)


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class _Backoff:
    """Reconnect delays: the hub's ``retry:`` after a connection that worked, doubling on
    each failure in a row up to ``max_delay`` (never below ``retry:``), times a random
    1-1.25 so that clients do not come back in step."""

    def __init__(self, max_delay: float) -> None:
        self.retry_ms = DEFAULT_RETRY_MS
        self.failures = 0
        self.max_delay = max_delay

    def delay(self, at_least: Optional[float] = None) -> float:
        base = self.retry_ms / 1000.0
        if self.failures:
            base = max(base, 0.05)  # a retry: 0 must not become a busy loop on failures
        delay = max(base, min(self.max_delay, base * (2 ** min(self.failures, 16))))
        if at_least is not None:
            delay = max(delay, at_least)
        return delay * random.uniform(1.0, 1.25)


class _SubscriptionBase:
    def __init__(
        self,
        client: Union["Client", "AsyncClient"],
        topics: Topics,
        last_event_id: Optional[str],
        reconnect: bool,
        max_delay: float,
        presence: bool,
    ) -> None:
        self._client = client
        self.topics = _topics(topics)
        #: The id a reconnect resumes from; updated by every event that carries one.
        self.last_event_id: str = last_event_id or ""
        self.reconnect = reconnect
        self.presence = presence
        self._backoff = _Backoff(max_delay)
        #: Connections made so far (1 after the first).
        self.connections = 0
        self._closed = False

    def _request_args(self) -> Tuple[List[Tuple[str, str]], Dict[str, str]]:
        params = [("topic", t) for t in self.topics]
        if self.presence:
            params.append(("presence", "1"))
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        headers.update(self._client._auth_headers())
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        return params, headers

    def _take(self, parser: SSEParser, events: List[Event]) -> List[Event]:
        if parser.retry is not None:
            self._backoff.retry_ms = parser.retry
        self.last_event_id = parser.last_event_id
        return events

    def _check(self, response: httpx.Response) -> Optional[float]:
        """For a response: ``None`` to read the stream; a delay to retry after; raises for a
        refusal that a retry will not fix; ``-1`` when the hub says the stream is over
        (``204``)."""
        status = response.status_code
        if status == 200:
            self._backoff.failures = 0
            self.connections += 1
            return None
        if status == 204:
            return -1.0
        if status in (429, 502, 503, 504) and self.reconnect:
            self._backoff.failures += 1
            return self._backoff.delay(_retry_after(response))
        raise _error(response)


class Subscription(_SubscriptionBase):
    """An iterable of events that reconnects by itself (see ``Client.subscribe``). Iteration
    ends when the hub ends the subscription (its topics closed: ``204`` on reconnect) or
    ``close()`` is called; with ``reconnect=False``, when the first connection ends."""

    _client: "Client"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._response: Optional[httpx.Response] = None
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stops the subscription (also from another thread)."""
        self._closed = True
        self._wake.set()
        with self._lock:
            response = self._response
        if response is not None:
            # Closing a response does not wake a read blocked in another thread; shutting
            # the socket down does.
            try:
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass

    def __iter__(self) -> Iterator[Event]:
        http = self._client._http
        while not self._closed:
            delay: Optional[float]
            params, headers = self._request_args()
            try:
                request = http.build_request(
                    "GET", "/events", params=params, headers=headers,
                    timeout=self._client._stream_timeout,
                )
                response = http.send(request, stream=True)
                with self._lock:
                    self._response = response
                try:
                    if response.status_code != 200:
                        response.read()
                    delay = self._check(response)
                    if delay is None:
                        parser = SSEParser(self.last_event_id)
                        for chunk in response.iter_bytes():
                            for event in self._take(parser, parser.feed(chunk)):
                                yield event
                            if self._closed:
                                return
                        self._take(parser, parser.close())
                        delay = self._backoff.delay()
                finally:
                    with self._lock:
                        self._response = None
                    response.close()
            except httpx.TransportError:
                if self._closed:
                    return
                self._backoff.failures += 1
                delay = self._backoff.delay()
            except httpx.StreamClosed:
                return
            if delay < 0 or not self.reconnect or self._closed:
                return
            if self._wake.wait(delay):
                return


class AsyncSubscription(_SubscriptionBase):
    """The asyncio form of ``Subscription``: ``async for event in client.subscribe(...)``."""

    _client: "AsyncClient"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wake = asyncio.Event()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stops the subscription after the event being handled."""
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        http = self._client._http
        while not self._closed:
            delay: Optional[float]
            params, headers = self._request_args()
            try:
                request = http.build_request(
                    "GET", "/events", params=params, headers=headers,
                    timeout=self._client._stream_timeout,
                )
                response = await http.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        await response.aread()
                    delay = self._check(response)
                    if delay is None:
                        parser = SSEParser(self.last_event_id)
                        async for chunk in response.aiter_bytes():
                            for event in self._take(parser, parser.feed(chunk)):
                                yield event
                            if self._closed:
                                return
                        self._take(parser, parser.close())
                        delay = self._backoff.delay()
                finally:
                    await response.aclose()
            except httpx.TransportError:
                if self._closed:
                    return
                self._backoff.failures += 1
                delay = self._backoff.delay()
            if delay < 0 or not self.reconnect or self._closed:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass


class _ClientBase:
    def __init__(
        self,
        url: str,
        token: Optional[str],
        timeout: float,
        read_timeout: Optional[float],
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self._timeout = httpx.Timeout(timeout)
        # A stream is idle between events; the hub sends a heartbeat every 15 s by default,
        # so a read that waits longer than read_timeout means a dead connection.
        self._stream_timeout = httpx.Timeout(timeout, read=read_timeout)

    def _auth_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


class Client(_ClientBase):
    """A blocking client. ``token``: a JWT sent as ``Authorization: Bearer`` on every request
    (see ``mint_token``). ``read_timeout``: seconds without a byte (events or heartbeats)
    after which a stream counts as dead and is reconnected."""

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        read_timeout: Optional[float] = 60.0,
        http: Optional[httpx.Client] = None,
    ) -> None:
        super().__init__(url, token, timeout, read_timeout)
        self._http = http or httpx.Client(base_url=self.url, timeout=self._timeout)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def publish(
        self,
        topic: Topics,
        data: Any,
        event: Optional[str] = None,
        id: Optional[str] = None,
        close: bool = False,
        *,
        retry: Optional[int] = None,
        private: bool = False,
    ) -> Dict[str, Any]:
        """Publishes ``data`` (a string, or any JSON value, sent as its JSON text) to one
        topic or a list of topics. Returns ``{"id": ..., "delivered": ...}``."""
        body = _publish_body(topic, data, event, id, retry, close, private)
        response = self._http.post("/publish", json=body, headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()

    def publish_many(
        self, messages: Iterable[Message], concurrency: int = 1
    ) -> List[Dict[str, Any]]:
        """Publishes each message, a dict of ``publish`` arguments or a ``(topic, data)``
        tuple. ``concurrency`` 1 publishes in order (so ids increase in that order); more
        sends that many at once. Returns the answers in the messages' order."""
        kwargs = [_message_kwargs(m) for m in messages]
        if concurrency <= 1:
            return [self.publish(**k) for k in kwargs]
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(lambda k: self.publish(**k), kwargs))

    def subscribe(
        self,
        topics: Topics,
        last_event_id: Optional[str] = None,
        *,
        reconnect: bool = True,
        max_delay: float = 30.0,
        presence: bool = False,
    ) -> Subscription:
        """Events of ``topics``, resuming after ``last_event_id`` when given. Reconnects
        after a lost connection with a jittered back-off based on the hub's ``retry:``,
        resuming with ``Last-Event-ID``. The hub's ``ssehub-reset`` control event comes
        through as an event with ``is_reset`` true."""
        return Subscription(self, topics, last_event_id, reconnect, max_delay, presence)

    def topics(self) -> List[Dict[str, Any]]:
        """``GET /topics``: each topic with its subscribers and last id."""
        response = self._http.get("/topics", headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()["topics"]

    def topic(self, topic: str) -> Dict[str, Any]:
        """``GET /topics/{topic}``."""
        response = self._http.get(
            "/topics/" + _quote(topic), headers=self._auth_headers()
        )
        if response.status_code != 200:
            raise _error(response)
        return response.json()

    def close_topic(self, topic: str) -> Dict[str, Any]:
        """``DELETE /topics/{topic}``: closes the topic; its subscriptions end."""
        response = self._http.delete("/topics/" + _quote(topic), headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()


class AsyncClient(_ClientBase):
    """The asyncio form of ``Client``, with the same methods as coroutines."""

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        read_timeout: Optional[float] = 60.0,
        http: Optional[httpx.AsyncClient] = None,
    ) -> None:
        super().__init__(url, token, timeout, read_timeout)
        self._http = http or httpx.AsyncClient(base_url=self.url, timeout=self._timeout)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def publish(
        self,
        topic: Topics,
        data: Any,
        event: Optional[str] = None,
        id: Optional[str] = None,
        close: bool = False,
        *,
        retry: Optional[int] = None,
        private: bool = False,
    ) -> Dict[str, Any]:
        """See ``Client.publish``."""
        body = _publish_body(topic, data, event, id, retry, close, private)
        response = await self._http.post("/publish", json=body, headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()

    async def publish_many(
        self, messages: Iterable[Message], concurrency: int = 1
    ) -> List[Dict[str, Any]]:
        """See ``Client.publish_many``."""
        kwargs = [_message_kwargs(m) for m in messages]
        if concurrency <= 1:
            return [await self.publish(**k) for k in kwargs]
        limit = asyncio.Semaphore(concurrency)

        async def one(k: Dict[str, Any]) -> Dict[str, Any]:
            async with limit:
                return await self.publish(**k)

        return list(await asyncio.gather(*(one(k) for k in kwargs)))

    def subscribe(
        self,
        topics: Topics,
        last_event_id: Optional[str] = None,
        *,
        reconnect: bool = True,
        max_delay: float = 30.0,
        presence: bool = False,
    ) -> AsyncSubscription:
        """See ``Client.subscribe``; iterate with ``async for``."""
        return AsyncSubscription(self, topics, last_event_id, reconnect, max_delay, presence)

    async def topics(self) -> List[Dict[str, Any]]:
        response = await self._http.get("/topics", headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()["topics"]

    async def topic(self, topic: str) -> Dict[str, Any]:
        response = await self._http.get("/topics/" + _quote(topic), headers=self._auth_headers())
        if response.status_code != 200:
            raise _error(response)
        return response.json()

    async def close_topic(self, topic: str) -> Dict[str, Any]:
        response = await self._http.delete(
            "/topics/" + _quote(topic), headers=self._auth_headers()
        )
        if response.status_code != 200:
            raise _error(response)
        return response.json()


def _quote(topic: str) -> str:
    from urllib.parse import quote

    return quote(topic, safe="")
