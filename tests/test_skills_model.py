"""Skills as the model sees them: the skills instructions, and skills the user names.

Turns run against the Responses API stand-in; the tests read what the model
was sent. The skills reach the request through the threads family's
``threads_context`` hook, as the reference sends them: a ``developer``
message after the base instructions, before the environment context.
"""

from __future__ import annotations

from tests.support.agent import agent_server
from tests.support.marketplace_fixtures import write_skill
from tests.support.model_server import text

PLUGINS = ("threads", "models", "skills", "fs")


def texts(item):
    return [part.get("text", "") for part in item.get("content", [])]


def skills_message(body):
    found = [i for i in body["input"] if any("<skills_instructions>" in t for t in texts(i))]
    return found[0] if found else None


async def start(agent, cwd):
    thread = await agent.start(cwd=str(cwd))
    return thread["thread"]["id"]


async def test_the_skills_list_reaches_every_request_after_the_instructions(
    serve, model_server, tmp_path
):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    greet = write_skill(repo / ".agents" / "skills", "greet", "Say hello nicely")
    write_skill(repo / ".agents" / "skills", "quiet", "Never offered", front="")
    quiet_meta = repo / ".agents" / "skills" / "quiet" / "agents"
    quiet_meta.mkdir()
    (quiet_meta / "openai.yaml").write_text("policy:\n  allow_implicit_invocation: false\n")
    home = tmp_path / "home"
    env = {"HOME": str(tmp_path / "user")}
    model_server.responses.extend([text("one"), text("two")])
    async with agent_server(serve, model_server, plugins=PLUGINS, env=env, home=home) as agent:
        thread_id = await start(agent, repo)
        await agent.turn(thread_id, "hello")
        await agent.turn(thread_id, "again")
    first, second = (r.body for r in model_server.requests)
    message = skills_message(first)
    assert message is not None and message["role"] == "developer"
    roles = [(i.get("role"), texts(i)[0][:22]) for i in first["input"]]
    assert roles[1] == ("developer", "<skills_instructions>\n")
    assert roles[2][1].startswith("<environment_context>")
    (body,) = texts(message)
    assert f"- greet: Say hello nicely (file: {greet})" in body
    assert "quiet" not in body  # allow_implicit_invocation: false keeps it off the list
    assert body.endswith("</skills_instructions>")
    assert skills_message(second) == message  # every turn, the same prefix (cache friendly)
    assert sum(1 for i in second["input"] if i in (message,)) == 1


async def test_a_named_skill_joins_the_conversation_after_the_user_message(
    serve, model_server, tmp_path
):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    greet = write_skill(repo / ".agents" / "skills", "greet", "Say hello", body="# Greet\nWave.\n")
    other = write_skill(repo / ".agents" / "skills", "other", "Other", body="# Other\n")
    off = write_skill(repo / ".agents" / "skills", "off", "Disabled one", body="# Off\n")
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[[skills.config]]\nname = "off"\nenabled = false\n')
    env = {"HOME": str(tmp_path / "user")}
    model_server.responses.extend([text("done"), text("done")])
    async with agent_server(serve, model_server, plugins=PLUGINS, env=env, home=home) as agent:
        thread_id = await start(agent, repo)
        await agent.turn(thread_id, "please $greet them, not $HOME and not $off")
        structured = [
            {"type": "text", "text": "use this"},
            {"type": "skill", "name": "other", "path": str(other)},
        ]
        await agent.client.request("turn/start", {"threadId": thread_id, "input": structured})
        await agent.until("turn/completed")
    first, second = (r.body for r in model_server.requests)
    tail = first["input"][-2:]
    assert tail[0]["role"] == "user" and "please $greet" in texts(tail[0])[0]
    assert tail[1]["role"] == "user"
    assert texts(tail[1]) == [
        f"<skill>\n<name>greet</name>\n<path>{greet}</path>\n" + greet.read_text() + "\n</skill>"
    ]
    listing = texts(skills_message(first))[0]
    assert "- off:" not in listing and str(off) not in str(first["input"])
    injected = [t for i in second["input"] for t in texts(i) if t.startswith("<skill>")]
    assert [t.split("\n")[1] for t in injected] == ["<name>greet</name>", "<name>other</name>"]


async def test_no_skills_no_message(serve, model_server, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"HOME": str(tmp_path / "user")}
    async with agent_server(serve, model_server, plugins=PLUGINS, env=env) as agent:
        thread_id = await start(agent, empty)
        await agent.turn(thread_id, "hi")
    (request,) = model_server.requests
    assert skills_message(request.body) is None
    assert [i.get("role") for i in request.body["input"]] == ["developer", "user", "user"]
