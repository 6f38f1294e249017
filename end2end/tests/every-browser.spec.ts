import { type Frame, type FrameLocator, type Page, expect, test } from "@playwright/test";
import {
  type AppRequest,
  AppTraffic,
  type BrowserMode,
  EXPECTED_PROBES,
  SESSION_COOKIE,
  appCookieNames,
  appFrame,
  callWithBearer,
  frameLocation,
  heldTabToken,
  installTenant,
  markDocument,
  openAs,
  openBrowser,
  runProbes,
  type Sighting,
  sameDocument,
  tabTokenPattern,
  watchVisibleText,
} from "../support/merchant";
import { type Servers, useServers } from "../support/servers";

// Issue 8: the merchant flow inside the Commerce7 admin simulator's cross-site iframe, in every
// kind of browser (support/merchant.ts has the modes and what Chromium does in each), and two
// wineries in two tabs of one browser. Every test has its own Libero, fake Commerce7 and fresh
// database.

/** A whole flow in a debug build signs in, hydrates and reloads several times. */
const FLOW_TIMEOUT_MS = 120_000;

/** The sign-in's redirect: to the dashboard with a single-use code and nothing else. */

const MODE_NAMES: Record<BrowserMode, string> = {
  default: "Chromium's defaults",
  allowed: "third-party cookies allowed",
  blocked: "third-party cookies blocked, partitioned cookies kept",
  "no-cookies": "no cookies kept for the app, storage works (Safari-like)",
  "no-site-data": "all cookies and site data blocked for the app's site",
};

/** Signs Dana in from the admin simulator and checks the dashboard. */
async function signInAsDana(page: Page, servers: Servers): Promise<FrameLocator> {
  await openAs(page, servers, "Open as Dana Owner (dark theme)");
  const app = page.frameLocator("#app-frame");
  await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
  await expect(app.getByTestId("tenant")).toHaveText("demo-winery");
  await expect(app.locator("body")).toHaveClass(/theme-dark/);
  await expect(app.locator("body")).toHaveAttribute("data-hydrated", "true");
  return app;
}

/** Goes to Settings with the app's own link and checks no document was loaded for it. */
async function settingsInApp(app: FrameLocator, frame: Frame, servers: Servers, expectedOrgName: string) {
  await markDocument(frame);
  await app.getByRole("link", { name: "Settings", exact: true }).click();
  await expect(app.getByLabel("Organisation name")).toHaveValue(expectedOrgName);
  expect(await sameDocument(frame)).toBe(true);
  expect(await frameLocation(frame)).toBe(`${servers.appUrl}/settings`);
}

/** Fills and saves the settings form, and checks the save was authorised by this tab's token. */
async function saveSettings(app: FrameLocator, traffic: AppTraffic, tenant: string, orgName: string) {
  const before = traffic.calls("/api/save_settings").length;
  await app.getByLabel("Organisation name").fill(orgName);
  await app.getByRole("button", { name: "Save settings" }).click();
  await expect(app.getByRole("status").filter({ hasText: "Settings saved." })).toBeVisible();
  const saves = traffic.calls("/api/save_settings").slice(before);
  expect(saves).toHaveLength(1);
  expect(saves[0].authorization?.replace(/^Bearer /, "")).toMatch(tabTokenPattern(tenant));
}

/** The sign-out button, then the landing page; returns the tab token the app held. */
async function signOut(app: FrameLocator, frame: Frame, traffic: AppTraffic, servers: Servers, tenant: string) {
  const token = await heldTabToken(frame);
  expect(token).toMatch(tabTokenPattern(tenant));
  // Positive control: the token is accepted right before the sign-out.
  expect(await callWithBearer(servers, "/api/session_info", token)).toBe(200);
  await app.getByRole("button", { name: "Sign out", exact: true }).click();
  await expect(app.getByRole("heading", { level: 1 })).toHaveText("Libero for Commerce7");
  expect(await frameLocation(frame)).toBe(`${servers.appUrl}/`);
  const logouts = traffic.calls("/api/logout");
  expect(logouts).toHaveLength(1);
  expect(logouts[0].authorization).toBe(`Bearer ${token}`);
  // The session is gone at once: the same token is refused.
  expect(await callWithBearer(servers, "/api/session_info", token)).toBe(401);
}

