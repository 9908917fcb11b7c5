"""Who may do what: roles, partners acting for themselves, partners attached to a deal."""

from __future__ import annotations

import pytest

from domain.errors import Forbidden
from domain.permissions import (
    MANAGERS,
    SELLERS,
    actor_must_be_attached_or_seller,
    actor_must_have_role,
    partner_may_only_act_for_itself,
)
from domain.values import Actor
from tests.support.actors import ADMIN, AUDITOR, MANAGER, SALES, SYSTEM, partner


@pytest.mark.parametrize("actor", [MANAGER, ADMIN, SYSTEM])
def test_managers_admins_and_the_system_may_do_managers_work(actor: Actor) -> None:
    actor_must_have_role(actor, MANAGERS, "approve registrations")


@pytest.mark.parametrize("actor", [SALES, AUDITOR, partner("acme")])
def test_anyone_else_is_forbidden_managers_work_with_the_roles_it_needs(actor: Actor) -> None:
    with pytest.raises(Forbidden, match="channel_manager") as caught:
        actor_must_have_role(actor, MANAGERS, "approve registrations")
    assert caught.value.code == "forbidden"
    assert "system" not in caught.value.message


def test_sales_may_do_sellers_work_and_an_auditor_may_not() -> None:
    actor_must_have_role(SALES, SELLERS, "open deals")
    with pytest.raises(Forbidden):
        actor_must_have_role(AUDITOR, SELLERS, "open deals")


def test_a_partner_acts_for_itself_only_and_managers_for_any_partner() -> None:
    partner_may_only_act_for_itself(partner("acme"), "acme", "submit")
    partner_may_only_act_for_itself(MANAGER, "acme", "submit")
    with pytest.raises(Forbidden, match="acme may not submit for partner globex"):
        partner_may_only_act_for_itself(partner("acme"), "globex", "submit")
    with pytest.raises(Forbidden):
        partner_may_only_act_for_itself(SALES, "acme", "submit")


def test_a_partner_contributes_to_a_deal_only_while_attached() -> None:
    actor_must_be_attached_or_seller(partner("acme"), ["acme"], "add notes")
    actor_must_be_attached_or_seller(SALES, [], "add notes")
    with pytest.raises(Forbidden, match="not attached"):
        actor_must_be_attached_or_seller(partner("globex"), ["acme"], "add notes")
    with pytest.raises(Forbidden):
        actor_must_be_attached_or_seller(AUDITOR, ["acme"], "add notes")
