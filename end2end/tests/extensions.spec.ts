import { type Frame, type Page, expect, test } from "@playwright/test";
import { useServers } from "../support/servers";

// Libero as Commerce7 opens it (issue 27): each extension at its own URL with a fresh account
// token on every open, and the admin sizing the frame to the page through the frame script.

async function install(page: Page, adminUrl: string) {
  await page.goto(`${adminUrl}/`);
  await page
    .locator("section.tenant", { hasText: "(demo-winery)" })
    .getByRole("button", { name: "Install Libero", exact: true })
    .click();
  await expect(page.getByText("Install callback for demo-winery")).toContainText("200");
}

/** The app's frame once its page is interactive. */
async function openedFrame(page: Page, appUrl: string): Promise<Frame> {
  await expect(page.frameLocator("#app-frame").locator("body")).toHaveAttribute("data-hydrated", "true");
  const frame = page.frames().find((f) => f.url().startsWith(appUrl));
  if (!frame) throw new Error("no app frame");
  return frame;
}

/**
 * Waits until the admin has sized the frame to its page: the page shows its whole content with no
 * inner scrollbar, and the frame is no taller than the content (a page as high as its frame —
 * `100vh` — would never let it shrink).
 */
async function expectSizedToContent(frame: Frame) {
  await expect
    .poll(
      () =>
        frame.evaluate(() => {
          const body = document.body;
          const style = getComputedStyle(body);
          const content = body.getBoundingClientRect().height + parseFloat(style.marginTop) + parseFloat(style.marginBottom);
          const inner = window.innerHeight;
          return {
            innerScroll: document.documentElement.scrollHeight > inner + 1,
            tallerThanContent: inner > Math.ceil(content) + 2,
          };
        }),
      { timeout: 10_000 },
    )
    .toEqual({ innerScroll: false, tallerThanContent: false });
}

for (const viewport of [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
]) {
  test.describe(() => {
    const servers = useServers(`extensions-${viewport.width}`);

    test(`each extension opens at its own URL, signs in with a fresh token and sizes its frame (${viewport.width}×${viewport.height})`, async ({ browser }) => {
      const { appUrl, adminUrl } = servers();
      const context = await browser.newContext({ viewport });
      try {
        const page = await context.newPage();
        await install(page, adminUrl);

        const commerce7Calls = async () => ((await (await fetch(`${adminUrl}/admin/calls`)).json()) as { accountUser: number }).accountUser;
        const before = await commerce7Calls();

        // The Store menu page: the dashboard.
        await page.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=light`);
        const firstToken = new URL((await page.locator("#app-frame").getAttribute("src")) ?? "").searchParams.get("account");
        const dashboard = await openedFrame(page, appUrl);
        await expect(page.frameLocator("#app-frame").getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
        expect(new URL(dashboard.url()).pathname).toBe("/app");
        expect(dashboard.url()).not.toContain("account=");
        await expectSizedToContent(dashboard);

        // The Settings page, as an Order-Detail tab would open it: its context kept, a new token.
        await page.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=light&page=settings&orderId=o-42`);
        const secondToken = new URL((await page.locator("#app-frame").getAttribute("src")) ?? "").searchParams.get("account");
        expect(secondToken, "Commerce7 mints a new token for every open").not.toBe(firstToken);
        const settings = await openedFrame(page, appUrl);
        await expect(page.frameLocator("#app-frame").locator('input[name="settings[org_name]"]')).toBeVisible();
        const url = new URL(settings.url());
        expect(url.pathname).toBe("/settings");
        expect(url.searchParams.get("orderId")).toBe("o-42");
        expect(url.searchParams.has("account") || url.searchParams.has("tenantId")).toBe(false);
        await expectSizedToContent(settings);
        expect(await commerce7Calls(), "two opens, one Commerce7 call each").toBe(before + 2);

        // Its flow: a change saved inside the extension stays saved (no further Commerce7 call).
        const app = page.frameLocator("#app-frame");
        const orgName = `Demo Winery (order o-42, ${viewport.width})`;
        await app.getByLabel("Organisation name").fill(orgName);
        await app.getByRole("button", { name: "Save settings" }).click();
        await expect(app.getByRole("status").filter({ hasText: "Settings saved." })).toBeVisible();
        await settings.goto(`${appUrl}/settings`);
        await expect(app.getByLabel("Organisation name")).toHaveValue(orgName);
        expect(await commerce7Calls(), "saving and reloading ask Commerce7 nothing").toBe(before + 2);
      } finally {
        await context.close();
      }
    });
  });
}

