"""fs methods never destroy what they were not asked to, whatever the spelling.

Destructive calls run in a server whose removals and renames are confined
to the test's temporary directory by an audit hook
(``tests/support/site/sitecustomize.py``): a regression is refused there,
recorded, and fails the test, instead of deleting the machine's files.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from pathlib import Path

import pytest

from tests.support.calls import b64, fails

UNSUPPORTED_TYPE, IO_ERROR, TOO_MANY_WATCHES = -32017, -32018, -32019


def refusals(jail: Path) -> str:
    log = jail / "guard-refusals.log"
    return log.read_text() if log.exists() else ""


@pytest.fixture
async def jailed(serve, tmp_path):
    """An fs server that may remove or rename only inside ``tmp_path``."""
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {"KERNEL_TEST_FS_JAIL": str(tmp_path), "HOME": str(user_home)}
    async with serve(plugins=["fs"], env=env, home=tmp_path / "kernel-home") as served:
        await served.client.initialize()
        yield served
    assert not refusals(tmp_path), "the server tried to destroy files outside the test directory"


@pytest.mark.parametrize(
    "spelling",
    ["/", "//", "/.", "/..", "/./.", "/tmp/..", "/proc/..", "/./", "///.//"],
)
async def test_remove_refuses_every_spelling_of_the_root(jailed, spelling):
    error = await fails(jailed.client, "fs/remove", {"path": spelling})
    assert error.code == -32602
    assert "refusing to remove the filesystem root" in error.message


async def test_remove_refuses_the_root_reached_through_dot_dot(jailed, tmp_path):
    depth = len(tmp_path.parts) - 1
    spelling = str(tmp_path) + "/.." * depth + "/"
    error = await fails(jailed.client, "fs/remove", {"path": spelling})
    assert "refusing to remove the filesystem root" in error.message
    error = await fails(jailed.client, "fs/remove", {"path": str(tmp_path) + "/../../"})
    assert error.code == -32602  # an ancestor of both homes


async def test_remove_refuses_the_homes_and_their_ancestors(jailed, tmp_path):
    for path in (tmp_path / "kernel-home", tmp_path / "user-home", tmp_path / "user-home" / "."):
        error = await fails(jailed.client, "fs/remove", {"path": str(path)})
        assert error.code == -32602 and "home directory" in error.message, path
    error = await fails(jailed.client, "fs/remove", {"path": str(tmp_path)})
    assert "contains the home directory" in error.message
    assert (tmp_path / "user-home").is_dir() and (tmp_path / "kernel-home").is_dir()
    # Beside them, removal works as ever.
    (tmp_path / "scratch" / "deep").mkdir(parents=True)
    assert await jailed.client.request("fs/remove", {"path": str(tmp_path / "scratch")}) == {}
    assert not (tmp_path / "scratch").exists()


async def test_allow_remove_home_lets_a_home_go_but_never_the_root(serve, tmp_path):
    user_home = tmp_path / "user-home"
    (user_home / "notes").mkdir(parents=True)
    env = {"KERNEL_TEST_FS_JAIL": str(tmp_path), "HOME": str(user_home)}
    args = ["-c", "kernel_plugins.fs.allow_remove_home=true"]
    async with serve(plugins=["fs"], env=env, args=args, home=tmp_path / "kh") as served:
        await served.client.initialize()
        assert await served.client.request("fs/remove", {"path": str(user_home)}) == {}
        assert not user_home.exists()
        error = await fails(served.client, "fs/remove", {"path": "/tmp/.."})
        assert "filesystem root" in error.message
    assert not refusals(tmp_path)


@pytest.mark.parametrize("spelling", ["{link}/", "{link}", "{link}//", "{link}/."])
async def test_remove_of_a_symlink_never_touches_its_target(jailed, tmp_path, spelling):
    target = tmp_path / "target"
    (target / "sub").mkdir(parents=True)
    (target / "keep.txt").write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(target)
    path = spelling.format(link=link)
    if path.endswith("/."):
        # "link/." names the target directory itself: it is not the link.
        error = await fails(jailed.client, "fs/remove", {"path": path, "recursive": False})
        assert error.code == -32015  # directory not empty, and nothing removed
    else:
        assert await jailed.client.request("fs/remove", {"path": path}) == {}
        assert not os.path.lexists(link)
    assert (target / "keep.txt").read_text() == "precious"
    assert (target / "sub").is_dir()


async def test_write_onto_a_fifo_is_refused_and_keeps_the_fifo(jailed, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    params = {"path": str(fifo), "dataBase64": b64(b"data")}
    error = await fails(jailed.client, "fs/writeFile", params)
    assert error.code == UNSUPPORTED_TYPE and "FIFO" in error.message
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    link = tmp_path / "to-pipe"
    link.symlink_to(fifo)
    error = await fails(jailed.client, "fs/writeFile", {**params, "path": str(link)})
    assert error.code == UNSUPPORTED_TYPE
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


async def test_write_onto_a_character_device_is_refused_and_keeps_it(jailed, tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # like /dev/null
    except PermissionError:
        pytest.skip("creating a device node needs root")
    error = await fails(jailed.client, "fs/writeFile", {"path": str(node), "dataBase64": b64(b"x")})
    assert error.code == UNSUPPORTED_TYPE and "character device" in error.message
    assert stat.S_ISCHR(os.lstat(node).st_mode)


@pytest.mark.skipif(not os.access("/proc/kmsg", os.R_OK), reason="needs a readable /proc/kmsg")
async def test_read_of_a_file_that_would_block_is_refused(serve, tmp_path):
    # /proc/kmsg is a "regular" file whose read waits for kernel messages.
    async with serve(plugins=["fs"]) as served:
        await served.client.initialize()
        async with asyncio.timeout(30):
            error = await fails(served.client, "fs/readFile", {"path": "/proc/kmsg"})
        assert error.code == UNSUPPORTED_TYPE and "would block" in error.message
        assert (await served.client.request("fs/getMetadata", {"path": "/"}))["isDirectory"]


async def test_create_directory_deeper_than_the_os_allows_is_an_fs_error(serve, tmp_path):
    # Not jailed: the guard's path checks would make 2,000 rollback steps slow,
    # and this call removes nothing but the directories it made itself.
    async with serve(plugins=["fs"]) as served:
        client = served.client
        await client.initialize()
        deep = str(tmp_path) + "/d" * 2100
        error = await fails(client, "fs/createDirectory", {"path": deep})
        assert error.code == IO_ERROR
        assert error.data["errno"] == errno.errorcode[errno.ENAMETOOLONG]
        assert not (tmp_path / "d").exists()  # what it created on the way is gone again
        shallow = str(tmp_path) + "/e" * 300
        assert await client.request("fs/createDirectory", {"path": shallow}) == {}
        assert os.path.isdir(shallow)


async def test_watch_limit_holds_exactly_under_pipelined_calls(serve, tmp_path):
    limit, calls = 16, 2000
    args = ["-c", f"kernel_plugins.fs.max_watches_per_connection={limit}"]
    async with serve(plugins=["fs"], args=args) as served:
        client = served.client
        await client.initialize()
        pending = [
            client.request_nowait("fs/watch", {"watchId": f"w{i}", "path": str(tmp_path)})
            for i in range(calls)
        ]
        await client.drain()
        results = await asyncio.gather(*pending, return_exceptions=True)
    granted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if not isinstance(r, dict)]
    assert len(granted) == limit
    assert {getattr(r, "code", None) for r in refused} == {TOO_MANY_WATCHES}
