// framewire.js: the browser client of framewire, one ES module with no build step and no
// dependencies. It holds a framewire session over a WebSocket to the server's /ws
// (docs/PROTOCOL.md section 11.2): one frame per binary message, the version byte and the frame
// body. Where WebSocket is blocked it falls back, as Centrifugo and socket.io do, to the server's
// HTTP mapping (section 11.4): Server-Sent Events for what the session hears and HTTP POSTs for
// what it sends, then long polling where EventSource is missing or blocked too. Written from the
// specification alone.
//
//   import { connect } from "./framewire.js";
//   const fw = await connect({ url: "ws://127.0.0.1:7480/ws", name: "dashboard" });
//   await fw.subscribe("sensors/+/temp", (m) => console.log(m.topic, m.text));
//   await fw.publish("chat/room", "hello");
//   const pong = await fw.request("sys.ping");
//   fw.transport; // "websocket", "sse" or "poll"
//
// The session outlives its connection: when it drops, the client reconnects with exponential
// backoff and jitter and resumes the session (with the token of its last Welcome over WebSocket,
// with the cursor of the last event over SSE and polls), subscribing again if the server no longer
// had it. Operations in flight when a connection drops are rejected (with `FramewireError`,
// `code: "CONNECTION_LOST"`); nothing is sent twice.
//
// The transports are tried in the order of the `transports` option (all three by default) until
// one opens; the client keeps to the one that did. Over HTTP, subscribing and unsubscribing reopen
// the stream from its cursor with the filters it now has (and `unsubscribe=` for those dropped).

const VERSION = 1;

const KIND = {
  HELLO: 0x01, WELCOME: 0x03, REJECT: 0x04, CLOSE: 0x08, CLOSE_ACK: 0x09, PING: 0x10, PONG: 0x11,
  DATA: 0x20, ERROR: 0x21, SUBSCRIBE: 0x30, UNSUBSCRIBE: 0x31, PUBLISH: 0x32, MESSAGE: 0x33,
  REQUEST: 0x40, RESPONSE: 0x41, QUEUE_PUSH: 0x50, QUEUE_FETCH: 0x51, QUEUE_DELIVERY: 0x52,
  QUEUE_ACK: 0x53,
};

const OPTION = { RESUME_TOKEN: 0x02, CLIENT_NAME: 0x04, AUTH_TOKEN: 0x10 };

/** Status codes of a Response (docs/PROTOCOL.md section 6.1.1). */
export const STATUS = {
  OK: 0x0000, BAD_REQUEST: 0x0100, NOT_FOUND: 0x0101, NO_RESPONDER: 0x0102, TIMEOUT: 0x0103,
  FORBIDDEN: 0x0104, INVALID_TOPIC: 0x0105, NAME_TOO_LONG: 0x0106, PAYLOAD_TOO_LARGE: 0x0107,
  QUEUE_FULL: 0x0200, LIMIT_REACHED: 0x0201, SHUTTING_DOWN: 0x0202, RESPONDER_GONE: 0x0203,
  STORAGE_FULL: 0x0204, INTERNAL: 0x02ff,
};

const STATUS_NAMES = Object.fromEntries(Object.entries(STATUS).map(([k, v]) => [v, k]));

/** An operation that failed: `code` is a status name, or CONNECTION_LOST, REJECTED, CLOSED. */
export class FramewireError extends Error {
  constructor(code, message, payload) {
    super(`${code}: ${message}`);
    this.name = "FramewireError";
    this.code = code;
    this.payload = payload;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function bytesOf(payload) {
  if (payload === undefined || payload === null) return new Uint8Array(0);
  if (typeof payload === "string") return encoder.encode(payload);
  if (payload instanceof Uint8Array) return payload;
  if (payload instanceof ArrayBuffer) return new Uint8Array(payload);
  return encoder.encode(JSON.stringify(payload));
}

/** Builds one WebSocket message: the version byte, then a frame body (section 3.1). */
class Writer {
  constructor(kind, flags = 0, channel = 0) {
    this.parts = [];
    this.u8(VERSION).u8(kind).u8(flags).u8(channel);
  }
  push(bytes) { this.parts.push(bytes); return this; }
  u8(v) { return this.push(Uint8Array.of(v & 0xff)); }
  u16(v) { const b = new Uint8Array(2); new DataView(b.buffer).setUint16(0, v); return this.push(b); }
  u32(v) { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0); return this.push(b); }
  u64(v) { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, BigInt(v)); return this.push(b); }
  name(text) {
    const b = encoder.encode(text);
    if (b.length > 1024) throw new FramewireError("NAME_TOO_LONG", `a name of ${b.length} bytes`);
    return this.u16(b.length).push(b);
  }
  bytes() {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) { out.set(p, at); at += p.length; }
    return out;
  }
}

