"""The reference system's Locust mix (docs/benchmarks.md, "The reference's
load mix"), written from its description: DocumentUser and SearchUser in
equal numbers against the gateway. The users are FastHttpUsers (the
reference used HttpUser): the same requests at a fraction of the client's
CPU, which matters when the client shares two cores with the system under
test.

Besides Locust's own statistics it classifies every answer as served (2xx),
shed (503 or 429 carrying Retry-After) or failed (anything else, transport
errors included) and, at the end, writes a JSON summary to $LOCUST_SUMMARY:
counts, p50/p99 of each class, the longest answer, answers slower than 8 s,
answers mentioning "upstream", and the served throughput: per second, its
best 5 s, and its mean once every user has started.

    locust -f scripts/loadtest/locustfile.py --headless -u 1500 -r 100 \
        -t 75s -H http://127.0.0.1:8000
"""

import json
import os
import random
import time

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

SEARCH_TERMS_DOC = ["test", "document", "contract", "sales", "agreement"]
SEARCH_TERMS = ["test", "document", "contract", "sales", "agreement", "Q4", "2025"]

_answers = []  # (finished at, class, response time ms, status)
_upstream = 0
_spawned = []  # when every user had been started


@events.spawning_complete.add_listener
def _all_spawned(user_count, **_):
    _spawned.append(time.time())


@events.request.add_listener
def _classify(request_type, name, response_time, response_length, response=None, exception=None, **_):
    global _upstream
    status = getattr(response, "status_code", 0) or 0
    if exception is None and 200 <= status < 300:
        kind = "served"
    elif status in (429, 503) and response is not None and response.headers.get("Retry-After"):
        kind = "shed"
    else:
        kind = "failed"
    if kind != "served" and response is not None and "upstream" in (response.text or ""):
        _upstream += 1
    _answers.append((time.time(), kind, response_time, status))


def _pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(len(values) * p))], 1)


@events.quitting.add_listener
def _summary(environment, **_):
    path = os.environ.get("LOCUST_SUMMARY")
    if not path or not _answers:
        return
    start = _answers[0][0]
    per_second = {}
    for at, kind, _, _ in _answers:
        if kind == "served":
            s = int(at - start)
            per_second[s] = per_second.get(s, 0) + 1
    seconds = max(per_second) + 1 if per_second else 0
    series = [per_second.get(s, 0) for s in range(seconds)]
    statuses = {}
    for _, kind, _, status in _answers:
        if kind != "served":
            statuses[str(status)] = statuses.get(str(status), 0) + 1
    # Served throughput: the best 5 s of the run, and the mean over the
    # steady part (5 s after the last user started, to 2 s before the end).
    peak5 = max((sum(series[i:i + 5]) / 5 for i in range(max(1, seconds - 4))), default=0)
    steady_from = int((_spawned[0] if _spawned else start) - start) + 5
    steady = series[steady_from:max(steady_from + 1, seconds - 2)]
    out = {"answers": len(_answers), "peak_served_per_s_5s": round(peak5, 1),
           "steady_served_per_s": round(sum(steady) / len(steady), 1) if steady else None,
           "steady_seconds": len(steady), "upstream_mentions": _upstream, "non_2xx_statuses": statuses,
           "over_8s": sum(1 for a in _answers if a[2] > 8000),
           "max_ms": round(max(a[2] for a in _answers), 1),
           "served_per_second": series}
    for kind in ("served", "shed", "failed"):
        times = [a[2] for a in _answers if a[1] == kind]
        out[kind] = {"count": len(times), "p50_ms": _pct(times, 0.50), "p99_ms": _pct(times, 0.99),
                     "max_ms": round(max(times), 1) if times else None}
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


class DocumentUser(FastHttpUser):
    weight = 1
    wait_time = between(1, 3)

    def on_start(self):
        self.ids = []
        for i in range(3):
            r = self.client.post("/documents", json={
                "title": f"Init Document {i}", "content": "Initial document for testing",
                "created_by": f"user{random.randint(1, 100)}@test.com"})
            if r.status_code == 201:
                self.ids.append(r.json()["id"])

    @task(5)
    def list_documents(self):
        self.client.get("/documents")

    @task(3)
    def create_document(self):
        self.client.post("/documents", json={
            "title": f"Test Document {random.randint(1, 10000)}",
            "content": "Load test content for performance testing",
            "created_by": f"user{random.randint(1, 100)}@test.com"})

    @task(2)
    def search(self):
        self.client.get(f"/search?q={random.choice(SEARCH_TERMS_DOC)}&size=10", name="/search")

    @task(1)
    def sign(self):
        if not self.ids:
            return
        n = random.randint(1, 50)
        self.client.post("/signatures", json={
            "document_id": random.choice(self.ids), "signer_email": f"signer{n}@test.com",
            "signer_name": f"Signer {n}", "signature_data": "base64encodedimage=="})


class SearchUser(FastHttpUser):
    weight = 1
    wait_time = between(0.5, 2)

    @task(10)
    def search(self):
        self.client.get(f"/search?q={random.choice(SEARCH_TERMS)}&size=20", name="/search")

    @task(1)
    def list_documents(self):
        self.client.get("/documents")
