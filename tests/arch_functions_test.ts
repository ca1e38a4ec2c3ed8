/**
 * No function in lib/ (or the entry points) runs over 100 lines, except tool tables: a long
 * function is split into named steps (docs/architecture.md, "Style"). Read with the
 * TypeScript parser, so arrow functions, methods and nested functions all count.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("../", import.meta.url));
const LIMIT = 100;
/** Functions that only build a table of tool definitions (each handler is its own function). */
const TOOL_TABLES = new Set(["lib/mcp/shell.ts makeShellTools"]);

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) yield* sources(p);
    else if (e.isFile && p.endsWith(".ts")) yield p;
  }
}

/** Every function of `file` longer than `limit` lines, as "path name lines". */
export function longFunctions(file: string, text: string, limit = LIMIT): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const nameOf = (n: ts.Node): string => {
    const named = (n as ts.FunctionDeclaration).name;
    if (named) return named.getText(sf);
    const p = n.parent;
    if (ts.isPropertyAssignment(p) || ts.isVariableDeclaration(p)) return p.name.getText(sf);
    return "(anonymous)";
  };
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && (n as ts.FunctionLikeDeclaration).body) {
      const first = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      const lines = last - first + 1;
      if (lines > limit) found.push(`${file} ${nameOf(n)} ${lines}`);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

Deno.test("no function in lib/ or the entry points is over 100 lines, except tool tables", async () => {
  const files = ["main.ts", "daemon.ts", "launcher.ts"].map((f) => join(root, f));
  for await (const f of sources(join(root, "lib"))) files.push(f);
  assert.ok(files.length > 100, `read ${files.length} files`);
  const long: string[] = [];
  for (const f of files) {
    const rel = relative(root, f);
    for (const hit of longFunctions(rel, await Deno.readTextFile(f))) {
      const [path, name] = hit.split(" ");
      if (!TOOL_TABLES.has(`${path} ${name}`)) long.push(hit);
    }
  }
  assert.deepEqual(long, [], "split these into named steps");
});

Deno.test("the function-length check sees a long arrow function and a long method", () => {
  const body = Array.from({ length: 101 }, (_, i) => `  x += ${i};`).join("\n");
  const text = `const f = () => {\n  let x = 0;\n${body}\n};\n` +
    `class C {\n  m() {\n    let x = 0;\n${body}\n  }\n}\n`;
  assert.deepEqual(longFunctions("t.ts", text).map((h) => h.split(" ").slice(0, 2).join(" ")), [
    "t.ts f",
    "t.ts m",
  ]);
});
