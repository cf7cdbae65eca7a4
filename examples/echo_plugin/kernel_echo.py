"""A third-party plugin: ``echo/echo`` answers with the message it was sent."""

import asyncio

import attrs

from kernel import Registrar, RequestContext, hookimpl


@attrs.frozen
class EchoParams:
    message: str
    delay_ms: int = 0  # on the wire: delayMs


@attrs.frozen
class EchoResult:
    message: str


async def echo(params: EchoParams, ctx: RequestContext) -> EchoResult:
    """Wait ``delayMs`` (other requests keep flowing), then echo ``message``."""
    if params.delay_ms:
        await asyncio.sleep(params.delay_ms / 1000)
    return EchoResult(params.message)


class EchoPlugin:
    @hookimpl
    def kernel_register(self, registrar: Registrar) -> None:
        registrar.method("echo/echo", echo, params=EchoParams, result=EchoResult)
