import { type Page, type Route, expect, test } from "@playwright/test";
import { useServers } from "../support/servers";

// The second security pass (issue 26) as a merchant meets it: sign-out never reports what it did
// not do, and every page hydrates under the Content-Security-Policy without a violation.

/** Installs demo-winery through the admin simulator's callback. */
async function install(page: Page, adminUrl: string) {
  await page.goto(`${adminUrl}/`);
  await page
    .locator("section.tenant", { hasText: "(demo-winery)" })
    .getByRole("button", { name: "Install Libero", exact: true })
    .click();
  await expect(page.getByText("Install callback for demo-winery")).toContainText("200");
}

/** Signs Dana in (top-level) and waits for the dashboard to be interactive. */
async function signedInDashboard(page: Page, appUrl: string) {
  await page.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
  await expect(page.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** The tab's stored credential, as the page keeps it. */
function storedTab(page: Page): Promise<string | null> {
  return page.evaluate(() => sessionStorage.getItem("libero.tab"));
}

test.describe(() => {
  const servers = useServers("sign-out");

  // The server answers 503, or cannot be reached at all (a network error).
  const failures = [
    ["answers 503", (route: Route) => route.fulfill({ status: 503, contentType: "application/json", body: '{"error":"unavailable"}' })],
    ["cannot be reached", (route: Route) => route.abort("failed")],
  ] as const;
  for (const [what, fail] of failures) {
    test(`a sign-out whose server ${what} keeps the merchant signed in, says so, and a second press signs out`, async ({ page }) => {
      const { appUrl, adminUrl } = servers();
      await install(page, adminUrl);
      await signedInDashboard(page, appUrl);
      const credential = await storedTab(page);
      expect(credential, "control: the tab holds its credential").not.toBeNull();

      // The first sign-out meets a server that cannot answer.
      await page.route("**/api/logout", fail, { times: 1 });
      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      await expect(page.locator("#sign-out-failed")).toContainText("You are still signed in");
      await expect(page).toHaveURL(`${appUrl}/app`);
      expect(await storedTab(page), "the credential is kept").toBe(credential);
      await expect(page.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();

      // The second press reaches the server and signs out.
      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      await expect(page).toHaveURL(`${appUrl}/`);
      await page.goto(`${appUrl}/app`);
      await expect(page.locator("#no-session")).toBeVisible();
    });
  }

  test("when the tab's credential is refused, Sign out falls through to the plain form and still signs out", async ({ page }) => {
    const { appUrl, adminUrl } = servers();
    await install(page, adminUrl);
    await signedInDashboard(page, appUrl);
    const logoutPosts: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && new URL(request.url()).pathname === "/logout") logoutPosts.push(request.url());
    });
    await page.route(
      "**/api/logout",
      (route) => route.fulfill({ status: 401, contentType: "application/json", body: '{"error":"unauthorized"}' }),
      { times: 1 },
    );
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await expect(page).toHaveURL(`${appUrl}/`);
    expect(logoutPosts, "the plain POST /logout was sent").toHaveLength(1);
    await page.goto(`${appUrl}/app`);
    await expect(page.locator("#no-session")).toBeVisible();
  });
});

test.describe(() => {
  const servers = useServers("content-security-policy");

  test("every page hydrates inside the admin's iframe with no Content-Security-Policy violation", async ({ browser }) => {
    const { appUrl, adminUrl } = servers();
    const context = await browser.newContext();
    // Every frame records the violations its document reports.
    await context.addInitScript(() => {
      const seen: string[] = [];
      (window as unknown as { __csp: string[] }).__csp = seen;
      document.addEventListener("securitypolicyviolation", (event) =>
        seen.push(`${event.violatedDirective} ${event.blockedURI}`),
      );
    });
    const consoleViolations: string[] = [];
    try {
      const page = await context.newPage();
      page.on("console", (message) => {
        if (/Content.Security.Policy/i.test(message.text())) consoleViolations.push(message.text());
      });
      await install(page, adminUrl);
      await page.goto(`${adminUrl}/`);
      await page.getByRole("link", { name: "Open as Dana Owner (light theme)" }).click();
      const frame = page.frameLocator("#app-frame");
      await expect(frame.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      await expect(frame.locator("body")).toHaveAttribute("data-hydrated", "true");
      // Settings: a lazily loaded chunk and its loader script.
      await frame.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(frame.getByRole("heading", { name: "Settings" })).toBeVisible();
      await expect(frame.locator('input[name="settings[org_name]"]')).toBeVisible();

      // Top level: the landing page and the "no session" page (the inlined bootstrap).
      const top = await context.newPage();
      top.on("console", (message) => {
        if (/Content.Security.Policy/i.test(message.text())) consoleViolations.push(message.text());
      });
      await top.goto(`${appUrl}/`);
      await expect(top.locator("body")).toHaveAttribute("data-hydrated", "true");
      const landingPolicy = (await top.request.get(`${appUrl}/`)).headers()["content-security-policy"];
      expect(landingPolicy, "control: the policy is in force").toContain("script-src 'self' 'nonce-");
      await top.goto(`${appUrl}/resume`);
      await expect(top.locator("#no-session")).toBeVisible();

      const frameViolations = await Promise.all(
        page.frames().map((f) => f.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []).catch(() => [])),
      );
      const topViolations = await top.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
      expect([...frameViolations.flat(), ...topViolations, ...consoleViolations]).toEqual([]);

      // Control: the policy does block what it should — an inline script without the nonce.
      const ran = await top.evaluate(() => {
        const script = document.createElement("script");
        script.textContent = "window.__injected = true";
        document.head.appendChild(script);
        return (window as unknown as { __injected?: boolean }).__injected ?? false;
      });
      expect(ran, "an injected inline script does not run").toBe(false);
      await expect
        .poll(() => top.evaluate(() => (window as unknown as { __csp: string[] }).__csp.length))
        .toBeGreaterThan(0);
    } finally {
      await context.close();
    }
  });
});
