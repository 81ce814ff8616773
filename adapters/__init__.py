"""Chain adapters: one package per chain family behind the ``ChainAdapter`` Protocol of ``adapters.base``."""
