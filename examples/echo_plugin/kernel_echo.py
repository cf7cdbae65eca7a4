"""A third-party plugin: ``echo/echo`` answers with the message it was sent."""

import asyncio

import attrs

from kernel import RequestContext, method


@attrs.frozen
class EchoParams:
    message: str
    delay_ms: int = 0  # on the wire: delayMs


@attrs.frozen
class EchoResult:
    message: str


class EchoPlugin:
    @method("echo/echo")
    async def echo(self, params: EchoParams, ctx: RequestContext) -> EchoResult:
        """Wait ``delayMs`` (other requests keep flowing), then echo ``message``."""
        if params.delay_ms:
            await asyncio.sleep(params.delay_ms / 1000)
        return EchoResult(params.message)
