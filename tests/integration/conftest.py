"""The session devnet fixture lives in tests/conftest.py (the fault suite shares it)."""
