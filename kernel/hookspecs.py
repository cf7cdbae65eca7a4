"""The plugin contract: every hook the kernel calls, and when.

A plugin is any object (a module, or a class the kernel instantiates once per
kernel) whose functions are marked with :data:`hookimpl` and named after the
hooks below. It is found through the ``kernel.plugins`` entry-point group;
the entry-point name is the plugin's name everywhere (``--plugins``,
``--disable``, ``[kernel_plugins.<name>]`` in config.toml).

How results combine, for every hook here: the kernel calls each plugin's
implementation on its own, so one plugin's exception never hides another
plugin's result. What happens to the failing plugin depends on the stage and
is stated per hook. The order is load order (``--plugins`` order, else by
name), adjusted by pluggy's markers: ``@hookimpl(tryfirst=True)`` runs
before the others, ``trylast=True`` after them. A wrapper
(``@hookimpl(wrapper=True)``, or the older ``hookwrapper=True``) runs around
*each* plugin's implementation, with that plugin's arguments, exactly as
pluggy runs wrappers. An implementation may be ``async def`` wherever a
hook says "may be async" (marked :func:`may_be_async`); the kernel awaits
it, and a wrapper around such a hook is refused at load time (a generator
cannot await).

Families that publish hooks of their own call them through
``kernel.plugins.call``, ``acall`` or ``first``
(:class:`kernel.plugins.PluginHost`), which give them the same isolation.

Each hook's docstring has the same sections: *When*, *Parameters*,
*Returns*, *Errors*. ``tests/test_hook_docs.py`` fails if one is missing, and
docs/hooks.md must mention every hook.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from .auth import AuthResult
    from .connection import Connection
    from .handshake import InitializeParams
    from .outbound import OutboundRequest
    from .plugin_config import PluginConfig
    from .rpc.registry import Registrar
    from .runtime import Kernel

__all__ = [
    "MAY_BE_ASYNC",
    "PROJECT",
    "KernelSpec",
    "OptionGroup",
    "hookimpl",
    "hookspec",
    "may_be_async",
]

PROJECT = "kernel"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

MAY_BE_ASYNC = "__kernel_may_be_async__"
F = TypeVar("F", bound=Callable[..., Any])


def may_be_async(spec: F) -> F:
    """Mark a hook specification whose implementations may be ``async def``.

    The kernel awaits what such implementations return, and refuses a
    wrapper around the hook at load time. Families mark their own
    published hooks the same way.
    """
    setattr(spec, MAY_BE_ASYNC, True)
    return spec


class OptionGroup(Protocol):
    """The part of an argparse argument group a plugin uses."""

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        """Add one option, exactly as ``argparse.ArgumentParser.add_argument``."""
        ...


class KernelSpec:
    """Hook specifications of the kernel (see each method)."""

    @hookspec
    def kernel_add_hookspecs(self, pluginmanager: pluggy.PluginManager) -> None:
        """Publish a family's own hooks for other plugins to implement.

        When: once, right after all selected plugins are registered and before
        any other hook; call ``pluginmanager.add_hookspecs(YourSpecs)``.

        Parameters: ``pluginmanager`` is this kernel's pluggy manager.

        Returns: nothing.

        Errors: the plugin is reported as failed and unregistered; startup
        aborts if the plugin was requested by name.
        """

    @hookspec
    def kernel_add_cli_options(self, group: OptionGroup) -> None:
        """Add command-line options to ``kernel run`` (and ``kernel schema``).

        When: once per plugin before the command line is fully parsed, so the
        options appear in ``kernel run --help`` only when the plugin is loaded.

        Parameters: ``group`` is an argparse argument group titled after the
        plugin; call ``group.add_argument(...)``. Prefix option names with
        your namespace to avoid clashes.

        Returns: nothing; parsed values arrive in :meth:`kernel_configure`.

        Errors: a clash with another option fails this plugin (reported);
        startup aborts if it was requested by name.
        """

    @hookspec
    def kernel_settings(self) -> Any:
        """Declare the type of this plugin's ``[kernel_plugins.<name>]`` section.

        When: once per plugin right after loading, before
        :meth:`kernel_configure`; also by ``kernel config get|set`` and
        ``kernel plugins``, which start nothing.

        Parameters: none.

        Returns: a frozen attrs class whose fields (snake_case, with
        defaults) are the section's keys, or None. The kernel structures
        the section with it before configuring (a wrong type or an unknown
        key fails startup, naming the key and the file it came from) and
        passes the instance to :meth:`kernel_configure` as ``settings``;
        ``kernel config get`` shows its defaults, ``kernel config set``
        refuses what startup would refuse. ``enabled`` is the kernel's own
        key in every plugin section; do not declare it.

        Errors: the plugin is reported as failed; startup aborts if it was
        requested by name.
        """

    @hookspec
    def kernel_config_keys(self) -> Any:
        """Declare top-level config.toml keys this plugin reads (the reference's own keys).

        When: as :meth:`kernel_settings`.

        Parameters: none.

        Returns: a mapping of top-level key (``"model_providers"``) to its
        type (an attrs class, ``str | None``, ``dict[str, SomeClass]``...),
        or None. Declared keys are validated at startup like plugin
        sections; keys no loaded plugin declares are logged as a warning
        (a user's existing config.toml may hold keys for features this
        server does not have). Read a value with
        ``kernel.config.structure_value(key, type)``. Two plugins declaring
        one key abort startup.

        Errors: the plugin is reported as failed; startup aborts if it was
        requested by name.
        """

    @hookspec
    def kernel_configure(
        self, kernel: Kernel, config: PluginConfig, options: argparse.Namespace, settings: Any
    ) -> None:
        """Read and validate the plugin's configuration.

        When: once per plugin after options are parsed and before
        :meth:`kernel_register`.

        Parameters: ``kernel`` is the kernel being built; ``settings`` is
        the plugin's ``[kernel_plugins.<name>]`` section structured as the
        type it declared with :meth:`kernel_settings` (None without one);
        ``config`` is the same section as a :class:`kernel.PluginConfig`
        (``config.error(key, why)``, ``config.get(key)``); ``options``
        holds every parsed command-line option. Take only the parameters
        you need.

        Returns: nothing; keep what you need on your plugin object.

        Errors: raise :class:`kernel.ConfigError` (``config.error(key, why)``
        builds one naming the key and the file it came from). A bad config
        always fails startup, whether or not the plugin was requested by name,
        because serving with a misread configuration is worse than not
        serving.
        """

    @may_be_async
    @hookspec
    def kernel_config_changed(self, kernel: Kernel, changed: Sequence[str]) -> Any:
        """Configuration changed while serving: re-read what you own. May be async.

        When: after every write to config.toml made through
        :meth:`kernel.Kernel.write_config` (the ``config/value/write`` and
        ``config/batchWrite`` methods, and families that write config), and
        after ``config/batchWrite {reloadUserConfig: true}`` re-read a file
        edited by hand; only when something changed. ``kernel.config`` already
        holds the new values when the hook runs, and the write's answer waits
        for every plugin, so a client that wrote ``model`` and then starts a
        thread gets the new model.

        Parameters: ``kernel``; ``changed``, the dotted paths whose merged
        values changed (``model``, ``hooks.state./a/b:pre_tool_use:0:0.enabled``
        — leaves, or a whole table that appeared or disappeared). Check
        prefixes of the keys you declared with :meth:`kernel_config_keys`.

        Returns: nothing; every plugin is called.

        Errors: logged with traceback; the write stands and the other plugins
        are still called (a plugin that cannot take a value keeps its old one
        and should say so in the log). Validation belongs before the write:
        the settings types of :meth:`kernel_settings` and
        :meth:`kernel_config_keys` refuse bad values there.
        """

    @hookspec
    def kernel_register(self, registrar: Registrar) -> None:
        """Declare methods, notifications and server requests (the explicit way).

        When: once per plugin after :meth:`kernel_configure`. Declarations
        made with :func:`kernel.method`, :func:`kernel.notification`,
        :func:`kernel.server_request` and :func:`kernel.client_notification`
        on the plugin object are collected right after, with no hook needed;
        use this hook for what is only known at run time.

        Parameters: ``registrar`` records this plugin as the owner of what it
        declares: ``registrar.method(name, handler)`` (params and result
        types from the handler's annotations, or ``params=P, result=R``),
        ``registrar.notification(name, params=P)``,
        ``registrar.server_request(name, params=P, result=R)``,
        ``registrar.client_notification(name, handler)``. Types are frozen
        attrs classes; their converter hooks are built here, once.

        Returns: nothing.

        Errors: a name already declared by another plugin, or a type whose
        schema name another type already has, aborts startup with both
        owners named. Any other exception fails this plugin (its
        declarations are withdrawn); startup aborts if it was requested by
        name.
        """

    @may_be_async
    @hookspec
    def kernel_startup(self, kernel: Kernel) -> Any:
        """Acquire resources before the first connection. May be async.

        When: once per plugin after registration, before any listener accepts.

        Parameters: ``kernel`` gives configuration, services, the registry and
        ``kernel.broadcast``.

        Returns: nothing (or an awaitable, which is awaited).

        Errors: the plugin is reported as failed and its methods withdrawn;
        startup aborts if it was requested by name. Its shutdown hook is not
        called.
        """

    @may_be_async
    @hookspec
    def kernel_shutdown(self, kernel: Kernel) -> Any:
        """Release resources after the last connection closed. May be async.

        When: once per started plugin on SIGINT, SIGTERM, stdin EOF (stdio) or
        a fatal error, after listeners stopped and connections closed; in
        reverse load order.

        Parameters: ``kernel`` as for startup.

        Returns: nothing (or an awaitable, which is awaited).

        Errors: logged with traceback; the other plugins still shut down and
        the server still exits 0.
        """

    @may_be_async
    @hookspec
    def kernel_connection_opened(self, connection: Connection) -> Any:
        """Set up per-connection state. May be async.

        When: for every new connection, before its first message is read.

        Parameters: ``connection`` is the new connection; keep state in
        ``connection.state[<your plugin name>]``.

        Returns: nothing (or an awaitable, which is awaited).

        Errors: logged with traceback; the connection still opens.
        """

    @may_be_async
    @hookspec
    def kernel_connection_closed(self, connection: Connection) -> Any:
        """Release per-connection resources (processes, watches). May be async.

        When: once per connection on every exit path (client close, lost peer,
        server shutdown), after its handlers finished or were cancelled.

        Parameters: ``connection`` is the closing connection; it can no longer
        send.

        Returns: nothing (or an awaitable, which is awaited).

        Errors: logged with traceback; the other plugins' hooks still run.
        """

    @hookspec
    def kernel_initialize_response(
        self, connection: Connection, params: InitializeParams
    ) -> dict[str, Any] | None:
        """Read the client's capabilities and add members to the initialize result.

        When: during every successful ``initialize``, after the connection
        recorded its capabilities. Not async: it runs inline so the next
        request already sees an initialized connection.

        Parameters: ``connection`` (``connection.capabilities`` holds the
        structured capabilities, ``connection.experimental`` the gate);
        ``params`` is the structured initialize params.

        Returns: a dict of extra result members, or None. Members are merged
        in load order; a member already present (the kernel's own, or an
        earlier plugin's) is kept and the later one is logged and dropped.

        Errors: logged with traceback; the handshake succeeds without this
        plugin's members.
        """

    @hookspec
    def kernel_websocket_auth_mode(self) -> str | None:
        """Name the authentication scheme this plugin enforces, if any.

        When: once at startup, before any network listener binds. The kernel
        refuses to bind a non-loopback address unless some plugin names a
        mode, prints the modes in the startup banner, and refuses upgrades no
        plugin accepted once a mode is named.

        Parameters: none.

        Returns: a short name (``"capability-token"``), or None when the
        plugin enforces nothing (for example, it is installed but not
        configured). Every non-None answer counts.

        Errors: logged with traceback; the plugin counts as enforcing nothing.
        """

    @hookspec
    def kernel_websocket_auth_hint(self) -> str | None:
        """Say how to turn on the authentication this plugin offers.

        When: only when a non-loopback ``ws://`` listener is refused because
        no plugin enforces a mode (:meth:`kernel_websocket_auth_mode`); the
        refusal lists every hint, so the kernel never names a plugin's flags
        itself.

        Parameters: none.

        Returns: a short instruction (``"--ws-auth capability-token with
        --ws-token-file ABSPATH"``), or None.

        Errors: logged with traceback; the hint is left out.
        """

    @may_be_async
    @hookspec
    def kernel_authenticate_websocket(self, request: web.Request) -> AuthResult | None:
        """Judge a websocket upgrade (or plugin HTTP route) on a TCP listener. May be async.

        When: for every upgrade request and every request to a route added by
        :meth:`kernel_http_routes` on a ``ws://`` listener, after the Origin
        check and before any JSON-RPC message is read. Not called for
        ``/healthz`` and ``/readyz``, nor on ``unix://`` listeners (their
        socket file is owner-only).

        Parameters: ``request`` is the aiohttp request; read headers only
        (``request.headers["Authorization"]``).

        Returns: :class:`kernel.AuthResult` (``AuthResult.accept(subject)`` or
        ``AuthResult.reject(reason)``), or None to let the next plugin
        decide. The first non-None result, in load order, wins. The reason is
        sent to the client: never put a secret in it.

        Errors: the request is refused with 500 and the traceback logged; no
        other plugin is asked (fail closed).
        """

    @hookspec
    def kernel_http_routes(self, kernel: Kernel, router: web.UrlDispatcher) -> None:
        """Add HTTP routes to every websocket and unix-socket listener.

        When: once per listener as it starts, after plugin startup.

        Parameters: ``kernel`` as for startup; ``router`` is the listener's
        aiohttp router (``router.add_get("/acme/status", handler)``). Use
        paths under ``/<your plugin name>/``; ``/``, ``/healthz`` and
        ``/readyz`` belong to the kernel and are added first.

        Returns: nothing.

        Errors: the plugin is reported as failed and its methods withdrawn;
        startup aborts if it was requested by name.
        """

    @may_be_async
    @hookspec
    def kernel_outbound_request_headers(self, request: OutboundRequest) -> Any:
        """Add headers to an HTTP request made on a connection's or thread's behalf. May be async.

        When: right before every HTTP attempt another plugin makes for a
        client (the model provider's requests, compaction, realtime session
        setup, relay enrollment), retries included: each attempt asks again,
        so a header may carry a single-use token. Callers go through
        :func:`kernel.outbound.outbound_headers`.

        Parameters: ``request``, a :class:`kernel.outbound.OutboundRequest`:
        ``purpose`` (``"model"``, ``"compaction"``, ``"realtime"``,
        ``"relay_enrollment"``...), ``url``, ``method``, ``provider_id`` and
        ``requires_openai_auth`` (the model provider, when one is involved),
        ``connection`` (the connection the work is for, or None),
        ``thread_id``, ``turn_id`` and ``attempt`` (1 for the first).

        Returns: None (nothing to add), a mapping of header name to value, or
        :class:`kernel.outbound.Refuse` (``Refuse(reason)``) to stop the
        request: it is not sent and the caller reports ``reason`` to its
        client (a model request ends in ``response.failed``, which fails the
        turn). Headers of all plugins are added, in load order; a header the
        request already has, or an earlier plugin added, is kept and the
        later one is logged and dropped. Never log a header's value.

        Errors: logged with traceback; the request goes out without this
        plugin's headers and with every other plugin's. A plugin that must
        fail closed catches its own errors and returns ``Refuse``.
        """
