"""The kernel's outbound-request hook: how plugins' answers combine (kernel.outbound).

Plugins here are real plugin objects loaded by a real kernel (in process:
nothing goes over the network); the attestation plugin's end-to-end
behaviour is in tests/test_attestation*.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from kernel import hookimpl
from kernel.bootstrap import build_kernel
from kernel.outbound import (
    PURPOSE_MODEL,
    PURPOSE_REALTIME,
    OutboundRefused,
    OutboundRequest,
    Refuse,
    outbound_headers,
)


class Raises:
    @hookimpl
    def kernel_outbound_request_headers(self, request: OutboundRequest) -> Any:
        raise RuntimeError("boom")


class Adds:
    def __init__(self) -> None:
        self.seen: list[OutboundRequest] = []

    @hookimpl
    async def kernel_outbound_request_headers(self, request: OutboundRequest) -> Any:
        self.seen.append(request)
        return {
            "x-first": "one",
            "Authorization": "Bearer not-yours",
            "bad name": "v",
            "x-split": "a\r\nInjected: b",
        }


class Later:
    @hookimpl
    def kernel_outbound_request_headers(self, request: OutboundRequest) -> Any:
        return {"X-FIRST": "two", "x-later": "three"}


class Refuser:
    @hookimpl
    def kernel_outbound_request_headers(self, request: OutboundRequest) -> Any:
        if request.purpose == PURPOSE_REALTIME:
            return Refuse("realtime needs a token (kernel_plugins.refuser.required)", "no_token")
        return "not a mapping"


def _kernel(tmp_path: Path, plugins: dict[str, Any]) -> Any:
    return build_kernel(
        home=tmp_path / "home", plugins=list(plugins), extra_plugins=plugins, discover=False
    )


def _request(purpose: str = PURPOSE_MODEL) -> OutboundRequest:
    return OutboundRequest(
        purpose=purpose, url="https://api.example/v1/responses", provider_id="p", attempt=2
    )


async def test_headers_combine_and_one_failing_plugin_loses_only_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    adds = Adds()
    kernel = _kernel(tmp_path, {"a_raises": Raises(), "b_adds": adds, "c_later": Later()})
    with caplog.at_level(logging.DEBUG):
        added = await outbound_headers(kernel.plugins, _request(), ["Authorization"])
    assert added == {"x-first": "one", "x-later": "three"}
    assert adds.seen == [_request()]
    text = caplog.text
    assert "a_raises" in text and "boom" in text  # logged with its traceback
    assert "'Authorization': the request already has it" in text
    assert "'X-FIRST': the request already has it" in text
    assert "'bad name': not a valid header" in text and "'x-split'" in text
    assert "not-yours" not in text and "Injected" not in text  # values are never logged


async def test_a_refusal_stops_the_request_whatever_the_others_add(tmp_path: Path):
    kernel = _kernel(tmp_path, {"adds": Adds(), "refuser": Refuser()})
    with pytest.raises(OutboundRefused) as caught:
        await outbound_headers(kernel.plugins, _request(PURPOSE_REALTIME))
    assert caught.value.plugin == "refuser"
    assert caught.value.code == "no_token"
    assert "kernel_plugins.refuser.required" in caught.value.reason


async def test_a_wrong_answer_type_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    kernel = _kernel(tmp_path, {"refuser": Refuser()})
    with caplog.at_level(logging.ERROR):
        assert await outbound_headers(kernel.plugins, _request()) == {}
    assert "expected a mapping of headers" in caplog.text


async def test_no_plugin_adds_nothing(tmp_path: Path):
    kernel = _kernel(tmp_path, {})
    assert await outbound_headers(kernel.plugins, _request()) == {}
