"""The people and systems every test acts as: one cast for the whole suite.

Drivers, fixtures and aggregate tests take their actors from here, so a role change
(or a new rule about who may do what) is made in one place.
"""

from __future__ import annotations

from commands.models import ActorIn
from domain.values import Actor, Cause, Role

MANAGER = Actor.user("carol", Role.CHANNEL_MANAGER)
SALES = Actor.user("sam", Role.SALES)
ADMIN = Actor.user("olga", Role.ADMIN)
AUDITOR = Actor.user("aud", Role.AUDITOR)
SYSTEM = Actor.system("sweeper")

# The staff an HTTP test holds API keys for, by the name the test uses.
STAFF = {"admin": ADMIN, "manager": MANAGER, "sales": SALES, "auditor": AUDITOR}


def partner(code: str) -> Actor:
    """A partner acting for itself."""
    return Actor.partner(code)


def as_command_actor(actor: Actor) -> ActorIn:
    """The actor as a command carries it."""
    return ActorIn.of(actor)


def caused_by(actor: Actor, command_id: str = "cmd-1") -> Cause:
    """The cause an aggregate method records, for tests that call aggregates directly."""
    return Cause(actor, command_id)
