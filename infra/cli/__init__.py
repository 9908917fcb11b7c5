"""The `dealledger` command line: one entry point for every process."""

from infra.cli.app import main

__all__ = ["main"]
