/**
 * docs/architecture.md is the project's own design document: every section that code cites as
 * `docs/architecture.md "Title"` exists there, and it covers what issue readers look for
 * (the layers, the import rules, where new things go, the daemon, the launcher).
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { ROOT } from "./support/env.ts";

const doc = await Deno.readTextFile(join(ROOT, "docs/architecture.md"));
const titles = new Set([...doc.matchAll(/^#{2,3} (.+)$/gm)].map((m) => m[1]!.trim()));

/** Every .ts file of the entry points and lib/. */
async function* sources(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts")) yield path;
  }
}

Deno.test("every docs/architecture.md section cited in the code exists", async () => {
  const cited: string[] = [];
  const missing: string[] = [];
  const files = ["main.ts", "daemon.ts", "launcher.ts"].map((f) => join(ROOT, f));
  for await (const f of sources(join(ROOT, "lib"))) files.push(f);
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const m of text.matchAll(/docs\/architecture\.md,?\s*"([^"]+)"/g)) {
      cited.push(m[1]!);
      if (!titles.has(m[1]!)) missing.push(`${relative(ROOT, file)} cites "${m[1]}"`);
    }
  }
  assert.ok(cited.length >= 5, `only ${cited.length} citations found: the pattern is wrong`);
  assert.deepEqual(
    missing,
    [],
    `sections missing from docs/architecture.md:\n  ${missing.join("\n  ")}`,
  );
});

Deno.test("docs/architecture.md has the layers, the import rules and where new things go", () => {
  for (
    const t of [
      "The layers",
      "Who may import whom",
      "Where new things go",
      "Shell backends",
      "The daemon",
      "The launcher",
    ]
  ) assert.ok(titles.has(t), `no section "${t}"; sections: ${[...titles].join(", ")}`);
  for (
    const what of [
      "A new tool",
      "A new Docker host kind",
      "A new shell backend",
      "A new MCP client",
    ]
  ) {
    assert.ok(doc.includes(`**${what}`), `"Where new things go" does not say where ${what} goes`);
  }
  assert.ok(
    doc.includes("tests/arch_imports_test.ts"),
    "the rules do not name the test enforcing them",
  );
});
