"""What every light client shares: the root of their errors (see config/errors.py for the whole tree)."""

from __future__ import annotations

from config.errors import RelayerError


class LightClientError(RelayerError):
    """A light client refused what it was given (a header, a proof, an update). Not retryable: the same bytes
    fail the same way; fetching them again from another source may not."""
