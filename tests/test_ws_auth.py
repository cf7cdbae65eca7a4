"""The ws_auth plugin and the authentication hooks, against real listeners."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import aiohttp
import jwt
import pytest

from tests.support.rawhttp import UPGRADE, http_get
from tests.test_cli import kernel

TOKEN = "capability-token-0123456789"
SECRET = "s3cret-" + "x" * 40
PLUGINS = ("ws_auth", "probe", "echo")


async def upgrade(server, token: str | None = None, **headers: str) -> tuple[int, str]:
    sent = dict(UPGRADE, **headers)
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    status, _, body = await http_get(server.url(), "/", sent)
    return status, body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(alg: str, claims: dict) -> str:
    """A token whose header claims ``alg``, with a junk (or empty) signature."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = "" if alg == "none" else _b64(b"not-a-real-signature")
    return f"{header}.{payload}.{signature}"


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"  {TOKEN}\n")  # surrounding whitespace is not part of the token
    return path


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    return path


async def test_capability_token_file(listen, token_file):
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    async with listen(plugins=PLUGINS, args=args) as server:
        assert await upgrade(server, TOKEN) == (101, "")
        assert await upgrade(server, f"  {TOKEN}  ") == (101, "")
        assert await upgrade(server, TOKEN + "x") == (401, "invalid websocket bearer token")
        assert await upgrade(server, "") == (401, "expected Authorization: Bearer <token>")
        assert await upgrade(server) == (401, "missing websocket bearer token")
        basic = {"Authorization": f"Basic {TOKEN}"}
        assert await upgrade(server, **basic) == (401, "expected Authorization: Bearer <token>")
        _, headers, _ = await http_get(server.url(), "/", UPGRADE)
        assert headers["www-authenticate"] == "Bearer"
        # probes stay open; Origin is refused before authentication
        assert (await http_get(server.url(), "/healthz"))[0] == 200
        refused = (403, "requests with an Origin header are refused")
        assert await upgrade(server, TOKEN, Origin="http://x") == refused
        client = await server.connect(token=TOKEN)
        await client.initialize()
        assert await client.request("echo/echo", {"message": "in"}) == {"message": "in"}
        await client.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await server.connect(token="wrong")
        assert refused.value.status == 401
        assert "(auth: capability-token)" in server.log()
        assert TOKEN not in server.log()


