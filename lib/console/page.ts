/**
 * HTML building blocks of the console: escaping, the page frame, and the headers every
 * console response carries (CSP, no-store, no framing, no referrer).
 */

/**
 * Content-Security-Policy of every console response. Scripts only from the daemon itself
 * (no inline script, no eval); connections only back to it. `style-src` allows inline
 * styles because xterm.js writes its measured cell sizes and theme into `<style>` elements
 * it creates at run time; scripts stay strict.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

/** Headers for every console response (pages, assets, streams, errors). */
export function securityHeaders(contentType: string): Record<string, string> {
  return {
    "content-type": contentType,
    "cache-control": "no-store",
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
  };
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML content and attribute values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * assert.equal(esc('<b a="1">'), "&lt;b a=&quot;1&quot;&gt;");
 * ```
 */
export function esc(value: unknown): string {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** An HTML response with the console's headers. */
export function html(body: string, status = 200): Response {
  return new Response(body, { status, headers: securityHeaders("text/html; charset=utf-8") });
}

/** A plain-text error response with the console's headers. */
export function textError(status: number, message: string): Response {
  return new Response(message + "\n", {
    status,
    headers: securityHeaders("text/plain; charset=utf-8"),
  });
}

/** Options for {@link layout}. */
export interface LayoutOptions {
  title: string;
  /** Scripts (paths under /web/console/assets/) loaded at the end of the body. */
  scripts?: string[];
  /** Extra stylesheets (paths under /web/console/assets/). */
  styles?: string[];
  /** `data-*` attributes of `<body>` the page's script reads (values escaped here). */
  data?: Record<string, string>;
  /** Extra class on `<body>`. */
  bodyClass?: string;
}

/** The frame of every console page: header with navigation, main content, scripts. */
export function layout(main: string, options: LayoutOptions): string {
  const data = Object.entries(options.data ?? {})
    .map(([k, v]) => ` data-${k}="${esc(v)}"`).join("");
  const styles = ["console.css", ...(options.styles ?? [])]
    .map((s) => `<link rel="stylesheet" href="/web/console/assets/${esc(s)}">`).join("");
  const scripts = (options.scripts ?? [])
    .map((s) => `<script src="/web/console/assets/${esc(s)}"></script>`).join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<meta name="referrer" content="no-referrer">` +
    `<title>${esc(options.title)} · rsm console</title>${styles}</head>` +
    `<body class="${esc(options.bodyClass ?? "")}"${data}>` +
    `<a class="skip" href="#main">Skip to content</a>` +
    `<header><a class="brand" href="/web/console">rsm console</a>` +
    `<span id="live" class="live" aria-live="polite"></span></header>` +
    `<main id="main" tabindex="-1">${main}</main>${scripts}</body></html>`;
}

/** Bytes as a short human figure: `1.5 MiB`. */
export function bytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${n | 0} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** A duration in ms as `1h2m`, `3m4s`, `5.1s`. */
export function duration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  let s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h}h${m}m` : m ? `${m}m${s}s` : `${s}s`;
}
