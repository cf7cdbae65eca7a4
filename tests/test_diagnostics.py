"""The built-in diagnostics plugin serves the reference's server/diagnostics."""

from __future__ import annotations

import asyncio


async def test_diagnostics_reports_process_and_live_gauges(serve):
    async with serve(plugins=["diagnostics", "probe"]) as s:
        await s.client.initialize(experimental=True)
        slow = [
            s.client.request_nowait("probe/sleep", {"ms": 500, "label": str(i)}) for i in range(3)
        ]
        await s.client.drain()
        await asyncio.sleep(0.2)
        result = await s.client.request("server/diagnostics", {})
        assert result["process"]["id"] == s.process.pid
        assert result["process"]["residentMemoryBytes"] > 1_000_000
        gauges = {g["name"]: g["value"] for g in result["gauges"]}
        assert gauges["kernel.requests.in_flight"] == 3
        assert gauges["kernel.connections.open"] == 1
        assert gauges["kernel.requests.total"] >= 5
        assert all(isinstance(v, int) and v >= 0 for v in gauges.values())
        await asyncio.gather(*slow)
        # params may be omitted: they are an empty object.
        again = await s.client.request("server/diagnostics")
        assert {g["name"]: g["value"] for g in again["gauges"]}["kernel.requests.in_flight"] == 0
