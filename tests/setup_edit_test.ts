/**
 * `rsm setup` edits only its own entry: other servers, key order, comments, unrelated TOML
 * tables and huge numbers stay byte-for-byte; second runs change nothing; a changed binary
 * path updates only that entry; backups; --dry-run; the prompt; broken files left alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { testIf } from "./support/env.ts";
import { listFiles, put, setupIn, tempHome } from "./support/setup.ts";
import { unifiedDiff } from "../lib/setup/diff.ts";
import { parse as parseToml } from "smol-toml";

const CLAUDE_BEFORE = `{
  "numStartups": 12345678901234567890123,
  "userID": "abc",
  "tipsHistory": {"x": 1},
  "mcpServers": {
    "other": {"command": "npx", "args": ["-y", "thing"]} // keep me
  },
  "cost": 0.10000000000000000555,
  "projects": {}
}
`;

const CLAUDE_AFTER = `{
  "numStartups": 12345678901234567890123,
  "userID": "abc",
  "tipsHistory": {"x": 1},
  "mcpServers": {
    "other": {"command": "npx", "args": ["-y", "thing"]}, // keep me
    "remote-shell-mcp": {
      "type": "stdio",
      "command": "/opt/rsm/bin/rsm",
      "args": [
        "stdio"
      ],
      "env": {}
    }
  },
  "cost": 0.10000000000000000555,
  "projects": {}
}
`;

const ZED_BEFORE = `// Zed settings
//
// For information on how to configure Zed, see the Zed documentation.
{
\t"theme": "One Dark", /* block comment */
\t"vim_mode": true,
\t"context_servers": {
\t\t// my servers
\t},
\t"ui_font_size": 16,
}
`;

const ZED_AFTER = `// Zed settings
//
// For information on how to configure Zed, see the Zed documentation.
{
\t"theme": "One Dark", /* block comment */
\t"vim_mode": true,
\t"context_servers": {
\t\t"remote-shell-mcp": {
\t\t\t"command": "/opt/rsm/bin/rsm",
\t\t\t"args": [
\t\t\t\t"stdio"
\t\t\t],
\t\t\t"env": {}
\t\t}
\t\t// my servers
\t},
\t"ui_font_size": 16,
}
`;

const CODEX_BEFORE = `# Codex config
model = "gpt-5-codex" # the default
approval_policy = "on-request"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]