async def test_capability_token_sha256(listen):
    digest = hashlib.sha256(TOKEN.encode()).hexdigest().upper()
    args = ["--ws-auth", "capability-token", "--ws-token-sha256", digest]
    async with listen(plugins=PLUGINS, args=args) as server:
        assert (await upgrade(server, TOKEN))[0] == 101
        assert (await upgrade(server, "other"))[0] == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_signed_bearer_token_matrix(listen, secret_file):
    args = ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file)]
    args += ["--ws-issuer", "issuer-a", "--ws-audience", "kernel", "--ws-max-clock-skew-seconds"]
    args += ["20"]
    now = int(time.time())
    good = {"exp": now + 60, "iss": "issuer-a", "aud": "kernel", "sub": "alice"}

    def hs256(claims: dict, key: str = SECRET) -> str:
        return jwt.encode(claims, key, algorithm="HS256")

    cases = {
        "good": (hs256(good), 101, ""),
        "expired within skew": (hs256({**good, "exp": now - 5}), 101, ""),
        "expired": (hs256({**good, "exp": now - 60}), 401, "websocket jwt expired"),
        "not yet valid": (hs256({**good, "nbf": now + 60}), 401, "websocket jwt not yet valid"),
        "nbf within skew": (hs256({**good, "nbf": now + 5}), 101, ""),
        "no exp": (hs256({"iss": "issuer-a", "aud": "kernel"}), 401, "lacks the 'exp' claim"),
        "wrong issuer": (hs256({**good, "iss": "mallory"}), 401, "wrong issuer"),
        "no issuer": (hs256({"exp": now + 60, "aud": "kernel"}), 401, "lacks the 'iss' claim"),
        "wrong audience": (hs256({**good, "aud": "other"}), 401, "wrong audience"),
        "alg none": (unsigned("none", good), 401, "invalid websocket jwt"),
        "alg RS256": (unsigned("RS256", good), 401, "invalid websocket jwt"),
        "alg HS512": (jwt.encode(good, SECRET, algorithm="HS512"), 401, "invalid websocket jwt"),
        "wrong key": (hs256(good, "k" * 40), 401, "invalid websocket jwt"),
        "tampered": (hs256(good)[:-2] + "AA", 401, "invalid websocket jwt"),
        "garbage": ("not.a.jwt", 401, "invalid websocket jwt"),
        "oversized": (hs256({**good, "pad": "p" * 4000}), 401, "longer than 4096 bytes"),
        # beyond aiohttp's 8190-byte header line limit the request never parses
        "oversized header": (hs256({**good, "pad": "p" * 9000}), 400, ""),
    }
    async with listen(plugins=PLUGINS, args=args) as server:
        outcomes = {name: await upgrade(server, tok) for name, (tok, _, _) in cases.items()}
        wrong = {
            name: outcomes[name]
            for name, (_, status, reason) in cases.items()
            if outcomes[name][0] != status or reason not in outcomes[name][1]
        }
        assert not wrong, wrong
        client = await server.connect(token=hs256(good))
        await client.initialize()
        await client.close()
        assert "jwt sub=alice" in server.log()
        assert SECRET not in server.log()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_jwt_time_claims_must_be_json_numbers(listen, secret_file):
    # RFC 7519 NumericDate is a JSON number; PyJWT alone converts "9999999999".
    args = ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file)]
    now = int(time.time())
    cases = {
        "exp as a string": ({"exp": "9999999999"}, 401, "invalid websocket jwt: 'exp' is not"),
        "exp as true": ({"exp": True}, 401, "invalid websocket jwt: 'exp' is not a number"),
        "exp as a list": ({"exp": [now + 60]}, 401, "invalid websocket jwt"),
        "nbf as a string": ({"exp": now + 60, "nbf": "0"}, 401, "'nbf' is not a number"),
        "iat as a string": ({"exp": now + 60, "iat": str(now)}, 401, "'iat' is not a number"),
        "iat as false": ({"exp": now + 60, "iat": False}, 401, "'iat' is not a number"),
        "exp as a float": ({"exp": now + 60.5}, 101, ""),
        "numbers throughout": ({"exp": now + 60, "nbf": now - 1, "iat": now}, 101, ""),
    }
    async with listen(plugins=PLUGINS, args=args) as server:
        outcomes = {
            name: await upgrade(server, jwt.encode(claims, SECRET, algorithm="HS256"))
            for name, (claims, _, _) in cases.items()
        }
    wrong = {
        name: outcomes[name]
        for name, (_, status, reason) in cases.items()
        if outcomes[name][0] != status or reason not in outcomes[name][1]
    }
    assert not wrong, wrong


async def test_issuer_and_audience_are_optional(listen, secret_file):
    args = ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", str(secret_file)]
    async with listen(plugins=PLUGINS, args=args) as server:
        claims = {"exp": int(time.time()) + 60, "iss": "anyone", "aud": "anything"}
        assert (await upgrade(server, jwt.encode(claims, SECRET, algorithm="HS256")))[0] == 101


async def test_config_file_keys_work_like_flags(listen, token_file):
    args = ["-c", "kernel_plugins.ws_auth.mode='capability-token'"]
    args += ["-c", f"kernel_plugins.ws_auth.token_file='{token_file}'"]
    async with listen(plugins=PLUGINS, args=args) as server:
        assert (await upgrade(server, TOKEN))[0] == 101
        assert (await upgrade(server, "nope"))[0] == 401


