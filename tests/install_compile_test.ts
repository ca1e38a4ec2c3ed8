/**
 * Release builds: `deno task compile` builds the five targets with exactly the permission
 * flags `deno task rsm` runs with, the assets match what install.sh downloads, and the release
 * workflow compiles, writes SHA256SUMS and publishes on tags.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, run, testIf } from "./support/env.ts";
import { compileArgv, permissionFlags, TARGETS } from "../scripts/compile.ts";
import { LIBCRYPTO_PATHS } from "../lib/ssh/crypto/libcrypto.ts";

const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));

interface Plan {
  target: string;
  output: string;
  argv: string[];
}

testIf(
  null,
  "deno task compile builds five targets with the run task's permission flags",
  async () => {
    const r = await run("deno", ["task", "-q", "compile", "--dry-run", "--json"], { cwd: ROOT });
    assert.equal(r.code, 0, r.stderr);
    const plan: Plan[] = JSON.parse(r.stdout);
    assert.deepEqual(plan.map((p) => p.target), [
      "linux-x64",
      "linux-arm64",
      "darwin-x64",
      "darwin-arm64",
      "windows-x64",
    ]);
    const runFlags = permissionFlags(config.tasks.rsm.split(/\s+/));
    assert.deepEqual(runFlags, ["-P=rsm"], "the run task uses the permission set of deno.json");
    const triples = [
      "x86_64-unknown-linux-gnu",
      "aarch64-unknown-linux-gnu",
      "x86_64-apple-darwin",
      "aarch64-apple-darwin",
      "x86_64-pc-windows-msvc",
    ];
    for (const [i, p] of plan.entries()) {
      assert.deepEqual(
        permissionFlags(p.argv),
        runFlags,
        `${p.target} compiles with the same flags`,
      );
      assert.deepEqual(p.argv, [
        "deno",
        "compile",
        "-P=rsm",
        "--target",
        triples[i],
        "--output",
        `dist/rsm-${p.target}`,
        "main.ts",
      ]);
    }
    assert.equal(plan[4]?.output, "dist/rsm-windows-x64.exe");
    // the plain dry run prints the same command lines
    const text = await run("deno", ["task", "-q", "compile", "--dry-run"], { cwd: ROOT });
    assert.equal(text.stdout, TARGETS.map((t) => compileArgv(t).join(" ")).join("\n") + "\n");
  },
);

testIf(
  null,
  "every task that runs rsm uses -P=rsm; the set grants no all, ffi only libcrypto",
  () => {
    for (const [name, cmd] of Object.entries(config.tasks as Record<string, string>)) {
      if (!/\bdeno run\b.*\bmain\.ts\b/.test(cmd)) continue;
      assert.deepEqual(permissionFlags(cmd.split(/\s+/)), ["-P=rsm"], `task ${name}`);
    }
    const set = config.permissions.rsm;
    assert.equal(set.all, undefined);
    // FFI only for the exact libcrypto files lib/ssh/crypto/libcrypto.ts tries (README)
    assert.deepEqual(set.ffi ?? [], [...LIBCRYPTO_PATHS], "ffi is narrowed to libcrypto's paths");
    assert.deepEqual(set.run, ["deno", "rsm"], "run is narrowed to rsm itself");
  },
);

testIf(null, "the compiled asset names are the ones install.sh downloads", async () => {
  const script = await Deno.readTextFile(join(ROOT, "scripts/install.sh"));
  assert.match(script, /asset="rsm-\$os-\$arch"/);
  assert.match(script, /Linux\) os=linux/);
  assert.match(script, /Darwin\) os=darwin/);
  assert.match(script, /x86_64 \| amd64\) arch=x64/);
  assert.match(script, /aarch64 \| arm64\) arch=arm64/);
  for (const os of ["linux", "darwin"]) {
    for (const arch of ["x64", "arm64"]) {
      assert.ok(TARGETS.some((t) => t.file === `rsm-${os}-${arch}`), `${os}-${arch} is built`);
    }
  }
  assert.match(script, /rsm-windows-x64\.exe/);
});

testIf(
  null,
  "the release workflow compiles, writes SHA256SUMS and publishes on v* tags",
  async () => {
    const wf = await Deno.readTextFile(join(ROOT, ".github/workflows/release.yml"));
    assert.match(wf, /on:\n {2}push:\n {4}tags: \["v\*"\]/);
    assert.match(wf, /contents: write/);
    assert.match(wf, /run: deno task compile\n/);
    assert.match(wf, /deno test --allow-all tests\/install_compile_test\.ts/);
    assert.match(
      wf,
      /sha256sum rsm-linux-x64 rsm-linux-arm64 rsm-darwin-x64 rsm-darwin-arm64 \\\n\s+rsm-windows-x64\.exe > SHA256SUMS/,
    );
    assert.match(wf, /gh release create "\$GITHUB_REF_NAME"/);
    for (const t of TARGETS) assert.ok(wf.includes(`dist/${t.file}`), `${t.file} is published`);
    assert.ok(wf.includes("dist/SHA256SUMS") && wf.includes("scripts/install.sh"));
  },
);

testIf(
  null,
  "deno compile accepts the flags and gets as far as fetching its runtime",
  async () => {
    // This machine cannot download denort; a machine that can gets a working binary.
    const out = await Deno.makeTempDir({ prefix: "rsm-compile-" });
    try {
      const t = TARGETS.find((t) =>
        t.name === `${Deno.build.os}-${Deno.build.arch === "aarch64" ? "arm64" : "x64"}`
      )!;
      const [program, ...args] = compileArgv(t).map((a) =>
        a.startsWith("dist/") ? join(out, "rsm") : a
      );
      assert.ok(program);
      const r = await run(program, args, { cwd: ROOT });
      if (r.code === 0) {
        const v = await run(join(out, "rsm"), ["version"]);
        assert.equal(v.code, 0, v.stderr);
        assert.match(v.stdout, new RegExp(config.version.replaceAll(".", "\\.")));
      } else {
        assert.match(
          r.stderr,
          /Compile\S* main\.ts to/,
          "flags, permission set and type check passed",
        );
        assert.match(r.stderr, /denort/, `failed only at the runtime download:\n${r.stderr}`);
      }
    } finally {
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
  },
);
