// Drives a real headless Chromium through the DevTools protocol, for tests/tests/browser.rs. No
// packages: Node's own WebSocket (node --experimental-websocket on Node 20) speaks to Chromium.
//
//   node --experimental-websocket tests/browser/drive.mjs URL [BLOCK]
//
// BLOCK, a comma-separated list of `websocket` and `eventsource`, removes those from every page
// before its scripts run, as a network that blocks them would leave the page without them.
// With FRAMEWIRE_TRUST_CERT=PEM (an https URL), Chromium accepts that one certificate, and no
// other, as if a CA it trusts had issued it (its public key pinned by
// --ignore-certificate-errors-spki-list).
//
// It opens URL, waits until the demo page says it is subscribed, prints "subscribed", then takes
// one command per line on stdin and answers each with one line on stdout:
//   eval JS            -> "ok JSON" (the value of the expression, awaited), or "error ..."
//   wait JS            -> "ok JSON" once the expression is truthy (20 s at most), or "error ..."
//   screenshot PATH    -> "ok PATH" (a PNG of the page)
//   quit               -> closes the browser and exits
import { spawn } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const url = process.argv[2];
const blocked = (process.argv[3] ?? "").split(",").filter(Boolean);
const GLOBALS = { websocket: "WebSocket", eventsource: "EventSource" };
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
const profile = mkdtempSync(join(tmpdir(), "fw-chromium-"));
const trust = [];
if (process.env.FRAMEWIRE_TRUST_CERT) {
  const cert = new X509Certificate(readFileSync(process.env.FRAMEWIRE_TRUST_CERT));
  const spki = cert.publicKey.export({ type: "spki", format: "der" });
  trust.push(`--ignore-certificate-errors-spki-list=${createHash("sha256").update(spki).digest("base64")}`);
}
const browser = spawn(chromium, [
  ...trust,
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage", "--window-size=1100,560", `--user-data-dir=${profile}`,
  "--remote-debugging-port=0", "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });

let quitting = false;
function fail(why) {
  if (quitting) return;
  console.log(`error ${why}`);
  browser.kill("SIGKILL");
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
setTimeout(() => fail("no DevTools endpoint within 30 s"), 30_000).unref();

const endpoint = await new Promise((resolve) => {
  let text = "";
  browser.stderr.on("data", (chunk) => {
    text += chunk;
    const found = text.match(/DevTools listening on (ws:\/\/\S+)/);
    if (found) resolve(found[1]);
  });
  browser.on("exit", (code) => fail(`chromium exited (${code}): ${text.slice(-400)}`));
});

const socket = new WebSocket(endpoint);
await new Promise((resolve, reject) => { socket.onopen = resolve; socket.onerror = reject; });
let nextId = 1;
const waiting = new Map();
socket.onmessage = (event) => {
  const message = JSON.parse(event.data);
  const w = waiting.get(message.id);
  if (!w) return;
  waiting.delete(message.id);
  if (message.error) w.reject(new Error(message.error.message)); else w.resolve(message.result);
};
function call(method, params = {}, sessionId) {
  const id = nextId++;
  socket.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}

const { targetId } = await call("Target.createTarget", { url: "about:blank" });
const { sessionId } = await call("Target.attachToTarget", { targetId, flatten: true });
const page = (method, params) => call(method, params, sessionId);
await page("Page.enable");
await page("Runtime.enable");
for (const b of blocked) {
  const name = GLOBALS[b];
  if (!name) fail(`cannot block ${b}`);
  await page("Page.addScriptToEvaluateOnNewDocument", { source: `delete window.${name}; window.${name} = undefined;` });
}
await page("Page.navigate", { url });

async function evaluate(expression) {
  const result = await page("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
  if (result.exceptionDetails) {
    throw new Error(result.exceptionDetails.exception?.description ?? result.exceptionDetails.text);
  }
  return result.result.value;
}

async function waitFor(expression, ms = 20_000) {
  const until = Date.now() + ms;
  for (;;) {
    let value;
    try { value = await evaluate(expression); } catch { value = undefined; }
    if (value) return value;
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${expression}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

try {
  await waitFor("window.framewireDemo && window.framewireDemo.state === 'subscribed'");
} catch (e) {
  fail(e.message);
}
console.log("subscribed");

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [command, ...rest] = line.split(" ");
  const argument = rest.join(" ");
  try {
    if (command === "eval") {
      console.log(`ok ${JSON.stringify(await evaluate(argument) ?? null)}`);
    } else if (command === "wait") {
      console.log(`ok ${JSON.stringify(await waitFor(argument))}`);
    } else if (command === "screenshot") {
      const { data } = await page("Page.captureScreenshot", { format: "png" });
      writeFileSync(argument, Buffer.from(data, "base64"));
      console.log(`ok ${argument}`);
    } else if (command === "quit") {
      break;
    } else {
      console.log(`error unknown command ${command}`);
    }
  } catch (e) {
    console.log(`error ${e.message.replace(/\n/g, " ")}`);
  }
}
quitting = true;
// Browser.close shuts Chromium down in order, its helper processes with it, so the profile is
// no longer written to; SIGKILL if it does not within 5 s.
const exited = new Promise((r) => browser.once("exit", r));
call("Browser.close").catch(() => {});
const late = setTimeout(() => browser.kill("SIGKILL"), 5_000);
await exited;
clearTimeout(late);
socket.close();
// Chromium's helper processes may still be writing to the profile as the browser exits: retry,
// and never let a leftover temporary directory fail a run that passed.
try {
  rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
} catch (e) {
  process.stderr.write(`profile ${profile} left behind: ${e.code}\n`);
}
process.exit(0);
