"""The one error every family raises for a token it does not know (``adapters.<family>`` sender roles)."""

from __future__ import annotations

from adapters.base import AdapterError


class UnknownToken(AdapterError):
    """A token symbol (or the token bridge, or a wrapped token's escrow) this chain's configuration does not name."""
