"""The marketplace family's file work never runs on the event loop.

In process (``inproc``), with ``shutil.rmtree`` and the catalog module's
``open`` wrapped to record the thread they run in: deleting a clone or an
unpacked download, and writing a downloaded bundle, must happen in the
kernel's blocking threads, not on the loop's thread (a big tree or a slow
disk would stall every connection).
"""

from __future__ import annotations

import builtins
import shutil
import threading
from typing import Any

from plugins_builtin.marketplace import catalog as catalog_module
from tests.support.calls import fails
from tests.support.marketplace_catalog import CatalogServer, tar_bundle
from tests.support.marketplace_fixtures import commit_all, git, make_bundle, make_marketplace


class _Recorded:
    """A file whose writes record their thread."""

    def __init__(self, handle: Any, threads: list[tuple[str, int]]) -> None:
        self._handle = handle
        self._threads = threads

    def write(self, data: bytes) -> int:
        self._threads.append(("write", threading.get_ident()))
        return int(self._handle.write(data))

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _Recorded:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def test_deletions_and_download_writes_run_in_blocking_threads(inproc, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    threads: list[tuple[str, int]] = []
    real_rmtree, real_open = shutil.rmtree, builtins.open

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        threads.append((f"rmtree {path}", threading.get_ident()))
        real_rmtree(path, *args, **kwargs)

    def opener(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        threads.append((f"open {path}", threading.get_ident()))
        return _Recorded(real_open(path, mode, *args, **kwargs), threads)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    monkeypatch.setattr(catalog_module, "open", opener, raising=False)

    source = tmp_path / "bundle-src"
    make_bundle(source / "sub", "hop", skills={"hop": "Hops"})
    commit_all(source)
    bare = tmp_path / "bundle.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    entry = {"name": "hop", "source": {"source": "url", "url": f"file://{bare}", "path": "sub"}}
    market = make_marketplace(tmp_path / "repo", "git-mkt", [entry])
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README").write_text("no marketplace here")
    commit_all(plain)

    loop_thread = threading.get_ident()
    async with CatalogServer() as catalog:
        bundle = make_bundle(tmp_path / "src" / "alpha", "alpha", version="2.0")
        catalog.bundles["alpha.tar.gz"] = tar_bundle(bundle)
        catalog.marketplaces = [
            {
                "name": "team",
                "plugins": [
                    {"id": "pl_alpha", "name": "alpha", "bundleUrl": "bundles/alpha.tar.gz"}
                ],
            }
        ]
        overrides = [f'kernel_plugins.marketplace.catalog_url="{catalog.url}"']
        plugins = ["marketplace", "process"]
        async with inproc(plugins=plugins, overrides=overrides) as client:
            await client.initialize()
            remote = {"remoteMarketplaceName": "team", "pluginName": "alpha"}
            await client.request("plugin/install", remote)  # download, unpack, delete
            local = {"marketplacePath": str(market), "pluginName": "hop"}
            await client.request("plugin/install", local)  # clone, copy, delete the clone
            # cloned, then refused (no marketplace file): the clone is deleted
            await fails(client, "marketplace/add", {"source": f"file://{plain}"})
    kinds = {what.split(" ", 1)[0] for what, _ in threads}
    assert kinds == {"rmtree", "open", "write"}
    on_loop = [what for what, thread in threads if thread == loop_thread]
    assert on_loop == []
