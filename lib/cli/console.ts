import type { Handle } from "../http/handle.ts";
import { daemonJson } from "./connect.ts";

/** Options of {@link consoleCommand}. */
export interface ConsoleOptions {
  /** Only print the link, never open a browser. */
  print?: boolean | undefined;
}

/**
 * `rsm console`: asks the daemon for a one-time login link to its web console and prints
 * it. Without `--print` it also opens the link where a desktop browser can be started
 * (`xdg-open` on Linux with a display, `open` on macOS) — but only when rsm's permission set
 * lets it run that program; the shipped set does not, so the link is printed for the person
 * to open (README, "The console").
 */
export async function consoleCommand(handle: Handle, options: ConsoleOptions): Promise<number> {
  const { url } = await daemonJson(handle, "/console-link", "POST") as { url?: string };
  if (typeof url !== "string") throw new Error("the daemon did not return a console link");
  console.log(url);
  if (options.print) return 0;
  const opener = desktopOpener();
  if (!opener) {
    console.error("Open this link in a browser on this machine; it works once.");
    return 0;
  }
  try {
    const child = new Deno.Command(opener, {
      args: [url],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    console.error(`Opened in your browser (${opener}); the link works once.`);
  } catch {
    console.error("Open this link in a browser on this machine; it works once.");
  }
  return 0;
}

/** The program that opens a URL in the desktop's browser, if there is one and rsm may run it. */
function desktopOpener(): string | null {
  const os = Deno.build.os;
  let cmd: string | null = null;
  if (os === "darwin") cmd = "open";
  else if (
    (os === "linux" || os === "freebsd") &&
    (Deno.env.get("DISPLAY") || Deno.env.get("WAYLAND_DISPLAY"))
  ) cmd = "xdg-open";
  if (!cmd) return null;
  return Deno.permissions.querySync({ name: "run", command: cmd }).state === "granted" ? cmd : null;
}
