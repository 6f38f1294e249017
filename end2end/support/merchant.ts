// What the merchant-flow specs share: a Chromium in one of the browser modes of issue 8, the
// probes that prove which mode it is in, the Commerce7 admin simulator's steps, and a record of
// what the app's frame asked for.
//
// The app (http://127.0.0.1:PORT) runs in a cross-site iframe of the admin simulator
// (http://localhost:PORT). What Chromium 156 does there, measured with these same launch options:
//
// | mode        | how                                               | 3rd-party cookie | partitioned | sessionStorage |
// |-------------|---------------------------------------------------|------------------|-------------|----------------|
// | default     | fresh profile, no Preferences                     | refused          | kept        | throws         |
// | allowed     | Preferences cookie_controls_mode 0                | kept             | kept        | works          |
// | blocked     | Preferences cookie_controls_mode 1                | refused          | kept        | throws         |
// | no-cookies  | allowed + the test drops the app's cookies (route) | kept (by browser)| (dropped)   | works          |
// | no-site-data| allowed + a cookie content-setting "block" for    | refused          | refused     | throws         |
// |             | the app's site (pattern "127.0.0.1,*")            |                  |             |                |
//
// In the two modes where Chromium blocks third-party cookies, it blocks the frame's
// sessionStorage as well. "no-cookies" is the Safari-like case (no cookie kept, storage works):
// it starts from "allowed" so that storage works, and drops every Set-Cookie and Cookie of the
// app's origin itself.

import { type BrowserContext, type Frame, type Page, type Request, chromium, expect } from "@playwright/test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromiumArgs, chromiumExecutable } from "./browser";
import type { Servers } from "./servers";

export type BrowserMode = "default" | "allowed" | "blocked" | "no-cookies" | "no-site-data";

/** The session cookie's name (src/server/sessions). */
export const SESSION_COOKIE = "__libero_session";

/** What the control probes must find in each mode. */
export const EXPECTED_PROBES: Record<BrowserMode, Probes> = {
  default: { thirdPartyCookie: false, partitionedCookie: true, storage: "blocked" },
  allowed: { thirdPartyCookie: true, partitionedCookie: true, storage: "ok" },
  blocked: { thirdPartyCookie: false, partitionedCookie: true, storage: "blocked" },
  "no-cookies": { thirdPartyCookie: true, partitionedCookie: true, storage: "ok" },
  "no-site-data": { thirdPartyCookie: false, partitionedCookie: false, storage: "blocked" },
};

export interface Probes {
  /** An unpartitioned third-party cookie (the fake's `c7_control`, set in the admin page's probe frame) came back. */
  thirdPartyCookie: boolean;
  /** A `Partitioned` cookie written by script in the app's frame could be read back. */
  partitionedCookie: boolean;
  /** Whether the app's frame may use sessionStorage. */
  storage: "ok" | "blocked";
}

/** Chromium's Preferences for a mode (undefined: a fresh profile). */
function preferences(mode: BrowserMode): object | undefined {
  switch (mode) {
    case "default":
      return undefined;
    case "allowed":
    case "no-cookies":
      return { profile: { cookie_controls_mode: 0 } };
    case "blocked":
      return { profile: { cookie_controls_mode: 1 } };
    case "no-site-data":
      // Third-party cookies allowed in general, so that what blocks the app is the site's own
      // content setting: cookies *and* site data blocked for 127.0.0.1 (any scheme, any port).
      // The admin simulator (localhost) is not affected.
      return {
        profile: {
          cookie_controls_mode: 0,
          content_settings: {
            exceptions: { cookies: { "127.0.0.1,*": { setting: 2, last_modified: "13300000000000000" } } },
          },
        },
      };
  }
}

export interface ModeBrowser {
  context: BrowserContext;
  page: Page;
  /** Set-Cookie headers of the app that the no-cookies mode dropped (empty in the other modes). */
  droppedSetCookies: string[];
  close(): Promise<void>;
}

