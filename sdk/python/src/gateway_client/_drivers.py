"""The I/O edge: run a ``_core`` flow with httpx, blocking or on an event loop.

These two functions are the only difference between ``Client`` and ``AsyncClient``
in how a call is made: everything they do is send, sleep, call, or hold the client's
credentials lock (a ``threading.Lock`` or an ``asyncio.Lock``) while credentials are got.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from typing import Any, TypeVar

import httpx

from gateway_client._core import Authenticate, Flow, Invoke, Send, Sleep

T = TypeVar("T")


class _Unlocked:
    """For the credentials flow itself, which runs inside the lock already."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK: Any = _Unlocked()
_NO_ALOCK: Any = _Unlocked()


def drive(flow: Flow[T], http: httpx.Client, lock: threading.Lock) -> T:
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(outcome)
        except StopIteration as stop:
            result: T = stop.value
            return result
        outcome, error = None, None
        if isinstance(step, Send):
            try:
                outcome = http.send(step.request, stream=step.stream)
                if step.stream and outcome.status_code >= 300:
                    outcome.read()  # an error: its problem document, and the connection back
            except httpx.TransportError as exc:
                error = exc
        elif isinstance(step, Sleep):
            time.sleep(step.seconds)
        elif isinstance(step, Invoke):
            outcome = step.function()
        elif isinstance(step, Authenticate):
            with lock:
                try:
                    outcome = drive(step.flow, http, _NO_LOCK)
                except BaseException as exc:  # handed to the flow, as a send's are
                    error = exc


async def adrive(flow: Flow[T], http: httpx.AsyncClient, lock: asyncio.Lock) -> T:
    outcome: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(outcome)
        except StopIteration as stop:
            result: T = stop.value
            return result
        outcome, error = None, None
        if isinstance(step, Send):
            try:
                outcome = await http.send(step.request, stream=step.stream)
                if step.stream and outcome.status_code >= 300:
                    await outcome.aread()
            except httpx.TransportError as exc:
                error = exc
        elif isinstance(step, Sleep):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Invoke):
            outcome = step.function()
            if inspect.isawaitable(outcome):
                outcome = await outcome
        elif isinstance(step, Authenticate):
            async with lock:
                try:
                    outcome = await adrive(step.flow, http, _NO_ALOCK)
                except BaseException as exc:
                    error = exc
