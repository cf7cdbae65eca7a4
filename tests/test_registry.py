"""Registration: owners, conflicts, withdrawal, precomputed hooks."""

from __future__ import annotations

import attrs
import pytest

from kernel.rpc.converter import WireConverter
from kernel.rpc.registry import RegistrationConflict, Registry


@attrs.frozen
class P:
    snake_name: str


def handler(params, ctx):
    """Answer something.

    Longer text that is not part of the summary.
    """


async def async_handler(params, ctx):
    return None


def test_entries_record_owner_doc_and_sync_or_async():
    registry = Registry(WireConverter())
    entry = registry.registrar("alpha").method("a/one", handler, params=P)
    other = registry.registrar("alpha").method("a/two", async_handler)
    assert (entry.owner, entry.doc, entry.is_async) == ("alpha", "Answer something.", False)
    assert other.is_async and other.structure_full({"x": 1}) is None
    assert entry.structure_stable({"snakeName": "v"}) == P("v")
    assert [e.name for e in registry.owned_by("alpha")] == ["a/one", "a/two"]


def test_duplicate_names_fail_naming_both_owners():
    registry = Registry(WireConverter())
    registry.registrar("alpha").method("shared/name", handler)
    with pytest.raises(RegistrationConflict) as err:
        registry.registrar("beta").method("shared/name", handler)
    assert str(err.value) == "method 'shared/name' is declared by both 'alpha' and 'beta'"
    # The same name as a different kind is not a conflict.
    registry.registrar("beta").notification("shared/name")


def test_withdrawing_an_owner_removes_all_its_entries():
    registry = Registry(WireConverter())
    r = registry.registrar("gone")
    r.method("g/m", handler)
    r.notification("g/n")
    r.server_request("g/s")
    registry.remove_owner("gone")
    assert list(registry.entries()) == []


def test_server_request_results_are_structured():
    registry = Registry(WireConverter())
    entry = registry.registrar("x").server_request("x/ask", params=P, result=P)
    assert entry.result_stable({"snakeName": "answer"}) == P("answer")
    assert entry.unstructure_stable(P("q")) == {"snakeName": "q"}
