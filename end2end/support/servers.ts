// The servers a spec file (or a describe block) runs against: its own fake Commerce7 and its own
// Libero, each on a free port, each in a scratch working directory (so no `.env` is ever read),
// with only the environment given here (PATH and HOME pass; nothing else of the developer's
// shell does), and Libero on a fresh SQLite file.
//
//   const servers = useServers("landing");       // in a file or a describe block
//   test("…", async ({ page }) => { await page.goto("/"); servers().adminUrl; … });
//
// The app is served on http://127.0.0.1:PORT and the Commerce7 admin simulator on
// http://localhost:PORT: different sites, so the app runs in a cross-site iframe there.

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "@playwright/test";

export const REPO_ROOT = resolve(__dirname, "..", "..");
// What `cargo leptos build` and the fake's build leave in <repo>/target. E2E_TARGET_DIR may name a
// copy of debug/libero, debug/fake-commerce7, debug/hash.txt (when the build hashes /pkg names)
// and site/ instead (e.g. to keep testing one build while other cargo commands relink
// target/debug/libero without cargo-leptos' settings).
const TARGET_DIR = resolve(process.env.E2E_TARGET_DIR ?? join(REPO_ROOT, "target"));
/** `debug` (the tests), or `release` (the browser timings of `make bench`). */
const PROFILE = process.env.E2E_PROFILE ?? "debug";
const FAKE_BIN = join(TARGET_DIR, PROFILE, "fake-commerce7");
const APP_BIN = join(TARGET_DIR, PROFILE, "libero");
/** cargo-leptos' list of the /pkg hashes (hash-files = true), read by the server next to its binary. */
const HASH_FILE = join(TARGET_DIR, PROFILE, "hash.txt");
const SITE_ROOT = join(TARGET_DIR, "site");

/**
 * Whether the site was built with content-hashed /pkg names: the hash file next to the binary
 * names a wasm file the site has. (A hash file left over from an earlier hashed build does not
 * count.) The server is told so (LEPTOS_HASH_FILES), as `cargo leptos serve` would tell it.
 */
function siteHashed(): boolean {
  if (!existsSync(HASH_FILE)) return false;
  const wasm = /^\s*wasm\s*:\s*(\S+)\s*$/m.exec(readFileSync(HASH_FILE, "utf8"))?.[1];
  return wasm !== undefined && existsSync(join(SITE_ROOT, "pkg", `libero.${wasm}.wasm`));
}

/** Test-only secrets, shared by the fake (which sends the callbacks) and the app (which checks them). */
export const SESSION_SECRET = "e2e-secret-0123456789abcdef0123456789abcdef";
const CALLBACK_USER = "e2e-callbacks";
const CALLBACK_PASSWORD = "e2e-callback-password";

/** The fake Commerce7's delay on each user lookup (`make bench` sets 250 ms: Commerce7's own time). */
const C7_LATENCY_MS = process.env.E2E_C7_LATENCY_MS ?? "0";
/** How long each server may take to answer its health check. */
const START_TIMEOUT_MS = Number(process.env.E2E_START_TIMEOUT_MS ?? 30_000);
/** How long a server may take to stop after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** A port picked as free can be taken before the server binds it: try again with new ports. */
const START_ATTEMPTS = 3;
/** Lines of output kept per server (for start-up errors and failed tests). */
const LOG_LINES = 400;

