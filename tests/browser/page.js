// Runs in Chromium: one @moq/net connection publishes a broadcast, a second one subscribes
// to it, and the page reports what was sent and what came back in `window.moqResult`.
import * as Moq from "@moq/net";

const params = new URLSearchParams(location.search);
const relay = params.get("relay");
const mode = params.get("mode");
// No WebTransport: @moq/net falls back to QMux over WebSocket.
if (mode === "websocket") globalThis.WebTransport = undefined;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const GROUPS = 10;
const FRAMES = 3;

async function main() {
  // http:// makes the client fetch /certificate.sha256 and pin it.
  const url = new URL(`${relay}/anon`);
  const props = mode === "websocket" ? {} : { websocket: { enabled: false } };
  const publisher = await Moq.Connection.connect(url, props);
  const broadcast = new Moq.Broadcast.Producer();
  const track = broadcast.createTrack("frames");
  publisher.publish(Moq.Path.from("browser"), broadcast);

  // Subscribe once the relay lists the broadcast (its /announced endpoint allows CORS).
  const listed = Date.now() + 15000;
  while (Date.now() < listed) {
    const names = await fetch(`${relay}/announced/anon`).then((r) => r.text(), () => "");
    if (names.split("\n").includes("browser")) break;
    await sleep(50);
  }
  const subscriber = await Moq.Connection.connect(url, props);
  const consumer = subscriber.consume(Moq.Path.from("browser")).subscribe("frames");

  // Read every group as it comes.
  const deadline = Date.now() + 20000;
  const received = [];
  const reading = (async () => {
    while (Date.now() < deadline) {
      const group = await Promise.race([consumer.recvGroup(), sleep(5000).then(() => undefined)]);
      if (!group) break;
      for (let text; (text = await group.readString()) !== undefined; ) received.push(text);
      if (received.length >= GROUPS * FRAMES) break;
    }
  })();

  // The first group goes out until the viewer has it (a late joiner gets the latest group
  // from its first frame, so nothing is missed however long the subscription took); then
  // the rest follow.
  const sent = [];
  const publish = (g) => {
    const group = track.appendGroup();
    for (let f = 0; f < FRAMES; f++) {
      const text = `group ${g} frame ${f}`;
      group.writeString(text);
      sent.push(text);
    }
    group.close();
  };
  publish(0);
  while (received.length < FRAMES && Date.now() < deadline) await sleep(20);
  for (let g = 1; g < GROUPS; g++) {
    publish(g);
    await sleep(50);
  }
  await reading;
  // Groups are separate streams, so moq-lite lets them arrive in any order; frames inside a
  // group may not. Compare group by group.
  const byGroup = (texts) => {
    const groups = new Map();
    for (const text of texts) {
      const g = text.split(" frame ")[0];
      groups.set(g, [...(groups.get(g) ?? []), text]);
    }
    return JSON.stringify([...groups.entries()].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })));
  };
  return {
    ok: sent.length === received.length && byGroup(sent) === byGroup(received),
    inOrder: JSON.stringify(sent) === JSON.stringify(received),
    transport: publisher.transport,
    version: publisher.version,
    sent: sent.length,
    received,
  };
}

main()
  .then((result) => (window.moqResult = result))
  .catch((error) => (window.moqResult = { ok: false, error: String(error?.stack ?? error) }));
