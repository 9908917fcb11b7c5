"""The channel programme's terms out of the box; a deployment changes them in settings
(`DEALLEDGER_PROTECTION_DAYS`, `_MAX_EXTENSIONS`, `_AUTO_APPROVE_LIMITS`).

Kept free of heavy imports: the settings read these defaults at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

PROTECTION_DAYS = 90
MAX_EXTENSIONS = 2
# The largest estimated value approved without review, per currency; a currency not
# listed always goes to review.
AUTO_APPROVE_LIMITS: Mapping[str, Decimal] = MappingProxyType(
    {"USD": Decimal(250000), "EUR": Decimal(250000), "GBP": Decimal(200000)}
)
