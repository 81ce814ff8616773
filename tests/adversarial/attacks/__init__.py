"""Attacks the attacker process can run, one module per topic (``python -m tests.adversarial.attacker
MODULE.FUNCTION``). Each function takes the ``AttackerContext`` and keyword arguments and returns a JSON-able
dict of what it observed; it never asserts (the tests do, on what the chains show)."""