/** No URL the frame asked for carries the account token (but the sign-in), a tab token or a handoff in its Referer. */
async function expectNoSecretInUrls(traffic: AppTraffic, servers: Servers) {
  await traffic.settled();
  // Positive control: the Referer of a request is recorded (the sign-in's is the admin's origin).
  expect(traffic.requests[0].path).toMatch(/^\/app\?tenantId=demo-winery&account=/);
  expect(traffic.requests[0].referer).toBe(`${servers.adminUrl}/`);

  const signIns = traffic.requests.filter((r) => r.path.startsWith("/app?tenantId="));
  // The token this open was given (the simulator mints a fresh one for every open).
  const account = new URLSearchParams(traffic.requests[0].path.split("?")[1]).get("account");
  expect(account, "the sign-in carried an account token").toBeTruthy();
  expect(traffic.requests.filter((r) => r.url.includes(account as string) && !signIns.includes(r))).toEqual([]);
  const tokens = new Set(traffic.requests.flatMap((r) => (r.authorization ? [r.authorization.replace(/^Bearer /, "")] : [])));
  expect(tokens.size).toBeGreaterThan(0);
  expect(traffic.requests.filter((r) => [...tokens].some((t) => r.url.includes(t) || r.referer?.includes(t)))).toEqual([]);
  expect(traffic.requests.filter((r) => r.referer?.includes("handoff=") || r.referer?.includes("account="))).toEqual([]);
}

for (const mode of ["default", "allowed", "blocked", "no-cookies"] as const) {
  test.describe(() => {
    const servers = useServers(`every-browser-${mode}`);

    test(`the merchant flow with a frame reload works in the cross-site iframe (${MODE_NAMES[mode]})`, async () => {
      test.setTimeout(FLOW_TIMEOUT_MS);
      const { appUrl } = servers();
      const browser = await openBrowser(mode, servers());
      try {
        const { page, context } = browser;
        await installTenant(page, servers(), "demo-winery");
        const traffic = new AppTraffic(page, servers());

        // Sign-in: Commerce7 opens the iframe with tenantId + account.
        const app = await signInAsDana(page, servers());
        const frame = appFrame(page, servers());

        // The mode this browser is in, proven by the control probes.
        const probes = EXPECTED_PROBES[mode];
        expect(await runProbes(page, servers())).toEqual(probes);
        await expect(app.locator("html")).toHaveAttribute("data-storage", probes.storage);
        if (mode === "no-cookies") {
          // The app did set its cookie; none of it reached the browser, which keeps none.
          expect(browser.droppedSetCookies.filter((c) => c.startsWith(`${SESSION_COOKIE}=`))).toHaveLength(1);
          await traffic.settled();
          expect(traffic.unreadResponses).toEqual([]);
          expect(traffic.setCookiesSeenByBrowser).toEqual([]);
          expect(await appCookieNames(context, servers())).not.toContain(SESSION_COOKIE);
        } else {
          // Positive control of the same record: here the sign-in's cookie reached the browser.
          await traffic.settled();
          expect(traffic.setCookiesSeenByBrowser.filter((c) => c.startsWith(`${SESSION_COOKIE}=`))).toHaveLength(1);
          expect(await appCookieNames(context, servers())).toContain(SESSION_COOKIE);
        }

        // The sign-in answered with the dashboard itself (no redirect), and its script took the
        // account token out of the address bar.
        await traffic.settled();
        expect(traffic.signIns).toEqual([{ status: 200 }]);
        expect(await frameLocation(frame)).toBe(`${appUrl}/app`);

        // Settings, reached with the app's own link: a fresh install shows what the install
        // callback sent; edit, save.
        await settingsInApp(app, frame, servers(), "Demo Winery");
        await expect(app.getByLabel("Send me a weekly summary")).not.toBeChecked();
        await app.getByLabel("Send me a weekly summary").check();
        await saveSettings(app, traffic, "demo-winery", `Demo Winery Estate (${mode})`);

        // A reload of the frame (a new document): the cookie, or without it the tab's stored
        // token (through /api/resume_tab and a ?handoff= reload), keeps Dana signed in.
        const reload = await frame.goto(`${appUrl}/settings`);
        expect(reload?.status()).toBe(mode === "no-cookies" ? 401 : 200);
        await expect(app.getByLabel("Organisation name")).toHaveValue(`Demo Winery Estate (${mode})`);
        await expect(app.getByLabel("Send me a weekly summary")).toBeChecked();
        await expect(app.locator("body")).toHaveAttribute("data-hydrated", "true");
        expect(await sameDocument(frame)).toBe(false);
        expect(await frameLocation(frame)).toBe(`${appUrl}/settings`);
        const resumes = traffic.calls("/api/resume_tab");
        const handoffLoads = traffic.requests.filter((r) => /^\/settings\?handoff=[A-Za-z0-9_-]{43}$/.test(r.path));
        if (mode === "no-cookies") {
          expect(resumes).toHaveLength(1);
          expect(resumes[0].authorization?.replace(/^Bearer /, "")).toMatch(tabTokenPattern("demo-winery"));
          expect(handoffLoads).toHaveLength(1);
        } else {
          expect(resumes).toHaveLength(0);
          expect(handoffLoads).toHaveLength(0);
        }

        // Sign-out: the landing page, the session ended at once, the tab forgets its token and
        // which winery it was opened for.
        expect(await frame.evaluate(() => window.name)).toBe("libero:demo-winery");
        await signOut(app, frame, traffic, servers(), "demo-winery");
        if (probes.storage === "ok") {
          expect(await frame.evaluate(() => sessionStorage.getItem("libero.tab"))).toBeNull();
        }
        expect(await frame.evaluate(() => window.name)).toBe("");

        // A reload of the frame now: the "no session" page (401), never the landing page. It
        // asks to sign in again: a blocked storage alone is no reason to blame the browser
        // (cookies work here; only "no-site-data" below is told its browser blocks Libero).
        const after = await frame.goto(`${appUrl}/app`);
        expect(after?.status()).toBe(401);
        await expect(app.locator("html")).toHaveAttribute("data-storage", probes.storage);
        const noSession = app.locator("#no-session");
        await expect(noSession).toHaveAttribute("data-reason", "missing");
        await expect(noSession.getByRole("heading", { level: 1 })).toHaveText("Libero needs you to sign in again");
        await expect(noSession.getByText("Open Libero again from the Apps menu of your Commerce7 admin.")).toBeVisible();
        const blockedHeading = noSession.locator('h1[data-when="blocked"]');
        await expect(blockedHeading).toHaveText("Your browser is blocking Libero's storage");
        await expect(blockedHeading).toBeHidden();
        await expect(app.getByRole("heading", { name: "Libero for Commerce7" })).toHaveCount(0);

        await expectNoSecretInUrls(traffic, servers());
        if (mode === "no-cookies") {
          await traffic.settled();
          expect(traffic.unreadResponses).toEqual([]);
          expect(traffic.setCookiesSeenByBrowser).toEqual([]);
          expect(await appCookieNames(context, servers())).not.toContain(SESSION_COOKIE);
        }
      } finally {
        await browser.close();
      }
    });
  });
}

