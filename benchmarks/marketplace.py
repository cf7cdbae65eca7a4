"""``plugin/list`` over many marketplaces, against plain Python (and the reference) in the same run.

Builds 50 marketplaces x 100 plugin bundles (each with a manifest and an
``interface``) on disk, records them as ``[marketplaces.<name>]`` in
config.toml, installs one bundle per marketplace, then times:

* ``plugin/list {}`` over stdio: the first call (every file parsed) and
  warm calls (files unchanged: stat-validated caches), p50/p99;
* ``plugin/installed {}``;
* the floor: this process reading and parsing every marketplace file and
  manifest (``json.loads``) and encoding an answer of the same size
  (``json.dumps``), without a server;
* with ``--reference``, the reference server (``codex app-server``) on the
  same marketplaces, when its binary is found.

    python benchmarks/marketplace.py
    python benchmarks/marketplace.py --markets 10 --plugins 50 --rounds 20 --reference
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import percentiles, pin_cpus

from kernel.client import Client

REFERENCE = Path(
    "/tmp/refts/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
)
SERVER_CPU: int | None = None


def build(root: Path, markets: int, plugins: int) -> list[Path]:
    """``markets`` marketplace directories of ``plugins`` bundles each; returns their roots."""
    roots = []
    for m in range(markets):
        market = root / f"market-{m:03d}"
        entries = []
        for p in range(plugins):
            name = f"plugin-{p:03d}"
            bundle = market / "plugins" / name
            (bundle / ".codex-plugin").mkdir(parents=True)
            manifest = {
                "name": name,
                "version": f"1.{p}.0",
                "description": f"bundle {p} of market {m}",
                "keywords": ["bench", f"k{p % 7}"],
                "interface": {
                    "displayName": f"Plugin {p}",
                    "shortDescription": "A benchmark bundle",
                    "developerName": "bench",
                    "capabilities": ["Read", "Write"],
                    "websiteURL": "https://example.invalid",
                    "defaultPrompt": "Use it",
                    "composerIcon": "./assets/icon.png",
                    "screenshots": ["./assets/s1.png"],
                },
            }
            (bundle / ".codex-plugin" / "plugin.json").write_text(json.dumps(manifest))
            entries.append({"name": name, "source": f"./plugins/{name}", "category": "Bench"})
        (market / ".agents" / "plugins").mkdir(parents=True)
        data = {
            "name": f"mkt-{m:03d}",
            "interface": {"displayName": f"Market {m}"},
            "plugins": entries,
        }
        (market / ".agents" / "plugins" / "marketplace.json").write_text(json.dumps(data))
        roots.append(market)
    return roots


def config_text(roots: list[Path]) -> str:
    lines = []
    for i, root in enumerate(roots):
        lines += [f"[marketplaces.mkt-{i:03d}]", 'source_type = "local"', f'source = "{root}"', ""]
    return "\n".join(lines)


def floor(roots: list[Path], answer_size: int) -> float:
    """Seconds to read+parse every file and encode an answer as large as the server's."""
    start = time.perf_counter()
    parsed = []
    for root in roots:
        market = json.loads((root / ".agents" / "plugins" / "marketplace.json").read_bytes())
        for entry in market["plugins"]:
            manifest = root / entry["source"] / ".codex-plugin" / "plugin.json"
            parsed.append(json.loads(manifest.read_bytes()))
    blob = json.dumps(parsed)
    json.dumps({"pad": "x" * max(0, answer_size - len(blob))})
    return time.perf_counter() - start


async def time_calls(
    client: Client, method: str, params: dict, rounds: int
) -> tuple[float, list[float], int]:
    start = time.perf_counter()
    first = await client.request(method, params, timeout=300)
    cold = time.perf_counter() - start
    size = len(json.dumps(first))
    warm = []
    for _ in range(rounds):
        start = time.perf_counter()
        await client.request(method, params, timeout=300)
        warm.append(time.perf_counter() - start)
    return cold, warm, size


async def ours(work: Path, roots: list[Path], rounds: int) -> tuple[int, float]:
    home = work / "kernel-home"
    home.mkdir()
    (home / "config.toml").write_text(config_text(roots))
    env = {**os.environ, "KERNEL_HOME": str(home), "KERNEL_LOG": "warning", "HOME": str(work)}
    client = await Client.spawn(plugins=["marketplace", "skills", "fs"], home=str(home), env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    try:
        await client.initialize()
        for root in roots:
            path = root / ".agents" / "plugins" / "marketplace.json"
            await client.request(
                "plugin/install", {"marketplacePath": str(path), "pluginName": "plugin-000"}
            )
        cold, warm, size = await time_calls(client, "plugin/list", {}, rounds)
        p50, p99 = percentiles(warm)
        print(row("kernel    plugin/list     ", cold, p50, p99, f"{size / 1e6:.1f} MB"))
        icold, iwarm, isize = await time_calls(client, "plugin/installed", {}, rounds)
        ip50, ip99 = percentiles(iwarm)
        print(row("kernel    plugin/installed", icold, ip50, ip99, f"{isize / 1e3:.0f} kB"))
        return size, p50 / 1e6
    finally:
        await client.close()


def row(label: str, cold: float, p50: float, p99: float, size: str) -> str:
    """One result line: the first call in seconds, warm percentiles in microseconds."""
    return (
        f"{label}  first {cold * 1e3:8.1f} ms   warm p50 {p50 / 1e3:8.1f} ms"
        f"  p99 {p99 / 1e3:8.1f} ms  ({size})"
    )


async def reference(work: Path, roots: list[Path], rounds: int) -> float | None:
    if not REFERENCE.exists():
        print("reference: binary not found, skipped")
        return None
    home = work / "codex-home"
    home.mkdir()
    flags = "[features]\nremote_plugin = false\napps = false\n[analytics]\nenabled = false\n\n"
    (home / "config.toml").write_text(flags + config_text(roots))
    env = {
        **os.environ,
        "CODEX_HOME": str(home),
        "HOME": str(work),
        "TMPDIR": "/var/tmp",
        "RUST_LOG": "error",
    }
    client = await Client.spawn_command(
        [str(REFERENCE), "app-server"], env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await client.initialize()
        cold, warm, size = await time_calls(client, "plugin/list", {}, rounds)
        p50, p99 = percentiles(warm)
        print(row("reference plugin/list     ", cold, p50, p99, f"{size / 1e6:.1f} MB"))
        return p50 / 1e6
    finally:
        await client.close()


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--plugins", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--reference", action="store_true", help="also time the reference server")
    args = parser.parse_args()
    placement, SERVER_CPU = pin_cpus()
    print(f"{args.markets} marketplaces x {args.plugins} plugins; {placement}")
    work = Path(tempfile.mkdtemp(prefix="kmkt-", dir="/var/tmp"))
    try:
        roots = build(work / "markets", args.markets, args.plugins)
        size, warm = await ours(work, roots, args.rounds)
        base = min(floor(roots, size) for _ in range(5))
        print(f"floor     read+parse+encode in-process          {base * 1e3:8.1f} ms")
        print(f"ratio     kernel warm p50 / floor               {warm / base:8.2f}x")
        if args.reference:
            ref = await reference(work, roots, args.rounds)
            if ref is not None:
                print(f"ratio     reference warm p50 / kernel warm p50  {ref / warm:8.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
