"""What the Python peers of the harness share: the workloads' tag list and the JSON-lines
loop of the protocol (`duckdb_peer.py` describes it)."""
import json
import sys

# Q8's tags (bench/src/workloads.rs, `peer_workloads`).
Q8_TAGS = [
    "foodie", "pet_owner", "fitness", "摄影爱好者", "scalper_suspect", "outdoor",
    "travel_lover", "beauty", "luxury", "student", "retiree", "night_owl", "referrer",
    "influencer", "complaint", "gift_buyer", "early_adopter", "anniversary", "big_ticket",
    "multi_city",
]


def serve(ready, run):
    """Says `ready`, then answers each `run` request with `run(request)` until `quit`."""
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] in ("run", "compiled"):
            reply = run(request)
        elif request["op"] == "quit":
            break
        else:
            reply = {"error": f"unknown op {request['op']}"}
        print(json.dumps(reply), flush=True)
