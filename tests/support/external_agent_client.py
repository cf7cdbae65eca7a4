"""Driving ``externalAgentConfig/*`` as a client does, for the external_agent tests.

``importer(serve, model_server, fake_home)`` starts ``kernel run`` (threads,
models, external_agent and any extra plugins) with ``$HOME`` pointing at
the fake Claude Code home and the model stand-in as provider ``mock``;
:func:`run_import` sends one import and collects its notifications up to
its completion.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from kernel.client import Client, Notification
from tests.support.agent import Agent, agent_server

__all__ = ["by_type", "importer", "items_of", "run_import", "wait_all", "wait_completed"]

PLUGINS = ("threads", "models", "external_agent")


@contextlib.asynccontextmanager
async def importer(
    serve: Any,
    model_server: Any,
    fake_home: Path,
    *,
    extra: Sequence[str] = (),
    args: Sequence[str] = (),
    home: Path | None = None,
) -> AsyncIterator[Agent]:
    """A kernel reading the other agent from ``fake_home`` (as ``$HOME``)."""
    async with agent_server(
        serve,
        model_server,
        plugins=[*PLUGINS, *extra],
        args=args,
        home=home,
        env={"HOME": str(fake_home)},
    ) as agent:
        yield agent


async def wait_all(
    client: Client, import_ids: Sequence[str], timeout: float = 300
) -> dict[str, tuple[list[Notification], Notification]]:
    """Each import's progress notifications and completion (other notifications skipped)."""
    progress: dict[str, list[Notification]] = {i: [] for i in import_ids}
    done: dict[str, tuple[list[Notification], Notification]] = {}
    while len(done) < len(progress):
        note = await client.next_notification(timeout=timeout)
        import_id = note.params.get("importId") if isinstance(note.params, dict) else None
        if import_id not in progress or not note.method.startswith("externalAgentConfig/"):
            continue
        if note.method == "externalAgentConfig/import/completed":
            done[import_id] = (progress[import_id], note)
        else:
            progress[import_id].append(note)
    return done


async def wait_completed(
    client: Client, import_id: str, timeout: float = 300
) -> tuple[list[Notification], Notification]:
    """This import's progress notifications and its completion (others are skipped)."""
    return (await wait_all(client, [import_id], timeout))[import_id]


async def run_import(
    client: Client, items: list[dict[str, Any]], **params: Any
) -> tuple[str, list[Notification], Notification]:
    """Import ``items``; returns the import id, its progress and its completion."""
    answer = await client.request("externalAgentConfig/import", {"migrationItems": items, **params})
    import_id = answer["importId"]
    progress, completed = await wait_completed(client, import_id)
    return import_id, progress, completed


def items_of(detected: dict[str, Any], kind: str, cwd: str | None = None) -> list[dict[str, Any]]:
    """The detected items of one type (and scope)."""
    return [i for i in detected["items"] if i["itemType"] == kind and i["cwd"] == cwd]


def by_type(completed: Notification) -> dict[str, dict[str, Any]]:
    """The completion's per-type results, by item type."""
    return {r["itemType"]: r for r in completed.params["itemTypeResults"]}