/** A persistent Chromium profile in `mode`, launched with the suite's own arguments only. */
export async function openBrowser(mode: BrowserMode, servers: Servers): Promise<ModeBrowser> {
  const dir = mkdtempSync(join(tmpdir(), `libero-e2e-${mode}-`));
  const prefs = preferences(mode);
  if (prefs) {
    mkdirSync(join(dir, "Default"), { recursive: true });
    writeFileSync(join(dir, "Default", "Preferences"), JSON.stringify(prefs));
  }
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumExecutable,
    args: chromiumArgs,
    headless: true,
  });
  const droppedSetCookies: string[] = [];
  if (mode === "no-cookies") await dropAppCookies(context, servers.appUrl, droppedSetCookies);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    droppedSetCookies,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Request headers Node's fetch may not be given (it sets them itself) or must not forward. */
const UNFORWARDED_REQUEST_HEADERS = new Set([
  "cookie",
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
  "upgrade",
  "expect",
  "accept-encoding",
]);
/** Response headers that no longer describe the body Node's fetch hands over (decoded), or cookies. */
const UNFORWARDED_RESPONSE_HEADERS = new Set(["set-cookie", "content-encoding", "content-length", "transfer-encoding", "connection"]);

/**
 * The Safari-like mode: every request to the app's origin is sent by Node's own fetch (which has
 * no cookie jar) without its Cookie header, and answered to the browser without any Set-Cookie.
 * Not `route.fetch()`: that keeps the cookies in the context's jar and hands them back.
 *
 * Playwright does not route the request that follows a redirect the route answered (by design):
 * a request after a 303 (a plain form's answer) goes out by the browser itself. Whether an
 * answer set a cookie is checked by the spec (`setCookiesSeenByBrowser`, and the context's
 * cookies).
 */
async function dropAppCookies(context: BrowserContext, appUrl: string, dropped: string[]): Promise<void> {
  const origin = new URL(appUrl).origin;
  await context.route(
    (url) => url.origin === origin,
    async (route) => {
      const request = route.request();
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(await request.allHeaders())) {
        if (!UNFORWARDED_REQUEST_HEADERS.has(name.toLowerCase())) headers[name] = value;
      }
      const body = request.postDataBuffer();
      let response: Response;
      try {
        response = await fetch(request.url(), {
          method: request.method(),
          headers,
          body: body ? new Uint8Array(body) : undefined,
          redirect: "manual",
        });
      } catch {
        await route.abort("connectionfailed");
        return;
      }
      dropped.push(...response.headers.getSetCookie());
      const answer: Record<string, string> = {};
      response.headers.forEach((value, name) => {
        if (!UNFORWARDED_RESPONSE_HEADERS.has(name)) answer[name] = value;
      });
      await route.fulfill({ status: response.status, headers: answer, body: Buffer.from(await response.arrayBuffer()) });
    },
  );
}

/** Installs Libero for `tenant` through the admin simulator (the fake sends the callback). */
export async function installTenant(page: Page, servers: Servers, tenant: string): Promise<void> {
  await page.goto(`${servers.adminUrl}/`);
  await page
    .locator("section.tenant", { hasText: `(${tenant})` })
    .getByRole("button", { name: "Install Libero", exact: true })
    .click();
  await expect(page.getByText(`Install callback for ${tenant}`)).toContainText("Libero answered 200");
}

/** Opens the admin simulator and clicks one of its "Open as …" links. */
export async function openAs(page: Page, servers: Servers, link: string): Promise<void> {
  await page.goto(`${servers.adminUrl}/`);
  await page.getByRole("link", { name: link, exact: true }).click();
  await page.waitForURL((url) => url.pathname === "/admin/open");
}

/** The app's iframe (as a Frame, for URLs, scripts and navigation). */
export function appFrame(page: Page, servers: Servers): Frame {
  const frame = page.frame({ url: (url) => url.origin === servers.appUrl });
  if (!frame) throw new Error(`the page has no frame of ${servers.appUrl}: ${page.frames().map((f) => f.url()).join(", ")}`);
  return frame;
}

