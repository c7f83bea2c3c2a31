"""``tellonce demo``: the whole flow on the embedded default, with a scenario that checks itself.

``scenario`` holds the synthetic people, links, consents, events and the outcome each must have;
``run`` plays it on an embedded broker and a throw-away SQLite store; ``report`` compares what
the hub recorded with the scenario and prints it.

May import anything in the hub through ``hub.bootstrap``; nothing imports the demo but the CLI.
"""
