"""The fs plugin over real stdio: every method, its defaults and its errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import stat
import threading
import time

import pytest

from tests.support.calls import b64, fails

NOT_FOUND, NOT_A_DIRECTORY, IS_A_DIRECTORY, PERMISSION_DENIED = -32010, -32011, -32012, -32013
ALREADY_EXISTS, DIRECTORY_NOT_EMPTY, TOO_LARGE, UNSUPPORTED_TYPE = -32014, -32015, -32016, -32017


@pytest.fixture
async def fs(serve):
    async with serve(plugins=["fs"]) as served:
        await served.client.initialize()
        yield served.client


@pytest.mark.parametrize(
    ("method", "params", "field"),
    [
        ("fs/readFile", {"path": "rel/f.txt"}, "path"),
        ("fs/writeFile", {"path": "f.txt", "dataBase64": ""}, "path"),
        ("fs/createDirectory", {"path": "newdir"}, "path"),
        ("fs/getMetadata", {"path": "."}, "path"),
        ("fs/readDirectory", {"path": ""}, "path"),
        ("fs/remove", {"path": "victim"}, "path"),
        ("fs/copy", {"sourcePath": "a", "destinationPath": "/tmp/b"}, "sourcePath"),
        ("fs/copy", {"sourcePath": "/tmp/a", "destinationPath": "b"}, "destinationPath"),
        ("fs/watch", {"watchId": "w", "path": "rel"}, "path"),
    ],
)
async def test_relative_paths_are_invalid_params_and_touch_nothing(
    serve, tmp_path, method, params, field
):
    async with serve(plugins=["fs"], home=tmp_path / "home") as served:
        await served.client.initialize()
        before = set(os.listdir(os.getcwd()))
        error = await fails(served.client, method, params)
        assert error.code == -32602
        assert error.message.startswith(f"Invalid params: {field}: expected an absolute path")
        assert error.data["problems"][0]["path"] == field
        assert set(os.listdir(os.getcwd())) == before


async def test_read_and_write_round_trip_every_byte(fs, tmp_path):
    data = bytes(range(256)) * 17
    path = str(tmp_path / "bytes.bin")
    assert await fs.request("fs/writeFile", {"path": path, "dataBase64": b64(data)}) == {}
    assert (tmp_path / "bytes.bin").read_bytes() == data
    result = await fs.request("fs/readFile", {"path": path})
    assert base64.b64decode(result["dataBase64"]) == data
    empty = str(tmp_path / "empty")
    await fs.request("fs/writeFile", {"path": empty, "dataBase64": ""})
    assert await fs.request("fs/readFile", {"path": empty}) == {"dataBase64": ""}


async def test_read_and_write_errors(fs, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    cases = [
        ("fs/readFile", {"path": f"{tmp_path}/missing"}, NOT_FOUND, "not found: "),
        ("fs/readFile", {"path": f"{tmp_path}/dir"}, IS_A_DIRECTORY, "is a directory: "),
        ("fs/readFile", {"path": f"{tmp_path}/fifo"}, UNSUPPORTED_TYPE, "unsupported file type"),
        ("fs/readFile", {"path": f"{tmp_path}/file/x"}, NOT_A_DIRECTORY, "not a directory"),
        (
            "fs/writeFile",
            {"path": f"{tmp_path}/nodir/f", "dataBase64": ""},
            NOT_FOUND,
            f"not found: {tmp_path}/nodir (parent of {tmp_path}/nodir/f)",
        ),
        (
            "fs/writeFile",
            {"path": f"{tmp_path}/file/f", "dataBase64": ""},
            NOT_A_DIRECTORY,
            f"not a directory: {tmp_path}/file (parent of",
        ),
        ("fs/writeFile", {"path": f"{tmp_path}/dir", "dataBase64": ""}, IS_A_DIRECTORY, "is a"),
    ]
    for method, params, code, text in cases:
        error = await fails(fs, method, params)
        assert (error.code, text in error.message) == (code, True), (method, params, error)
        assert error.data["path"].startswith(str(tmp_path))
    for bad in ("!!", "aGVs bG8=", "aGVsbG8", "-_-_"):
        error = await fails(fs, "fs/writeFile", {"path": f"{tmp_path}/b", "dataBase64": bad})
        assert error.code == -32602 and error.message.startswith(
            "Invalid params: dataBase64: not valid base64"
        )
    assert not (tmp_path / "b").exists()


async def test_write_is_atomic_keeps_mode_and_follows_symlinks(fs, tmp_path):
    target = tmp_path / "kept.sh"
    target.write_text("old")
    target.chmod(0o751)
    await fs.request("fs/writeFile", {"path": str(target), "dataBase64": b64(b"new")})
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o751
    fresh = tmp_path / "fresh"
    await fs.request("fs/writeFile", {"path": str(fresh), "dataBase64": b64(b"x")})
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~_umask()
    link = tmp_path / "link"
    link.symlink_to(target)
    await fs.request("fs/writeFile", {"path": str(link), "dataBase64": b64(b"via link")})
    assert link.is_symlink() and target.read_text() == "via link"
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert leftovers == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_a_reader_never_sees_a_torn_file(fs, tmp_path):
    path = tmp_path / "contended"
    size = 1 << 20
    contents = [b"a" * size, b"b" * size]
    path.write_bytes(contents[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            seen.add(data[:1] + data[-1:] + bytes([len(set(data))]) + len(data).to_bytes(4, "big"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            await fs.request(
                "fs/writeFile", {"path": str(path), "dataBase64": b64(contents[i % 2])}
            )
    finally:
        stop.set()
        thread.join()
    whole = {b"aa\x01" + size.to_bytes(4, "big"), b"bb\x01" + size.to_bytes(4, "big")}
    assert seen and seen <= whole, seen - whole


async def test_create_directory(fs, tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    assert await fs.request("fs/createDirectory", {"path": str(deep)}) == {}
    assert deep.is_dir()
    await fs.request("fs/createDirectory", {"path": str(deep), "recursive": None})  # exists: fine
    error = await fails(fs, "fs/createDirectory", {"path": str(deep), "recursive": False})
    assert error.code == ALREADY_EXISTS
    missing = tmp_path / "x" / "y"
    error = await fails(fs, "fs/createDirectory", {"path": str(missing), "recursive": False})
    assert error.code == NOT_FOUND
    (tmp_path / "file").write_text("")
    error = await fails(fs, "fs/createDirectory", {"path": str(tmp_path / "file")})
    assert error.code == ALREADY_EXISTS and error.message == f"already exists: {tmp_path}/file"


async def test_get_metadata(fs, tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "f")
    (tmp_path / "dlink").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(tmp_path / "fifo")
    expected = {
        "f": (False, True, False),
        "d": (True, False, False),
        "link": (False, True, True),
        "dlink": (True, False, True),
        "dangling": (False, False, True),
        "fifo": (False, False, False),
    }
    for name, flags in expected.items():
        meta = await fs.request("fs/getMetadata", {"path": str(tmp_path / name)})
        assert (meta["isDirectory"], meta["isFile"], meta["isSymlink"]) == flags, name
        assert meta["createdAtMs"] >= 0
    meta = await fs.request("fs/getMetadata", {"path": str(tmp_path / "f")})
    assert abs(meta["modifiedAtMs"] - (tmp_path / "f").stat().st_mtime * 1000) < 2
    assert (await fails(fs, "fs/getMetadata", {"path": f"{tmp_path}/nope"})).code == NOT_FOUND


async def test_read_directory(fs, tmp_path):
    tmp_path = tmp_path / "listed"  # the fixture keeps the server's home beside it
    tmp_path.mkdir()
    (tmp_path / "b.txt").write_text("")
    (tmp_path / "a-dir").mkdir()
    (tmp_path / "a-dir" / "nested.txt").write_text("")
    (tmp_path / "c-link").symlink_to(tmp_path / "a-dir")
    (tmp_path / "d-dangling").symlink_to(tmp_path / "nowhere")
    result = await fs.request("fs/readDirectory", {"path": str(tmp_path)})
    assert result["entries"] == [
        {"fileName": "a-dir", "isDirectory": True, "isFile": False},
        {"fileName": "b.txt", "isDirectory": False, "isFile": True},
        {"fileName": "c-link", "isDirectory": True, "isFile": False},
        {"fileName": "d-dangling", "isDirectory": False, "isFile": False},
    ]
    error = await fails(fs, "fs/readDirectory", {"path": str(tmp_path / "b.txt")})
    assert error.code == NOT_A_DIRECTORY
    error = await fails(fs, "fs/readDirectory", {"path": str(tmp_path / "none")})
    assert error.code == NOT_FOUND


async def test_remove(fs, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("")
    assert await fs.request("fs/remove", {"path": str(tmp_path / "missing")}) == {}
    error = await fails(fs, "fs/remove", {"path": str(tmp_path / "missing"), "force": False})
    assert error.code == NOT_FOUND
    error = await fails(fs, "fs/remove", {"path": str(tree), "recursive": False})
    assert error.code == DIRECTORY_NOT_EMPTY and tree.exists()
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious").write_text("")
    (tmp_path / "link").symlink_to(keep)
    await fs.request("fs/remove", {"path": str(tmp_path / "link")})
    assert not (tmp_path / "link").exists() and (keep / "precious").exists()
    await fs.request("fs/remove", {"path": str(tree)})
    assert not tree.exists()
    (tmp_path / "empty").mkdir()
    await fs.request("fs/remove", {"path": str(tmp_path / "empty"), "recursive": False})
    error = await fails(fs, "fs/remove", {"path": "/"})
    assert error.code == -32602 and "filesystem root" in error.message


async def test_copy(fs, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "f.txt").write_text("file")
    (src / "sub" / "g.txt").write_text("nested")
    (src / "f.txt").chmod(0o640)
    (src / "link").symlink_to("f.txt")
    (src / "dangling").symlink_to("/nowhere")
    os.mkfifo(src / "fifo")
    dst = tmp_path / "dst"
    error = await fails(fs, "fs/copy", {"sourcePath": str(src), "destinationPath": str(dst)})
    assert error.code == -32602 and error.data["problems"][0]["path"] == "recursive"
    params = {"sourcePath": str(src), "destinationPath": str(dst), "recursive": True}
    assert await fs.request("fs/copy", params) == {}
    assert sorted(os.listdir(dst)) == ["dangling", "f.txt", "link", "sub"]  # FIFO skipped
    assert os.readlink(dst / "link") == "f.txt" and os.readlink(dst / "dangling") == "/nowhere"
    assert (dst / "sub" / "g.txt").read_text() == "nested"
    assert stat.S_IMODE((dst / "f.txt").stat().st_mode) == 0o640
    assert (await fails(fs, "fs/copy", params)).code == ALREADY_EXISTS
    inside = {**params, "destinationPath": str(src / "sub" / "copy")}
    error = await fails(fs, "fs/copy", inside)
    assert error.code == -32602 and error.data["problems"][0]["path"] == "destinationPath"
    # files: overwrite, onto itself, into a directory
    other = tmp_path / "other.txt"
    other.write_text("old")
    await fs.request("fs/copy", {"sourcePath": str(src / "f.txt"), "destinationPath": str(other)})
    assert other.read_text() == "file"
    same = {"sourcePath": str(other), "destinationPath": str(other)}
    assert await fs.request("fs/copy", same) == {} and other.read_text() == "file"
    into_dir = {"sourcePath": str(other), "destinationPath": str(dst)}
    assert (await fails(fs, "fs/copy", into_dir)).code == IS_A_DIRECTORY
    # a symlink is copied as a link; a FIFO is refused; a missing source is not found
    link_copy = tmp_path / "link-copy"
    await fs.request(
        "fs/copy", {"sourcePath": str(src / "link"), "destinationPath": str(link_copy)}
    )
    assert os.readlink(link_copy) == "f.txt"
    fifo = {"sourcePath": str(src / "fifo"), "destinationPath": str(tmp_path / "f2")}
    assert (await fails(fs, "fs/copy", fifo)).code == UNSUPPORTED_TYPE
    missing = {"sourcePath": str(tmp_path / "none"), "destinationPath": str(tmp_path / "x")}
    assert (await fails(fs, "fs/copy", missing)).code == NOT_FOUND


async def test_permission_denied_is_its_own_error(serve, tmp_path):
    """As root, the server runs without CAP_DAC_OVERRIDE so file modes apply to it."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret").write_text("s")
    (tmp_path / "secret").write_text("s")
    (tmp_path / "secret").chmod(0)
    async with serve(plugins=["fs"], prefix=prefix) as served:
        client = served.client
        await client.initialize()
        locked.chmod(0o500)  # read and list, but no new entries
        try:
            error = await fails(client, "fs/readFile", {"path": str(tmp_path / "secret")})
            assert error.code == PERMISSION_DENIED
            assert error.message == f"permission denied: {tmp_path}/secret"
            error = await fails(
                client, "fs/writeFile", {"path": str(locked / "new"), "dataBase64": ""}
            )
            assert error.code == PERMISSION_DENIED
            error = await fails(client, "fs/remove", {"path": str(locked / "secret")})
            assert error.code == PERMISSION_DENIED
            locked.chmod(0)
            error = await fails(client, "fs/readDirectory", {"path": str(locked)})
            assert error.code == PERMISSION_DENIED
            error = await fails(client, "fs/watch", {"watchId": "w", "path": str(locked)})
            assert error.code == PERMISSION_DENIED
            # the failed watch left nothing behind: the id is free
            await client.request("fs/watch", {"watchId": "w", "path": str(tmp_path)})
        finally:
            locked.chmod(0o700)