[profiles.fast]
model = "o4-mini"
big = 9007199254740993
`;

const CODEX_AFTER = CODEX_BEFORE + `
[mcp_servers.remote-shell-mcp]
command = "/opt/rsm/bin/rsm"
args = [ "stdio" ]
`;

testIf(
  null,
  "setup keeps other servers, key order, comments and huge numbers byte-for-byte",
  async () => {
    await using t = await tempHome();
    await put(t.home, ".claude.json", CLAUDE_BEFORE);
    await put(t.home, ".config/zed/settings.json", ZED_BEFORE);
    await put(t.home, ".codex/config.toml", CODEX_BEFORE);
    const r = await setupIn(t.home, ["--yes"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await Deno.readTextFile(join(t.home, ".claude.json")), CLAUDE_AFTER);
    assert.equal(await Deno.readTextFile(join(t.home, ".config/zed/settings.json")), ZED_AFTER);
    assert.equal(await Deno.readTextFile(join(t.home, ".codex/config.toml")), CODEX_AFTER);
  },
);

testIf(null, "setup keeps a one-line JSON file on one line and CRLF line ends", async () => {
  await using t = await tempHome();
  await put(t.home, ".cursor/mcp.json", `{"mcpServers":{"a":{"command":"x"}}}`);
  await put(t.home, ".gemini/settings.json", `{\r\n    "theme": "Dracula"\r\n}\r\n`);
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(
    await Deno.readTextFile(join(t.home, ".cursor/mcp.json")),
    `{"mcpServers":{"a":{"command":"x"}, "remote-shell-mcp": ` +
      `{"command": "/opt/rsm/bin/rsm", "args": ["stdio"]}}}`,
  );
  assert.equal(
    await Deno.readTextFile(join(t.home, ".gemini/settings.json")),
    `{\r\n    "theme": "Dracula",\r\n    "mcpServers": {\r\n        "remote-shell-mcp": {\r\n` +
      `            "command": "/opt/rsm/bin/rsm",\r\n            "args": [\r\n` +
      `                "stdio"\r\n            ]\r\n        }\r\n    }\r\n}\r\n`,
  );
});

testIf(null, "a second setup run changes nothing and says so", async () => {
  await using t = await tempHome();
  await put(t.home, ".claude.json", CLAUDE_BEFORE);
  await put(t.home, ".config/zed/settings.json", ZED_BEFORE);
  await put(t.home, ".codex/config.toml", CODEX_BEFORE);
  for (const d of [".cursor", ".continue", ".config/Code/User", ".gemini"]) {
    await Deno.mkdir(join(t.home, d), { recursive: true });
  }
  const first = await setupIn(t.home, ["--yes"], { now: new Date("2026-01-02T03:04:05Z") });
  assert.equal(first.code, 0, first.err);
  const files = await listFiles(t.home);
  const texts = await Promise.all(files.map((f) => Deno.readTextFile(join(t.home, f))));
  const second = await setupIn(t.home, ["--yes"], { now: new Date("2026-01-02T03:09:09Z") });
  assert.equal(second.code, 0, second.err);
  assert.match(second.out, /Nothing to change: already set up everywhere\./);
  assert.doesNotMatch(second.out, /will (add|update)/);
  assert.deepEqual(await listFiles(t.home), files, "no new file, no new backup");
  for (const [i, f] of files.entries()) {
    assert.equal(await Deno.readTextFile(join(t.home, f)), texts[i], f);
  }
});

testIf(
  null,
  "a changed binary path updates only that entry, keeps the user's env, and backs up",
  async () => {
    await using t = await tempHome();
    await put(t.home, ".claude.json", CLAUDE_BEFORE);
    await put(t.home, ".codex/config.toml", CODEX_BEFORE);
    await setupIn(t.home, ["--yes"], { now: new Date("2026-01-02T03:04:05Z") });
    // the user adds an env var to our entry in both files
    const claude1 = (await Deno.readTextFile(join(t.home, ".claude.json")))
      .replace('"env": {}', '"env": {"SSH_AUTH_SOCK": "/run/agent"}');
    await Deno.writeTextFile(join(t.home, ".claude.json"), claude1);
    const codex1 = (await Deno.readTextFile(join(t.home, ".codex/config.toml"))) +
      `startup_timeout_sec = 30\n\n[mcp_servers.remote-shell-mcp.env]\nFOO = "bar"\n`;
    await Deno.writeTextFile(join(t.home, ".codex/config.toml"), codex1);

    const moved = { command: "/usr/local/bin/rsm", args: ["stdio"] };
    const r = await setupIn(t.home, ["--yes"], {
      command: moved,
      now: new Date("2026-01-02T04:00:00Z"),
    });
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /Claude Code: updated ~\/\.claude\.json \(backup: ~\/\.claude\.json\.rsm-backup-20260102T040000Z\)/,
    );
    assert.equal(
      await Deno.readTextFile(join(t.home, ".claude.json")),
      claude1.replace('"command": "/opt/rsm/bin/rsm"', '"command": "/usr/local/bin/rsm"'),
    );
    assert.equal(
      await Deno.readTextFile(join(t.home, ".codex/config.toml")),
      codex1.replace('command = "/opt/rsm/bin/rsm"', 'command = "/usr/local/bin/rsm"'),
    );
    // the backups hold exactly the files as they were before this run
    assert.equal(
      await Deno.readTextFile(join(t.home, ".claude.json.rsm-backup-20260102T040000Z")),
      claude1,
    );
    assert.equal(
      await Deno.readTextFile(join(t.home, ".codex/config.toml.rsm-backup-20260102T040000Z")),
      codex1,
    );
    // and the first run's backups (of the original files) are still there
    assert.equal(
      await Deno.readTextFile(join(t.home, ".claude.json.rsm-backup-20260102T030405Z")),
      CLAUDE_BEFORE,
    );
  },
);

testIf(null, "setup updates a multi-line args array in a Codex table in place", async () => {
  await using t = await tempHome();
  const before = `[mcp_servers.remote-shell-mcp]
# ours
command = "/old/rsm"   # old path
args = [
  "stdio",
  "--no-spawn",
]
enabled = true

[other]
x = 1
`;
  await put(t.home, ".codex/config.toml", before);
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(
    await Deno.readTextFile(join(t.home, ".codex/config.toml")),
    `[mcp_servers.remote-shell-mcp]
# ours
command = "/opt/rsm/bin/rsm"
args = [ "stdio" ]
enabled = true