/** The three control probes, run in the admin page's probe frame and in the app's frame. */
export async function runProbes(page: Page, servers: Servers): Promise<Probes> {
  // The admin page's probe frame has loaded /control/set (the page's load waits for its frames);
  // /control/check then says whether the unpartitioned cookie came back.
  await page.waitForLoadState("load");
  const control = page.frames().find((f) => f.url().startsWith(`${servers.c7Url}/control/`));
  if (!control) throw new Error("the admin page has no control frame");
  await control.goto(`${servers.c7Url}/control/check`);
  const check = JSON.parse(await control.locator("body").innerText()) as { controlCookie: boolean };

  const frame = appFrame(page, servers);
  const inFrame = await frame.evaluate(() => {
    // A partitioned cookie written and read back by script, then removed at once (so that it is
    // never sent to the app).
    const probe = "libero_e2e_probe";
    document.cookie = `${probe}=1; Path=/; SameSite=None; Secure; Partitioned`;
    const partitionedCookie = document.cookie.split("; ").includes(`${probe}=1`);
    document.cookie = `${probe}=; Path=/; SameSite=None; Secure; Partitioned; Max-Age=0`;
    let storage: "ok" | "blocked";
    try {
      window.sessionStorage.getItem(probe);
      storage = "ok";
    } catch {
      storage = "blocked";
    }
    return { partitionedCookie, storage };
  });
  return { thirdPartyCookie: check.controlCookie, ...inFrame };
}

/** The app's cookies in the browser's jar (any partition), by name. */
export async function appCookieNames(context: BrowserContext, servers: Servers): Promise<string[]> {
  return (await context.cookies(servers.appUrl)).map((c) => c.name);
}

export interface AppRequest {
  method: string;
  url: string;
  /** Path and query. */
  path: string;
  authorization?: string;
  referer?: string;
  frame: Frame;
}

/** Everything the page (and its frames) asked the app for, and what came back, in order. */
export class AppTraffic {
  readonly requests: AppRequest[] = [];
  /** Set-Cookie headers of the app's answers as the browser received them. */
  readonly setCookiesSeenByBrowser: string[] = [];
  /** The answers to sign-ins (`/app?tenantId=…`): the page itself, `200` and no `Location`. */
  readonly signIns: { status: number; location?: string }[] = [];
  /** Answers whose headers could not be read (their frame went away first). */
  readonly unreadResponses: string[] = [];
  private readonly pending: Promise<void>[] = [];

  constructor(page: Page, private readonly servers: Servers) {
    page.on("request", (request) => this.onRequest(request));
    page.on("response", (response) => {
      if (new URL(response.url()).origin !== this.servers.appUrl) return;
      this.pending.push(
        response.headersArray().then((headers) => {
          for (const h of headers) if (h.name.toLowerCase() === "set-cookie") this.setCookiesSeenByBrowser.push(h.value);
          const url = new URL(response.url());
          if (url.pathname === "/app" && url.searchParams.has("tenantId")) {
            const location = headers.find((h) => h.name.toLowerCase() === "location")?.value;
            this.signIns.push({ status: response.status(), ...(location === undefined ? {} : { location }) });
          }
        }, (err) => {
          this.unreadResponses.push(`${response.url()}: ${err}`);
        }),
      );
    });
  }

  private onRequest(request: Request) {
    const url = new URL(request.url());
    if (url.origin !== this.servers.appUrl) return;
    const headers = request.headers();
    this.requests.push({
      method: request.method(),
      url: request.url(),
      path: url.pathname + url.search,
      authorization: headers["authorization"],
      referer: headers["referer"],
      frame: request.frame(),
    });
  }

  /** Waits for the response headers still being read. */
  async settled(): Promise<this> {
    await Promise.all(this.pending);
    return this;
  }

  /** Requests to a server function, e.g. `calls("/api/save_settings")`. */
  calls(path: string): AppRequest[] {
    return this.requests.filter((r) => r.method === "POST" && r.path === path);
  }
}

/**
 * The tab token the app in this frame holds: the one its bootstrap script kept in
 * sessionStorage, or (storage blocked) the one its page was rendered with.
 */
export async function heldTabToken(frame: Frame): Promise<string> {
  const token = await frame.evaluate(() => {
    try {
      const stored = window.sessionStorage.getItem("libero.tab");
      if (stored) return (JSON.parse(stored) as { token: string }).token;
    } catch {
      // storage blocked: the page's own token is the only copy
    }
    return document.querySelector('meta[name="libero-tab"]')?.getAttribute("content") ?? null;
  });
  if (!token) throw new Error(`the frame at ${frame.url()} holds no tab token`);
  return token;
}