async def test_size_limit_for_read_and_write(serve, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2000)
    args = ["-c", "kernel_plugins.fs.max_file_bytes=1000"]
    async with serve(plugins=["fs"], args=args) as served:
        client = served.client
        await client.initialize()
        error = await fails(client, "fs/readFile", {"path": str(big)})
        assert error.code == TOO_LARGE
        assert "exceeds the limit of 0.0 MiB (kernel_plugins.fs.max_file_bytes)" in error.message
        assert (error.data["size"], error.data["limit"]) == (2000, 1000)
        params = {"path": str(tmp_path / "w"), "dataBase64": b64(b"y" * 1500)}
        assert (await fails(client, "fs/writeFile", params)).code == TOO_LARGE
        assert not (tmp_path / "w").exists()


def test_a_limit_that_cannot_fit_in_a_message_refuses_to_start(tmp_path):
    from tests.test_cli import kernel

    out = kernel(
        tmp_path, "run", "--plugins", "fs", "-c", "kernel_plugins.fs.max_file_bytes=200000000"
    )
    assert out.returncode == 1
    assert (
        "kernel_plugins.fs.max_file_bytes: a file of 200000000 bytes needs a message of"
        in out.stderr
    )


def _peak_rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
async def test_a_64_mib_file_round_trips_within_a_few_copies_of_memory(serve, tmp_path):
    size = 64 << 20
    data = os.urandom(1 << 20) * 64
    path = tmp_path / "large.bin"
    path.write_bytes(data)
    async with serve(plugins=["fs"]) as served:
        client = served.client
        await client.initialize()
        await client.request("fs/getMetadata", {"path": str(path)})
        baseline = _peak_rss(served.process.pid)
        started = time.perf_counter()
        result = await client.request("fs/readFile", {"path": str(path)})
        elapsed = time.perf_counter() - started
        assert hashlib.sha256(base64.b64decode(result["dataBase64"])).digest() == (
            hashlib.sha256(data).digest()
        )
        grown = _peak_rss(served.process.pid) - baseline
        # raw bytes (1), base64 text (4/3), encoded frame (4/3): about 3.7 copies
        assert grown < 5 * size, f"peak RSS grew {grown / size:.1f}x the file ({elapsed:.2f}s)"
        target = tmp_path / "written.bin"
        encoded = result["dataBase64"]
        del result
        await client.request("fs/writeFile", {"path": str(target), "dataBase64": encoded})
        assert target.stat().st_size == size
        assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()


async def test_other_requests_flow_while_a_large_file_is_read(serve, tmp_path):
    path = tmp_path / "large.bin"
    path.write_bytes(b"z" * (48 << 20))
    async with serve(plugins=["fs", "echo"]) as served:
        client = served.client
        await client.initialize()
        slow = asyncio.ensure_future(client.request("fs/readFile", {"path": str(path)}))
        answered = await client.request("echo/echo", {"message": "quick"})
        assert answered == {"message": "quick"}
        assert not slow.done()  # the read runs in a worker thread, not on the loop
        assert len((await slow)["dataBase64"]) == (48 << 20) * 4 // 3
