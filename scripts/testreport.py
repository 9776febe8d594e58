#!/usr/bin/env python3
"""Reads `go test -json` on stdin; prints each package's result as go test
would, the full output of failing tests, and a table of the store contract
tests passed per backend, so equal coverage across backends can be seen.
Exits non-zero when anything failed."""
import json
import re
import sys
from collections import defaultdict

BACKENDS = ["Pebble", "Cassandra", "Redis", "Memory", "Local"]
output = defaultdict(list)      # (pkg, test) -> lines
contract = defaultdict(int)     # (pkg, backend) -> leaf subtests passed
failed = False
leaf_parents = set()

events = []
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        print(line)
        continue
    try:
        events.append(json.loads(line))
    except json.JSONDecodeError:
        print(line)

# A test with subtests is not a leaf.
for e in events:
    t = e.get("Test")
    if t and "/" in t:
        parts = t.split("/")
        for i in range(1, len(parts)):
            leaf_parents.add((e.get("Package"), "/".join(parts[:i])))

for e in events:
    pkg, test, action = e.get("Package", ""), e.get("Test"), e.get("Action")
    if action == "output":
        if test:
            output[(pkg, test)].append(e.get("Output", ""))
        else:
            out = e.get("Output", "")
            if out.startswith(("ok ", "FAIL", "?   ")) or "[build failed]" in out or "panic:" in out:
                sys.stdout.write(out)
            elif not out.startswith(("PASS", "=== ", "--- ", "coverage:")):
                output[(pkg, "")].append(out)
    elif action == "fail":
        failed = True
        if test:
            sys.stdout.write("".join(output[(pkg, test)]))
        else:
            sys.stdout.write("".join(output[(pkg, "")][-40:]))
    elif action == "pass" and test and (pkg, test) not in leaf_parents:
        top = test.split("/")[0]
        # The "...Shared" variants rerun a suite on one shared store; count
        # each suite once so backends compare like for like.
        if "Contract" in top and "Shared" not in top and "OneShard" not in top:
            m = [b for b in BACKENDS if b in top]
            if m:
                contract[(pkg.split("/beehive/")[-1], m[0])] += 1

if contract:
    print("\nStore contract tests passed, per package and backend:")
    pkgs = sorted({p for p, _ in contract})
    print("  %-22s %s" % ("package", "  ".join("%9s" % b for b in BACKENDS)))
    for p in pkgs:
        print("  %-22s %s" % (p, "  ".join("%9s" % (contract.get((p, b), "-")) for b in BACKENDS)))
sys.exit(1 if failed else 0)
