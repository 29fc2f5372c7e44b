// A GraphQL subscription over WebSocket (the graphql-transport-ws protocol) that
// survives dropped connections: about 150 lines, no library.
//
// The protocol, as this client speaks it (client -> server, server -> client):
//   connection_init {Authorization}  ->   <- connection_ack
//   subscribe {id, query, variables} ->   <- next {id, payload} ... | error | complete
//   ping                             ->   <- pong  (and the other way round)
//
// Resuming: every event carries its change-log `position`; the caller keeps the
// last one it applied and `after()` returns it, so each new connection subscribes
// with `after: <that position>` and the server sends exactly the events missed,
// then live ones: none lost, none twice. While no connection is acknowledged the
// state is "reconnecting"; attempts back off exponentially with jitter.
//
// Close codes that ask for something else than a retry (realtime/close_codes.py):
// 4401 the token expired, 4403 it was refused or revoked: renew it, then reconnect.

const PROTOCOL = "graphql-transport-ws";
const FIRST_DELAY = 500; // ms, the first retry (then doubled, up to MAX_DELAY)
const MAX_DELAY = 10_000;
const CONNECT_TIMEOUT = 30_000; // no acknowledgement by then: try a new connection
const PING_EVERY = 15_000; // a silent network is only noticed by asking
const PONG_WITHIN = 10_000;

export class LiveSubscription {
  /**
   * @param {object} options
   * @param {string} options.url        ws(s)://host/graphql
   * @param {string} options.query      a subscription taking `$after: StreamPosition`
   * @param {() => number|null} options.after      where to resume (the last position applied)
   * @param {() => Promise<string|null>} options.token  the access token (renewed ahead)
   * @param {() => Promise<string|null>} options.renewToken  a new one, or null (signed out)
   * @param {(data: object) => void} options.onData        each `next` payload's data
   * @param {(errors: object[]) => void} options.onErrors  the subscription's `error` message
   * @param {(state: string, detail?: string) => void} options.onState
   *        "connecting" | "live" | "reconnecting" | "signed-out"
   */
  constructor(options) {
    this.options = options;
    this.socket = null;
    this.attempt = 0;
    this.timers = new Set();
    this.stopped = false;
    this.nextId = 1;
  }

  start() {
    this.stopped = false;
    this.open("connecting");
  }

  stop() {
    this.stopped = true;
    this.drop(1000, "bye");
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  /** Subscribe again on the open connection (after a resync, say). */
  resubscribe() {
    if (this.socket && this.socket.acknowledged) this.subscribe(this.socket);
  }

  later(ms, work) {
    const timer = setTimeout(() => { this.timers.delete(timer); work(); }, ms);
    this.timers.add(timer);
    return timer;
  }

  cancel(timer) {
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  async open(state) {
    const { url, token, onState } = this.options;
    onState(state);
    const bearer = await token();
    if (this.stopped) return;
    if (!bearer) {
      onState("signed-out");
      return;
    }
    const socket = new WebSocket(url, PROTOCOL);
    socket.acknowledged = false;
    this.socket = socket;
    const giveUp = this.later(CONNECT_TIMEOUT, () => {
      if (!socket.acknowledged) this.lost(socket, "no answer");
    });
    socket.onopen = () => {
      socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${bearer}` } }));
    };
    socket.onmessage = (message) => this.receive(socket, JSON.parse(message.data), giveUp);
    socket.onclose = (event) => this.closed(socket, event);
  }

  receive(socket, message, giveUp) {
    switch (message.type) {
      case "connection_ack":
        this.cancel(giveUp);
        socket.acknowledged = true;
        this.attempt = 0;
        this.subscribe(socket);
        this.keepAlive(socket);
        this.options.onState("live");
        break;
      case "next":
        if (message.id === socket.subscriptionId) this.options.onData(message.payload.data);
        break;
      case "error":
        if (message.id === socket.subscriptionId) this.options.onErrors(message.payload);
        break;
      case "complete": // the server ended the stream: start it again where it stopped
        if (message.id === socket.subscriptionId) this.subscribe(socket);
        break;
      case "ping":
        socket.send(JSON.stringify({ type: "pong" }));
        break;
      case "pong":
        socket.awaitingPong = false;
        break;
      default:
        break;
    }
  }

  subscribe(socket) {
    if (socket.subscriptionId) {
      socket.send(JSON.stringify({ id: socket.subscriptionId, type: "complete" }));
    }
    socket.subscriptionId = String(this.nextId++);
    socket.send(JSON.stringify({
      id: socket.subscriptionId,
      type: "subscribe",
      payload: { query: this.options.query, variables: { after: this.options.after() } },
    }));
  }

  keepAlive(socket) {
    this.later(PING_EVERY, () => {
      if (this.socket !== socket || socket.readyState !== WebSocket.OPEN) return;
      if (socket.awaitingPong) {
        this.lost(socket, "no pong");
        return;
      }
      socket.awaitingPong = true;
      socket.send(JSON.stringify({ type: "ping" }));
      this.later(PONG_WITHIN, () => {
        if (this.socket === socket && socket.awaitingPong) this.lost(socket, "no pong");
      });
      this.keepAlive(socket);
    });
  }

  /** Forget a socket that stopped answering (its close event may come much later). */
  lost(socket, why) {
    if (this.socket !== socket) return;
    socket.onclose = null;
    socket.onmessage = null;
    // Closing a socket still connecting makes the browser log a warning: close it
    // when (if ever) it opens instead.
    socket.onopen = () => socket.close(4000, why);
    if (socket.readyState === WebSocket.OPEN) socket.close(4000, why);
    this.socket = null;
    this.retry();
  }

  drop(code, reason) {
    const socket = this.socket;
    this.socket = null;
    if (!socket) return;
    socket.onclose = null;
    socket.onmessage = null;
    socket.onopen = () => socket.close(code, reason);
    if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
  }

  async closed(socket, event) {
    if (this.socket !== socket || this.stopped) return;
    this.socket = null;
    if (event.code === 4401 || event.code === 4403) {
      const renewed = await this.options.renewToken();
      if (!renewed) {
        this.options.onState("signed-out", event.reason);
        return;
      }
      if (event.code === 4401) this.attempt = 0; // expired: back at once, resumed
    }
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    this.options.onState("reconnecting");
    const ceiling = Math.min(MAX_DELAY, FIRST_DELAY * 2 ** this.attempt);
    this.attempt += 1;
    // "Full jitter": clients cut off together do not come back together.
    this.later(ceiling / 2 + Math.random() * (ceiling / 2), () => this.open("reconnecting"));
  }
}