/** Reads a frame body; every read checks its bounds (a short frame is an error, never garbage). */
class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.at = 0;
  }
  need(n) {
    if (this.at + n > this.b.length) throw new FramewireError("PROTOCOL_ERROR", "a frame cut short");
  }
  u8() { this.need(1); return this.b[this.at++]; }
  u16() { this.need(2); const v = this.view.getUint16(this.at); this.at += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.at); this.at += 4; return v; }
  u64() { this.need(8); const v = this.view.getBigUint64(this.at); this.at += 8; return v; }
  take(n) { this.need(n); const v = this.b.subarray(this.at, this.at + n); this.at += n; return v; }
  name() { return decoder.decode(this.take(this.u16())); }
  short() { return this.take(this.u8()); }
  rest() { return this.b.subarray(this.at); }
  text() { return decoder.decode(this.rest()); }
}

/** Whether `topic` matches `filter` (`+`: one level, `#` last: any number, section 5.1). */
export function topicMatches(filter, topic) {
  const f = filter.split("/");
  const t = topic.split("/");
  if (t[0].startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return i === f.length - 1;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Lowercase hex of bytes (a connect token, as the HTTP mapping takes it). */
function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A payload as the HTTP mapping's JSON carries it: UTF-8 text, or base64. */
function payloadOf(json) {
  if (json.encoding === "base64") return Uint8Array.from(atob(json.payload), (c) => c.charCodeAt(0));
  return encoder.encode(json.payload ?? "");
}

/** A Response's value: its status and payload. */
function answerOf(status, payload) {
  return { status, payload, get text() { return new TextDecoder().decode(payload); } };
}

/** The value of an operation that answers OK with nothing. */
const done = () => answerOf(STATUS.OK, new Uint8Array(0));

/** Whether this browser has what a transport needs. */
function available(transport) {
  if (transport === "websocket") return typeof WebSocket === "function";
  if (transport === "sse") return typeof EventSource === "function" && typeof fetch === "function";
  return transport === "poll" && typeof fetch === "function";
}

/** A message heard on a subscription. */
class Message {
  constructor(topic, payload, retained) {
    this.topic = topic;
    this.payload = payload;
    this.retained = retained;
  }
  /** The payload as UTF-8 text. */
  get text() { return new TextDecoder().decode(this.payload); }
  /** The payload parsed as JSON. */
  json() { return JSON.parse(this.text); }
}

/**
 * Opens a session and resolves once the server welcomed it.
 * @param {object} options url (ws:// or wss:// ending in /ws; the HTTP mapping is at the same
 *   host), name, token (a connect token: Uint8Array), backoff {initialMs, maxMs},
 *   onState(state, detail), transports (in order; default ["websocket", "sse", "poll"]),
 *   pollWaitMs (how long a long poll is held, default 25,000).
 */
export async function connect(options) {
  const client = new Client(options);
  await client.ready;
  return client;
}

export class Client {
  constructor({
    url, name = "framewire.js", token = null, backoff = {}, onState = () => {},
    transports = ["websocket", "sse", "poll"], pollWaitMs = 25_000,
  }) {
    this.url = url;
    this.httpBase = url.replace(/^ws/, "http").replace(/\/ws$/, "");
    this.transports = transports.filter(available);
    if (this.transports.length === 0) throw new FramewireError("UNSUPPORTED", "no transport this browser has");
    this.transport = this.transports[0];
    // A transport that has opened once is kept; until then a failure moves to the next one.
    this.settled = false;
    this.pollWaitMs = pollWaitMs;
    this.cursor = null; // where the HTTP stream left off (section 11.4)
    this.streamWaiters = [];
    // Filters dropped over HTTP that the server's session may still hold: the next stream
    // request says `unsubscribe=` for each.
    this.dropped = new Set();
    this.generation = 0; // of the HTTP stream: a stream replaced by a newer one is ignored
    this.name = name;
    this.token = token;
    this.backoff = { initialMs: backoff.initialMs ?? 250, maxMs: backoff.maxMs ?? 10_000 };
    this.onState = onState;
    this.state = "connecting";
    this.nextId = 1;
    this.pending = new Map(); // id -> { resolve, reject, deliveries }
    this.subscriptions = new Map(); // filter -> Set of handlers
    this.sessionToken = null;
    this.attempt = 0;
    this.closedByUser = false;
    this.welcomes = 0;
    this.ready = new Promise((resolve, reject) => { this.readyResolve = resolve; this.readyReject = reject; });
    this.open();
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  open() {
    if (this.transport !== "websocket") return this.openHttp();
    let ws;
    try {
      ws = new WebSocket(this.url, "framewire.v1");
    } catch {
      return this.fallBack();
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => { this.settled = true; this.sendHello(); };
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      try {
        this.onFrame(new Uint8Array(event.data));
      } catch (e) {
        // A frame that does not parse: the stream can no longer be trusted.
        ws.close(1002, "bad frame");
      }
    };
    ws.onclose = () => (this.settled ? this.lost() : this.fallBack());
    ws.onerror = () => {};
  }

  /** The transport never opened: the next one is tried at once; after the last, the first again
   *  after a backoff. */
  fallBack() {
    const next = this.transports.indexOf(this.transport) + 1;
    if (next < this.transports.length) {
      this.transport = this.transports[next];
      this.setState("connecting", { transport: this.transport });
      return this.open();
    }
    this.transport = this.transports[0];
    return this.lost();
  }

  sendHello() {
    const options = [[OPTION.CLIENT_NAME, encoder.encode(this.name)]];
    if (this.sessionToken && this.sessionToken.length > 0) options.push([OPTION.RESUME_TOKEN, this.sessionToken]);
    if (this.token) options.push([OPTION.AUTH_TOKEN, this.token]);
    const nonce = crypto.getRandomValues(new Uint32Array(2));
    const w = new Writer(KIND.HELLO).u8(1).u8(1).u32(0).u32(65536).u32(nonce[0]).u32(nonce[1]);
    for (const [type, value] of options) w.u8(type).u16(value.length).push(value);
    this.send(w.bytes());
  }

  send(bytes) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      throw new FramewireError("CONNECTION_LOST", "not connected");
    }
    this.ws.send(bytes);
    this.lastSent = Date.now();
  }

  onFrame(bytes) {
    const r = new Reader(bytes);
    if (r.u8() !== VERSION) throw new FramewireError("PROTOCOL_ERROR", "another version");
    const kind = r.u8();
    const flags = r.u8();
    r.u8(); // channel
    if (flags & 0x80) r.u32(); // seq (never on a stream)
    switch (kind) {
      case KIND.WELCOME: return this.onWelcome(r, flags);
      case KIND.REJECT: {
        const reason = r.u16(); r.u8(); r.u8();
        const error = new FramewireError("REJECTED", `${r.text()} (reason ${reason})`);
        this.closedByUser = true;
        this.readyReject(error);
        this.setState("rejected", error);
        return;
      }
      case KIND.PING: {
        const timestamp = r.u64();
        return this.send(new Writer(KIND.PONG).u64(timestamp).bytes());
      }
      case KIND.PONG: case KIND.CLOSE_ACK: case KIND.DATA: return;
      case KIND.CLOSE: {
        const reason = r.u16();
        this.closeReason = { reason, message: r.text() };
        return this.send(new Writer(KIND.CLOSE_ACK).bytes());
      }
      case KIND.MESSAGE: {
        const number = flags & 0x02 ? r.u32() : null;
        const message = new Message(r.name(), r.rest().slice(), (flags & 0x01) !== 0);
        message.number = number;
        return this.dispatch(message);
      }
      case KIND.RESPONSE: {
        const id = r.u32();
        const status = r.u16();
        const payload = r.rest().slice();
        const op = this.pending.get(id);
        if (!op) return;
        this.pending.delete(id);
        if (status === STATUS.OK) {
          op.resolve(op.deliveries ?? answerOf(status, payload));
        } else {
          const name = STATUS_NAMES[status] ?? `STATUS_${status}`;
          op.reject(new FramewireError(name, new TextDecoder().decode(payload), payload));
        }
        return;
      }
      case KIND.QUEUE_DELIVERY: {
        const id = r.u32();
        const deliveryId = r.u64();
        const queue = r.name();
        const op = this.pending.get(id);
        if (op?.deliveries) {
          op.deliveries.push({ queue, deliveryId, payload: r.rest().slice(), redelivered: (flags & 1) !== 0,
            get text() { return new TextDecoder().decode(this.payload); } });
        }
        return;
      }
      case KIND.ERROR: {
        const reason = r.u16(); r.u8();
        this.setState(this.state, { error: `${r.text()} (reason ${reason})` });
        return;
      }
      default:
        // An ignorable kind (0x80 and up) is skipped; a critical one this client does not know
        // means the stream cannot be followed (section 3.3).
        if (kind < 0x80) throw new FramewireError("PROTOCOL_ERROR", `unknown kind ${kind}`);
    }
  }

  onWelcome(r, flags) {
    r.u8(); // version
    r.u64(); // connection id
    this.idleTimeoutMs = r.u32();
    this.maxFrameLen = r.u32();
    this.heartbeatMs = r.u32();
    this.missed = r.u32();
    this.sessionToken = r.short().slice();
    const resumed = (flags & 0x01) !== 0;
    this.startHeartbeat();
    if (!resumed) {
      // A new session: the server knows none of our subscriptions.
      for (const filter of this.subscriptions.keys()) this.operation(KIND.SUBSCRIBE, (w) => w.name(filter)).catch(() => {});
    }
    this.connected(resumed, this.missed);
  }

  startHeartbeat() {
    clearInterval(this.heartbeat);
    const every = Math.max(100, Math.floor((this.heartbeatMs || 10_000) / 2));
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      if (this.idleTimeoutMs && now - this.lastHeard > this.idleTimeoutMs) {
        this.ws.close(4000, "idle timeout");
        return;
      }
      if (this.heartbeatMs && now - (this.lastSent ?? 0) >= this.heartbeatMs) {
        try { this.send(new Writer(KIND.PING).u64(BigInt(now) * 1000n).bytes()); } catch { /* reconnecting */ }
      }
    }, every);
  }

  /** Hands a message to the handlers of every subscription it matches. */
  dispatch(message) {
    for (const [filter, handlers] of this.subscriptions) {
      if (topicMatches(filter, message.topic)) for (const h of handlers) h(message);
    }
  }

  lost() {
    clearInterval(this.heartbeat);
    const gone = () => new FramewireError("CONNECTION_LOST", "the connection dropped");
    for (const op of this.pending.values()) op.reject(gone());
    this.pending.clear();
    for (const w of this.streamWaiters.splice(0)) w.reject(gone());
    if (this.closedByUser) {
      this.setState("closed", this.closeReason);
      return;
    }
    // Exponential backoff with full jitter between half and all of the step.
    const step = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** this.attempt);
    const delay = Math.round(step / 2 + Math.random() * (step / 2));
    this.attempt += 1;
    this.setState("reconnecting", { attempt: this.attempt, delayMs: delay });
    this.retry = setTimeout(() => this.open(), delay);
  }

  // ---- The HTTP mapping (section 11.4): a stream for what the session hears, requests for the rest.

  /** Opens the session over HTTP: a probe that the server answers, then the stream (once there is
   *  a filter to stream). */
  openHttp() {
    const generation = ++this.generation;
    this.httpCall("POST", "/request/sys.ping").then(() => {
      if (generation !== this.generation) return;
      if (this.subscriptions.size === 0) {
        this.settled = true;
        this.connected(false, 0);
      } else {
        this.openStream();
      }
    }, () => {
      if (generation === this.generation) (this.settled ? this.lost() : this.fallBack());
    });
  }

  /** The stream's URL: every filter, where it left off, and the token (EventSource sends no
   *  headers of ours). */
  streamUrl(path, extra = "") {
    const query = [...this.subscriptions.keys()].map((f) => `filter=${encodeURIComponent(f)}`);
    for (const f of this.dropped) query.push(`unsubscribe=${encodeURIComponent(f)}`);
    if (this.cursor) query.push(`after=${encodeURIComponent(this.cursor)}`);
    if (this.token) query.push(`token=${hexOf(this.token)}`);
    return `${this.httpBase}${path}?${query.join("&")}${extra}`;
  }

  /** (Re)opens the HTTP stream with every filter, resuming from the cursor. */
  openStream() {
    this.closeStream();
    const generation = ++this.generation;
    return this.transport === "sse" ? this.openEventSource(generation) : this.poll(generation);
  }

  closeStream() {
    this.generation += 1;
    this.es?.close();
    this.es = null;
    this.pollAbort?.abort();
    this.pollAbort = null;
  }

  openEventSource(generation) {
    const es = new EventSource(this.streamUrl("/sse"));
    this.es = es;
    es.addEventListener("session", (event) => {
      if (generation !== this.generation) return;
      this.settled = true;
      this.streamed = true;
      if (event.lastEventId) this.cursor = event.lastEventId;
      const s = JSON.parse(event.data);
      this.connected(s.resumed, s.missed);
    });
    es.onmessage = (event) => {
      if (generation !== this.generation) return;
      this.lastHeard = Date.now();
      if (event.lastEventId) this.cursor = event.lastEventId;
      this.heardJson(JSON.parse(event.data));
    };
    es.onerror = () => {
      if (generation !== this.generation) return;
      // Reconnect on our own terms: with a backoff, or by long polling if no event stream ever
      // opened (a proxy that blocks text/event-stream, say).
      this.closeStream();
      if (!this.streamed && this.transports.includes("poll")) {
        this.transport = "poll";
        this.setState("connecting", { transport: this.transport });
        this.openStream();
      } else {
        this.lost();
      }
    };
  }

  /** Long polls, one after the other, each resuming from the last one's cursor. */
  async poll(generation) {
    let first = true;
    while (generation === this.generation && !this.closedByUser) {
      const abort = new AbortController();
      this.pollAbort = abort;
      let answer;
      try {
        const url = this.streamUrl("/poll", `&wait=${first ? 0 : this.pollWaitMs}`);
        const r = await fetch(url, { signal: abort.signal, cache: "no-store" });
        answer = await r.json();
        if (!r.ok) throw new FramewireError(answer.status, answer.message ?? "");
      } catch {
        if (generation !== this.generation) return;
        this.pollAbort = null;
        this.generation += 1;
        return this.settled ? this.lost() : this.fallBack();
      }
      if (generation !== this.generation) return;
      this.lastHeard = Date.now();
      this.cursor = answer.cursor;
      if (first) {
        this.settled = true;
        this.connected(answer.resumed, answer.missed);
        first = false;
      }
      for (const m of answer.messages) this.heardJson(m);
    }
  }

  /** The session is up: a Welcome, an HTTP stream's first event or answer, or the probe. */
  connected(resumed, missed) {
    this.attempt = 0;
    this.welcomes += 1;
    this.setState("connected", { resumed, missed, welcomes: this.welcomes, transport: this.transport });
    // The stream request that opened carried them: the server has dropped them.
    this.dropped.clear();
    for (const w of this.streamWaiters.splice(0)) w.resolve();
    this.readyResolve(this);
  }

  heardJson(json) {
    this.dispatch(new Message(json.topic, payloadOf(json), json.retained));
  }

  /** One request of the HTTP mapping; resolves with its JSON answer, or rejects with its status. */
  async httpCall(method, path, body) {
    const headers = this.token ? { Authorization: `Bearer ${hexOf(this.token)}` } : {};
    let r;
    try {
      r = await fetch(`${this.httpBase}${path}`, { method, body, headers, cache: "no-store" });
    } catch (e) {
      throw new FramewireError("CONNECTION_LOST", String(e));
    }
    const answer = await r.json().catch(() => ({ status: `HTTP_${r.status}`, message: r.statusText }));
    if (answer.status !== "OK") throw new FramewireError(answer.status, answer.message ?? "");
    return answer;
  }

  /** Drops the connection and reconnects, resuming the session (as after a network change). */
  reconnect() {
    if (this.transport === "websocket") return this.ws?.close();
    this.closeStream();
    return this.lost();
  }

  /** Sends an operation with a fresh id and resolves with its Response. */
  operation(kind, fill, { flags = 0, channel = 0, collect = false } = {}) {
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    // Every hub operation starts with its id (section 5).
    const w = new Writer(kind, flags, channel).u32(id);
    fill(w);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deliveries: collect ? [] : undefined });
      try {
        this.send(w.bytes());
      } catch (e) {
        this.pending.delete(id);
        reject(e);
      }
    });
  }

  /** Subscribes `handler` to `filter`; resolves once the server confirms. */
  subscribe(filter, handler) {
    const known = this.subscriptions.has(filter);
    if (!known) this.subscriptions.set(filter, new Set());
    this.subscriptions.get(filter).add(handler);
    if (known) return Promise.resolve();
    if (this.transport === "websocket") return this.operation(KIND.SUBSCRIBE, (w) => w.name(filter));
    // Over HTTP the stream's filters are its query: reopen it with one more, from the cursor.
    this.dropped.delete(filter);
    const subscribed = new Promise((resolve, reject) => this.streamWaiters.push({ resolve, reject }));
    if (this.settled) this.openStream();
    return subscribed;
  }

  /** Removes `filter` (and every handler of it). */
  unsubscribe(filter) {
    if (!this.subscriptions.delete(filter)) return Promise.resolve();
    if (this.transport === "websocket") return this.operation(KIND.UNSUBSCRIBE, (w) => w.name(filter));
    // Over HTTP: reopen the stream from the cursor, telling the server's session to drop it.
    this.dropped.add(filter);
    const unsubscribed = new Promise((resolve, reject) => this.streamWaiters.push({ resolve, reject }));
    if (this.settled) this.openStream();
    return unsubscribed;
  }

  /** Publishes `payload` (string, bytes, or a value sent as JSON) to `topic`. */
  publish(topic, payload, { retain = false, channel = 0 } = {}) {
    if (this.transport !== "websocket") {
      const path = `/publish/${encodeURIComponent(topic)}${retain ? "?retain=1" : ""}`;
      return this.httpCall("POST", path, bytesOf(payload)).then(done);
    }
    return this.operation(KIND.PUBLISH, (w) => w.name(topic).push(bytesOf(payload)), { flags: retain ? 1 : 0, channel });
  }

  /** Calls `target` (a `sys.*` method or a registered service); resolves with its Response. */
  request(target, payload, { timeoutMs = 0 } = {}) {
    if (this.transport !== "websocket") {
      const path = `/request/${encodeURIComponent(target)}?timeout=${timeoutMs}`;
      return this.httpCall("POST", path, bytesOf(payload)).then((a) => answerOf(STATUS.OK, payloadOf(a)));
    }
    return this.operation(KIND.REQUEST, (w) => w.u32(timeoutMs).name(target).push(bytesOf(payload)));
  }

  /** Pushes a job onto `queue`. */
  queuePush(queue, payload) {
    if (this.transport !== "websocket") {
      return this.httpCall("POST", `/queue/${encodeURIComponent(queue)}`, bytesOf(payload))
        .then(done);
    }
    return this.operation(KIND.QUEUE_PUSH, (w) => w.name(queue).push(bytesOf(payload)));
  }

  /** Fetches up to `max` jobs from `queue`, waiting up to `waitMs` for one; resolves with them. */
  queueFetch(queue, { max = 1, waitMs = 0 } = {}) {
    if (this.transport !== "websocket") {
      const path = `/queue/${encodeURIComponent(queue)}?max=${max}&wait=${waitMs}`;
      return this.httpCall("GET", path).then((a) => a.deliveries.map((d) => ({
        queue: d.queue, deliveryId: BigInt(d.delivery), payload: payloadOf(d), redelivered: d.redelivered,
        get text() { return new TextDecoder().decode(this.payload); },
      })));
    }
    return this.operation(KIND.QUEUE_FETCH, (w) => w.u16(max).u32(waitMs).name(queue), { collect: true });
  }

  /** Acknowledges a delivery from `queueFetch`. */
  queueAck(delivery) {
    if (this.transport !== "websocket") {
      const path = `/queue/${encodeURIComponent(delivery.queue)}?ack=${delivery.deliveryId}`;
      return this.httpCall("POST", path).then(done);
    }
    return this.operation(KIND.QUEUE_ACK, (w) => w.u64(delivery.deliveryId).name(delivery.queue));
  }

  /** Ends the session with a Close (NORMAL); no reconnect follows. */
  close() {
    this.closedByUser = true;
    clearTimeout(this.retry);
    if (this.transport !== "websocket") {
      // The stream's session is left parked (the mapping has no Close); it expires on its own.
      this.closeStream();
      this.setState("closed");
      return;
    }
    try {
      this.send(new Writer(KIND.CLOSE).u16(0).push(encoder.encode("bye")).bytes());
    } catch { /* already gone */ }
    setTimeout(() => this.ws?.close(1000, "bye"), 200);
  }
}
