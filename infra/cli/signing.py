"""`dealledger signing-key`: the Ed25519 key that signs the ledger's checkpoints."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="create the key that signs checkpoints", no_args_is_help=True)


@app.command()
def create(
    out: Annotated[Path, typer.Option(help="the private key file to write (PEM, mode 0600)")],
) -> None:
    """write a new Ed25519 signing key; prints its public half"""
    from infra.audit.checkpoints import new_key, private_pem, public_raw
    from infra.audit.signed import key_id

    key = new_key()
    try:
        # O_EXCL: an existing key is never overwritten (its checkpoints would no
        # longer verify with the key that replaced it).
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"dealledger signing-key: {out} exists; not overwritten", file=sys.stderr)
        raise typer.Exit(2) from None
    except OSError as exc:
        print(f"dealledger signing-key: cannot write {out}: {exc.strerror}", file=sys.stderr)
        raise typer.Exit(2) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
    public = public_raw(key)
    print(base64.b64encode(public).decode("ascii"))
    print(
        f"wrote {out} (key id {key_id(public)}). Point DEALLEDGER_SIGNING_KEY_FILE at it; "
        "give auditors the public key above (DEALLEDGER_CHECKPOINT_PUBLIC_KEY, "
        "`verify --public-key`).",
        file=sys.stderr,
    )
