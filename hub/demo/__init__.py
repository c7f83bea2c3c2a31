"""``tellonce demo``: the whole flow on the embedded default, with a scenario that checks itself.

May import anything in the hub through ``hub.bootstrap``; nothing imports the demo but the CLI.
"""