export interface Servers {
  /** Libero, e.g. http://127.0.0.1:41234 */
  appUrl: string;
  /** The Commerce7 admin simulator, on another site: http://localhost:PORT */
  adminUrl: string;
  /** The fake Commerce7 on the app's site: http://127.0.0.1:PORT */
  c7Url: string;
  /** Libero's SQLite file (fresh for this set of servers). */
  databaseFile: string;
  /** Both servers' recent output. */
  logs(): string;
  /** Stops both servers and removes the scratch directory. Safe to call twice. */
  stop(): Promise<void>;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

// Children still running when the worker exits (a crash, a timeout) are killed with it.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** One child server: output kept in memory, exit observed. */
class Server {
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  exit: Exit | undefined;
  private readonly lines: string[] = [];

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    cwd: string,
    env: NodeJS.ProcessEnv,
  ) {
    this.process = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    running.add(this.process);
    // Both pipes are always drained, or a chatty server would block on a full pipe.
    for (const stream of [this.process.stdout!, this.process.stderr!]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop()!;
        for (const line of parts) this.keep(line);
      });
      stream.on("end", () => {
        if (partial) this.keep(partial);
        partial = "";
      });
    }
    this.exited = new Promise<Exit>((resolveExit) => {
      this.process.on("error", (err) => {
        this.keep(`cannot start ${command}: ${err.message}`);
        this.exit = { code: null, signal: null };
        running.delete(this.process);
        resolveExit(this.exit);
      });
      this.process.on("exit", (code, signal) => {
        this.exit = { code, signal };
        running.delete(this.process);
        resolveExit(this.exit);
      });
    });
  }

  private keep(line: string) {
    this.lines.push(line);
    if (this.lines.length > LOG_LINES) this.lines.shift();
  }

  log(): string {
    return `--- ${this.name} (pid ${this.process.pid ?? "none"}) ---\n${this.lines.join("\n")}\n`;
  }

  /** Whether it died because its port was taken (then new ports are tried). */
  lostItsPort(): boolean {
    return this.exit !== undefined && /cannot listen|address already in use|AddrInUse/i.test(this.lines.join("\n"));
  }

  /** Polls `url` until it answers 2xx; fails when the server exits or the deadline passes. */
  async waitUntilReady(url: string, deadline: number): Promise<void> {
    let last = "no answer yet";
    for (;;) {
      if (this.exit) {
        throw new Error(`${this.name} exited during start-up (${describeExit(this.exit)})`);
      }
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        if (response.ok) return;
        last = `HTTP ${response.status}`;
      } catch (err) {
        last = err instanceof Error ? `${err.message}${err.cause ? ` (${err.cause})` : ""}` : String(err);
      }
      if (Date.now() >= deadline) {
        throw new Error(`${this.name} did not answer ${url} within ${START_TIMEOUT_MS} ms (last: ${last})`);
      }
      // Poll again soon, or stop polling at once when the server exits.
      await Promise.race([new Promise((r) => setTimeout(r, 100)), this.exited]);
    }
  }

  /** SIGTERM (the servers drain and exit), then SIGKILL if that takes too long. */
  async stop(): Promise<void> {
    if (this.exit) return;
    this.process.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const killed = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (killed) {
      this.process.kill("SIGKILL");
      await this.exited;
    }
  }
}

function describeExit(exit: Exit): string {
  if (exit.signal) return `signal ${exit.signal}`;
  if (exit.code === null) return "it could not be started";
  return `exit code ${exit.code}`;
}

/** `count` distinct ports that are free right now on 127.0.0.1. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((ok, fail) => {
          const server = createServer();
          server.once("error", fail);
          server.listen(0, "127.0.0.1", () => ok(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The only variables a server inherits from the test runner's environment. */
function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ["PATH", "HOME"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function checkBuilt() {
  const missing = [FAKE_BIN, APP_BIN, join(SITE_ROOT, "pkg")].filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(
      `not built: ${missing.join(", ")}\n` +
        "build them first (make test does): `cargo leptos build --split` and the fake-commerce7 binary",
    );
  }
}

/**
 * A server binary built by plain `cargo build` (not by cargo-leptos) asks for `pkg/<name>_bg.wasm`,
 * which cargo-leptos never writes: the pages would never hydrate. Say so at once.
 */
async function siteMismatch(appUrl: string): Promise<string | undefined> {
  const html = await (await fetch(`${appUrl}/`, { signal: AbortSignal.timeout(5_000) })).text();
  const wasm = /["'](\/[^"']+\.wasm)["']/.exec(html)?.[1];
  if (wasm && !existsSync(join(SITE_ROOT, wasm))) {
    return (
      `${APP_BIN} links ${wasm}, which ${SITE_ROOT} does not have: the binary was not built by ` +
      "`cargo leptos build`, or the site is from another build, or (hashed /pkg names) the build's " +
      `hash.txt is not at ${HASH_FILE}. Run \`cargo leptos build --split\` again (and copy debug/hash.txt with the binary).`
    );
  }
  return undefined;
}

