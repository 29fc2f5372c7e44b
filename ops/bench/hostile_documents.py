# Run from the checkout: .venv/bin/python ops/bench/hostile_documents.py
"""Wall time to prepare each hostile document of tests/graphql/test_hostile_documents.py
(min of 5 runs, cache cleared), and the fan-out n=18/25/30 of issue 12."""

import time

from gateway.settings import Settings
from resolvers.engine import Runner
from tests.graphql.test_hostile_documents import HOSTILE, fan_out

settings = Settings(environment="test")
runner = Runner(settings)
runner.prepare("{ __typename }")
docs = {name: make(settings) for name, (make, _) in HOSTILE.items()}
docs.update({f"issue fan-out n={n}": fan_out(n) for n in (18, 25, 30)})
worst = (0.0, "")
for name, doc in docs.items():
    best = float("inf")
    for _ in range(5):
        runner.cache.clear()
        t = time.perf_counter()
        runner.prepare(doc)
        best = min(best, time.perf_counter() - t)
    worst = max(worst, (best, name))
    print(f"{best * 1000:8.2f} ms  {len(doc):6d} B  {name}")
print(f"worst: {worst[0] * 1000:.1f} ms ({worst[1]})")
