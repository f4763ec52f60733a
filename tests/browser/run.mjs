// Drives headless Chromium (Debian's /usr/bin/chromium) through playwright-core: serves the
// bundled page on loopback, opens it against the relay, and exits 0 only if every frame the
// page published came back. Usage: node run.mjs http://localhost:PORT webtransport|websocket
import { chromium } from "playwright-core";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [relay, mode = "webtransport"] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const files = {
  "/index.html": ["text/html", path.join(here, "index.html")],
  "/page.bundle.js": ["text/javascript", path.join(here, "www", "page.bundle.js")],
};
const server = http.createServer((req, res) => {
  const file = files[new URL(req.url, "http://x").pathname];
  if (!file) return res.writeHead(404).end();
  res.writeHead(200, { "content-type": file[0] }).end(fs.readFileSync(file[1]));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const page_url = `http://127.0.0.1:${server.address().port}/index.html?relay=${encodeURIComponent(relay)}&mode=${mode}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let result;
try {
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`page: ${m.text()}`));
  await page.goto(page_url);
  const handle = await page.waitForFunction(() => window.moqResult, null, { timeout: 45000 });
  result = await handle.jsonValue();
} catch (error) {
  result = { ok: false, error: String(error) };
} finally {
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