/** The tab token's shape (issues 8 and 26): v2.<tenant>.<row ref>.<generation>.<expiry>.<HMAC>. */
export function tabTokenPattern(tenant: string): RegExp {
  return new RegExp(`^v2\\.${tenant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.[A-Za-z0-9_-]{43}\\.[0-9]+\\.[0-9]+\\.[A-Za-z0-9_-]{43}$`);
}

/** A server function called from outside any browser with only a bearer (no cookie, no Origin). */
export async function callWithBearer(servers: Servers, path: string, token: string): Promise<number> {
  const response = await fetch(`${servers.appUrl}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: "",
    redirect: "manual",
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Marks the frame's current document, so that a later `sameDocument(frame)` tells whether a
 * navigation happened inside it (router) or loaded a new document.
 */
export async function markDocument(frame: Frame): Promise<void> {
  await frame.evaluate(() => {
    (window as unknown as { __liberoE2eMark?: boolean }).__liberoE2eMark = true;
  });
}

/** Whether the frame still shows the document `markDocument` marked. */
export async function sameDocument(frame: Frame): Promise<boolean> {
  return frame.evaluate(() => (window as unknown as { __liberoE2eMark?: boolean }).__liberoE2eMark === true);
}

/** The frame's address as its own document sees it (after any history.replaceState). */
export async function frameLocation(frame: Frame): Promise<string> {
  return frame.evaluate(() => location.href);
}

/** One moment a watched text was on screen in one of the app's frames. */
export interface Sighting {
  /** The tab (top-level page) whose app frame showed it. */
  page: Page;
  /** The watched text. */
  text: string;
  /** Where it was: `text of <p>`, `value of <input>`. */
  where: string;
  /** The frame's address at that moment. */
  url: string;
}

/**
 * Records every time one of `texts` is visible in a document of the app (any frame, any tab of
 * `context`): in a text node whose element is rendered and not `visibility: hidden` or
 * transparent, or in a rendered form field's value. It looks at each DOM change (as the parser
 * inserts the server's HTML) and before each frame is painted, so a document that is replaced
 * during its load (the tab bootstrap's `location.replace`) is watched too. Each document reports
 * each text once.
 */
export async function watchVisibleText(context: BrowserContext, servers: Servers, texts: string[]): Promise<Sighting[]> {
  const sightings: Sighting[] = [];
  await context.exposeBinding("__liberoE2eSeen", (source, text: string, where: string, url: string) => {
    sightings.push({ page: source.page, text, where, url });
  });
  await context.addInitScript(
    ({ origin, texts }) => {
      if (location.origin !== origin) return;
      const seen = (window as unknown as { __liberoE2eSeen: (text: string, where: string, url: string) => void }).__liberoE2eSeen;
      const reported = new Set<string>();
      const visible = (element: Element) => element.checkVisibility({ visibilityProperty: true, opacityProperty: true });
      const report = (text: string, where: string) => {
        if (reported.has(text)) return;
        reported.add(text);
        seen(text, where, location.href);
      };
      const look = () => {
        if (reported.size === texts.length) return;
        const walker = document.createTreeWalker(document, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const parent = node.parentElement;
          if (!parent) continue;
          for (const text of texts) {
            if ((node as Text).data.includes(text) && visible(parent)) report(text, `text of <${parent.localName}>`);
          }
        }
        for (const field of Array.from(document.querySelectorAll("input, textarea"))) {
          const value = (field as HTMLInputElement).value;
          for (const text of texts) if (value.includes(text) && visible(field)) report(text, `value of <${field.localName}>`);
        }
      };
      new MutationObserver(look).observe(document, { childList: true, subtree: true, characterData: true, attributes: true });
      const everyFrame = () => {
        look();
        requestAnimationFrame(everyFrame);
      };
      requestAnimationFrame(everyFrame);
    },
    { origin: servers.appUrl, texts },
  );
  return sightings;
}