async def test_non_loopback_listener_starts_with_auth(listen, token_file):
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    async with listen(listen=["ws://0.0.0.0:0"], plugins=PLUGINS, args=args) as server:
        assert server.url().startswith("ws://0.0.0.0:")
        port = server.url().rsplit(":", 1)[1]
        status, _, _ = await http_get(f"ws://127.0.0.1:{port}", "/", UPGRADE)
        assert status == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", "{short}"],
            "the shared secret is 10 bytes; at least 32 are required",
        ),
        (
            ["--ws-auth", "signed-bearer-token", "--ws-shared-secret-file", "secret.txt"],
            "--ws-shared-secret-file: expected an absolute path, got 'secret.txt'",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-file", "token.txt"],
            "--ws-token-file: expected an absolute path, got 'token.txt'",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-file", "/nonexistent/token"],
            "--ws-token-file: cannot read /nonexistent/token: No such file or directory",
        ),
        (["--ws-token-file", "{token}"], "--ws-token-file: requires --ws-auth"),
        (["--ws-auth", "capability-token"], "needs exactly one of --ws-token-file"),
        (
            [
                "--ws-auth",
                "capability-token",
                "--ws-token-file",
                "{token}",
                "--ws-token-sha256",
                "00" * 32,
            ],
            "needs exactly one of --ws-token-file",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-sha256", "abc"],
            "--ws-token-sha256: expected 64 hexadecimal digits",
        ),
        (
            ["--ws-auth", "capability-token", "--ws-token-file", "{token}", "--ws-issuer", "x"],
            "--ws-issuer: does not apply to --ws-auth capability-token",
        ),
        (
            ["--ws-auth", "signed-bearer-token", "--ws-token-sha256", "00" * 32],
            "--ws-token-sha256: does not apply to --ws-auth signed-bearer-token",
        ),
        (["--ws-auth", "signed-bearer-token"], "needs --ws-shared-secret-file ABSPATH"),
        (
            ["-c", "kernel_plugins.ws_auth.mode='magic'"],
            "kernel_plugins.ws_auth.mode: unknown mode 'magic'",
        ),
    ],
)
def test_bad_auth_configuration_refuses_to_start(tmp_path, token_file, args, message):
    short = tmp_path / "short-secret"
    short.write_text("0123456789\n")
    args = [a.format(short=short, token=token_file) for a in args]
    out = kernel(tmp_path, "run", "--plugins", "ws_auth,echo", "--listen", "off", *args)
    assert out.returncode == 1, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_disabling_ws_auth_removes_its_flags(tmp_path):
    shown = kernel(tmp_path, "run", "--help")
    assert "--ws-auth" in shown.stdout and "--ws-shared-secret-file" in shown.stdout
    hidden = kernel(tmp_path, "run", "--disable", "ws_auth", "--help")
    assert hidden.returncode == 0 and "--ws-" not in hidden.stdout
    used = kernel(tmp_path, "run", "--disable", "ws_auth", "--ws-auth", "capability-token")
    assert used.returncode == 2 and "unrecognized arguments: --ws-auth" in used.stderr


async def test_first_plugin_result_wins_and_a_crash_fails_closed(listen, token_file):
    args = ["--ws-auth", "capability-token", "--ws-token-file", str(token_file)]
    plugins = ("header_auth", "ws_auth", "echo")
    async with listen(plugins=plugins, args=args) as server:
        # header_auth (loaded first) decides when it has an opinion...
        assert (await upgrade(server, None, **{"X-Probe": "ok"}))[0] == 101
        assert await upgrade(server, TOKEN, **{"X-Probe": "no"}) == (403, "probe says no")
        # ...and ws_auth decides when it has none.
        assert (await upgrade(server, TOKEN))[0] == 101
        assert (await upgrade(server, "bad"))[0] == 401
        status, body = await upgrade(server, TOKEN, **{"X-Probe": "crash"})
        assert (status, body) == (500, "authentication is unavailable (server error)")
        assert "RuntimeError: authenticator exploded" in server.log()
        assert "(auth: probe-header, capability-token)" in server.log()


async def test_plugin_http_routes_are_guarded_like_the_upgrade(listen):
    async with listen(plugins=("header_auth", "echo")) as server:
        status, _, body = await http_get(server.url(), "/header_auth/hello", {"X-Probe": "ok"})
        assert status == 200 and json.loads(body)["hello"] == "from header_auth"
        status, _, body = await http_get(server.url(), "/header_auth/hello")
        assert (status, body) == (401, "no authentication plugin accepted this request")
        origin = {"X-Probe": "ok", "Origin": "http://x"}
        assert (await http_get(server.url(), "/header_auth/hello", origin))[0] == 403
        assert (await http_get(server.url(), "/healthz"))[0] == 200
