"""Seeded fault injection for the sandbox: latency, 5xx answers, a rate limit (per token, API client or
business), connection
resets before processing, and the response lost after the write committed.

Every faulted request draws the same five numbers from one ``random.Random(seed)``, whatever the
configuration, so a sequential client sees the same faults on every run with the same seed.
Faults apply to the Perkville API (``/v2/*`` and the token endpoint), never to ``/_sandbox/*``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from typing import Any

from perkville_provider.sandbox.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    abort_connection,
    send_json,
)
from perkville_provider.sandbox.errors import ErrorCollector
from perkville_provider.sandbox.hostile import check_origin, hostile_send, wants_rewrite

RAW_SEND_KEY = "sandbox.raw_send"
FAULT_KEY = "sandbox.fault"
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RETRY_AFTER_FORMATS = ("seconds", "http-date")
LOST_AFTER_COMMIT_MODES = ("reset", "502")
RATE_LIMIT_SCOPES = ("token", "client", "business")


CHOICES = {
    "retry_after_format": RETRY_AFTER_FORMATS,
    "lost_after_commit_mode": LOST_AFTER_COMMIT_MODES,
    "rate_limit_scope": RATE_LIMIT_SCOPES,
}

#: (scope, Authorization header or None, client address) -> the key the rate limit counts under.
RateKey = Callable[[str, str | None, str], str]


def key_per_header(scope: str, authorization: str | None, client: str) -> str:
    """Count per Authorization header value (one bearer token), else per client address."""
    return authorization or f"address:{client}"


def _fault_value(name: str, value: Any) -> Any:
    """One fault setting, checked and normalised; a ValueError says what is wrong with it."""
    if name in CHOICES:
        if str(value) not in CHOICES[name]:
            raise ValueError(f"must be one of {', '.join(CHOICES[name])}")
        return str(value)
    if name == "error_statuses":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, int) and 500 <= v <= 599 for v in value)
        ):
            raise ValueError("must be a non-empty list of 5xx status codes")
        return list(value)
    if name == "echo_request_in_errors":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name == "foreign_next_origin":
        return check_origin(value)
    if name == "retry_after_seconds":
        text = str(value)
        if len(text) > 64 or not text.isprintable():
            raise ValueError("must be a header value of at most 64 printable characters")
        return text
    if name == "seed":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be an integer")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("must be a non-negative number")
    if name.endswith("_rate") and value > 1:
        raise ValueError("is a share of requests, between 0 and 1")
    return float(value)


def _setting(default: Any, help_text: str, *, flag: str | None = None, injects: bool = False) -> Any:
    """One fault setting: its default, its ``perkville-sandbox serve`` flag (``--<flag or name>``) and
    help, and whether a non-zero value injects faults (``Faults.active``). The one list of them is
    ``FaultConfig``: the CLI flags are derived from it."""
    return field(default=default, metadata={"help": help_text, "flag": flag, "injects": injects})


@dataclass
class FaultConfig:
    """The fault settings; all off by default. See the README's Faults table."""

    latency_ms: float = _setting(0.0, "fixed latency added to every API answer, in ms", injects=True)
    jitter_ms: float = _setting(0.0, "extra random latency, uniform in [0, jitter], in ms", injects=True)
    error_rate: float = _setting(
        0.0, "share of API requests answered 500/502/503 without processing", injects=True
    )
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503])
    rate_limit_per_second: float = _setting(
        0.0,
        "requests per second allowed per token, API client or business; over it: 429 with Retry-After",
        flag="rate_limit",
        injects=True,
    )
    rate_limit_scope: str = _setting(
        "token", "what the rate limit counts together: 'token' (default), 'client' or 'business'"
    )
    throttle_rate: float = _setting(
        0.0, "share of API requests answered 429 with Retry-After 1, at random", injects=True
    )
    retry_after_format: str = _setting("seconds", "Retry-After as 'seconds' (default) or 'http-date'")
    retry_after_seconds: str = _setting(
        "",
        "hostile: every 429 carries this Retry-After instead of the real wait (99999, inf, -1, or an "
        "HTTP date in 2099): a wait no client should obey",
    )
    reset_rate: float = _setting(
        0.0, "share of API requests whose connection is reset before processing", injects=True
    )
    lost_after_commit_rate: float = _setting(
        0.0, "share of writes that commit but lose their answer", injects=True
    )
    lost_after_commit_mode: str = _setting("reset", "how the answer is lost: 'reset' (default) or '502'")
    echo_request_in_errors: bool = _setting(
        False, "hostile: error answers echo the request (Authorization header included)", injects=True
    )
    foreign_next_origin: str = _setting(
        "", "hostile: rewrite list answers' meta.next to this origin", injects=True
    )
    trickle_ms: float = _setting(
        0.0, "hostile: send every answer's body one byte at a time, this many ms apart", injects=True
    )
    token_trickle_ms: float = _setting(
        0.0, "hostile: send the token endpoint's answer one byte at a time, this many ms apart", injects=True
    )
    seed: int = _setting(0, "seed of the fault random stream (repeatable runs)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FaultConfig:
        """Validate and build; unknown keys and bad values are refused with the field named."""
        known = {f.name for f in fields(cls)}
        errors = ErrorCollector()
        changes: dict[str, Any] = {}
        for name, value in (values or {}).items():
            if name not in known:
                errors.add(name, "unknown_field", f"{name} is not a fault setting")
            elif value is not None:
                try:
                    changes[name] = _fault_value(name, value)
                except ValueError as exc:
                    errors.add(name, "invalid", f"{name} {exc}")
        errors.raise_if_any()
        return cls(**changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FaultFlag:
    """A fault setting as a command-line flag: ``--<flag>`` sets ``setting``."""

    flag: str
    setting: str
    kind: type
    help: str


FAULT_FLAGS = tuple(
    FaultFlag(f.metadata["flag"] or f.name, f.name, type(f.default), f.metadata["help"])
    for f in fields(FaultConfig)
    if "help" in f.metadata
)
# The settings that inject faults when non-zero; with all of them off, requests pass untouched.
INJECTING_SETTINGS = tuple(f.name for f in fields(FaultConfig) if f.metadata.get("injects"))


@dataclass(frozen=True)
class Draw:
    """One request's random numbers, always drawn together to keep runs repeatable."""

    reset: float
    error: float
    status: float
    lost: float
    jitter: float


class FaultCounters:
    """How many faults of each kind were injected (reported by ``/_sandbox/stats``)."""

    KINDS = ("latency", "reset", "error", "rate_limited", "lost_after_commit", "reset_fallback_502")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.counts = dict.fromkeys(self.KINDS, 0)

    def add(self, kind: str) -> None:
        self.counts[kind] += 1


class Faults:
    """The current fault configuration, its random stream and the rate-limit windows."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.counters = FaultCounters()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the whole configuration and restart the random stream from its seed."""
        self.config = config
        self.rng = random.Random(config.seed)
        self.windows: dict[str, deque[float]] = {}

    @property
    def active(self) -> bool:
        return any(getattr(self.config, name) for name in INJECTING_SETTINGS)

    def draw(self) -> Draw:
        r = self.rng.random
        return Draw(r(), r(), r(), r(), r())

    def retry_after(self, key: str, now: float) -> float | None:
        """Sliding one-second window per key; the seconds to wait when over the limit, else None."""
        limit = self.config.rate_limit_per_second
        if not limit:
            return None
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= limit:
            return max(window[0] + 1.0 - now, 0.001)
        window.append(now)
        return None

    def retry_after_header(self, wait: float) -> str:
        if self.config.retry_after_seconds:
            return self.config.retry_after_seconds
        seconds = max(1, int(-(-wait // 1)))
        if self.config.retry_after_format == "http-date":
            return formatdate(time.time() + seconds, usegmt=True)
        return str(seconds)


def _fault_body(code: str, message: str, error_type: str = "server_error") -> dict[str, Any]:
    return {"error_type": error_type, "errors": {"__all__": [{"code": code, "message": message}]}}


class FaultMiddleware:
    """ASGI middleware applying ``Faults`` to the Perkville API paths."""

    def __init__(self, app: ASGIApp, faults: Faults, rate_key: RateKey = key_per_header) -> None:
        self.app = app
        self.faults = faults
        self.rate_key = rate_key

    @staticmethod
    def applies_to(path: str) -> bool:
        return path.startswith("/v2/") or path.startswith("/api/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.faults
        if scope["type"] != "http" or not faults.active or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        config = faults.config
        draw = faults.draw()
        delay = config.latency_ms + draw.jitter * config.jitter_ms
        if delay > 0:
            faults.counters.add("latency")
            await asyncio.sleep(delay / 1000.0)
        if draw.reset < config.reset_rate:
            await self._reset(scope, send, "reset")
            return
        wait = faults.retry_after(self._rate_key(scope), time.monotonic())
        if wait is not None:
            message = f"rate limit of {config.rate_limit_per_second:g} requests/s exceeded"
            await self._throttle(scope, send, wait, message)
            return
        if draw.error < config.error_rate:
            statuses = config.error_statuses
            status = statuses[min(int(draw.status * len(statuses)), len(statuses) - 1)]
            faults.counters.add("error")
            scope[FAULT_KEY] = "error"
            await send_json(send, status, _fault_body("sandbox_injected_error", f"injected {status}"))
            return
        # The band above error_rate, so adding throttling leaves a seed's other faults where they were.
        if draw.error < config.error_rate + config.throttle_rate:
            await self._throttle(scope, send, 1.0, "request throttled (injected 429)")
            return
        if (
            scope["method"] in WRITE_METHODS
            and scope["path"].startswith("/v2/")
            and draw.lost < config.lost_after_commit_rate
        ):
            await self._lose_answer(scope, receive, send)
            return
        if wants_rewrite(config):
            await self._hostile(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _hostile(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app with its answer rewritten by the hostile faults (see ``sandbox/hostile.py``)."""
        request_body = bytearray()

        async def tee() -> Message:
            message = await receive()
            request_body.extend(message.get("body", b""))
            return message

        rewrite: Send | None = None

        async def rewritten(message: Message) -> None:
            nonlocal rewrite
            if rewrite is None:
                rewrite = hostile_send(scope, send, self.faults.config, bytes(request_body))
            await rewrite(message)

        await self.app(scope, tee, rewritten)

    async def _throttle(self, scope: Scope, send: Send, wait: float, message: str) -> None:
        """Answer 429 with ``Retry-After`` in the configured form, counted as rate limited."""
        self.faults.counters.add("rate_limited")
        scope[FAULT_KEY] = "rate_limited"
        header = self.faults.retry_after_header(wait)
        body = _fault_body("rate_limited", message, "rate_limited")
        await send_json(send, 429, body, [(b"retry-after", header.encode())])

    def _rate_key(self, scope: Scope) -> str:
        authorization = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"), None
        )
        client = scope.get("client")
        return self.rate_key(self.faults.config.rate_limit_scope, authorization, client[0] if client else "?")

    async def _reset(self, scope: Scope, send: Send, kind: str) -> None:
        """Reset the connection; where that is impossible, answer 502 and count the fallback."""
        scope[FAULT_KEY] = kind
        self.faults.counters.add(kind)
        if abort_connection(scope.get(RAW_SEND_KEY)):
            # Let the server see the connection is gone before the app returns without an answer.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return
        self.faults.counters.add("reset_fallback_502")
        await send_json(send, 502, _fault_body("sandbox_injected_reset", "connection reset (502 fallback)"))

    async def _lose_answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Process the write; if it committed (2xx), drop its answer: a reset, or a 502 in its place.

        A refused write committed nothing, so its answer goes through untouched.
        """
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        if start is None or not 200 <= start["status"] < 300:
            for message in held:
                await send(message)
            return
        if self.faults.config.lost_after_commit_mode == "reset":
            await self._reset(scope, send, "lost_after_commit")
            return
        scope[FAULT_KEY] = "lost_after_commit"
        self.faults.counters.add("lost_after_commit")
        await send_json(
            send, 502, _fault_body("sandbox_injected_error", "bad gateway (answer lost after commit)")
        )
