#!/usr/bin/env python3
"""The crate's module "uses" graph and its circles (strongly connected components).

An edge A -> B means a file of module A names module B: a `use` (brace groups expanded,
globs and aliases too), or a `crate::`, `super::`, `self::` or child-module path in code.
Declaring a child (`mod x;`) is not a use, and inline `#[cfg(test)] mod` blocks are left
out (a test may look anywhere). A re-export counts as a use of what it re-exports.

    python3 scripts/modgraph.py            # modules, edges, circle sizes
    python3 scripts/modgraph.py -v         # ... and each circle's edges
    python3 scripts/modgraph.py --max 5    # exit 1 if a circle has more than 5 modules
"""
import os
import re
import sys

EXTERNAL = {"std", "core", "alloc", "libc", "nix", "elfuse_actors", "elfuse_shim", "tracing",
            "crossbeam_channel", "flume", "dashmap", "goblin", "applevisor", "serde_json"}


def load(root):
    mods = {}
    src_dir = os.path.join(root, "src")
    for dp, _, fs in os.walk(src_dir):
        for f in fs:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dp, f), src_dir)[:-3]
            if rel == "main":
                continue  # the binary is its own crate
            if rel.endswith("/mod"):
                rel = rel[:-4]
            m = "crate" if rel == "lib" else rel.replace("/", "::")
            text = open(os.path.join(dp, f)).read()
            text = re.sub(r"//[^\n]*", "", text)
            text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
            text = text.split("#[cfg(test)]\nmod ")[0]
            mods[m] = text
    return mods


def modpath(m):
    return [] if m == "crate" else m.split("::")


def graph(mods):
    def find(parts):
        for n in range(len(parts), -1, -1):
            c = "::".join(parts[:n]) or "crate"
            if c in mods:
                return c
        return None

    def resolve(cur, path, aliases):
        parts = [p for p in path.split("::") if p]
        if not parts or parts[0] in EXTERNAL:
            return None
        base = modpath(cur)
        if parts[0] == "crate":
            b, parts = [], parts[1:]
        elif parts[0] == "self":
            b, parts = base, parts[1:]
        elif parts[0] == "super":
            b, parts = base[:-1], parts[1:]
            while parts and parts[0] == "super":
                b, parts = b[:-1], parts[1:]
        elif parts[0] in aliases:
            return find(aliases[parts[0]] + parts[1:])
        elif "::".join(base + [parts[0]]) in mods:
            b = base
        else:
            return None
        return find(b + parts)

    def expand(prefix, body):
        out, depth, cur = [], 0, ""
        for ch in body + ",":
            if ch == "{":
                depth += 1
            if ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                cur = cur.strip()
                if cur:
                    m = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", cur, re.S)
                    if m:
                        out += expand(prefix + ([m.group(1)] if m.group(1) else []), m.group(2))
                    else:
                        out.append(prefix + [cur])
                cur = ""
            else:
                cur += ch
        return out

    edges = {m: set() for m in mods}
    for m, text in mods.items():
        aliases = {}
        for u in re.findall(r"\buse\s+([^;]+);", text):
            u = re.sub(r"\s+", "", u)
            mm = re.match(r"^([\w:]*?)(?:::)?\{(.*)\}$", u)
            for p in expand([mm.group(1)], mm.group(2)) if mm else [[u]]:
                s = "::".join(x for x in p if x)
                alias = None
                if re.search(r"\bas\b", s):
                    s, alias = re.split(r"\bas\b", s)
                    s, alias = s.rstrip(":"), alias.strip(":")
                s = s.replace("::self", "").replace("::*", "")
                t = resolve(m, s, aliases)
                if t and t != m:
                    edges[m].add(t)
                if t and s.split("::")[-1] == t.split("::")[-1]:
                    aliases[alias or s.split("::")[-1]] = modpath(t)
        for u in re.findall(r"(?<![\w:])((?:crate|super|self|[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)+)", text):
            t = resolve(m, u, aliases)
            if t and t != m:
                edges[m].add(t)
    return edges


def circles(edges):
    sys.setrecursionlimit(10000)
    idx, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        idx[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            c = []
            while True:
                w = stack.pop()
                on.discard(w)
                c.append(w)
                if w == v:
                    break
            out.append(c)

    for v in sorted(edges):
        if v not in idx:
            visit(v)
    return sorted((c for c in out if len(c) > 1), key=len, reverse=True)


def main():
    args = sys.argv[1:]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    edges = graph(load(root))
    big = circles(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} edges; circles: {[len(c) for c in big]}")
    if "-v" in args:
        for c in big:
            print(f"--- {len(c)}")
            for m in sorted(c):
                print(f"  {m} -> {sorted(t for t in edges[m] if t in c)}")
    if "--max" in args:
        limit = int(args[args.index("--max") + 1])
        over = [c for c in big if len(c) > limit]
        if over:
            print(f"modgraph: a circle of {len(over[0])} modules (limit {limit}): {sorted(over[0])}")
            sys.exit(1)


if __name__ == "__main__":
    main()
