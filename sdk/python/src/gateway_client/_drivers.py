"""The I/O edge: run a ``_core`` flow with httpx, blocking or on an event loop.

These two functions are the only difference between ``Client`` and ``AsyncClient``
in how a call is made: everything they do is send, sleep, or call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any, TypeVar

import httpx

from gateway_client._core import Flow, Invoke, Send, Sleep

T = TypeVar("T")


def drive(flow: Flow[T], http: httpx.Client) -> T:
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


async def adrive(flow: Flow[T], http: httpx.AsyncClient) -> T:
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
