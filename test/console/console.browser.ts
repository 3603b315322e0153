/**
 * The web console in a real browser: headless Chromium (Debian's, /usr/bin/chromium) driven by
 * playwright-core against the compiled executable (dist/symbia-messaging), started as a real process on
 * its embedded database. Two people (Alice, with the interrupt and admin entitlements, and Bob, a member
 * with none) and an agent driven from here through the SDK.
 *
 * Not part of `bun test` (the file name keeps it out): it needs the built executable and Chromium.
 * Run it with `bun run build && bun run test:console` (CONSOLE_BINARY, CHROMIUM override the paths).
 * It writes screenshots of the main views into docs/console/ and prints the first-load figures.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { MessagingClient, RunHandle, type RealtimeClient } from "../../src/client/index.ts";
import { freePort, minimalEnv, REPOSITORY, runCommand, startServer, tempDir, type ServerProcess } from "../support/harness";
import { startWebhookReceiver, type WebhookReceiver } from "../support/webhook-receiver";

setDefaultTimeout(60_000);

const BINARY = process.env.CONSOLE_BINARY ?? join(REPOSITORY, "dist/symbia-messaging");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SCREENSHOTS = join(REPOSITORY, "docs/console");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 360, height: 740 };
/** How long an expectation on the page waits for what it expects. */
const WAIT_MS = 15_000;

const ALICE = { email: "alice@example.test", password: "alice's console password", name: "Alice" };
const BOB = { email: "bob@example.test", password: "bob's console password", name: "Bob" };
const AGENT_ID = "agent:writer";

let dataDir: string;
let port: number;
let env: Record<string, string>;
let server: ServerProcess;
let base: string;
let browser: Browser;
let receiver: WebhookReceiver;
let aliceId: string;
let bobId: string;
let agentKey: string;
/** Every page's CSP reports and foreign requests, which must stay empty. */
const violations: string[] = [];

async function cli(args: string[], stdin?: string): Promise<string> {
  const result = await runCommand([BINARY, ...args], { env, stdin });
  if (result.code !== 0) throw new Error(`${args.slice(0, 2).join(" ")} exited ${result.code}: ${result.stderr}`);
  return result.stdout.trim();
}

async function start(): Promise<void> {
  server = await startServer({ command: [BINARY, "serve"], env, port, label: "symbia-messaging" });
}

async function newContext(viewport = DESKTOP): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1, colorScheme: "light", reducedMotion: "reduce" });
  context.on("request", (request) => {
    const url = new URL(request.url());
    if (url.origin !== base && url.origin !== base.replace(/^http/, "ws") && url.protocol !== "data:") violations.push(`request to ${url.origin}`);
  });
  context.on("page", watchPage);
  return context;
}

function watchPage(page: Page): void {
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  page.on("pageerror", (error) => violations.push(`page error: ${error.message}`));
}

