"""The listener simulator (`make simulate`): a population of synthetic listeners with hidden
tastes talks to the product, gets recommendations and answers every track, under the
product's policy (Thompson sampling over arms and weight learning) and under baselines, on
the same listeners and random streams.

- ``listeners``: the hidden taste, response and mood model (pure).
- ``speech``: what listeners say, in words checked against the conversation service's
  ``understand()``.
- ``policies``: the five policies (pure).
- ``session``, ``product``: the product in process: the services' domain code with the
  state of Redis and PostgreSQL held in memory.
- ``episode``: one listener's run against a system; regret.
- ``runner``: every policy, the comfort experiment, the report and the targets.
- ``plotting``: the learning curves PNG. ``live``: the same listeners over HTTP.

Run ``python -m loadtests.simulation --help``.
"""
