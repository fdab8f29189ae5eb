"""``vidattack serve``: put a model behind the HTTP API that :class:`vidattack.remote.RemoteModel` speaks."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""
    app.command("serve")(serve)


def serve(
    model: str = typer.Option(..., "--model", "-m", help="Zoo name (see `vidattack models`) or checkpoint path."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: this machine only)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Classes (with probabilities) revealed per clip."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the served model."),
) -> None:
    """Serve MODEL as a black-box classification service (protocol 1: GET /v1/info, POST /v1/classify).

    Attack it from another shell with any black-box method, e.g.
    `vidattack attack vbad --model http://127.0.0.1:8765 --video synth:test:0`: the attacker then sees
    only the top-k classes and probabilities the service reveals. Stop with Ctrl-C.
    """
    from vidattack import models
    from vidattack.remote import make_server

    net = models.load(model, device=device)
    server = make_server(net, host, port, top_k=top_k)
    bound_host, bound_port = server.server_address[:2]
    typer.echo(f"serving {model} (top-{top_k}) at http://{bound_host}:{bound_port}  (Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        typer.echo("stopped", err=True)