test.describe(() => {
  const servers = useServers("extensions-tabs");

  test("opening a second extension as the same user keeps the first tab's session", async ({ browser }) => {
    const { appUrl, adminUrl } = servers();
    const context = await browser.newContext();
    try {
      const first = await context.newPage();
      await install(first, adminUrl);
      await first.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=light`);
      await openedFrame(first, appUrl);

      const second = await context.newPage();
      await second.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=light&page=settings`);
      await openedFrame(second, appUrl);

      // The first tab goes on working: its next server call is answered for its session.
      const app = first.frameLocator("#app-frame");
      await app.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(app.locator('input[name="settings[org_name]"]')).toBeVisible();
      await expect(app.locator("#no-session")).toHaveCount(0);
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("extensions-report");

  test("the Report extension: an owner sees who is signed in and signs a person out everywhere; staff are told who can see it", async ({ browser }) => {
    const { appUrl, adminUrl } = servers();
    // Sam (no role in Commerce7) in a browser of his own.
    const samContext = await browser.newContext();
    const danaContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const sam = await samContext.newPage();
      await install(sam, adminUrl);
      await sam.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-sam&theme=light&page=reports/sessions`);
      const refused = sam.frameLocator("#app-frame");
      const samFrame = await openedFrame(sam, appUrl);
      await expect(refused.getByTestId("not-allowed")).toContainText("Admin Owner");
      await expect(refused.getByTestId("not-allowed")).toContainText("Roles are read from Commerce7 when you open Libero");
      await expect(refused.getByTestId("person")).toHaveCount(0);

      // Dana opens the Report from the admin: it signs in and lands on the report.
      const dana = await danaContext.newPage();
      await dana.goto(`${adminUrl}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=light&page=reports/sessions`);
      const frame = await openedFrame(dana, appUrl);
      expect(new URL(frame.url()).pathname).toBe("/reports/sessions");
      expect(frame.url()).not.toContain("account=");
      const report = dana.frameLocator("#app-frame");
      await expect(report.getByRole("heading", { name: "Who is signed in to Libero at this winery" })).toBeVisible();
      await expect(report.getByTestId("person")).toHaveCount(2);
      await expect(report.getByTestId("person").filter({ hasText: "Sam Staff" })).toBeVisible();
      await expectSizedToContent(frame);

      // Sign Sam out everywhere from the keyboard (hydrated: the list refreshes in place, and the
      // keyboard's place is the report's heading once Sam's button is gone).
      await report.getByRole("button", { name: "Sign out this person everywhere: Sam Staff" }).focus();
      await dana.keyboard.press("Enter");
      await expect(report.getByRole("status")).toContainText("Signed out of 1 session.");
      await expect(report.getByTestId("person")).toHaveCount(1);
      await expect(report.getByRole("heading", { name: "Who is signed in to Libero at this winery" })).toBeFocused();
      await expect(report.getByTestId("person").filter({ hasText: "Sam Staff" })).toHaveCount(0);
      // The frame follows the content at a phone's width too.
      await dana.setViewportSize({ width: 390, height: 844 });
      await expectSizedToContent(frame);

      // Sam's page has lost its session: loading it again (the frame, not a new open from the
      // admin, which would sign him in anew) finds none.
      await samFrame.goto(samFrame.url());
      await expect(refused.locator("#no-session")).toBeVisible();
    } finally {
      await samContext.close();
      await danaContext.close();
    }
  });
});