/** Starts a fake Commerce7 and a Libero on fresh ports with a fresh database. */
export async function startServers(label = "e2e"): Promise<Servers> {
  checkBuilt();
  const safeLabel = label.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, 40);
  let failure = "";
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), `libero-e2e-${safeLabel}-`));
    const [appPort, c7Port] = await freePorts(2);
    const appUrl = `http://127.0.0.1:${appPort}`;
    const c7Url = `http://127.0.0.1:${c7Port}`;
    const adminUrl = `http://localhost:${c7Port}`;
    const databaseFile = join(dir, "app", "libero.db");
    const fakeCwd = join(dir, "fake");
    const appCwd = join(dir, "app");
    mkdirSync(fakeCwd);
    mkdirSync(appCwd);

    const fake = new Server("fake-commerce7", FAKE_BIN, [], fakeCwd, {
      ...baseEnv(),
      FAKE_C7_ADDR: `127.0.0.1:${c7Port}`,
      FAKE_C7_APP_URL: appUrl,
      FAKE_C7_LATENCY_MS: C7_LATENCY_MS,
      COMMERCE7_USER: CALLBACK_USER,
      COMMERCE7_PASSWORD: CALLBACK_PASSWORD,
      RUST_LOG: "info",
      NO_COLOR: "1",
    });
    const app = new Server("libero", APP_BIN, ["serve"], appCwd, {
      ...baseEnv(),
      LEPTOS_OUTPUT_NAME: "libero",
      LEPTOS_SITE_ROOT: SITE_ROOT,
      LEPTOS_SITE_PKG_DIR: "pkg",
      LEPTOS_HASH_FILES: String(siteHashed()),
      LEPTOS_SITE_ADDR: `127.0.0.1:${appPort}`,
      LEPTOS_ENV: "DEV",
      DATABASE_URL: `sqlite://${databaseFile}`,
      SESSION_SECRET,
      COOKIE_SECURE: "true",
      FRAME_ANCESTORS: adminUrl,
      SESSION_TOUCH_INTERVAL: "0",
      COMMERCE7_API_URL: `${c7Url}/v1`,
      // The simulator's stand-in for Commerce7's frame script (these machines are offline).
      COMMERCE7_FRAME_SCRIPT: `${c7Url}/v2/commerce7.js`,
      COMMERCE7_USER: CALLBACK_USER,
      COMMERCE7_PASSWORD: CALLBACK_PASSWORD,
      RUST_LOG: "info",
      NO_COLOR: "1",
    });
    const logs = () => fake.log() + app.log();
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= Promise.all([fake.stop(), app.stop()]).then(() => rmSync(dir, { recursive: true, force: true }));
      return stopped;
    };

    const deadline = Date.now() + START_TIMEOUT_MS;
    const results = await Promise.allSettled([
      fake.waitUntilReady(`${c7Url}/healthz`, deadline),
      app.waitUntilReady(`${appUrl}/readyz`, deadline),
    ]);
    const errors = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason?.message ?? r.reason)] : []));
    if (errors.length === 0) {
      const mismatch = await siteMismatch(appUrl).catch((err) => `cannot read ${appUrl}/: ${err}`);
      if (mismatch) {
        await stop();
        throw new Error(mismatch);
      }
      return { appUrl, adminUrl, c7Url, databaseFile, logs, stop };
    }
    const portTaken = fake.lostItsPort() || app.lostItsPort();
    await stop();
    failure = `servers for "${label}" did not start (attempt ${attempt} of ${START_ATTEMPTS}):\n${errors.join("\n")}\n${logs()}`;
    if (!portTaken) break;
  }
  throw new Error(failure);
}

/**
 * Gives the enclosing file or describe block its own servers: started before its first test,
 * stopped after its last (also when a test fails), `baseURL` pointing at the app, and both
 * servers' output attached to every failed test. Returns a getter for use inside the tests.
 */
export function useServers(label: string): () => Servers {
  // Started once, on first need. Playwright resolves `baseURL` (through its context options)
  // already for the beforeAll hooks, before their bodies run, so the fixture may be first.
  let starting: Promise<Servers> | undefined;
  let servers: Servers | undefined;
  const start = (): Promise<Servers> => {
    starting ??= startServers(label).then((s) => (servers = s));
    return starting;
  };
  const current = (): Servers => {
    if (!servers) throw new Error(`the servers for "${label}" are not running`);
    return servers;
  };
  const startTimeout = START_ATTEMPTS * (START_TIMEOUT_MS + 2 * STOP_TIMEOUT_MS) + 5_000;

  test.use({
    baseURL: [
      async ({}, use) => {
        // A start-up failure is reported once, by the beforeAll hook below.
        const started = await start().catch(() => undefined);
        await use(started?.appUrl);
      },
      { scope: "test", timeout: startTimeout },
    ],
  });
  test.beforeAll(async ({}, testInfo) => {
    testInfo.setTimeout(startTimeout);
    await start();
  });
  test.afterAll(async ({}, testInfo) => {
    testInfo.setTimeout(3 * STOP_TIMEOUT_MS);
    await servers?.stop();
  });
  test.afterEach(async ({}, testInfo) => {
    if (servers && testInfo.status !== testInfo.expectedStatus) {
      await testInfo.attach("servers.log", { body: servers.logs(), contentType: "text/plain" });
    }
  });
  return current;
}
