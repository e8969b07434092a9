/**
 * The module boundaries issue 14 drew: the engine, router and worker speak no HTTP (nothing from
 * src/openai or src/server), and no module imports itself back through others (type imports count:
 * a cycle of types is still a knot in the design).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const SRC = path.resolve(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sourceFiles(full);
    return full.endsWith(".ts") ? [full] : [];
  });
}

/** Relative imports and re-exports of each source file, resolved to source files. */
function importGraph(): Map<string, string[]> {
  const files = sourceFiles(SRC);
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const deps = [...text.matchAll(/(?:import|export)[^;]*?from\s+"(\.[^"]+)"/gs)].flatMap(([, spec]) => {
      const base = path.resolve(path.dirname(file), spec!).replace(/\.js$/, ".ts");
      const target = [base, path.join(base, "index.ts")].find((f) => known.has(f));
      return target ? [target] : [];
    });
    graph.set(file, deps);
  }
  return graph;
}

/** Every cycle's members (Tarjan's strongly connected components of more than one file, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(path.relative(SRC, w));
    } while (w !== v);
    if (component.length > 1 || graph.get(v)!.includes(v)) found.push(component);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("import graph of src/", () => {
  const graph = importGraph();

  it("reads the real tree", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get(path.join(SRC, "engine/scheduler.ts"))).toContain(path.join(SRC, "engine/request.ts"));
  });

  it("has no cycle", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("finds a cycle when there is one", () => {
    const a = path.join(SRC, "a.ts");
    const b = path.join(SRC, "b.ts");
    expect(cycles(new Map([[a, [b]], [b, [a]]]))).toEqual([["b.ts", "a.ts"]]);
  });

  it("keeps HTTP out of the engine, router and worker", () => {
    const edge = [path.join(SRC, "openai"), path.join(SRC, "server")];
    const inner = ["engine", "router", "worker"].map((d) => path.join(SRC, d) + path.sep);
    const crossings = [...graph].flatMap(([file, deps]) =>
      inner.some((d) => file.startsWith(d)) ? deps.filter((dep) => edge.some((e) => dep.startsWith(e + path.sep))).map((dep) => `${path.relative(SRC, file)} -> ${path.relative(SRC, dep)}`) : [],
    );
    expect(crossings).toEqual([]);
  });
});
