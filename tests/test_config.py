"""Layered configuration: defaults, config.toml, -c, requirements.toml; atomic writes."""

from __future__ import annotations

import os
import stat
import tomllib

import pytest

from kernel.config import Config, ConfigError, KernelSettings, parse_override, resolve_home
from kernel.files import atomic_write


def write(home, name, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / name).write_text(text)


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("a.b=1", ["a", "b"], 1),
        ("a=true", ["a"], True),
        ('a="quoted"', ["a"], "quoted"),
        ("a=plain words", ["a"], "plain words"),
        ("a=[1, 2]", ["a"], [1, 2]),
        ("a={x = 1}", ["a"], {"x": 1}),
        ("a=", ["a"], ""),
        (" spaced.key = 3", ["spaced", "key"], 3),
    ],
)
def test_override_values_are_toml_else_strings(text, key, value):
    assert parse_override(text) == (key, value)


@pytest.mark.parametrize("text", ["novalue", "=1", "a..b=1", ".a=1"])
def test_malformed_overrides_are_rejected(text):
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        parse_override(text)


def test_layers_apply_in_order_and_remember_origins(tmp_path, caplog):
    home = tmp_path / "home"
    write(
        home,
        "config.toml",
        "[kernel]\nmax_in_flight = 10\nshutdown_grace_seconds = 2.0\n"
        "[kernel_plugins.echo]\nenabled = true\n",
    )
    write(home, "requirements.toml", "[kernel_plugins.echo]\nenabled = false\n")
    config = Config(home, ["kernel.max_in_flight=20"])
    assert config.get("kernel.max_in_flight") == 20
    assert config.origin("kernel.max_in_flight") == "-c override"
    assert config.origin("kernel.shutdown_grace_seconds") == str(home / "config.toml")
    assert config.get("kernel_plugins.echo.enabled") is False
    assert config.origin("kernel_plugins.echo.enabled").endswith("requirements.toml (managed)")
    assert config.origin("kernel.nothing_here") == f"{home / 'config.toml'}, -c override"
    assert config.origin("elsewhere") == "defaults"
    assert "kernel_plugins.echo.enabled from" in caplog.text and "is overridden by" in caplog.text
    settings = config.kernel_settings()
    assert (settings.max_in_flight, settings.shutdown_grace_seconds) == (20, 2.0)
    assert settings.max_outbound_messages == KernelSettings().max_outbound_messages


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "kernel.max_in_flight=0",
            "config error: kernel.max_in_flight: must be at least 1 (from -c override)",
        ),
        (
            "kernel.max_in_flight='many'",
            "config error: kernel.max_in_flight: expected an "
            "integer, got string (from -c override)",
        ),
        ("kernel.shutdown_grace_seconds=-1", "kernel.shutdown_grace_seconds: must not be negative"),
        ("kernel.max_inflight=3", "config error: kernel: unknown key(s): max_inflight"),
        ("kernel=3", "config error: kernel: must be a table"),
    ],
)
def test_bad_kernel_settings_name_the_key_and_layer(tmp_path, override, message):
    with pytest.raises(ConfigError) as err:
        Config(tmp_path / "home", [override]).kernel_settings()
    assert message in str(err.value)


def test_error_messages_never_contain_values(tmp_path):
    with pytest.raises(ConfigError) as err:
        Config(tmp_path, ["kernel.max_in_flight='hunter2-secret'"]).kernel_settings()
    assert "hunter2" not in str(err.value)


def test_invalid_toml_names_the_file_and_position(tmp_path):
    write(tmp_path, "config.toml", "[kernel\n")
    with pytest.raises(ConfigError) as err:
        Config(tmp_path)
    assert str(tmp_path / "config.toml") in str(err.value) and "line 1" in str(err.value)


def test_user_writes_are_atomic_and_keep_other_keys(tmp_path):
    home = tmp_path / "home"
    write(home, "config.toml", '# comment\n[kernel_plugins.echo]\nenabled = true\nprefix = "x"\n')
    os.chmod(home / "config.toml", 0o640)
    config = Config(home)
    config.set_user_value("kernel_plugins.echo.enabled", False)
    config.set_user_value("kernel.max_in_flight", 8)
    data = tomllib.loads((home / "config.toml").read_text())
    assert data == {
        "kernel_plugins": {"echo": {"enabled": False, "prefix": "x"}},
        "kernel": {"max_in_flight": 8},
    }
    assert stat.S_IMODE((home / "config.toml").stat().st_mode) == 0o640
    assert config.get("kernel.max_in_flight") == 8
    assert config.unset_user_value("kernel_plugins.echo.prefix") is True
    assert config.unset_user_value("kernel_plugins.echo.prefix") is False
    # No temp files left; the lock file serializes writers.
    assert sorted(p.name for p in home.iterdir()) == ["config.toml", "config.toml.lock"]


def test_new_config_file_is_private(tmp_path):
    config = Config(tmp_path / "fresh")
    config.set_user_value("a.b", 1)
    assert stat.S_IMODE((tmp_path / "fresh" / "config.toml").stat().st_mode) == 0o600


def test_atomic_write_leaves_old_file_intact_when_writing_fails(tmp_path):
    target = tmp_path / "data.toml"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.toml"]


def test_home_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNEL_HOME", str(tmp_path / "env"))
    assert resolve_home() == tmp_path / "env"
    assert resolve_home(str(tmp_path / "cli")) == tmp_path / "cli"
    monkeypatch.delenv("KERNEL_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_home() == tmp_path / ".kernel"
