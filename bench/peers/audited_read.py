"""The audited read's cost over the wire (issue 18): a FIND of 10 rows showing a field in
[audit] fields (one audit record made durable before the reply) against the same FIND
showing another field, on a server of 2,000 members with sync = "always".

    cargo build --release -p memberdb-server
    python3 bench/peers/audited_read.py
"""
import os
import statistics
import subprocess
import tempfile
import time

import redis

exe = os.path.join(os.path.dirname(__file__), "..", "..", "target", "release", "memberdb")
os.chdir(tempfile.mkdtemp(prefix="audited-read-"))
os.mkdir("cfg")
# 1. create members with an open server
p = subprocess.Popen([exe, "serve", "--db", "db", "--create", "--bind", "127.0.0.1:0", "--log-level", "warn"], stdout=subprocess.PIPE)
port = int(p.stdout.readline().decode().split(":")[-1])
r = redis.Redis(port=port)
pipe = r.pipeline(transaction=False)
for m in range(2000):
    pipe.execute_command("MEMBER.SET", f"M{m}", "phone", f"138{m:08d}", "city", "Shanghai")
pipe.execute()
p.terminate(); p.wait()
h = subprocess.run([exe, "hash-password"], input=b"pw", capture_output=True).stdout.decode().strip()
with open("cfg/memberdb.toml", "w") as f:
    f.write(f'[audit]\nfields = ["phone"]\n[[users]]\nname = "boss"\npassword_hash = "{h}"\nroles = ["admin"]\n')
os.chmod("cfg/memberdb.toml", 0o600)
p = subprocess.Popen([exe, "serve", "--db", "db", "--config", "cfg/memberdb.toml", "--bind", "127.0.0.1:0", "--log-level", "warn"], stdout=subprocess.PIPE)
port = int(p.stdout.readline().decode().split(":")[-1])
r = redis.Redis(port=port, username="boss", password="pw")
def timed(stmt, n=400):
    t = []
    for _ in range(n):
        a = time.perf_counter(); r.execute_command("QUERY", stmt); t.append(time.perf_counter() - a)
    return statistics.median(t) * 1e6
res = []
for _ in range(3):
    res.append((timed("FIND ALL SHOW city LIMIT 10"), timed("FIND ALL SHOW phone LIMIT 10")))
p.terminate(); p.wait()
for plain, audited in res:
    print(f"FIND 10 rows: not audited {plain:.0f} µs, audited (one record, fsync) {audited:.0f} µs, +{audited-plain:.0f} µs")
