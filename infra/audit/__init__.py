"""Auditor replay: history, state as of any moment, tamper evidence, export."""
