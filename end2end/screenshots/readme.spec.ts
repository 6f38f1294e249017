// The README's two pictures: Libero's dashboard framed in the Commerce7 admin simulator (the fake
// Commerce7 of `make dev`), in the admin's light and in its dark theme. Run by `make screenshots`
// (scripts/screenshots.sh), not by `make test`; it writes docs/images/dashboard-{light,dark}.png.

import { expect, test } from "@playwright/test";
import { join } from "node:path";
import { installTenant, openAs } from "../support/merchant";
import { REPO_ROOT, useServers } from "../support/servers";

const servers = useServers("screenshots");

test("the dashboard framed in the admin simulator, light and dark", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await installTenant(page, servers(), "demo-winery");
  for (const theme of ["light", "dark"] as const) {
    await openAs(page, servers(), `Open as Dana Owner (${theme} theme)`);
    const app = page.frameLocator("#app-frame");
    await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
    await expect(app.locator("body")).toHaveClass(new RegExp(`theme-${theme}`));
    await expect(app.locator("body")).toHaveAttribute("data-hydrated", "true");
    // Every image decoded (the brand mark) before the picture is taken.
    await expect(app.locator("img.brand-mark")).toHaveJSProperty("complete", true);
    await page.screenshot({ path: join(REPO_ROOT, "docs", "images", `dashboard-${theme}.png`) });
  }
});