async function signIn(context: BrowserContext, who: { email: string; password: string; name: string }): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/console`);
  await page.getByLabel("Email").fill(who.email);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(`Signed in as ${who.name}`).waitFor({ timeout: WAIT_MS });
  await connection(page).getByText("Live").waitFor({ timeout: WAIT_MS });
  return page;
}

const connection = (page: Page) => page.getByRole("status", { name: "Connection" });
const timeline = (page: Page) => page.getByRole("region", { name: "Messages" });
const messageItems = (page: Page) => timeline(page).locator("li[data-sequence]");
const runItem = (page: Page, runId: string) => page.getByRole("listitem", { name: `Run ${runId}` });
const runState = (page: Page, runId: string, state: string) => runItem(page, runId).locator(`[data-run-state="${state}"]`);
const runButton = (page: Page, runId: string, name: string) => runItem(page, runId).getByRole("button", { name, exact: true });

/** The timeline's sequence numbers, as shown. */
const sequencesOn = (page: Page) => messageItems(page).evaluateAll((items) => items.map((item) => Number(item.getAttribute("data-sequence"))));

async function until<T>(what: string, read: () => Promise<T>, accept: (value: T) => boolean, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await Bun.sleep(20);
  }
}

/**
 * Read in the page (as text: this file is not compiled with the DOM's types): the bytes of the page and
 * everything it loaded, and the console's own mark of its first view taking input.
 */
const FIRST_LOAD_FIGURES = `(() => {
  const navigation = performance.getEntriesByType("navigation")[0];
  const resources = performance.getEntriesByType("resource");
  const interactive = performance.getEntriesByName("console:interactive")[0];
  return {
    bytes: navigation.transferSize + resources.reduce((total, r) => total + r.transferSize, 0),
    decodedBytes: navigation.decodedBodySize + resources.reduce((total, r) => total + r.decodedBodySize, 0),
    requests: 1 + resources.length,
    interactiveMs: interactive?.startTime,
  };
})()`;

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), animations: "disabled", caret: "hide" });
}

beforeAll(async () => {
  if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`bun run build\` first`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  dataDir = tempDir("symbia-console-");
  port = freePort();
  receiver = startWebhookReceiver();
  // The embedded database, whatever TEST_DATABASE_URL says: the console ships in the single executable.
  env = { ...minimalEnv(), DATA_DIR: join(dataDir, "data"), DATABASE_URL: "", LOG_LEVEL: "warn", WEBHOOK_ALLOW_PRIVATE: "true", WEBHOOK_POLL_MS: "100" };
  base = `http://127.0.0.1:${port}`;
  await start();
  aliceId = await cli(
    ["users", "create", "--email", ALICE.email, "--name", ALICE.name, "--password-stdin", "--entitlement", "cap:messaging.interrupt", "--entitlement", "messaging:admin"],
    `${ALICE.password}\n`,
  );
  bobId = await cli(["users", "create", "--email", BOB.email, "--name", BOB.name, "--password-stdin"], `${BOB.password}\n`);
  agentKey = await cli(["keys", "create", "--principal", AGENT_ID, "--type", "agent", "--name", "Writer"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  receiver?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

let alice: Page;
let bob: Page;
let aliceContext: BrowserContext;
let conversationId: string;

describe("the web console", () => {
  test("first load: the page and its assets come from the executable, fast and small", async () => {
    const context = await newContext();
    const page = await context.newPage();
    // The browser's own start (a renderer process for this site) is not the console's load.
    await page.goto(`${base}/api/health`);
    const started = performance.now();
    const response = await page.goto(`${base}/console`);
    await page.getByLabel("Email").waitFor();
    const wallMs = performance.now() - started;
    const csp = response!.headers()["content-security-policy"];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    // No inline script or style in the page itself.
    const html = await response!.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style="/);

    const figures = await page.evaluate<{ bytes: number; decodedBytes: number; requests: number; interactiveMs?: number }>(FIRST_LOAD_FIGURES);
    console.log(
      `console first load: ${figures.requests} requests, ${(figures.bytes / 1024).toFixed(1)} KiB transferred ` +
        `(${(figures.decodedBytes / 1024).toFixed(1)} KiB decoded), interactive after ${figures.interactiveMs?.toFixed(0)} ms ` +
        `(${wallMs.toFixed(0)} ms seen from the test)`,
    );
    expect(figures.interactiveMs).toBeDefined();
    expect(figures.interactiveMs!).toBeLessThan(1_000);
    expect(wallMs).toBeLessThan(1_000);
    expect(figures.bytes).toBeLessThan(100 * 1024);
    await screenshot(page, "sign-in");
    await context.close();
  });

  test("a wrong password is refused in words, then Alice signs in and sees who she is", async () => {
    aliceContext = await newContext();
    const page = await aliceContext.newPage();
    await page.goto(`${base}/console`);
    await page.getByLabel("Email").fill(ALICE.email);
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    const refused = await fetch(`${base}/api/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: ALICE.email, password: "not the password either" }),
    });
    const { error } = (await refused.json()) as { error: string };
    await page.getByRole("alert").getByText(error).waitFor({ timeout: WAIT_MS });
    await page.close();

    alice = await signIn(aliceContext, ALICE);
    expect(await alice.getByRole("link", { name: "Admin" }).count()).toBe(1);
  });

  test("a refused create says why in words", async () => {
    await alice.getByRole("button", { name: "New conversation" }).click();
    await alice.getByRole("button", { name: "Another participant" }).click();
    await alice.getByLabel("Participant id").nth(0).fill(bobId);
    await alice.getByLabel("Participant id").nth(1).fill("someone-else");
    await alice.getByLabel(/^Type/).selectOption("private");
    await alice.getByRole("button", { name: "Create" }).click();
    await alice.getByRole("alert").getByText("A private conversation holds at most two participants").waitFor({ timeout: WAIT_MS });
    // Closing the form drops what was in it.
    await alice.getByRole("button", { name: "New conversation" }).click();
    expect(await alice.getByRole("form", { name: "New conversation" }).count()).toBe(0);
  });

  test("Alice creates a conversation with Bob, who sees it and its first message live", async () => {
    await alice.getByRole("button", { name: "New conversation" }).click();
    await alice.getByLabel("Name", { exact: true }).fill("Launch plan");
    await alice.getByLabel("Participant id").fill(bobId);
    await alice.getByRole("button", { name: "Create" }).click();
    await alice.getByRole("heading", { name: "Launch plan" }).waitFor({ timeout: WAIT_MS });
    conversationId = decodeURIComponent(new URL(alice.url()).hash.replace("#/c/", ""));
    expect(conversationId).toMatch(/^[0-9a-f-]{36}$/);
    await alice.getByRole("region", { name: "Participants" }).getByText(bobId).waitFor();

    bob = await signIn(await newContext(), BOB);
    const listed = bob.getByRole("link", { name: /Launch plan/ });
    await listed.waitFor({ timeout: WAIT_MS });

    // Unread on Bob's list, live, before he opens it.
    await alice.getByLabel("Message", { exact: true }).fill("Hello Bob, shall we plan the launch?");
    await alice.getByRole("button", { name: "Send" }).click();
    await listed.getByLabel("1 unread").waitFor({ timeout: WAIT_MS });

    await listed.click();
    await timeline(bob).getByText("Hello Bob, shall we plan the launch?").waitFor({ timeout: WAIT_MS });
    await alice.getByLabel("Message", { exact: true }).fill("The date is the first of March.");
    await alice.keyboard.press("Enter");
    await timeline(bob).getByText("The date is the first of March.").waitFor({ timeout: WAIT_MS });
    expect(await listed.getByText(/unread/).count()).toBe(0);
  });

  test("typing shows on the other side and stops with the message", async () => {
    await bob.getByLabel("Message", { exact: true }).pressSequentially("Sounds good", { delay: 20 });
    const typing = alice.getByText(`${bobId.slice(0, 8)}… is typing…`);
    await typing.waitFor({ timeout: WAIT_MS });
    await bob.getByRole("button", { name: "Send" }).click();
    await timeline(alice).getByText("Sounds good").waitFor({ timeout: WAIT_MS });
    await typing.waitFor({ state: "hidden", timeout: WAIT_MS });
    // Bob is present while his page is open.
    await alice.getByRole("region", { name: "Participants" }).getByText(/member · online/).waitFor({ timeout: WAIT_MS });
  });

  test("reply, edit and delete reach the other side live", async () => {
    const bobsMessage = timeline(alice).getByRole("listitem", { name: /from/ }).filter({ hasText: "Sounds good" });
    await bobsMessage.getByRole("button", { name: "Reply" }).click();
    await alice.getByLabel("Message", { exact: true }).fill("Great, I will book the room");
    await alice.getByRole("button", { name: "Send" }).click();
    const reply = timeline(bob).getByRole("listitem").filter({ hasText: "Great, I will book the room" });
    await reply.getByText(/↩ #\d+ .*Sounds good/).waitFor({ timeout: WAIT_MS });

    const mine = timeline(alice).getByRole("listitem").filter({ hasText: "Great, I will book the room" });
    await mine.getByRole("button", { name: "Edit" }).click();
    await alice.getByLabel("Message", { exact: true }).fill("Great, I will book the big room");
    await alice.getByRole("button", { name: "Save" }).click();
    const edited = timeline(bob).getByRole("listitem").filter({ hasText: "Great, I will book the big room" });
    await edited.getByText("edited").waitFor({ timeout: WAIT_MS });

    await alice.getByLabel("Message", { exact: true }).fill("A typo to delete");
    await alice.getByRole("button", { name: "Send" }).click();
    await timeline(bob).getByText("A typo to delete").waitFor({ timeout: WAIT_MS });
    await timeline(alice).getByRole("listitem").filter({ hasText: "A typo to delete" }).getByRole("button", { name: "Delete" }).click();
    await timeline(bob).getByText("A typo to delete").waitFor({ state: "hidden", timeout: WAIT_MS });
  });

  test("a server restart: the console shows it reconnecting, then resumes with nothing missing", async () => {
    const before = await sequencesOn(alice);
    // Alice's browser stays offline while the server restarts and Bob writes (from here, over REST), so
    // those messages can only reach her page by the resume.
    await aliceContext.setOffline(true);
    await server.stop();
    await connection(alice).getByText("Reconnecting…").waitFor({ timeout: WAIT_MS });
    await connection(bob).getByText("Reconnecting…").waitFor({ timeout: WAIT_MS });
    await start();
    const bobApi = new MessagingClient({ baseUrl: base });
    await bobApi.login(BOB.email, BOB.password);
    const missed = ["Missed one", "Missed two", "Missed three"];
    for (const content of missed) await bobApi.sendMessage(conversationId, { content });
    await aliceContext.setOffline(false);

    await connection(alice).getByText(/resumed, 3 missed messages caught up/).waitFor({ timeout: WAIT_MS });
    for (const content of missed) await timeline(alice).getByText(content).waitFor({ timeout: WAIT_MS });
    await connection(bob).getByText("Live").waitFor({ timeout: WAIT_MS });
    for (const content of missed) await timeline(bob).getByText(content).waitFor({ timeout: WAIT_MS });
    const after = await sequencesOn(alice);
    // Everything that was there, then the three in order, each once.
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBe(before.length + 3);
    expect(new Set(after).size).toBe(after.length);
    expect(after.slice(-3)).toEqual([after.at(-3)!, after.at(-3)! + 1, after.at(-3)! + 2]);
  });

  test("an agent's run streams token by token, stops when Alice presses Pause, and Cancel ends it; Bob sees no Preempt", async () => {
    await alice.getByRole("region", { name: "Participants" }).getByLabel("Participant id").fill(AGENT_ID);
    await alice.getByRole("region", { name: "Participants" }).getByLabel("Participant type").selectOption("agent");
    await alice.getByRole("button", { name: "Add participant" }).click();
    await alice.getByRole("region", { name: "Participants" }).getByText(AGENT_ID).waitFor({ timeout: WAIT_MS });

    const agent = new MessagingClient({ baseUrl: base, apiKey: agentKey });
    const socket: RealtimeClient = agent.realtime();
    const run: RunHandle = await agent.startRun(conversationId, { socket, runId: "answer-1", priority: "normal" });
    const reply = await run.stream();
    let appended = 0;
    const writing = (async () => {
      while (!run.signal.aborted && appended < 400) {
        await reply.append(`token${String(++appended).padStart(3, "0")} `);
        await Bun.sleep(50);
      }
    })();

    await runState(alice, "answer-1", "active").waitFor({ timeout: WAIT_MS });
    await runState(bob, "answer-1", "active").waitFor({ timeout: WAIT_MS });
    // Token by token: the text on Alice's page grows through several lengths, each extending the last.
    const streamed = timeline(alice).getByRole("listitem").filter({ has: alice.locator("[data-stream-state]") }).locator(".content");
    const seen: string[] = [];
    await until(
      "the streaming text on the page",
      async () => {
        const text = (await streamed.textContent()) ?? "";
        if (text !== seen.at(-1)) seen.push(text);
        return seen.length;
      },
      (count) => count >= 6,
    );
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i].startsWith(seen[i - 1])).toBe(true);
      expect(seen[i].length).toBeGreaterThan(seen[i - 1].length);
    }
    await timeline(bob).getByText("token002", { exact: false }).waitFor({ timeout: WAIT_MS });
    await screenshot(alice, "conversation");
    await bob.setViewportSize(PHONE);
    await timeline(bob).getByRole("listitem").filter({ has: bob.locator("[data-stream-state]") }).scrollIntoViewIfNeeded();
    await screenshot(bob, "conversation-360");
    await bob.setViewportSize(DESKTOP);

    // Who may: Alice has cap:messaging.interrupt; Bob is a member without it and owns nothing.
    for (const name of ["Pause", "Preempt", "Cancel"]) expect(await runButton(alice, "answer-1", name).count()).toBe(1);
    for (const name of ["Pause", "Resume", "Preempt", "Cancel"]) expect(await runButton(bob, "answer-1", name).count()).toBe(0);

    await runButton(alice, "answer-1", "Pause").click();
    await runState(alice, "answer-1", "paused").waitFor({ timeout: WAIT_MS });
    await writing;
    expect(RunHandle.reasonOf(run.signal)).toBe("paused");
    const refused = await agent.sendMessage(conversationId, { content: "more", runId: "answer-1" }).catch((error) => error);
    expect(refused.code).toBe("run_paused");
    // What the page shows is what the server holds, and it grows no more.
    const [stored] = (await agent.listMessages(conversationId, { limit: 50 })).filter((m) => m.id === reply.message.id);
    await until("the paused text on the page", async () => (await streamed.textContent())?.trim(), (text) => text === stored.content.trim());
    expect(stored.content.length).toBeGreaterThan(0);
    expect(appended).toBeLessThan(400);
    await timeline(alice).getByText(/paused run answer-1 \(active → paused\)/).waitFor({ timeout: WAIT_MS });
    expect(await runButton(alice, "answer-1", "Resume").count()).toBe(1);
    expect(await runButton(alice, "answer-1", "Pause").count()).toBe(0);

    await runButton(alice, "answer-1", "Cancel").click();
    await runState(alice, "answer-1", "cancelled").waitFor({ timeout: WAIT_MS });
    await runState(bob, "answer-1", "cancelled").waitFor({ timeout: WAIT_MS });
    await timeline(alice).locator('[data-stream-state="cancelled"]').waitFor({ timeout: WAIT_MS });
    expect(await runItem(alice, "answer-1").getByRole("button").count()).toBe(0);
    await until("the agent's run state", async () => run.state, (state) => state === "cancelled");
    socket.close();
  });

  test("admin views: statistics, every conversation with an organisation filter, webhooks and their deliveries", async () => {
    const aliceApi = new MessagingClient({ baseUrl: base });
    await aliceApi.login(ALICE.email, ALICE.password);
    const webhook = await aliceApi.createWebhook({ url: receiver.url, installation: true, events: ["message.created"], description: "console test" });
    await aliceApi.sendMessage(conversationId, { content: "A message for the webhook" });
    await receiver.waitFor(1, (r) => r.payload.type === "message.created", WAIT_MS);
    // Messages delivered at their first attempt leave no row in the delivery log; a test event is one.
    await aliceApi.testWebhook(webhook.id);
    await receiver.waitFor(1, (r) => r.payload.type === "webhook.test", WAIT_MS);

    await alice.getByRole("link", { name: "Admin" }).click();
    const stats = alice.getByRole("definition").first();
    await stats.waitFor({ timeout: WAIT_MS });
    await alice.getByRole("heading", { name: /All conversations/ }).waitFor();
    await alice.getByRole("cell", { name: "Launch plan" }).waitFor();
    await alice.getByLabel("Organisation").fill("no-such-org");
    await alice.getByRole("button", { name: "Filter" }).click();
    // Alice's admin reach is every organisation: an unknown one simply has none.
    await alice.getByRole("heading", { name: "All conversations (0)" }).waitFor({ timeout: WAIT_MS });
    await alice.getByLabel("Organisation").fill("");
    await alice.getByRole("button", { name: "Filter" }).click();
    await alice.getByRole("cell", { name: "Launch plan" }).waitFor({ timeout: WAIT_MS });

    await alice.getByText(webhook.url).waitFor();
    await alice.getByRole("button", { name: "Recent deliveries" }).click();
    await alice.getByText(/delivered webhook\.test/).first().waitFor({ timeout: WAIT_MS });
    await screenshot(alice, "admin");
    await aliceApi.deleteWebhook(webhook.id);
  });

  test("at 360 px: the list alone, then the conversation with a way back", async () => {
    await bob.setViewportSize(PHONE);
    await bob.getByRole("link", { name: "← Conversations" }).click();
    await bob.getByRole("link", { name: /Launch plan/ }).waitFor();
    expect(await bob.getByRole("region", { name: "Messages" }).count()).toBe(0);
    // Nothing wider than the screen.
    expect(await bob.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(PHONE.width);
    await screenshot(bob, "conversations-360");
    await bob.getByRole("link", { name: /Launch plan/ }).click();
    await bob.getByLabel("Message", { exact: true }).waitFor();
    expect(await bob.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(PHONE.width);
    // Reloaded on the conversation's own address, it opens there again.
    await bob.reload();
    await timeline(bob).getByText("Missed three").waitFor({ timeout: WAIT_MS });
  });

  test("keyboard only: Bob writes, tabs to Send and presses it, and Enter in the composer sends too", async () => {
    await bob.setViewportSize(DESKTOP);
    await bob.getByLabel("Message", { exact: true }).focus();
    await bob.keyboard.type("Sent with Tab and Enter");
    await bob.keyboard.press("Tab");
    expect(await bob.evaluate<string | undefined>("document.activeElement?.textContent")).toBe("Send");
    await bob.keyboard.press("Enter");
    await timeline(bob).getByText("Sent with Tab and Enter").waitFor({ timeout: WAIT_MS });
    await bob.getByLabel("Message", { exact: true }).focus();
    await bob.keyboard.type("Sent with Enter");
    await bob.keyboard.press("Enter");
    await timeline(bob).getByText("Sent with Enter", { exact: true }).waitFor({ timeout: WAIT_MS });
  });

  test("sign out ends the session: the page asks to sign in again, also after a reload", async () => {
    await bob.getByRole("button", { name: "Sign out" }).click();
    await bob.getByRole("button", { name: "Sign in" }).waitFor({ timeout: WAIT_MS });
    await bob.reload();
    await bob.getByRole("button", { name: "Sign in" }).waitFor({ timeout: WAIT_MS });
  });

  test("a session ended elsewhere (logged out with its token) brings the sign-in form back, saying so", async () => {
    const session = (await aliceContext.cookies(base)).find((cookie) => cookie.name === "symbia_session");
    expect(session?.httpOnly).toBe(true);
    const logout = await fetch(`${base}/api/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${session!.value}` } });
    expect(((await logout.json()) as { revoked?: boolean }).revoked).toBe(true);
    await alice.getByRole("alert").getByText("Your session has ended; sign in again.").waitFor({ timeout: WAIT_MS });
    await alice.getByRole("button", { name: "Sign in" }).waitFor();
    expect(violations).toEqual([]);
  });
});
