/**
 * scripts/install.sh under `dash`, against a local HTTP server serving a fake release: assets
 * per OS/arch (small shell scripts standing in for rsm) and SHA256SUMS.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { need, ROOT, run, testIf } from "./support/env.ts";

const SCRIPT = join(ROOT, "scripts", "install.sh");
const ARCH = Deno.build.arch === "aarch64" ? "arm64" : "x64";
const OS = Deno.build.os;
const ASSET = `rsm-${OS}-${ARCH}`;
const ASSETS = [
  "rsm-linux-x64",
  "rsm-linux-arm64",
  "rsm-darwin-x64",
  "rsm-darwin-arm64",
  "rsm-windows-x64.exe",
];

/** A fake rsm: `version` prints the version, anything else is logged to $RSM_FAKE_LOG. */
function fakeRsm(version: string, asset: string): string {
  return `#!/bin/sh
# fake ${asset}
case "$1" in
  version) echo "rsm ${version}" ;;
  *) echo "$*" >> "$RSM_FAKE_LOG" ;;
esac
`;
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** Files of the fake release, keyed by URL path. */
function releaseFiles(): Map<string, string> {
  const files = new Map<string, string>();
  const add = (prefix: string, version: string, corrupt = false) => {
    const sums: string[] = [];
    for (const a of ASSETS) {
      const body = fakeRsm(version, a);
      files.set(`${prefix}/${a}`, body);
      sums.push(`${corrupt ? sha(body + "x") : sha(body)}  ${a}`);
    }
    files.set(`${prefix}/SHA256SUMS`, sums.join("\n") + "\n");
  };
  add("/releases/latest/download", "0.2.0");
  add("/releases/download/v0.2.0", "0.2.0");
  add("/releases/download/v0.1.0", "0.1.0");
  add("/releases/download/v0.0.9", "0.0.9", true);
  return files;
}

interface Release extends AsyncDisposable {
  base: string;
  requests: { path: string; agent: string }[];
}

function serveRelease(): Release {
  const files = releaseFiles();
  const requests: { path: string; agent: string }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push({ path, agent: req.headers.get("user-agent") ?? "" });
    const body = files.get(path);
    return body === undefined
      ? new Response("not found\n", { status: 404 })
      : new Response(body, { headers: { "content-type": "application/octet-stream" } });
  });
  return {
    base: `http://127.0.0.1:${server.addr.port}/releases`,
    requests,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

interface Box extends AsyncDisposable {
  root: string;
  home: string;
  log: string;
  tmp: string;
  env: Record<string, string>;
}

/** Temp HOME, TMPDIR, a log for the fake rsm, and an env pointing install.sh at `rel`. */
async function box(rel: Release, extra: Record<string, string> = {}): Promise<Box> {
  const root = await Deno.makeTempDir({ prefix: "rsm-install-" });
  const home = join(root, "home");
  const tmp = join(root, "tmp");
  await Deno.mkdir(home);
  await Deno.mkdir(tmp);
  const log = join(root, "rsm.log");
  await Deno.writeTextFile(log, "");
  return {
    root,
    home,
    log,
    tmp,
    env: {
      ...Deno.env.toObject(),
      HOME: home,
      TMPDIR: tmp,
      RSM_BASE_URL: rel.base,
      RSM_FAKE_LOG: log,
      // the first choice of install dir: a path that does not exist unless a test says so
      RSM_SYSTEM_BIN_DIR: join(root, "system-bin"),
      ...extra,
    },
    async [Symbol.asyncDispose]() {
      await Deno.remove(root, { recursive: true }).catch(() => {});
    },
  };
}

/** A bin dir with every tool of /usr/bin except `without`, for PATH-restricted runs. */
async function pathWithout(root: string, without: string[]): Promise<string> {
  const bin = join(root, "bin-" + without.join("-"));
  await Deno.mkdir(bin);
  for await (const e of Deno.readDir("/usr/bin")) {
    if (without.includes(e.name)) continue;
    await Deno.symlink(join("/usr/bin", e.name), join(bin, e.name));
  }
  return bin;
}

function install(b: Box, args: string[], env: Record<string, string> = {}) {
  return run("/usr/bin/dash", [SCRIPT, ...args], { env: { ...b.env, ...env }, cwd: b.root });
}

const DASH = await need(["dash", "curl", "wget", "sha256sum", "shasum"]);

testIf(
  DASH,
  "install.sh installs the latest release into --dir and runs rsm setup --yes",
  async () => {
    await using rel = serveRelease();
    await using b = await box(rel);
    const dir = join(b.root, "bin");
    const r = await install(b, ["--dir", dir]);
    assert.equal(r.code, 0, r.stderr);
    const installed = join(dir, "rsm");
    assert.equal(await Deno.readTextFile(installed), fakeRsm("0.2.0", ASSET));
    assert.equal((await Deno.stat(installed)).mode! & 0o777, 0o755);
    assert.match(r.stdout, new RegExp(`Downloading ${ASSET} \\(latest\\)`));
    assert.match(r.stdout, /Verified SHA-256 [0-9a-f]{64}/);
    assert.match(r.stdout, new RegExp(`Installed ${dir}/rsm \\(rsm 0\\.2\\.0\\)`));
    assert.equal(await Deno.readTextFile(b.log), "setup --yes\n");
    assert.deepEqual(rel.requests.map((q) => q.path), [
      `/releases/latest/download/${ASSET}`,
      "/releases/latest/download/SHA256SUMS",
    ]);
    assert.deepEqual([...Deno.readDirSync(b.tmp)], [], "the download dir is removed");
  },
);

testIf(DASH, "install.sh --version installs that release, with or without the v", async () => {
  await using rel = serveRelease();
  for (const v of ["v0.1.0", "0.1.0"]) {
    await using b = await box(rel);
    const dir = join(b.root, "bin");
    const r = await install(b, ["--version", v, `--dir=${dir}`, "--yes"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await Deno.readTextFile(join(dir, "rsm")), fakeRsm("0.1.0", ASSET));
    assert.match(r.stdout, /\(rsm 0\.1\.0\)/);
    assert.equal(rel.requests.at(-2)!.path, `/releases/download/v0.1.0/${ASSET}`);
    assert.equal(await Deno.readTextFile(b.log), "setup --yes\n");
  }
});

testIf(DASH, "install.sh refuses a checksum mismatch and installs nothing", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const dir = join(b.root, "bin");
  const r = await install(b, ["--version", "v0.0.9", "--dir", dir]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `checksum mismatch for ${ASSET}: expected [0-9a-f]{64}, got [0-9a-f]{64}; refusing to install`,
    ),
  );
  assert.equal(await Deno.stat(dir).catch(() => null), null, "nothing created");
  assert.equal(await Deno.readTextFile(b.log), "", "setup did not run");
  assert.deepEqual([...Deno.readDirSync(b.tmp)], []);
});