[other]
x = 1
`,
  );
});

testIf(
  null,
  "setup rewrites an inline Codex table with a note when text edit is impossible",
  async () => {
    await using t = await tempHome();
    await put(
      t.home,
      ".codex/config.toml",
      `model = "o3"\nmcp_servers = { remote-shell-mcp = { command = "/old" } }\n`,
    );
    const r = await setupIn(t.home, ["--yes"]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /note: its comments and layout could not be kept/);
    const text = await Deno.readTextFile(join(t.home, ".codex/config.toml"));
    assert.match(text, /model = "o3"/);
    assert.match(text, /command = "\/opt\/rsm\/bin\/rsm"/);
  },
);

testIf(null, "setup --dry-run prints a diff and writes nothing", async () => {
  await using t = await tempHome();
  await put(t.home, ".claude.json", CLAUDE_BEFORE);
  await Deno.mkdir(join(t.home, ".cursor"));
  const before = await listFiles(t.home);
  const r = await setupIn(t.home, ["--dry-run"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^--- ~\/\.claude\.json\n\+\+\+ ~\/\.claude\.json\n@@ -3,7 \+3,15 @@$/m);
  assert.match(
    r.out,
    /^- {4}"other": \{"command": "npx", "args": \["-y", "thing"\]\} \/\/ keep me$/m,
  );
  assert.match(r.out, /^\+ {4}"remote-shell-mcp": \{$/m);
  assert.match(r.out, /^--- \/dev\/null\n\+\+\+ ~\/\.cursor\/mcp\.json$/m);
  assert.match(r.out, /Dry run: nothing was written\./);
  assert.deepEqual(await listFiles(t.home), before);
  assert.equal(await Deno.readTextFile(join(t.home, ".claude.json")), CLAUDE_BEFORE);
});

testIf(
  null,
  "without --yes setup asks on a terminal and only shows the diff otherwise",
  async () => {
    await using t = await tempHome();
    await Deno.mkdir(join(t.home, ".cursor"));
    const piped = await setupIn(t.home, []);
    assert.equal(piped.code, 0);
    assert.equal(piped.asked, false);
    assert.match(piped.out, /\+\+\+ ~\/\.cursor\/mcp\.json/);
    assert.match(piped.out, /not a terminal and --yes was not given: nothing was written/);
    assert.deepEqual(await listFiles(t.home), []);

    const declined = await setupIn(t.home, [], { isTTY: true, answer: false });
    assert.equal(declined.asked, true);
    assert.equal(declined.code, 1);
    assert.match(declined.out, /Nothing was written\./);
    assert.deepEqual(await listFiles(t.home), []);

    const accepted = await setupIn(t.home, [], { isTTY: true, answer: true });
    assert.equal(accepted.code, 0, accepted.err);
    assert.deepEqual(await listFiles(t.home), [".cursor/mcp.json"]);
  },
);

testIf(null, "an unparseable config is left untouched with a clear message", async () => {
  await using t = await tempHome();
  const broken = `{\n  "mcpServers": {\n    "a": {"command": "x"}\n  \n`;
  await put(t.home, ".cursor/mcp.json", broken);
  await put(t.home, ".codex/config.toml", `[mcp_servers\nnope = `);
  await Deno.mkdir(join(t.home, ".gemini"));
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, "Gemini could be done, so the run as a whole succeeded");
  assert.match(
    r.err,
    /Cursor: Cannot update ~\/\.cursor\/mcp\.json: it is not valid JSON at line 5, column 1: CloseBraceExpected; left it untouched\. Fix the file, or add this entry by hand under mcpServers\.remote-shell-mcp: \{"command":"\/opt\/rsm\/bin\/rsm","args":\["stdio"\]\}/,
  );
  assert.match(r.err, /Codex: Cannot update ~\/\.codex\/config\.toml: it is not valid TOML/);
  assert.match(r.out, /Gemini CLI: added/);
  assert.equal(await Deno.readTextFile(join(t.home, ".cursor/mcp.json")), broken);
  assert.deepEqual(await listFiles(t.home), [
    ".codex/config.toml",
    ".cursor/mcp.json",
    ".gemini/settings.json",
  ]);

  const only = await setupIn(t.home, ["--yes", "--client", "cursor"]);
  assert.equal(only.code, 1, "nothing could be done");
  const shape = await setupIn(t.home, ["--yes", "--client", "vscode"]);
  assert.equal(shape.code, 0);
  await put(t.home, ".config/Code/User/mcp.json", `{"servers": []}`);
  const bad = await setupIn(t.home, ["--yes", "--client", "vscode"]);
  assert.equal(bad.code, 1);
  assert.match(bad.err, /unexpected content: "servers" is not an object/);
});

testIf(null, "setup writes through a symlinked config and keeps the link", async () => {
  await using t = await tempHome();
  const real = await put(t.home, "dotfiles/claude.json", `{"a": 1}\n`);
  await Deno.symlink(real, join(t.home, ".claude.json"));
  const r = await setupIn(t.home, ["--yes"]);
  assert.equal(r.code, 0, r.err);
  assert.ok((await Deno.lstat(join(t.home, ".claude.json"))).isSymlink);
  assert.match(await Deno.readTextFile(real), /"remote-shell-mcp"/);
});

testIf(null, "setup keeps the file mode of an existing config", async () => {
  await using t = await tempHome();
  const p = await put(t.home, ".cursor/mcp.json", "{}\n");
  await Deno.chmod(p, 0o640);
  await setupIn(t.home, ["--yes"]);
  assert.equal((await Deno.stat(p)).mode! & 0o777, 0o640);
  assert.equal(
    await Deno.readTextFile(p),
    `{\n  "mcpServers": {\n    "remote-shell-mcp": {\n      "command": "/opt/rsm/bin/rsm",\n` +
      `      "args": [\n        "stdio"\n      ]\n    }\n  }\n}\n`,
  );
});

testIf(null, "the dry-run diff is a unified diff with context", () => {
  const a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
  const b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\n";
  assert.equal(
    unifiedDiff(a, b, { from: "a", to: "b" }),
    "--- a\n+++ b\n@@ -2,9 +2,10 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n 9\n 10\n+11\n",
  );
  assert.equal(unifiedDiff(a, a), "");
  assert.equal(
    unifiedDiff("", "x\n", { from: "/dev/null", to: "f" }),
    "--- /dev/null\n+++ f\n@@ -0,0 +1,1 @@\n+x\n",
  );
});

testIf(null, "setup owns env.PATH key by key and keeps the user's other env vars", async () => {
  await using t = await tempHome();
  const command = {
    command: "/opt/rsm/bin/rsm",
    args: ["stdio"],
    env: { PATH: "/opt/rsm/bin:/usr/bin:/bin" },
  };
  await put(
    t.home,
    ".claude.json",
    `{"mcpServers": {"remote-shell-mcp": {"command": "/old", "args": ["stdio"], ` +
      `"env": {"SSH_AUTH_SOCK": "/run/agent"}}}}\n`,
  );
  await put(
    t.home,
    ".codex/config.toml",
    `[mcp_servers.remote-shell-mcp]\ncommand = "/old"\nargs = ["stdio"]\n`,
  );
  await put(
    t.home,
    ".codex-sub/config.toml",
    `# mine\n[mcp_servers.remote-shell-mcp]\ncommand = "/old"\n\n` +
      `[mcp_servers.remote-shell-mcp.env]\nFOO = "1"\n`,
  );
  const r = await setupIn(t.home, ["--yes"], { command });
  assert.equal(r.code, 0, r.err);
  assert.equal(
    await Deno.readTextFile(join(t.home, ".claude.json")),
    `{"mcpServers": {"remote-shell-mcp": {"command": "/opt/rsm/bin/rsm", "args": ["stdio"], ` +
      `"env": {"SSH_AUTH_SOCK": "/run/agent", "PATH": "/opt/rsm/bin:/usr/bin:/bin"}, ` +
      `"type": "stdio"}}}\n`,
  );
  assert.equal(
    await Deno.readTextFile(join(t.home, ".codex/config.toml")),
    `[mcp_servers.remote-shell-mcp]\ncommand = "/opt/rsm/bin/rsm"\nargs = ["stdio"]\n` +
      `env = { PATH = "/opt/rsm/bin:/usr/bin:/bin" }\n`,
  );
  // an env sub-table is merged through the re-serialising fallback, with a note
  const sub = await setupIn(t.home, ["--yes", "--client", "codex"], {
    command,
    env: { CODEX_HOME: join(t.home, ".codex-sub") },
  });
  assert.equal(sub.code, 0, sub.err);
  assert.match(sub.out, /note: its comments and layout could not be kept/);
  const parsed = parseToml(await Deno.readTextFile(join(t.home, ".codex-sub/config.toml")));
  assert.deepEqual(JSON.parse(JSON.stringify(parsed)), {
    mcp_servers: {
      "remote-shell-mcp": {
        command: "/opt/rsm/bin/rsm",
        args: ["stdio"],
        env: { FOO: "1", PATH: "/opt/rsm/bin:/usr/bin:/bin" },
      },
    },
  });
  // and a second run changes nothing anywhere
  const again = await setupIn(t.home, ["--yes"], { command });
  assert.match(again.out, /Nothing to change/);
  const againSub = await setupIn(t.home, ["--yes", "--client", "codex"], {
    command,
    env: { CODEX_HOME: join(t.home, ".codex-sub") },
  });
  assert.match(againSub.out, /Nothing to change/);
  // Continue's block file carries the env too
  await setupIn(t.home, ["--yes", "--client", "continue"], { command });
  assert.match(
    await Deno.readTextFile(join(t.home, ".continue/mcpServers/remote-shell-mcp.yaml")),
    /^ {4}args:\n {6}- "stdio"\n {4}env:\n {6}"PATH": "\/opt\/rsm\/bin:\/usr\/bin:\/bin"\n$/m,
  );
});
