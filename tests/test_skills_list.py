"""``skills/list``, ``skills/config/write``, ``skills/extraRoots/set`` and ``skills/changed``.

A real kernel subprocess over stdio, with ``HOME`` and the kernel home in
the test's temporary directory and skills written as real ``SKILL.md``
files. Every frame is checked against the reference schema by ``serve``.
"""

from __future__ import annotations

import asyncio
import os
import tomllib

from tests.support.calls import fails
from tests.support.marketplace_fixtures import marketplace_server, write_skill

SKILLS = ("skills", "fs")


def names(entry):
    return [(s["name"], s["scope"]) for s in entry["skills"]]


async def test_a_cwd_without_skills_answers_an_empty_entry_as_the_tui_expects(serve, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    async with marketplace_server(serve, tmp_path, plugins=SKILLS) as served:
        params = {"cwds": [str(empty)], "forceReload": True}
        for _ in range(2):  # the codex TUI asks twice at startup
            result = await served.client.request("skills/list", params)
            assert result == {"data": [{"cwd": str(empty), "skills": [], "errors": []}]}


async def test_scopes_order_metadata_and_parse_errors(serve, tmp_path):
    home = tmp_path / "home"
    user = tmp_path / "user"
    repo = tmp_path / "repo"
    sub = repo / "pkg" / "sub"
    sub.mkdir(parents=True)
    (repo / ".git").mkdir()
    write_skill(
        repo / ".agents" / "skills",
        "zeta",
        "repo skill",
        front="metadata:\n  short-description: zz",
    )
    write_skill(repo / ".codex" / "skills", "alpha", "from .codex")
    write_skill(sub / ".agents" / "skills", "deep", "below the root")
    write_skill(home / "skills", "mine", "user skill in the kernel home")
    write_skill(user / ".agents" / "skills", "agents", "user skill in HOME")
    write_skill(home / "skills" / ".system", "sys", "system skill")
    write_skill(repo / ".agents" / "skills", "ignored", "hidden", directory=".hidden")
    (repo / ".agents" / "skills" / "broken").mkdir()
    (repo / ".agents" / "skills" / "broken" / "SKILL.md").write_text("no frontmatter\n")
    write_skill(repo / ".agents" / "skills", "nodesc", None)
    icon = write_skill(repo / ".agents" / "skills", "fancy", "with metadata").parent
    (icon / "agents").mkdir()
    (icon / "agents" / "openai.yaml").write_text(
        "interface:\n  display_name: Fancy\n  icon_small: ./assets/s.svg\n"
        "  brand_color: '#112233'\n"
        "dependencies:\n  tools:\n    - type: mcp\n      value: docs\n"
    )
    async with marketplace_server(serve, tmp_path, plugins=SKILLS, home=home) as served:
        result = await served.client.request("skills/list", {"cwds": [str(sub)]})
    (entry,) = result["data"]
    assert entry["cwd"] == str(sub)
    assert names(entry) == [
        ("alpha", "repo"),
        ("deep", "repo"),
        ("fancy", "repo"),
        ("zeta", "repo"),
        ("agents", "user"),
        ("mine", "user"),
        ("sys", "system"),
    ]
    zeta = next(s for s in entry["skills"] if s["name"] == "zeta")
    assert zeta == {
        "name": "zeta",
        "description": "repo skill",
        "shortDescription": "zz",
        "path": str(repo / ".agents" / "skills" / "zeta" / "SKILL.md"),
        "scope": "repo",
        "enabled": True,
        "pluginId": None,
    }
    fancy = next(s for s in entry["skills"] if s["name"] == "fancy")
    assert fancy["interface"] == {
        "displayName": "Fancy",
        "shortDescription": None,
        "iconSmall": str(icon / "assets" / "s.svg"),
        "iconLarge": None,
        "brandColor": "#112233",
        "defaultPrompt": None,
        "iconSmallUrl": None,
        "iconLargeUrl": None,
    }
    assert fancy["dependencies"] == {"tools": [{"type": "mcp", "value": "docs"}]}
    errors = {os.path.basename(os.path.dirname(e["path"])): e["message"] for e in entry["errors"]}
    assert errors == {
        "broken": "missing YAML frontmatter delimited by ---",
        "nodesc": "missing field `description`",
    }


async def test_relative_missing_and_default_cwds(serve, tmp_path):
    home = tmp_path / "home"
    write_skill(home / "skills", "mine", "user skill")
    async with marketplace_server(serve, tmp_path, plugins=SKILLS, home=home) as served:
        client = served.client
        result = await client.request("skills/list", {"cwds": ["rel/dir", str(tmp_path / "nope")]})
        relative, missing = result["data"]
        assert relative["cwd"] == "rel/dir"
        assert names(relative) == [("mine", "user")]
        assert relative["errors"] == [
            {
                "path": "rel/dir",
                "message": "cwd is not an absolute path: project skills were not loaded",
            }
        ]
        assert missing == {
            "cwd": str(tmp_path / "nope"),
            "skills": relative["skills"],
            "errors": [],
        }
        default = await client.request("skills/list", {})
        assert [e["cwd"] for e in default["data"]] == [os.getcwd()]


async def test_config_write_by_name_and_path(serve, tmp_path):
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    greet = write_skill(repo / ".agents" / "skills", "greet", "says hello")
    write_skill(home / "skills", "other", "another")
    async with marketplace_server(serve, tmp_path, plugins=SKILLS, home=home) as served:
        client = served.client
        listing = {"cwds": [str(repo)]}

        async def enabled():
            (entry,) = (await client.request("skills/list", listing))["data"]
            return {s["name"]: s["enabled"] for s in entry["skills"]}

        assert await enabled() == {"greet": True, "other": True}
        write = {"name": "greet", "enabled": False}
        assert await client.request("skills/config/write", write) == {"effectiveEnabled": False}
        assert await enabled() == {"greet": False, "other": True}
        config = tomllib.loads((home / "config.toml").read_text())
        assert config["skills"]["config"] == [{"name": "greet", "enabled": False}]

        # A path rule written later wins over the name rule.
        write = {"path": str(greet), "enabled": True}
        assert await client.request("skills/config/write", write) == {"effectiveEnabled": True}
        assert await enabled() == {"greet": True, "other": True}
        write = {"path": str(greet), "enabled": False}
        assert await client.request("skills/config/write", write) == {"effectiveEnabled": False}
        config = tomllib.loads((home / "config.toml").read_text())
        assert config["skills"]["config"] == [
            {"name": "greet", "enabled": False},
            {"path": str(greet), "enabled": False},
        ]
        # Enabling by name drops that rule, and the path rule still disables the skill.
        answer = await client.request("skills/config/write", {"name": "greet", "enabled": True})
        assert answer == {"effectiveEnabled": True}
        assert await enabled() == {"greet": True, "other": True}

        for bad in ({"enabled": True}, {"name": "greet", "path": str(greet), "enabled": True}):
            error = await fails(client, "skills/config/write", bad)
            assert error.code == -32602
            assert error.message == "skills/config/write requires exactly one of path or name"
        error = await fails(
            client, "skills/config/write", {"path": "rel/SKILL.md", "enabled": True}
        )
        assert error.code == -32602 and "path" in error.message


async def test_extra_roots(serve, tmp_path):
    extra = tmp_path / "extra"
    write_skill(extra, "bonus", "from an extra root")
    async with marketplace_server(serve, tmp_path, plugins=SKILLS) as served:
        client = served.client
        params = {"cwds": [str(tmp_path)]}
        assert (await client.request("skills/list", params))["data"][0]["skills"] == []
        set_roots = {"extraRoots": [str(extra)]}
        assert await client.request("skills/extraRoots/set", set_roots) == {}
        (entry,) = (await client.request("skills/list", params))["data"]
        assert names(entry) == [("bonus", "user")]
        error = await fails(client, "skills/extraRoots/set", {"extraRoots": ["rel"]})
        assert error.code == -32602


async def test_skills_changed_when_a_skill_file_appears_or_changes(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    async with marketplace_server(serve, tmp_path, plugins=SKILLS) as served:
        client = served.client
        params = {"cwds": [str(repo)], "forceReload": True}
        assert (await client.request("skills/list", params))["data"][0]["skills"] == []
        # The root does not exist yet: creating it (and a skill in it) is seen.
        skill = write_skill(repo / ".agents" / "skills", "fresh", "new")
        note = await client.next_notification("skills/changed", timeout=10)
        assert note.params == {}
        (entry,) = (await client.request("skills/list", {"cwds": [str(repo)]}))["data"]
        assert names(entry) == [("fresh", "repo")]
        # An edit deep in an existing root is seen too, and the cached list is dropped.
        skill.write_text("---\nname: fresh\ndescription: edited\n---\n")
        await client.next_notification("skills/changed", timeout=10)
        (entry,) = (await client.request("skills/list", {"cwds": [str(repo)]}))["data"]
        assert entry["skills"][0]["description"] == "edited"


async def test_force_reload_reads_the_disk_again_at_once(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    skills = repo / ".agents" / "skills"
    write_skill(skills, "first")
    async with marketplace_server(serve, tmp_path, plugins=SKILLS) as served:
        client = served.client
        listed = await client.request("skills/list", {"cwds": [str(repo)]})
        assert [s["name"] for s in listed["data"][0]["skills"]] == ["first"]
        write_skill(skills, "second")
        # Immediately, before any watch could report the new file.
        fresh = await client.request("skills/list", {"cwds": [str(repo)], "forceReload": True})
        assert sorted(s["name"] for s in fresh["data"][0]["skills"]) == ["first", "second"]


async def _changed_until(client, params, expected, timeout=10.0):
    """Wait for ``skills/changed`` (maybe several) until ``skills/list`` shows ``expected``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await client.next_notification("skills/changed", timeout=max(0.1, deadline - loop.time()))
        (entry,) = (await client.request("skills/list", params))["data"]
        if names(entry) == expected:
            return


async def test_both_project_roots_of_a_directory_stay_watched(serve, tmp_path):
    # <repo>/.codex/skills and <repo>/.agents/skills are both missing: both
    # watches wait on <repo>. One appearing must not stop the other.
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    async with marketplace_server(serve, tmp_path, plugins=SKILLS) as served:
        client = served.client
        params = {"cwds": [str(repo)]}
        assert (await client.request("skills/list", params))["data"][0]["skills"] == []
        write_skill(repo / ".agents" / "skills", "first", "one")
        await _changed_until(client, params, [("first", "repo")])
        write_skill(repo / ".codex" / "skills", "second", "two")
        await _changed_until(client, params, [("first", "repo"), ("second", "repo")])


async def test_config_batch_write_of_skill_rules_takes_effect_and_is_announced(serve, tmp_path):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    write_skill(repo / ".agents" / "skills", "greet", "says hello")
    plugins = (*SKILLS, "config")
    async with marketplace_server(serve, tmp_path, plugins=plugins) as served:
        client = served.client
        params = {"cwds": [str(repo)]}
        (entry,) = (await client.request("skills/list", params))["data"]
        assert [s["enabled"] for s in entry["skills"]] == [True]
        rules = [{"name": "greet", "enabled": False}]
        edit = {"keyPath": "skills.config", "value": rules, "mergeStrategy": "replace"}
        answer = await client.request("config/batchWrite", {"edits": [edit]})
        assert answer["status"] == "ok"
        assert (await client.next_notification("skills/changed", timeout=10)).params == {}
        (entry,) = (await client.request("skills/list", params))["data"]
        assert [s["enabled"] for s in entry["skills"]] == [False]
        # skills/config/write goes through the same writer: announced once more.
        write = {"name": "greet", "enabled": True}
        assert await client.request("skills/config/write", write) == {"effectiveEnabled": True}
        await client.next_notification("skills/changed", timeout=10)
