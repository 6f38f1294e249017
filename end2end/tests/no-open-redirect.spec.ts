import { type Frame, type FrameLocator, type Page, expect, test } from "@playwright/test";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { appFrame, openBrowser } from "../support/merchant";
import { type Servers, useServers } from "../support/servers";

// Issue 26, item 2: the "no session" page (`/resume`, src/tab.js) is no open redirect. Its
// *Reopen Libero from Commerce7* link (`target="_top"`) only ever leads to an origin
// FRAME_ANCESTORS allows (the admin simulator's, in these tests) and only inside a frame of one;
// a tenant in `window.name` is shown as "the winery this tab was opened for" only when it is the
// tenant of the tab's own stored credential. Nothing here signs in: one set of servers for the file.

const servers = useServers("no-open-redirect");

/** A valid tenant slug that is not this tab's: what another site puts in `window.name`. */
const CRAFTED = "call-support-now";

/** A page that frames `src` in an iframe whose name (the frame's window.name) is `name`. */
function framingPage(src: string, name: string): string {
  return (
    `<!doctype html><meta charset="utf-8"><title>Another site</title><h1>Another site</h1>` +
    `<iframe id="app-frame" name="${name}" src="${src}" width="900" height="700"></iframe>`
  );
}

/**
 * Another site: a real server on a free port, reached as http://localhost:PORT (not in
 * FRAME_ANCESTORS). `/` is a plain page; `/frames?src=…` frames `src` with a crafted name. (Not a
 * `route`: here a page answered by a route could not frame the app at all, even from an allowed
 * origin — Chromium's local-network checks, it seems — which would hide what the app's CSP does.)
 */
