"""Guardian: what an automatic approval review adds beyond the reviewer model's own time.

A kernel (threads, models, agent_tools, process, sandbox, guardian) runs
against the model stand-in. Each turn the model asks to run ``true``
outside the sandbox (``sandbox_permissions: require_escalated`` under
``on-request``), which needs an approval; the turn's second answer is text.
Interleaved, in the same run:

* reviewed: ``approvalsReviewer: "auto_review"``; the stand-in answers the
  reviewer request with ``{"outcome": "allow"}`` after ``--model-ms``
  (standing in for the reviewer model's thinking);
* client: ``approvalsReviewer: "user"``; the client answers ``accept`` at once.

Measured per approval, all clocks in this process:

* reviewer time: the stand-in's time for the reviewer request (arrival to
  the last event written);
* review latency: the client's receipt of the command's ``item/started``
  to its receipt of ``item/autoApprovalReview/completed``;
* added: review latency minus reviewer time (building the prompt and
  transcript, the HTTP request, parsing the answer, the notifications);
* client approval: ``item/started`` to ``serverRequest/resolved`` when the
  client answers at once (one server→client round trip), for scale.

Also timed in-process: building the reviewer's input from a long history.

    python benchmarks/guardian.py
    python benchmarks/guardian.py --turns 200 --model-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from _common import pin_cpus

from kernel.client import Client
from plugins_builtin.guardian.prompt import review_input
from tests.support.agent import provider_args
from tests.support.guardian_model import GuardianModelServer, reviewer_says
from tests.support.model_server import Scripted, function_call, sleep, text

SERVER_CPU: int | None = None
ESCALATED = json.dumps({"cmd": "true", "login": False, "sandbox_permissions": "require_escalated"})


async def spawn_kernel(model: GuardianModelServer) -> Client:
    home = tempfile.mkdtemp(prefix="kernel-guardian-bench-")
    env = {**os.environ, "KERNEL_HOME": home, "KERNEL_LOG": "warning"}
    plugins = ["threads", "models", "agent_tools", "process", "sandbox", "guardian"]
    client = await Client.spawn(*provider_args(model.base_url), plugins=plugins, home=home, env=env)
    if SERVER_CPU is not None and client.process is not None:
        os.sched_setaffinity(client.process.pid, {SERVER_CPU})
    await client.initialize(experimental=True)
    return client


async def one_turn(
    client: Client, model: GuardianModelServer, thread_id: str, key: str, model_s: float | None
) -> dict[str, float]:
    """One turn with one approval (reviewed when ``model_s`` is given): the client's receipt
    times of the notifications that matter."""
    model.responses.extend([function_call("exec_command", ESCALATED, call_id=key), text("ok")])
    if model_s is not None:
        allow = reviewer_says("allow", "low", "high", "fine", sleep(model_s))
        # Marked just before its last event: the kernel may hang up once it has read that one.
        model.reviews.append(Scripted(steps=[*allow.steps[:-1], {"mark": key}, allow.steps[-1]]))
    await client.request(
        "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]}
    )
    seen: dict[str, float] = {}
    while True:
        note = await client.next_notification(timeout=30)
        now = time.monotonic()
        item = (note.params or {}).get("item") or {}
        if note.method == "item/started" and item.get("type") == "commandExecution":
            seen["item"] = now
        elif note.method in ("item/autoApprovalReview/completed", "serverRequest/resolved"):
            seen.setdefault("decided", now)
        elif note.method == "turn/completed":
            assert note.params["turn"]["status"] == "completed", note.params
            return seen


def transcript_cost(items: int) -> float:
    """Seconds to build the reviewer's input from a history of ``items`` items."""

    def message(role: str, kind: str, size: int) -> dict[str, object]:
        return {"type": "message", "role": role, "content": [{"type": kind, "text": "x" * size}]}

    history: list[dict[str, object]] = []
    for n in range(items // 4):
        call = {"call_id": f"c{n}", "name": "exec_command", "arguments": "{}"}
        history += [
            message("user", "input_text", 200),
            {"type": "function_call", **call},
            {"type": "function_call_output", "call_id": f"c{n}", "output": "y" * 2000},
            message("assistant", "output_text", 300),
        ]
    settings = {"cwd": "/tmp", "sandbox": "read-only", "approval_policy": "on-request"}
    action = {"tool": "exec_command", "command": "true", "cwd": "/tmp"}
    runs = 20
    start = time.perf_counter()
    for _ in range(runs):
        review_input("t", settings, history, action)
    return (time.perf_counter() - start) / runs


async def main() -> None:
    global SERVER_CPU
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--model-ms", type=float, default=20.0)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        sys.exit("bubblewrap (bwrap) is not installed: the agent's tools cannot run")
    placement = "not pinned (--no-pin)"
    if not args.no_pin:
        placement, SERVER_CPU = pin_cpus()
    model_s = args.model_ms / 1000
    async with GuardianModelServer() as model:
        client = await spawn_kernel(model)

        async def accept(params: dict[str, object]) -> dict[str, str]:
            return {"decision": "accept"}

        client.on_request("item/commandExecution/requestApproval", accept)
        cwd = tempfile.mkdtemp(prefix="kernel-guardian-cwd-")
        threads = {}
        for reviewer in ("auto_review", "user"):
            start = {"cwd": cwd, "approvalPolicy": "on-request", "approvalsReviewer": reviewer}
            threads[reviewer] = (await client.request("thread/start", start))["thread"]["id"]
        added, review, reviewer_time, client_time = [], [], [], []
        for n in range(args.turns + 5):  # the first 5 rounds warm up
            key = f"r{n}"
            seen = await one_turn(client, model, threads["auto_review"], key, model_s)
            own = model.marks[key] - model.reviewer_requests()[-1].at
            plain = await one_turn(client, model, threads["user"], f"u{n}", None)
            if n >= 5:
                reviewer_time.append(own)
                review.append(seen["decided"] - seen["item"])
                added.append(seen["decided"] - seen["item"] - own)
                client_time.append(plain["decided"] - plain["item"])
        await client.close()
    ms = 1000.0
    med = statistics.median
    print(placement)
    print(f"reviewed approvals, {args.turns} turns, the reviewer answers after {args.model_ms} ms")
    print(f"    reviewer model's own time     p50 {med(reviewer_time) * ms:7.2f} ms")
    print(f"    review latency                p50 {med(review) * ms:7.2f} ms")
    q = statistics.quantiles(added, n=100)
    print(
        f"    added by the review           p50 {med(added) * ms:7.2f} ms  p99 {q[98] * ms:7.2f} ms"
        f"  = x{med(added) / med(reviewer_time):.2f} of the reviewer's own time"
    )
    print(
        f"    client approval (instant)     p50 {med(client_time) * ms:7.2f} ms"
        f"  (added review cost = x{med(added) / med(client_time):.2f} of a client round trip)"
    )
    for size in (100, 1000, 4000):
        cost = transcript_cost(size)
        print(f"    reviewer input from {size:>4} history items: {cost * 1e6:8.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
