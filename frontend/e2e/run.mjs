// End-to-end suite in a real headless browser (Debian's chromium driven by playwright-core) against the whole app as
// `make local` runs it: `python -m app.local` with VISIONRAG_FRONTEND=start (API + worker + embedder with the tiny
// model + the development OIDC issuer + the chat stand-in + the frontend's standalone production build).
// Steps: anonymous redirect, sign-in, upload a PDF and watch it finish, search and open a page image, chat with
// cited pages, delete the document, sign out; security headers on every page response; a screenshot per step under
// build/e2e/. Exit code 0 only when every step passed.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const OUT = join(ROOT, "build", "e2e");
const STATE = join(OUT, "state");
const PYTHON = process.env.PYTHON ?? join(ROOT, ".venv", "bin", "python");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const START_TIMEOUT_MS = 15 * 60 * 1000;
const JOB_TIMEOUT_MS = 5 * 60 * 1000;
const USER = "e2e-user";
// Access tokens from the dev issuer live this long in the e2e run, so the refresh path runs for real (step 10).
const ACCESS_TTL_S = 70;

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
const log = (...args) => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}]`, ...args);

function samplePdf(path) {
  // A two-page PDF with real text, drawn by Pillow (already in the Python environment).
  const script = `
import sys
from PIL import Image, ImageDraw
pages = []
for n, text in enumerate(["Quarterly invoice: total due 1,250 EUR", "Delivery note: 12 boxes of paper"], 1):
    img = Image.new("RGB", (620, 877), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((40, 40, 580, 120), outline="black", width=3)
    d.text((60, 70), text, fill="black")
    d.text((60, 800), f"page {n}", fill="gray")
    pages.append(img)
pages[0].save(sys.argv[1], save_all=True, append_images=pages[1:])
`;
  const result = spawnSync(PYTHON, ["-c", script, path], { stdio: "inherit" });
  assert.equal(result.status, 0, "could not make the sample PDF");
}

function startApp() {
  rmSync(STATE, { recursive: true, force: true });
  mkdirSync(STATE, { recursive: true });
  const env = {
    ...process.env,
    VISIONRAG_FRONTEND: "start",
    VISIONRAG_LOCAL_STATE: STATE,
    DEV_ISSUER_ACCESS_TTL_S: String(ACCESS_TTL_S),
    PYTHONUNBUFFERED: "1",
  };
  delete env.OPENAI_API_KEY; // chat must be answered by the local stand-in, never a real service
  delete env.EMBEDDER_MODEL;
  // Its own process group, so the whole tree (redis, weed, embedder, node) can be stopped together.
  const child = spawn(PYTHON, ["-m", "app.local"], { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return { child, output: () => output };
}

async function stopApp(app) {
  if (app.child.exitCode !== null) return;
  try {
    process.kill(-app.child.pid, "SIGINT");
  } catch {
    return;
  }
  for (let i = 0; i < 60 && app.child.exitCode === null; i += 1) await sleep(500);
  if (app.child.exitCode === null) {
    try {
      process.kill(-app.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

async function waitForFrontend(app) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  const urls = join(STATE, "urls.json");
  while (Date.now() < deadline) {
    if (app.child.exitCode !== null) throw new Error(`app.local exited (${app.child.exitCode}):\n${app.output().slice(-4000)}`);
    if (existsSync(urls)) {
      const { frontend, api } = JSON.parse(readFileSync(urls, "utf8"));
      try {
        const [web, backend] = await Promise.all([fetch(`${frontend}/api/health`), fetch(`${api}/health`)]);
        if (web.ok && backend.ok) return frontend;
      } catch {
        // not listening yet
      }
    }
    await sleep(1000);
  }
  throw new Error(`the frontend did not come up within ${START_TIMEOUT_MS / 1000}s:\n${app.output().slice(-4000)}`);
}

/** The security headers every page response must carry (CSP per request, static ones from next.config.ts). */
function assertSecurityHeaders(response, what) {
  const headers = response.headers();
  const csp = headers["content-security-policy"] ?? "";
  assert.match(csp, /script-src 'self' 'nonce-[A-Za-z0-9+/=]+' 'strict-dynamic'/, `${what}: CSP script-src`);
  assert.doesNotMatch(csp, /unsafe-eval/, `${what}: no eval in production`);
  assert.match(csp, /frame-ancestors 'none'/, `${what}: frame-ancestors`);
  assert.match(csp, /img-src 'self' data: blob: http:\/\/127\.0\.0\.1:\d+(;|$)/, `${what}: img-src pages origin only`);
  assert.equal(headers["x-frame-options"], "DENY", `${what}: X-Frame-Options`);
  assert.equal(headers["x-content-type-options"], "nosniff", `${what}: nosniff`);
  assert.equal(headers["referrer-policy"], "strict-origin-when-cross-origin", `${what}: Referrer-Policy`);
  assert.match(headers["permissions-policy"] ?? "", /camera=\(\)/, `${what}: Permissions-Policy`);
  assert.equal(headers["x-powered-by"], undefined, `${what}: no X-Powered-By`);
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  // Screenshots of an earlier run must not pass for this one's.
  for (const name of readdirSync(OUT)) {
    if (name.endsWith(".png") || name === "app.log" || name === "report.json") rmSync(join(OUT, name));
  }
  const pdf = join(OUT, "sample.pdf");
  samplePdf(pdf);
  const app = startApp();
  // Whatever happens, the app's process group (redis, weed, embedder, API, node) goes down with this script.
  const stopOnSignal = () => {
    try {
      process.kill(-app.child.pid, "SIGINT");
    } catch {
      // already gone
    }
    process.exit(130);
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  const results = [];
  let browser;
  try {
    log("starting app.local (embedder, API, worker, issuer, frontend build) ...");
    const base = await waitForFrontend(app);
    log(`frontend at ${base}`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(60_000);
    const cspViolations = [];
    page.on("console", (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
    });
    const step = async (name, body) => {
      const started = Date.now();
      try {
        await body();
        await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
        results.push({ step: name, ok: true, seconds: (Date.now() - started) / 1000 });
        log(`ok   ${name}`);
      } catch (error) {
        await page.screenshot({ path: join(OUT, `${name}-FAILED.png`), fullPage: true }).catch(() => {});
        results.push({ step: name, ok: false, error: String(error) });
        log(`FAIL ${name}: ${error}`);
        throw error;
      }
    };

    await step("01-anonymous-redirected", async () => {
      const response = await page.goto(`${base}/documents`);
      assert.equal(new URL(page.url()).pathname, "/signin");
      assert.equal(new URL(page.url()).searchParams.get("callbackUrl"), "/documents");
      assertSecurityHeaders(response, "sign-in page");
      const api = await fetch(`${base}/api/proxy/search?q=x`, { redirect: "manual" });
      assert.equal(api.status, 401, "anonymous API call");
    });

    await step("02-issuer-login-form", async () => {
      await page.getByRole("button", { name: /^Sign in with/ }).click();
      await page.waitForURL(/\/authorize\?/);
      await page.getByLabel("User name").fill(USER);
    });

    let signedInAt = 0;
    await step("03-signed-in", async () => {
      signedInAt = Date.now();
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForURL(`${base}/documents`);
      await page.getByTestId("user").filter({ hasText: USER }).waitFor();
      // The access token lives in the httpOnly session cookie only: not in storage, not in the session JSON.
      // (next-auth keeps only its cross-tab "session changed" message in localStorage.)
      const storage = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
      assert.doesNotMatch(storage, /eyJ|access|refresh|id_token|Bearer/i, "no token in web storage");
      const session = await page.evaluate(async () => (await fetch("/api/auth/session")).text());
      assert.match(session, new RegExp(USER));
      assert.doesNotMatch(session, /eyJ|accessToken|access_token|refresh/i);
      const cookies = await context.cookies();
      const sessionCookie = cookies.find((cookie) => cookie.name.includes("next-auth.session-token"));
      assert.ok(sessionCookie?.httpOnly, "session cookie is httpOnly");
      assert.equal(await page.evaluate(() => document.cookie.includes("session-token")), false);
    });

    let documentId = "";
    await step("04-upload-progress-done", async () => {
      const response = await page.goto(`${base}/upload`);
      assertSecurityHeaders(response, "upload page");
      await page.getByLabel("PDF files").setInputFiles(pdf);
      const accepted = page.waitForResponse((r) => r.url().endsWith("/api/proxy/index"));
      // The live progress: an EventSource on the proxied SSE stream.
      const stream = page.waitForResponse((r) => r.url().includes("/api/proxy/progress/stream/"));
      stream.catch(() => {}); // awaited below; never an unhandled rejection if an earlier assertion fails
      await page.getByRole("button", { name: "Upload" }).click();
      const body = await (await accepted).json();
      assert.equal((await accepted).status(), 202);
      documentId = body.jobs[0].document_id;
      const sse = await stream;
      assert.equal(sse.status(), 200);
      assert.match(sse.headers()["content-type"] ?? "", /^text\/event-stream/);
      await page.locator('[data-testid="job"]').first().waitFor();
      await page.locator('[data-testid="job"][data-state="succeeded"]').waitFor({ timeout: JOB_TIMEOUT_MS });
      assert.equal(await page.locator("progress").first().getAttribute("value"), "100");
    });

    await step("05-search-results", async () => {
      const response = await page.goto(`${base}/search?q=${encodeURIComponent("invoice total due")}`);
      assertSecurityHeaders(response, "search page");
      await page.getByTestId("page-result").first().waitFor();
      const labels = await page.getByTestId("page-result").allInnerTexts();
      assert.ok(labels.some((text) => text.includes("sample.pdf - page")), `search labels: ${labels}`);
      const image = page.locator('[data-testid="page-result"] img').first();
      await image.waitFor();
      assert.ok(await image.evaluate((img) => img.complete && img.naturalWidth > 0), "thumbnail loaded");
    });

    await step("06-page-image-opened", async () => {
      const [popup] = await Promise.all([
        context.waitForEvent("page"),
        page.getByTestId("page-image-link").first().click(),
      ]);
      await popup.waitForLoadState();
      // Chromium shows an image document: its content type and a decoded <img>.
      const shown = await popup.evaluate(() => ({
        type: document.contentType,
        width: document.images[0]?.naturalWidth ?? 0,
        origin: location.origin,
      }));
      assert.match(shown.type, /^image\//, `opened ${popup.url()}`);
      assert.ok(shown.width > 0, "the page image decoded");
      assert.match(shown.origin, /^http:\/\/127\.0\.0\.1:\d+$/, "served by the pages bucket, not the app");
      await popup.screenshot({ path: join(OUT, "06-page-image-opened-popup.png") });
      await popup.close();
    });

    await step("07-chat-cited-pages", async () => {
      const response = await page.goto(`${base}/chat`);
      assertSecurityHeaders(response, "chat page");
      await page.getByLabel("message").fill("What is the total due on the invoice?");
      await page.getByRole("button", { name: "Send" }).click();
      const answer = page.getByTestId("turn-assistant").first();
      await answer.waitFor();
      const text = await answer.innerText();
      assert.match(text, /development stand-in/);
      assert.match(text, /sample\.pdf - page \d/, "the answer cites page labels");
      assert.ok((await answer.locator("img").count()) > 0, "cited pages are shown");
    });

    await step("08-documents-listed", async () => {
      const response = await page.goto(`${base}/documents`);
      assertSecurityHeaders(response, "documents page");
      const row = page.getByTestId("document-row");
      await row.first().waitFor();
      assert.match(await row.first().innerText(), /sample\.pdf\s+2\s+2/);
      const exported = await page.evaluate(async (id) => (await fetch(`/api/proxy/documents/${id}/export`)).json(), documentId);
      assert.equal(exported.document.document_id, documentId);
      assert.equal(exported.pages.length, 2);
    });

    await step("09-document-deleted", async () => {
      page.once("dialog", (dialog) => void dialog.accept());
      await page.getByRole("button", { name: "Delete" }).first().click();
      await page.getByText("No documents yet.").waitFor();
      const status = await page.evaluate(async (id) => (await fetch(`/api/proxy/documents/${id}`)).status, documentId);
      assert.equal(status, 404, "the API no longer knows the document");
      // The admin routes are not reachable through the proxy, whoever is signed in.
      const admin = await page.evaluate(async () => (await fetch("/api/proxy/admin/audit")).status);
      assert.equal(admin, 404);
    });

    await step("10-token-refreshed", async () => {
      // Past the first access token's expiry, with no session polling in between: the page finds no usable token,
      // sends the user to /signin, whose session load refreshes the token at the dev issuer (refresh_token grant)
      // and returns to the page, which then reaches the API with the new token.
      const wait = signedInAt + ACCESS_TTL_S * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
      const visited = [];
      const track = (frame) => frame === page.mainFrame() && visited.push(new URL(frame.url()).pathname);
      page.on("framenavigated", track);
      await page.goto(`${base}/search?q=${encodeURIComponent("delivery note")}`);
      await page.waitForURL(/\/search\?q=/);
      await page.getByText("No pages found.").waitFor();
      page.off("framenavigated", track);
      assert.ok(visited.includes("/signin"), `the expired token took the refresh path: ${visited}`);
      assert.equal(await page.locator(".error").count(), 0);
      const status = await page.evaluate(async () => (await fetch("/api/proxy/search?q=x")).status);
      assert.equal(status, 200, "the API is reachable with the refreshed token");
    });

    await step("11-signed-out", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.waitForURL(/\/signin/);
      await page.goto(`${base}/chat`);
      assert.equal(new URL(page.url()).pathname, "/signin");
    });

    assert.deepEqual(cspViolations, [], "no CSP violation in the browser console");
  } finally {
    if (browser) await browser.close();
    await stopApp(app);
    writeFileSync(join(OUT, "report.json"), JSON.stringify(results, null, 2));
    if (results.some((r) => !r.ok) || results.length === 0) {
      writeFileSync(join(OUT, "app.log"), app.output());
      log(`app.local output: ${join(OUT, "app.log")}; logs: ${join(STATE, "logs")}`);
    }
  }
  log(`all ${results.length} steps passed; screenshots in ${OUT}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
