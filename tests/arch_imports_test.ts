/**
 * The import rules of docs/architecture.md, read from Deno's own module graph
 * (`deno info --json`, static, dynamic and type-only imports alike): no import cycle among the
 * modules under lib/, and the domain folders never import the tool layer, the HTTP layer or
 * the composition root.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const root = fromFileUrl(new URL("../", import.meta.url));
/** The entry points: the CLI, and the daemon and launcher it loads on demand. */
const ROOTS = ["main.ts", "daemon.ts", "launcher.ts"];

/** Folders (under lib/) that hold domain code, and what they must never import. */
const DOMAINS = [
  "lib/ssh/",
  "lib/docker/",
  "lib/term/",
  "lib/state/",
  "lib/jobs/",
  "lib/output/",
  "lib/policy/",
];
const FORBIDDEN = ["lib/mcp/", "lib/http/", "lib/app.ts", "lib/console/", "lib/cli/"];

interface InfoJson {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
  }[];
}

/** The import graph of the roots: repository-relative path → the local files it imports. */
async function importGraph(): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const entry of ROOTS) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `deno info ${entry} failed: ${new TextDecoder().decode(out.stderr)}`);
    const info: InfoJson = JSON.parse(new TextDecoder().decode(out.stdout));
    for (const m of info.modules) {
      const from = local(m.specifier);
      if (!from) continue;
      const edges = graph.get(from) ?? new Set<string>();
      graph.set(from, edges);
      for (const d of m.dependencies ?? []) {
        for (const target of [d.code?.specifier, d.type?.specifier]) {
          const to = target && local(target);
          if (to) edges.add(to);
        }
      }
    }
  }
  return graph;
}

/** `lib/x.ts` for a file of this repository, undefined for npm:, node: and remote modules. */
function local(specifier: string): string | undefined {
  if (!specifier.startsWith("file:")) return undefined;
  return relative(root, fromFileUrl(specifier)).split("\\").join("/");
}

/** Strongly connected components with more than one module, or a module importing itself. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.has(v)) found.push(scc);
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** One concrete cycle inside a component, as `a → b → … → a`, for the failure message. */
function cyclePath(graph: Map<string, Set<string>>, scc: string[]): string {
  const members = new Set(scc);
  const start = [...scc].sort()[0]!;
  // Breadth-first from start's successors back to start, inside the component.
  const parent = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u: string | undefined = v; u && u !== start; u = parent.get(u)) path.push(u);
        return [start, ...path.slice(1).reverse(), start].join(" → ");
      }
      if (!parent.has(w)) {
        parent.set(w, v);
        queue.push(w);
      }
    }
  }
  return scc.join(", ");
}

const graph = await importGraph();

Deno.test("the module graph of main.ts, daemon.ts and launcher.ts covers lib/", () => {
  // Guards the two tests below from passing on an empty or wrong graph.
  const libModules = [...graph.keys()].filter((m) => m.startsWith("lib/"));
  assert.ok(libModules.length > 100, `only ${libModules.length} modules under lib/`);
  for (const m of ["lib/app.ts", "lib/ssh/manager.ts", "lib/docker/manager.ts"]) {
    assert.ok(graph.has(m), `${m} is not in the graph`);
    assert.ok(Deno.statSync(join(root, m)).isFile);
  }
});

Deno.test("no import cycle among the modules under lib/", () => {
  const lib = new Map(
    [...graph]
      .filter(([m]) => m.startsWith("lib/"))
      .map(([m, deps]) => [m, new Set([...deps].filter((d) => d.startsWith("lib/")))]),
  );
  const found = cycles(lib).map((scc) =>
    `${scc.length} modules: ${cyclePath(lib, scc)}\n    all: ${scc.sort().join(", ")}`
  );
  assert.deepEqual(found, [], `import cycles under lib/:\n  ${found.join("\n  ")}`);
});

Deno.test("domain folders (lib/ssh, lib/docker, lib/term, lib/state, …) never import lib/mcp, lib/http or lib/app.ts", () => {
  const bad: string[] = [];
  for (const [from, deps] of graph) {
    if (!DOMAINS.some((d) => from.startsWith(d))) continue;
    for (const to of deps) {
      if (FORBIDDEN.some((f) => to === f || (f.endsWith("/") && to.startsWith(f)))) {
        bad.push(`${from} imports ${to}`);
      }
    }
  }
  assert.deepEqual(
    bad.sort(),
    [],
    `domain modules import the upper layers:\n  ${bad.join("\n  ")}`,
  );
});

Deno.test("the domain folders depend on each other one way only (no folder-level cycle)", () => {
  const folderOf = (m: string) => DOMAINS.find((d) => m.startsWith(d));
  const folders = new Map<string, Set<string>>();
  for (const [from, deps] of graph) {
    const a = folderOf(from);
    if (!a) continue;
    const edges = folders.get(a) ?? new Set<string>();
    folders.set(a, edges);
    for (const to of deps) {
      const b = folderOf(to);
      if (b && b !== a) edges.add(b);
    }
  }
  const found = cycles(folders).map((scc) => cyclePath(folders, scc));
  assert.deepEqual(found, [], `folder-level cycles among the domains:\n  ${found.join("\n  ")}`);
});

Deno.test("the launcher's side of lib/http (lib/http/client) and the daemon's side import nothing of each other", () => {
  const server = (m: string) => m.startsWith("lib/http/") && !m.startsWith("lib/http/client/");
  const client = (m: string) => m.startsWith("lib/http/client/");
  const bad: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) {
      const shared = to === "lib/http/handle.ts"; // the handle file's format, both sides
      if (
        client(from) && !shared && (server(to) || to === "lib/app.ts" || to.startsWith("lib/mcp/"))
      ) {
        bad.push(`${from} imports ${to}`);
      }
      if (server(from) && client(to)) bad.push(`${from} imports ${to}`);
    }
  }
  assert.deepEqual(
    bad.sort(),
    [],
    `lib/http's two sides import each other:\n  ${bad.join("\n  ")}`,
  );
});

Deno.test("the composition root lib/app.ts imports no tool layer, console or CLI, and of lib/http only the web login", () => {
  const bad = [...graph.get("lib/app.ts") ?? []].filter((to) =>
    ["lib/mcp/", "lib/console/", "lib/cli/", "lib/setup/"].some((f) => to.startsWith(f)) ||
    (to.startsWith("lib/http/") && to !== "lib/http/web/auth.ts")
  );
  assert.deepEqual(bad.sort(), [], `lib/app.ts imports upward:\n  ${bad.join("\n  ")}`);
});