async function startOtherSite(): Promise<{ origin: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const src = url.searchParams.get("src");
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    response.end(
      url.pathname === "/frames" && src
        ? framingPage(src, `libero:${CRAFTED}`)
        : "<!doctype html><title>Another site</title><h1>Another site</h1>",
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address() as AddressInfo;
  return { origin: `http://localhost:${port}`, close: () => new Promise((ok) => server.close(() => ok())) };
}

/**
 * The admin simulator's app frame (an origin FRAME_ANCESTORS allows), moved to
 * `/resume#other-winery` with `windowName` as its window.name. The frame first opens with an
 * account token Commerce7 does not know (an error page): nothing is signed in.
 */
async function resumeInAdminFrame(page: Page, servers: Servers, windowName: string): Promise<Frame> {
  await page.goto(`${servers.adminUrl}/admin/open?tenantId=demo-winery&token=not-a-token`);
  await expect(page.frameLocator("#app-frame").locator("h1")).toBeVisible();
  const frame = appFrame(page, servers);
  await frame.evaluate((name) => {
    window.name = name;
  }, windowName);
  await frame.goto(`${servers.appUrl}/resume#other-winery`);
  return frame;
}

/** What the "no session" page at `root` shows about the tab's winery, once its script has run. */
async function expectOtherWineryPage(root: Page | FrameLocator, winery: string) {
  const noSession = root.locator("#no-session");
  await expect(noSession).toHaveAttribute("data-reason", "other");
  await expect(noSession.getByRole("heading", { level: 1 })).toHaveText("This tab belongs to another winery");
  await expect(noSession.locator("[data-tab-tenant]")).toHaveText(winery);
}

/** The (resolved) addresses of every link of a page or frame. */
async function linkTargets(root: Page | FrameLocator): Promise<string[]> {
  return root.locator("a").evaluateAll((links) => links.map((a) => (a as HTMLAnchorElement).href));
}

test("another site that opens /resume with a crafted window.name gets no link back to itself and none of its text", async ({
  page,
  context,
}) => {
  const { appUrl, adminUrl } = servers();
  const other = await startOtherSite();
  try {
    expect(other.origin).not.toBe(adminUrl);
    await page.goto(`${other.origin}/`);

    // It opens the page top-level, naming the new window as the app names its tabs.
    const [popup] = await Promise.all([
      context.waitForEvent("page"),
      page.evaluate((url) => void window.open(url, "libero:call-support-now"), `${appUrl}/resume#other-winery`),
    ]);
    await popup.waitForLoadState("load");
    expect(popup.url()).toBe(`${appUrl}/resume#other-winery`);
    // Control: the attack reached the page — the crafted name, and a Referer from the other site
    // (what the link used to be built from).
    expect(await popup.evaluate(() => window.name)).toBe(`libero:${CRAFTED}`);
    expect(await popup.evaluate(() => document.referrer)).toBe(`${other.origin}/`);

    // The page says this tab belongs to another winery, in general terms, with no way "back".
    await expectOtherWineryPage(popup, "your winery");
    await expect(popup.locator("#reopen")).toBeHidden();
    await expect(popup.locator("#reopen")).toHaveAttribute("href", "/");
    expect((await linkTargets(popup)).filter((href) => !href.startsWith(`${appUrl}/`))).toEqual([]);
    expect(await popup.locator("html").textContent()).not.toContain(CRAFTED);

    // Framing it instead: the browser refuses the frame (CSP frame-ancestors), so nothing of the
    // page — no link, no text — is shown there either.
    const refusals: string[] = [];
    page.on("console", (message) => {
      if (message.text().includes("frame-ancestors")) refusals.push(message.text());
    });
    await page.goto(`${other.origin}/frames?src=${encodeURIComponent(`${appUrl}/resume#other-winery`)}`);
    await expect(page.getByRole("heading", { name: "Another site" })).toBeVisible();
    const app = page.frameLocator("#app-frame");
    await expect(app.locator("#no-session")).toHaveCount(0);
    await expect(app.locator("#reopen")).toHaveCount(0);
    expect(page.frames().some((frame) => frame.url().startsWith(`${appUrl}/`))).toBe(false);
    await expect.poll(() => refusals.length).toBeGreaterThan(0);
  } finally {
    await other.close();
  }
});

test("framed by the Commerce7 admin (allowed by FRAME_ANCESTORS), the way back leads there; a crafted window.name is still not shown", async ({
  page,
}) => {
  const { adminUrl } = servers();
  const frame = await resumeInAdminFrame(page, servers(), `libero:${CRAFTED}`);
  const app = page.frameLocator("#app-frame");

  await expectOtherWineryPage(app, "your winery");
  const reopen = app.locator("#reopen");
  await expect(reopen).toBeVisible();
  await expect(reopen).toHaveAttribute("href", `${adminUrl}/`);
  await expect(reopen).toHaveAttribute("target", "_top");
  expect(await app.locator("html").textContent()).not.toContain(CRAFTED);
  expect(await frame.evaluate(() => window.name)).toBe(`libero:${CRAFTED}`);
});

test("the tab's winery is named when window.name is the tenant of the tab's own stored credential, and only then", async () => {
  const { adminUrl } = servers();
  // Third-party storage allowed, so that the frame can hold a credential.
  const browser = await openBrowser("allowed", servers());
  try {
    const { page } = browser;
    const frame = await resumeInAdminFrame(page, servers(), "libero:demo-winery");
    const app = page.frameLocator("#app-frame");
    await expect(app.locator("html")).toHaveAttribute("data-storage", "ok");
    const reopen = app.locator("#reopen");

    // No stored credential: even the right slug is not shown.
    await expectOtherWineryPage(app, "your winery");
    await expect(reopen).toHaveAttribute("href", `${adminUrl}/`);

    // The tab's credential (as the bootstrap script stores it) names demo-winery: after a reload
    // the page names it.
    await frame.evaluate(() => {
      sessionStorage.setItem("libero.tab", JSON.stringify({ token: "v1.demo-winery.x", tenant: "demo-winery", theme: "light" }));
      setTimeout(() => location.reload(), 0);
    });
    await expectOtherWineryPage(app, "demo-winery");
    await expect(app.locator("body")).toHaveClass(/theme-light/);
    await expect(reopen).toBeVisible();
    await expect(reopen).toHaveAttribute("href", `${adminUrl}/`);

    // The same credential with a crafted name: the generic words again, none of the name.
    await frame.evaluate(() => {
      window.name = "libero:call-support-now";
      setTimeout(() => location.reload(), 0);
    });
    await expectOtherWineryPage(app, "your winery");
    expect(await frame.evaluate(() => window.name)).toBe(`libero:${CRAFTED}`);
    expect(await app.locator("html").textContent()).not.toContain(CRAFTED);
    await expect(reopen).toHaveAttribute("href", `${adminUrl}/`);
  } finally {
    await browser.close();
  }
});

test("the way back needs an exact match in FRAME_ANCESTORS: scheme, port and host, or a subdomain for a *. entry — never a substring", async ({
  page,
  context,
}) => {
  const { appUrl, adminUrl } = servers();
  const port = Number(new URL(adminUrl).port);
  // The page's list of allowed origins is replaced by each case's; the CSP also lets
  // http://*.localhost:PORT frame the app, so that what decides is the script's match alone.
  let list = "";
  await context.route(
    (url) => url.origin === appUrl,
    async (route) => {
      const response = await route.fetch();
      const headers = { ...response.headers() };
      if (!(headers["content-type"] ?? "").startsWith("text/html")) return route.fulfill({ response });
      delete headers["content-length"];
      delete headers["content-encoding"];
      headers["content-security-policy"] = headers["content-security-policy"].replace(
        /frame-ancestors [^;]*/,
        (directive) => `${directive} http://*.localhost:${port}`,
      );
      const html = await response.text();
      const body = route.request().url().startsWith(`${appUrl}/resume`)
        ? html.replace(/data-frame-ancestors="[^"]*"/, () => `data-frame-ancestors="${list}"`)
        : html;
      await route.fulfill({ status: response.status(), headers, body });
    },
  );

  /** Whether the way back is shown in the admin at `top` when the list is `allowed`, and where to. */
  async function wayBack(top: string, allowed: string): Promise<string | null> {
    list = allowed;
    const frame = appFrame(page, servers());
    await frame.goto(`${appUrl}/resume`);
    const reopen = page.frameLocator("#app-frame").locator("#reopen");
    await expect(reopen).toHaveAttribute("data-frame-ancestors", allowed);
    // The script has run (it marks the document first thing).
    await expect(page.frameLocator("#app-frame").locator("html")).toHaveAttribute("data-storage", /ok|blocked/);
    expect(await frame.evaluate(() => location.ancestorOrigins[0])).toBe(top);
    return (await reopen.isVisible()) ? await reopen.getAttribute("href") : null;
  }

  // The admin at http://localhost:PORT.
  await page.goto(`${adminUrl}/admin/open?tenantId=demo-winery&token=not-a-token`);
  expect(await wayBack(adminUrl, `https://x.example http://localhost:${port}`)).toBe(`${adminUrl}/`);
  for (const allowed of [
    `http://*.localhost:${port}`, // a wildcard's base itself is not one of its subdomains
    `https://localhost:${port}`, // another scheme
    `http://localhost:${port + 1}`, // another port
    "http://localhost", // the default port
    `http://127.0.0.1:${port}`, // another host, same address
    `http://host:${port} http://calhost:${port}`, // the end of the host
    `'self' * http: http://localhost:*`, // keywords, any host, a scheme, any port: not an origin
  ]) {
    expect(await wayBack(adminUrl, allowed), allowed).toBeNull();
  }

  // The admin at http://admin.localhost:PORT (a subdomain of localhost, same server).
  const subdomain = `http://admin.localhost:${port}`;
  await page.goto(`${subdomain}/admin/open?tenantId=demo-winery&token=not-a-token`);
  expect(await wayBack(subdomain, `http://*.localhost:${port}`)).toBe(`${subdomain}/`);
  for (const allowed of [
    `http://localhost:${port}`, // the base of a subdomain, without the wildcard
    `http://*.min.localhost:${port}`, // a suffix of the host that is not a parent domain
    `http://*.admin.localhost:${port}`, // the host itself is not its own subdomain
    `https://*.localhost:${port}`,
  ]) {
    expect(await wayBack(subdomain, allowed), allowed).toBeNull();
  }
});
