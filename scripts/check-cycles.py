#!/usr/bin/env python3
"""Fails when a crate's top-level modules import each other in a cycle.

    python3 scripts/check-cycles.py            # every crate under crates/

A module is a top-level file or folder of `src/` (`health.rs`, `wire/`); it depends on another
when its non-test code names `crate::<other>` (in a `use` tree or a path). Comments and
`#[cfg(test)] mod tests` blocks are skipped, so doc links and tests do not count. Prints each
cycle (a strongly connected set of modules and the imports within it) and exits 1.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crates')


def modules(src):
    found = {}
    for folder, _, files in os.walk(src):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, src)
            if name.endswith('.rs') and rel not in ('lib.rs', 'main.rs'):
                found.setdefault(rel.split(os.sep)[0].removesuffix('.rs'), []).append(path)
    return found


def use_tree_heads(text, start):
    """The first segment of each top-level item of the `use crate::{...}` tree at `start`."""
    depth, item, heads, i = 1, '', [], start
    while depth and i < len(text):
        ch = text[i]
        i += 1
        depth += (ch == '{') - (ch == '}')
        if depth == 1 and ch == ',':
            heads.append(item)
            item = ''
        elif depth >= 1:
            item += ch
    heads.append(item)
    return [m.group(1) for m in (re.match(r'\s*\{?\s*(\w+)', h) for h in heads) if m]


def imports(paths):
    names = set()
    for path in paths:
        with open(path, encoding='utf-8') as f:
            text = re.split(r'#\[cfg\(test\)\]\s*mod tests\s*\{', f.read())[0]
        text = '\n'.join(line for line in text.split('\n') if not line.strip().startswith('//'))
        names.update(re.findall(r'crate::(\w+)', text))
        for m in re.finditer(r'use crate::\{', text):
            names.update(use_tree_heads(text, m.end()))
    return names


def cycles(graph):
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    failed = False
    for crate in sorted(os.listdir(ROOT)):
        src = os.path.join(ROOT, crate, 'src')
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        graph = {m: {d for d in imports(paths) if d in mods and d != m} for m, paths in mods.items()}
        for component in cycles(graph):
            failed = True
            print(f'{crate}: import cycle among {", ".join(component)}:', file=sys.stderr)
            for m in component:
                print(f'  {m} -> {", ".join(sorted(graph[m] & set(component)))}', file=sys.stderr)
    if failed:
        print('break each cycle: move the shared item to the module both need, or to the crate root',
              file=sys.stderr)
        return 1
    print('no import cycles between modules')
    return 0


if __name__ == '__main__':
    sys.exit(main())
