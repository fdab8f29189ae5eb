"""``vidattack serve``: put models behind the Open Inference Protocol (KServe v2), with keys and limits."""

from __future__ import annotations

import os
from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to ``app``."""
    app.command("serve")(serve)


def serve(
    model: list[str] = typer.Option(
        ..., "--model", "-m",
        help="Zoo name or checkpoint path, optionally NAME=REF to choose the URL name; repeat for several.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (other than loopback needs API keys)."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: any free port)."),
    reveal: str = typer.Option(
        "top-k", "--reveal", help="What answers show: top-k (classes + probabilities), probabilities, logits."
    ),
    top_k: int = typer.Option(1, "--top-k", min=1, help="Most classes a top-k answer reveals."),
    api_keys: Path | None = typer.Option(None, "--api-keys", help="JSON keys file (names, SHA-256 of keys, budgets)."),
    api_key_env: str | None = typer.Option(
        None, "--api-key-env", help="Accept the one key held in this environment variable (audited as 'default')."
    ),
    budget: int | None = typer.Option(
        None, "--budget", min=0, help="Clips per model for the --api-key-env key (or, without keys, for everyone)."
    ),
    audit_db: Path | None = typer.Option(
        None, "--audit-db", help="SQLite file for budgets and the audit log (default: in memory, lost on exit)."
    ),
    max_clips: int = typer.Option(16, "--max-clips", min=1, help="Most clips in one request."),
    max_concurrent: int = typer.Option(4, "--max-concurrent", min=1, help="Inference requests at once."),
    max_connections: int = typer.Option(128, "--max-connections", min=1, help="Open connections at most."),
    head_timeout: float = typer.Option(10.0, "--head-timeout", min=0.1, help="Seconds for request line + headers."),
    body_timeout: float = typer.Option(10.0, "--body-timeout", min=0.1, help="Seconds for a body (+1 s per MiB)."),
    ssl_certfile: Path | None = typer.Option(None, "--ssl-certfile", help="Serve HTTPS with this certificate (PEM)."),
    ssl_keyfile: Path | None = typer.Option(None, "--ssl-keyfile", help="The certificate's private key (PEM)."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the served models."),
) -> None:
    """Serve models on the Open Inference Protocol (KServe v2 REST): /v2/models/NAME/infer and friends.

    Attack one from another shell with any black-box method:
    `vidattack attack vbad --model http://127.0.0.1:8080/v2/models/c3d-synth --video synth:test:0`
    (the key, if any, in VIDATTACK_API_KEY). Health: /v2/health/ready; metrics: /metrics. Ctrl-C stops.
    """
    from vidattack import models
    from vidattack.serving import (
        ApiKey,
        AuditStore,
        Limits,
        ServedModel,
        build_app,
        is_loopback,
        load_keys,
        run_server,
    )

    if reveal not in ("top-k", "probabilities", "logits"):
        raise typer.BadParameter("must be top-k, probabilities or logits", param_hint="--reveal")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise typer.BadParameter("give both --ssl-certfile and --ssl-keyfile", param_hint="--ssl-certfile")
    keys: list[ApiKey] | None = None
    try:
        if api_keys is not None:
            keys = load_keys(api_keys)
        if api_key_env is not None:
            secret = os.environ.get(api_key_env)
            if not secret:
                raise ValueError(f"environment variable {api_key_env} is not set")
            keys = [*(keys or []), ApiKey.from_secret("default", secret, budget)]
        if not keys and not is_loopback(host):
            raise ValueError(f"refusing to serve on {host!r} without API keys (--api-keys or --api-key-env)")
        served = []
        for item in model:
            name, _, reference = item.rpartition("=")
            name = name or Path(reference).name.removesuffix(".safetensors").removesuffix(".json")
            net = models.load(reference, device=device)
            served.append(ServedModel.from_model(name, net, reveal=reveal, top_k=top_k))
        limits = Limits(
            max_clips_per_request=max_clips, max_concurrent=max_concurrent, max_connections=max_connections,
            head_timeout=head_timeout, body_timeout=body_timeout,
        )
        store = AuditStore(audit_db if audit_db is not None else ":memory:")
        app = build_app(served, keys=keys, store=store, limits=limits, anonymous_budget=None if keys else budget)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if audit_db is None and keys and any(k.budget is not None for k in keys):
        typer.echo("warning: budgets are kept in memory and reset on restart; give --audit-db FILE", err=True)
    scheme = "https" if ssl_certfile else "http"
    for item in served:
        typer.echo(f"serving {scheme}://{host}:{port}/v2/models/{item.name}  (reveal {reveal})", err=True)
    try:
        run_server(
            app, host, port, limits=limits,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--host") from None
    finally:
        store.close()
    typer.echo("stopped", err=True)