test.describe(() => {
  const servers = useServers("every-browser-no-site-data");

  test(`the merchant flow works without reloads, and a frame reload explains the block and leads back to the admin (${MODE_NAMES["no-site-data"]})`, async () => {
    test.setTimeout(FLOW_TIMEOUT_MS);
    const { appUrl, adminUrl } = servers();
    const browser = await openBrowser("no-site-data", servers());
    try {
      const { page, context } = browser;
      await installTenant(page, servers(), "demo-winery");
      const traffic = new AppTraffic(page, servers());

      const app = await signInAsDana(page, servers());
      const frame = appFrame(page, servers());

      // The mode: even a partitioned cookie is refused, and storage throws.
      expect(await runProbes(page, servers())).toEqual(EXPECTED_PROBES["no-site-data"]);
      await expect(app.locator("html")).toHaveAttribute("data-storage", "blocked");
      expect(await appCookieNames(context, servers())).toEqual([]);
      expect(await frame.evaluate(() => document.cookie)).toBe("");

      await traffic.settled();
      expect(traffic.signIns).toEqual([{ status: 200 }]);
      expect(await frameLocation(frame)).toBe(`${appUrl}/app`);

      // Settings with the app's own link, save, and back to the dashboard: no document load.
      await settingsInApp(app, frame, servers(), "Demo Winery");
      await saveSettings(app, traffic, "demo-winery", "Demo Winery Estate (no-site-data)");
      await app.getByRole("link", { name: "Dashboard", exact: true }).click();
      await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      expect(await sameDocument(frame)).toBe(true);
      expect(await frameLocation(frame)).toBe(`${appUrl}/app`);

      // A frame reload cannot keep the session: the page says why, and how to get back.
      const reload = await frame.goto(`${appUrl}/settings`);
      expect(reload?.status()).toBe(401);
      const noSession = app.locator("#no-session");
      await expect(noSession).toHaveAttribute("data-reason", "blocked");
      await expect(noSession.getByRole("heading", { level: 1 })).toHaveText("Your browser is blocking Libero's storage");
      await expect(noSession.getByText("Open Libero again from the Apps menu of your Commerce7 admin.")).toBeVisible();
      await expect(app.getByRole("heading", { name: "Libero for Commerce7" })).toHaveCount(0);
      expect(traffic.calls("/api/resume_tab")).toHaveLength(0);
      const reopen = app.locator("#reopen");
      await expect(reopen).toBeVisible();
      await expect(reopen).toHaveAttribute("target", "_top");
      await expect(reopen).toHaveAttribute("href", `${adminUrl}/`);

      // The way back: the whole admin page leaves for the admin, where "Open as …" works again.
      await reopen.click();
      await expect(page).toHaveURL(`${adminUrl}/`);
      await expect(page.getByRole("heading", { name: "Commerce7 admin (simulator)" })).toBeVisible();
      const again = await signInAsDana(page, servers());
      const frameAgain = appFrame(page, servers());
      await settingsInApp(again, frameAgain, servers(), "Demo Winery Estate (no-site-data)");

      await signOut(again, frameAgain, traffic, servers(), "demo-winery");
      expect(await appCookieNames(context, servers())).toEqual([]);
      await expectNoSecretInUrls(traffic, servers());
    } finally {
      await browser.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Two wineries in two tabs of one browser: one session cookie for both tabs (the admin simulator is
// one site, so even a partitioned cookie is shared), and it belongs to the winery signed in last.
// In "allowed" mode the frame's sessionStorage works, so a tab can resume its own session; in
// Chromium's default mode it throws, and a tab only knows which winery it was opened for.
// ---------------------------------------------------------------------------------------------

const TWO_TAB_MODES = ["allowed", "default"] as const;
type TwoTabMode = (typeof TWO_TAB_MODES)[number];

/** What only Second Cellar's pages show (its organisation name and its user). */
const SECOND_CELLAR_TEXTS = ["Second Cellar", "Lee Vintner"];

interface Tab {
  page: Page;
  app: FrameLocator;
  frame: Frame;
  traffic: AppTraffic;
}

interface TwoTabs {
  close(): Promise<void>;
  tab1: Tab;
  tab2: Tab;
  /** Every time Second Cellar's name or user was on screen, in either tab. */
  sightings: Sighting[];
}

/** The tenant a document load with only this cookie is rendered for (its libero-tab meta). */
async function tenantOfCookie(servers: Servers, cookie: string): Promise<string | undefined> {
  const response = await fetch(`${servers.appUrl}/settings`, { headers: { Cookie: `${SESSION_COOKIE}=${cookie}` }, redirect: "manual" });
  const html = await response.text();
  const meta = /<meta\b[^>]*\bname="libero-tab"[^>]*>/.exec(html)?.[0];
  return meta ? /\bdata-tenant="([^"]*)"/.exec(meta)?.[1] : undefined;
}

/** Tab 1 opened for Demo Winery, then tab 2 for Second Cellar: the shared cookie now names tab 2's session. */
async function openTwoWineries(mode: TwoTabMode, servers: Servers): Promise<TwoTabs> {
  const browser = await openBrowser(mode, servers);
  try {
    const { context, page } = browser;
    const sightings = await watchVisibleText(context, servers, SECOND_CELLAR_TEXTS);
    await installTenant(page, servers, "demo-winery");
    await installTenant(page, servers, "second-cellar");

    const traffic1 = new AppTraffic(page, servers);
    await openAs(page, servers, "Open as Dana Owner (light theme)");
    const app1 = page.frameLocator("#app-frame");
    await expect(app1.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
    await expect(app1.getByTestId("tenant")).toHaveText("demo-winery");
    await expect(app1.locator("body")).toHaveAttribute("data-hydrated", "true");

    const page2 = await context.newPage();
    const traffic2 = new AppTraffic(page2, servers);
    await openAs(page2, servers, "Open as Lee Vintner (light theme)");
    const app2 = page2.frameLocator("#app-frame");
    await expect(app2.getByRole("heading", { name: "Welcome, Lee Vintner" })).toBeVisible();
    await expect(app2.getByTestId("tenant")).toHaveText("second-cellar");
    await expect(app2.locator("body")).toHaveAttribute("data-hydrated", "true");

    // The mode, and the situation of the issue: one cookie for both tabs, Second Cellar's.
    expect(await runProbes(page, servers)).toEqual(EXPECTED_PROBES[mode]);
    await expect(app1.locator("html")).toHaveAttribute("data-storage", EXPECTED_PROBES[mode].storage);
    const cookies = (await context.cookies(servers.appUrl)).filter((c) => c.name === SESSION_COOKIE);
    expect(cookies).toHaveLength(1);
    expect(await tenantOfCookie(servers, cookies[0].value)).toBe("second-cellar");
    // Tab 1 knows which winery it was opened for, whatever the browser lets it store.
    expect(await appFrame(page, servers).evaluate(() => window.name)).toBe("libero:demo-winery");

    return {
      close: browser.close,
      tab1: { page, app: app1, frame: appFrame(page, servers), traffic: traffic1 },
      tab2: { page: page2, app: app2, frame: appFrame(page2, servers), traffic: traffic2 },
      sightings,
    };
  } catch (err) {
    await browser.close();
    throw err;
  }
}

/** The tab's server-function calls, each with the token it carried. */
function apiCalls(tab: Tab): AppRequest[] {
  return tab.traffic.requests.filter((r) => r.method === "POST" && r.path.startsWith("/api/"));
}

/** Every server-function call of the tab carried a token of `tenant` (and there was at least one). */
function expectOnlyTokensOf(tab: Tab, tenant: string) {
  const calls = apiCalls(tab);
  expect(calls.length).toBeGreaterThan(0);
  expect(calls.filter((r) => !tabTokenPattern(tenant).test(r.authorization?.replace(/^Bearer /, "") ?? "")).map((r) => r.path)).toEqual([]);
}

/** Sightings of Second Cellar's texts in this tab. */
function seenIn(twoTabs: TwoTabs, tab: Tab): string[] {
  return twoTabs.sightings.filter((s) => s.page === tab.page).map((s) => `${s.text} (${s.where}, ${s.url})`);
}

for (const mode of TWO_TAB_MODES) {
  test.describe(() => {
    const servers = useServers(`two-tabs-settings-${mode}`);

    test(`in two tabs of one browser, each winery's Settings shows and saves only that winery's settings (${MODE_NAMES[mode]})`, async () => {
      test.setTimeout(FLOW_TIMEOUT_MS);
      const tabs = await openTwoWineries(mode, servers());
      const { tab1, tab2, close } = tabs;
      try {
        // Tab 1 (Demo Winery) after tab 2 signed in to Second Cellar: still Demo Winery's settings.
        await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery");
        await saveSettings(tab1.app, tab1.traffic, "demo-winery", "Demo Winery (saved in tab 1)");

        // Read back in tab 2: Second Cellar's settings are untouched; save them too.
        await tab2.page.bringToFront();
        await settingsInApp(tab2.app, tab2.frame, servers(), "Second Cellar");
        await saveSettings(tab2.app, tab2.traffic, "second-cellar", "Second Cellar (saved in tab 2)");

        // Read back in tab 1 (a fresh get_settings): tab 2's save did not reach Demo Winery.
        await tab1.page.bringToFront();
        await tab1.app.getByRole("link", { name: "Dashboard", exact: true }).click();
        await expect(tab1.app.getByTestId("tenant")).toHaveText("demo-winery");
        await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery (saved in tab 1)");
        await tab2.page.bringToFront();
        await tab2.app.getByRole("link", { name: "Dashboard", exact: true }).click();
        await expect(tab2.app.getByTestId("tenant")).toHaveText("second-cellar");
        await settingsInApp(tab2.app, tab2.frame, servers(), "Second Cellar (saved in tab 2)");

        // Every call of each tab carried that tab's own token.
        expectOnlyTokensOf(tab1, "demo-winery");
        expectOnlyTokensOf(tab2, "second-cellar");
        // Tab 1 never showed Second Cellar; tab 2 did (the watch's positive control).
        expect(seenIn(tabs, tab1)).toEqual([]);
        expect(seenIn(tabs, tab2).length).toBeGreaterThan(0);
      } finally {
        await close();
      }
    });
  });
}

test.describe(() => {
  const servers = useServers("two-tabs-reload-allowed");

  test(`a frame reload in a winery's tab resumes that winery, not the one whose cookie the browser holds (${MODE_NAMES.allowed})`, async () => {
    test.setTimeout(FLOW_TIMEOUT_MS);
    const { appUrl } = servers();
    const tabs = await openTwoWineries("allowed", servers());
    const { tab1, tab2, close } = tabs;
    try {
      await tab1.page.bringToFront();
      await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery");
      await saveSettings(tab1.app, tab1.traffic, "demo-winery", "Demo Winery (before the reload)");

      // The document load carries Second Cellar's cookie; the tab resumes its own session.
      await tab1.frame.goto(`${appUrl}/settings`);
      await expect(tab1.app.getByLabel("Organisation name")).toHaveValue("Demo Winery (before the reload)");
      await expect(tab1.app.locator('meta[name="libero-tab"]')).toHaveAttribute("data-tenant", "demo-winery");
      await expect(tab1.app.locator("body")).toHaveAttribute("data-hydrated", "true");
      expect(await frameLocation(tab1.frame)).toBe(`${appUrl}/settings`);
      const resumes = tab1.traffic.calls("/api/resume_tab");
      expect(resumes).toHaveLength(1);
      expect(resumes[0].authorization?.replace(/^Bearer /, "")).toMatch(tabTokenPattern("demo-winery"));

      await tab1.app.getByRole("link", { name: "Dashboard", exact: true }).click();
      await expect(tab1.app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      await expect(tab1.app.getByTestId("tenant")).toHaveText("demo-winery");
      expectOnlyTokensOf(tab1, "demo-winery");

      // Tab 2 goes on with Second Cellar.
      await expectSecondCellarTabWorks(tab2, servers());
      expect(seenIn(tabs, tab1)).toEqual([]);
      expect(seenIn(tabs, tab2).length).toBeGreaterThan(0);
    } finally {
      await close();
    }
  });
});

test.describe(() => {
  const servers = useServers("two-tabs-resume-outage");

  test(`a frame reload whose resume meets an outage tries again and resumes the tab's winery (${MODE_NAMES.allowed})`, async () => {
    test.setTimeout(FLOW_TIMEOUT_MS);
    const { appUrl } = servers();
    const tabs = await openTwoWineries("allowed", servers());
    const { tab1, close } = tabs;
    try {
      await tab1.page.bringToFront();
      await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery");
      // The first resume after the reload meets a 503 (a database restart); the next goes through.
      let resumes = 0;
      await tab1.page.context().route("**/api/resume_tab", (route) =>
        resumes++ === 0 ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable"}' }) : route.continue(),
      );
      await tab1.frame.goto(`${appUrl}/settings`);
      await expect(tab1.app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      await expect(tab1.app.getByTestId("tenant")).toHaveText("demo-winery");
      expect(resumes).toBe(2);
      expectOnlyTokensOf(tab1, "demo-winery");
      expect(seenIn(tabs, tab1)).toEqual([]);
    } finally {
      await close();
    }
  });
});

test.describe(() => {
  const servers = useServers("two-tabs-reload-default");

  test(`a frame reload in a winery's tab says the tab belongs to another winery instead of showing the one whose cookie the browser holds (${MODE_NAMES.default})`, async () => {
    test.setTimeout(FLOW_TIMEOUT_MS);
    const { appUrl, adminUrl } = servers();
    const tabs = await openTwoWineries("default", servers());
    const { tab1, tab2, close } = tabs;
    try {
      await tab1.page.bringToFront();
      await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery");
      await saveSettings(tab1.app, tab1.traffic, "demo-winery", "Demo Winery (before the reload)");

      // The document load carries Second Cellar's cookie (the server answers with its page) and
      // the tab has no stored token to resume with: it hides that page and says why.
      const reload = await tab1.frame.goto(`${appUrl}/settings`);
      expect(reload?.status()).toBe(200);
      const noSession = tab1.app.locator("#no-session");
      await expect(noSession).toHaveAttribute("data-reason", "other");
      await expect(noSession.getByRole("heading", { level: 1 })).toHaveText("This tab belongs to another winery");
      // Without storage the tab cannot prove which winery it was opened for: window.name alone
      // is never shown as a winery's name (issue 26).
      await expect(noSession.locator("[data-tab-tenant]")).toHaveText("your winery");
      await expect(noSession.getByText("Open Libero again from the Apps menu of your Commerce7 admin.")).toBeVisible();
      await expect(tab1.app.locator("#reopen")).toBeVisible();
      await expect(tab1.app.locator("#reopen")).toHaveAttribute("href", `${adminUrl}/`);
      expect(await frameLocation(tab1.frame)).toBe(`${appUrl}/resume#other-winery`);
      expect(await tab1.frame.evaluate(() => window.name)).toBe("libero:demo-winery");
      // Nothing of Second Cellar on the final page, nor on screen at any moment before it.
      await expect(tab1.app.locator("html")).not.toContainText("Second Cellar");
      await expect(tab1.app.locator('meta[name="libero-tab"]')).toHaveCount(0);
      expect(seenIn(tabs, tab1)).toEqual([]);
      // No storage, so no resume; and every call tab 1 made carried Demo Winery's token.
      expect(tab1.traffic.calls("/api/resume_tab")).toHaveLength(0);
      expectOnlyTokensOf(tab1, "demo-winery");

      // Tab 2 goes on with Second Cellar.
      await expectSecondCellarTabWorks(tab2, servers());
      expect(seenIn(tabs, tab2).length).toBeGreaterThan(0);
    } finally {
      await close();
    }
  });
});

/** Tab 2 reads and saves Second Cellar's settings, and its frame reload opens them again (the cookie is its own). */
async function expectSecondCellarTabWorks(tab2: Tab, servers: Servers) {
  await tab2.page.bringToFront();
  await settingsInApp(tab2.app, tab2.frame, servers, "Second Cellar");
  await saveSettings(tab2.app, tab2.traffic, "second-cellar", "Second Cellar (saved in tab 2)");
  const reload = await tab2.frame.goto(`${servers.appUrl}/settings`);
  expect(reload?.status()).toBe(200);
  await expect(tab2.app.getByLabel("Organisation name")).toHaveValue("Second Cellar (saved in tab 2)");
  await expect(tab2.app.locator('meta[name="libero-tab"]')).toHaveAttribute("data-tenant", "second-cellar");
  await expect(tab2.app.locator("body")).toHaveAttribute("data-hydrated", "true");
  expectOnlyTokensOf(tab2, "second-cellar");
}

for (const mode of TWO_TAB_MODES) {
  test.describe(() => {
    const servers = useServers(`two-tabs-sign-out-${mode}`);

    test(`signing out in one winery's tab leaves the other winery's tab working (${MODE_NAMES[mode]})`, async () => {
      test.setTimeout(FLOW_TIMEOUT_MS);
      const { appUrl } = servers();
      const tabs = await openTwoWineries(mode, servers());
      const { tab1, tab2, close } = tabs;
      try {
        await tab2.page.bringToFront();
        await signOut(tab2.app, tab2.frame, tab2.traffic, servers(), "second-cellar");
        // (The watch's positive control: tab 2 showed Second Cellar's user before signing out.)
        expect(seenIn(tabs, tab2).length).toBeGreaterThan(0);

        // Tab 1 goes on: its token is still accepted, it reads and saves Demo Winery's settings.
        await tab1.page.bringToFront();
        const token1 = await heldTabToken(tab1.frame);
        expect(await callWithBearer(servers(), "/api/session_info", token1)).toBe(200);
        await settingsInApp(tab1.app, tab1.frame, servers(), "Demo Winery");
        await saveSettings(tab1.app, tab1.traffic, "demo-winery", "Demo Winery (after tab 2 signed out)");
        expectOnlyTokensOf(tab1, "demo-winery");

        if (mode === "allowed") {
          // It even survives a frame reload (its own session, resumed from the tab's storage).
          await tab1.frame.goto(`${appUrl}/settings`);
          await expect(tab1.app.getByLabel("Organisation name")).toHaveValue("Demo Winery (after tab 2 signed out)");
          await expect(tab1.app.locator('meta[name="libero-tab"]')).toHaveAttribute("data-tenant", "demo-winery");
          expect(await frameLocation(tab1.frame)).toBe(`${appUrl}/settings`);
        }
        expect(seenIn(tabs, tab1)).toEqual([]);
      } finally {
        await close();
      }
    });
  });
}