testIf(DASH, "install.sh fails clearly when the release does not exist", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const r = await install(b, ["--version", "v9.9.9", "--dir", join(b.root, "bin")]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`cannot download ${rel.base}/download/v9\\.9\\.9/${ASSET}`));
});

testIf(DASH, "install.sh --no-setup installs without registering clients", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const dir = join(b.root, "bin");
  const r = await install(b, ["--dir", dir, "--no-setup"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await Deno.stat(join(dir, "rsm"))).isFile);
  assert.equal(await Deno.readTextFile(b.log), "");
  assert.match(r.stdout, /Skipped client setup; run it later: .*\/rsm setup/);
});

testIf(DASH, "install.sh picks the system bin dir when writable, else ~/.local/bin", async () => {
  await using rel = serveRelease();
  {
    await using b = await box(rel);
    const system = join(b.root, "system-bin");
    await Deno.mkdir(system);
    const r = await install(b, ["--no-setup"], { PATH: `${system}:${b.env.PATH}` });
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await Deno.stat(join(system, "rsm"))).isFile);
    assert.doesNotMatch(r.stdout, /not on your PATH/);
  }
  {
    await using b = await box(rel); // RSM_SYSTEM_BIN_DIR does not exist
    const r = await install(b, ["--no-setup"]);
    assert.equal(r.code, 0, r.stderr);
    const local = join(b.home, ".local", "bin", "rsm");
    assert.ok((await Deno.stat(local)).isFile);
    assert.match(r.stdout, new RegExp(`Installed ${local}`));
    assert.match(r.stdout, /is not on your PATH; add it, e\.g\.: export PATH=/);
  }
});

testIf(DASH, "install.sh works with only curl and with only wget on PATH", async () => {
  await using rel = serveRelease();
  for (
    const [tool, missing, agent] of [["curl", "wget", /^curl\//], [
      "wget",
      "curl",
      /^Wget\//,
    ]] as const
  ) {
    await using b = await box(rel);
    const bin = await pathWithout(b.root, [missing]);
    const dir = join(b.root, "dest");
    const before = rel.requests.length;
    const r = await install(b, ["--dir", dir], { PATH: bin });
    assert.equal(r.code, 0, `${tool}: ${r.stderr}`);
    assert.equal(await Deno.readTextFile(join(dir, "rsm")), fakeRsm("0.2.0", ASSET));
    const used = rel.requests.slice(before);
    assert.equal(used.length, 2);
    for (const q of used) assert.match(q.agent, agent, `${tool} made the requests`);
  }
  await using b = await box(rel);
  const bin = await pathWithout(b.root, ["curl", "wget"]);
  const r = await install(b, ["--dir", join(b.root, "dest")], { PATH: bin });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /neither curl nor wget found/);
});

testIf(DASH, "install.sh verifies with shasum when sha256sum is missing", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const bin = await pathWithout(b.root, ["sha256sum"]);
  const dir = join(b.root, "dest");
  const ok = await install(b, ["--dir", dir, "--no-setup"], { PATH: bin });
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await install(b, ["--dir", dir, "--version", "0.0.9"], { PATH: bin });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /checksum mismatch/);
});

testIf(DASH, "install.sh runs piped into sh with arguments after -s --", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const dir = join(b.root, "bin");
  const r = await run("/usr/bin/dash", ["-s", "--", "--dir", dir, "--yes"], {
    env: b.env,
    stdin: await Deno.readTextFile(SCRIPT),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok((await Deno.stat(join(dir, "rsm"))).isFile);
  assert.equal(await Deno.readTextFile(b.log), "setup --yes\n");
});

testIf(DASH, "install.sh --help and unknown options", async () => {
  await using rel = serveRelease();
  await using b = await box(rel);
  const h = await install(b, ["--help"]);
  assert.equal(h.code, 0);
  assert.match(
    h.stdout,
    /Usage: install\.sh \[--version VERSION\] \[--dir DIR\] \[--no-setup\] \[--yes\]/,
  );
  const bad = await install(b, ["--frob"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown option: --frob/);
  assert.equal(rel.requests.length, 0);
});

testIf(
  await need(["dash", "script"]),
  "install.sh on a terminal without --yes lets rsm setup ask",
  async () => {
    await using rel = serveRelease();
    await using b = await box(rel);
    const dir = join(b.root, "bin");
    // `script` gives the installer a terminal for stdout and /dev/tty
    const r = await run("script", ["-qec", `/usr/bin/dash ${SCRIPT} --dir ${dir}`, "/dev/null"], {
      env: b.env,
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(await Deno.readTextFile(b.log), "setup\n", "setup ran without --yes");
  },
);
