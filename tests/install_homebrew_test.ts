/**
 * The Homebrew formula: the template filled by scripts/homebrew.ts (as the release workflow
 * does) is a complete formula for the four macOS/Linux binaries — each URL is a release asset
 * of this version with its own SHA-256 — and a missing checksum stops the release instead of
 * shipping a broken formula. Ruby may be absent, so the rendered text is checked structurally
 * (and with `ruby -c` too where ruby exists).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { have, ROOT, run } from "./support/env.ts";
import { FORMULA_ASSETS, parseSums, renderFormula } from "../scripts/homebrew.ts";
import { TARGETS } from "../scripts/compile.ts";

const template = await Deno.readTextFile(join(ROOT, "packaging", "homebrew", "rsm.rb.in"));
const hex = (n: number) => n.toString(16).padStart(2, "0").repeat(32);
const SUMS = Object.keys(FORMULA_ASSETS).map((a, i) => `${hex(i + 1)}  ${a}`).join("\n") +
  `\n${hex(9)}  rsm-windows-x64.exe\n`;

Deno.test("the Homebrew formula renders with the version and each binary's checksum", async () => {
  const repo = "acme/remote-shell-mcp";
  const rb = renderFormula(template, { version: "1.2.3", repo, sums: parseSums(SUMS) });
  assert.doesNotMatch(rb, /\{\{|\}\}/, "no placeholder left");
  assert.match(rb, /^class Rsm < Formula$/m);
  assert.match(rb, /^ {2}version "1\.2\.3"$/m);
  assert.match(rb, /^ {2}homepage "https:\/\/github\.com\/acme\/remote-shell-mcp"$/m);
  assert.match(rb, /brew install acme\/tap\/rsm/);
  // every block: one url of this release's asset for that platform, then its own sha256
  const blocks = [...rb.matchAll(
    /on_(macos|linux) do\n\s+on_(arm|intel) do\n\s+url "([^"]+)"\n\s+sha256 "([^"]+)"\n\s+end\n\s+on_(arm|intel) do\n\s+url "([^"]+)"\n\s+sha256 "([^"]+)"/g,
  )];
  assert.equal(blocks.length, 2, "an on_macos and an on_linux block, each with arm and intel");
  const seen = new Map<string, string>();
  for (const b of blocks) {
    const os = b[1] === "macos" ? "darwin" : "linux";
    for (const [cpu, url, sum] of [[b[2], b[3], b[4]], [b[5], b[6], b[7]]]) {
      const asset = `rsm-${os}-${cpu === "arm" ? "arm64" : "x64"}`;
      assert.equal(url, `https://github.com/${repo}/releases/download/v1.2.3/${asset}`);
      assert.equal(sum, parseSums(SUMS)[asset], `${asset} has its own checksum`);
      assert.ok(sum);
      seen.set(asset, sum);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), Object.keys(FORMULA_ASSETS).sort());
  // the assets are the ones `deno task compile` builds
  for (const asset of seen.keys()) assert.ok(TARGETS.some((t) => t.file === asset), asset);
  // installs the binary as `rsm`, and tests it with `rsm version` (which prints "rsm X.Y.Z")
  assert.match(rb, /bin\.install Dir\["rsm-\*"\]\.first => "rsm"/);
  assert.match(
    rb,
    /test do\n\s+assert_match "rsm #\{version\}", shell_output\("#\{bin\}\/rsm version"\)/,
  );
  const version = await run("deno", ["task", "-q", "rsm", "version"], { cwd: ROOT });
  assert.match(version.stdout, /^rsm \d+\.\d+\.\d+/);
  // Ruby's block structure: every `do`/`def`/`class` has its `end`
  const code = rb.replace(/<<~EOS[\s\S]*?EOS/g, "").replace(/#.*$/gm, "");
  const opens = (code.match(/\bdo\b|^\s*(def|class)\b/gm) ?? []).length;
  const ends = (code.match(/^\s*end\b/gm) ?? []).length;
  assert.equal(opens, ends, "balanced do/def/class … end");
  if (await have("ruby")) {
    const file = await Deno.makeTempFile({ suffix: ".rb" });
    await Deno.writeTextFile(file, rb);
    const r = await run("ruby", ["-c", file]);
    await Deno.remove(file);
    assert.equal(r.code, 0, r.stderr);
  }
});

Deno.test("a missing checksum or a bad version stops the formula instead of shipping it", () => {
  const sums = parseSums(SUMS);
  delete sums["rsm-linux-arm64"];
  assert.throws(
    () => renderFormula(template, { version: "1.2.3", repo: "a/b", sums }),
    /no SHA-256 for rsm-linux-arm64/,
  );
  assert.throws(
    () => renderFormula(template, { version: "v1.2", repo: "a/b", sums: parseSums(SUMS) }),
    /not a release version/,
  );
});

Deno.test("the release workflow renders the formula after SHA256SUMS and publishes it", async () => {
  const wf = await Deno.readTextFile(join(ROOT, ".github", "workflows", "release.yml"));
  const sums = wf.indexOf("sha256sum rsm-linux-x64");
  const render = wf.indexOf("scripts/homebrew.ts --repo");
  const publish = wf.indexOf("gh release create");
  assert.ok(sums > 0 && render > sums && publish > render, "SHA256SUMS → formula → release");
  assert.match(wf.slice(publish), /dist\/rsm\.rb/);
  assert.match(wf, /homebrew-tap\.git/);
  assert.match(wf, /cp dist\/rsm\.rb tap\/Formula\/rsm\.rb/);
});
