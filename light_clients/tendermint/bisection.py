"""Bisection: verify a target height from a trusted block, fetching intermediate blocks only as needed.

Try to skip straight to the target; when the trusted validators' overlap with the signers is too small
(``NotEnoughTrust``), try the midpoint between the trusted height and the height that failed, and resume
towards the target from each block that verifies. ``Invalid`` at any height ends the search with
``VerificationFailed``: a block the trusted validators vouch for cannot be skipped around.
"""

from __future__ import annotations

from light_clients.tendermint.blocks import LightBlock, TrustedState
from light_clients.tendermint.errors import TargetHeightBelowTrusted, VerificationFailed
from light_clients.tendermint.provider import LightBlockProvider
from light_clients.tendermint.timestamps import UnixNanos, now_unix_nanos
from light_clients.tendermint.verifier import NotEnoughTrust, Success, VerifyOptions, verify


def verify_to_height(
    trusted: LightBlock | TrustedState,
    target_height: int,
    provider: LightBlockProvider,
    options: VerifyOptions,
    now: UnixNanos | int | None = None,
) -> list[LightBlock]:
    """The blocks verified on the way to ``target_height``, in ascending order, the target last.

    Empty when the target is the trusted height. Raises ``VerificationFailed`` (with the verdict),
    ``TargetHeightBelowTrusted``, or the provider's ``LightBlockUnavailable``.
    """
    clock = now_unix_nanos() if now is None else now
    state = TrustedState.of(trusted)
    if target_height < state.height:
        raise TargetHeightBelowTrusted(target_height, state.height)
    fetched: dict[int, LightBlock] = {}
    verified: list[LightBlock] = []
    pending = [target_height] if target_height > state.height else []
    while pending:
        height = pending[-1]
        block = fetched.get(height)
        if block is None:
            block = fetched[height] = provider.light_block(height)
        verdict = verify(state, block, options, clock)
        if isinstance(verdict, Success):
            state = TrustedState.of(block)
            verified.append(block)
            pending.pop()
        elif isinstance(verdict, NotEnoughTrust) and height > state.height + 1:
            pending.append((state.height + height) // 2)
        else:
            raise VerificationFailed(height, verdict)
    return verified
