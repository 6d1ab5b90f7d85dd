"""`cnndsl serve`: the playground, a local web page (cnndsl.serve), served by uvicorn."""

from __future__ import annotations

import errno
import os
import re
import socket

import click

from cnndsl.cli.group import edge, main
from cnndsl.errors import CnnDslError

HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@main.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, exists=True))
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="The port to listen on (0: any free one).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on. Anything but this machine's loopback lets other machines in.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Also answer requests addressed to NAME (a host name the browser uses), besides the loopback "
                   "names and --host.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@edge
def serve(folder: str | None, port: int, host: str, allow_hosts: tuple[str, ...], open_browser: bool) -> None:
    """Open the playground: type a spec and see its errors, layer table, totals and diagram as you type;
    try it on an image; compile and download it. The shipped specs are a click away; the .cnn files of
    FOLDER too, and it saves to FOLDER (and nowhere else). The address it prints carries a token that
    every request needs: other users of the machine cannot use the playground without it.

    \b
    Example: cnndsl serve
             cnndsl serve my-specs/ --port 8080
    """
    import secrets

    import uvicorn

    from cnndsl.serve.app import LOCAL_NAMES, create_app

    for name in allow_hosts:
        if not HOST_NAME.fullmatch(name):
            raise click.BadParameter(f"{name!r} is not a host name (letters, digits, dots and hyphens; no "
                                     "wildcards)", param_hint="--allow-host")
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    names = tuple(dict.fromkeys(LOCAL_NAMES + (host,) + allow_hosts))
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    token = secrets.token_urlsafe(24)
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{bound}/?token={token}"
    click.echo(f"cnndsl playground: {url}  (Ctrl-C to stop)")
    if folder:
        click.echo(f"specs of {os.path.abspath(folder)} open and save there")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: other machines can reach this playground", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(create_app(folder, names, token), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, or a clear error: the port taken, the address not this machine's."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except socket.gaierror:
        raise CnnDslError(f"cannot listen on {host}: not an address of this machine",
                          hint="leave --host out to listen on 127.0.0.1") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CnnDslError(f"port {port} is in use", hint="choose another with --port, or --port 0 for any "
                              "free one") from None
        raise CnnDslError(f"cannot listen on {host}:{port}: {exc.strerror}",
                          hint="choose another --host or --port") from None
    return sock
