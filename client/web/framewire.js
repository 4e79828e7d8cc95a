// framewire.js: the browser client of framewire, one ES module with no build step and no
// dependencies. It holds a framewire session over a WebSocket to the server's /ws
// (docs/PROTOCOL.md section 11.2): one frame per binary message, the version byte and the frame
// body. Written from the specification alone.
//
//   import { connect } from "./framewire.js";
//   const fw = await connect({ url: "ws://127.0.0.1:7480/ws", name: "dashboard" });
//   await fw.subscribe("sensors/+/temp", (m) => console.log(m.topic, m.text));
//   await fw.publish("chat/room", "hello");
//   const pong = await fw.request("sys.ping");
//
// The session outlives its WebSocket: when the connection drops, the client reconnects with
// exponential backoff and jitter, resumes the session with the token of its last Welcome, and
// subscribes again if the server no longer had it. Operations in flight when a connection drops
// are rejected (with `FramewireError`, `code: "CONNECTION_LOST"`); nothing is sent twice.

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
 * @param {object} options url (ws:// or wss:// ending in /ws), name, token (a connect token:
 *   Uint8Array), backoff {initialMs, maxMs}, onState(state, detail).
 */
export async function connect(options) {
  const client = new Client(options);
  await client.ready;
  return client;
}

export class Client {
  constructor({ url, name = "framewire.js", token = null, backoff = {}, onState = () => {} }) {
    this.url = url;
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
    const ws = new WebSocket(this.url, "framewire.v1");
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => this.sendHello();
    ws.onmessage = (event) => {
      this.lastHeard = Date.now();
      try {
        this.onFrame(new Uint8Array(event.data));
      } catch (e) {
        // A frame that does not parse: the stream can no longer be trusted.
        ws.close(1002, "bad frame");
      }
    };
    ws.onclose = () => this.lost();
    ws.onerror = () => {};
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
        for (const [filter, handlers] of this.subscriptions) {
          if (topicMatches(filter, message.topic)) for (const h of handlers) h(message);
        }
        return;
      }
      case KIND.RESPONSE: {
        const id = r.u32();
        const status = r.u16();
        const payload = r.rest().slice();
        const op = this.pending.get(id);
        if (!op) return;
        this.pending.delete(id);
        if (status === STATUS.OK) {
          op.resolve(op.deliveries ?? { status, payload, get text() { return new TextDecoder().decode(payload); } });
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
    this.attempt = 0;
    this.welcomes += 1;
    this.startHeartbeat();
    if (!resumed) {
      // A new session: the server knows none of our subscriptions.
      for (const filter of this.subscriptions.keys()) this.operation(KIND.SUBSCRIBE, (w) => w.name(filter)).catch(() => {});
    }
    this.setState("connected", { resumed, missed: this.missed, welcomes: this.welcomes });
    this.readyResolve(this);
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

  lost() {
    clearInterval(this.heartbeat);
    for (const op of this.pending.values()) op.reject(new FramewireError("CONNECTION_LOST", "the connection dropped"));
    this.pending.clear();
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
    return known ? Promise.resolve() : this.operation(KIND.SUBSCRIBE, (w) => w.name(filter));
  }

  /** Removes `filter` (and every handler of it). */
  unsubscribe(filter) {
    this.subscriptions.delete(filter);
    return this.operation(KIND.UNSUBSCRIBE, (w) => w.name(filter));
  }

  /** Publishes `payload` (string, bytes, or a value sent as JSON) to `topic`. */
  publish(topic, payload, { retain = false, channel = 0 } = {}) {
    return this.operation(KIND.PUBLISH, (w) => w.name(topic).push(bytesOf(payload)), { flags: retain ? 1 : 0, channel });
  }

  /** Calls `target` (a `sys.*` method or a registered service); resolves with its Response. */
  request(target, payload, { timeoutMs = 0 } = {}) {
    return this.operation(KIND.REQUEST, (w) => w.u32(timeoutMs).name(target).push(bytesOf(payload)));
  }

  /** Pushes a job onto `queue`. */
  queuePush(queue, payload) {
    return this.operation(KIND.QUEUE_PUSH, (w) => w.name(queue).push(bytesOf(payload)));
  }

  /** Fetches up to `max` jobs from `queue`, waiting up to `waitMs` for one; resolves with them. */
  queueFetch(queue, { max = 1, waitMs = 0 } = {}) {
    return this.operation(KIND.QUEUE_FETCH, (w) => w.u16(max).u32(waitMs).name(queue), { collect: true });
  }

  /** Acknowledges a delivery from `queueFetch`. */
  queueAck(delivery) {
    return this.operation(KIND.QUEUE_ACK, (w) => w.u64(delivery.deliveryId).name(delivery.queue));
  }

  /** Ends the session with a Close (NORMAL); no reconnect follows. */
  close() {
    this.closedByUser = true;
    clearTimeout(this.retry);
    try {
      this.send(new Writer(KIND.CLOSE).u16(0).push(encoder.encode("bye")).bytes());
    } catch { /* already gone */ }
    setTimeout(() => this.ws?.close(1000, "bye"), 200);
  }
}
