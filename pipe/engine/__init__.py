"""The native push, one flow for every source: plan -> transfer -> publish -> result (push.py)."""
