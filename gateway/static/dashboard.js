// The live dashboard (/dashboard): orders per minute, today's orders and revenue,
// orders by status and the latest orders, kept current by a GraphQL subscription.
//
// How it stays exact, which any client of the gateway can copy:
//   1. one query, `orderActivity`, gives the numbers AND the change-log position they
//      are as of (the server reads both in one database snapshot);
//   2. a subscription, `orderEvents(after: position)`, sends every change after it;
//      each event is applied once: one with a position not above the model's is
//      already counted (dashboard-live.js resumes there after a dropped connection);
//   3. when an event cannot be applied exactly (a cancellation of an order not on
//      screen: was it paid?), the query is asked again; its answer replaces the
//      numbers only if it is as new as what was applied.
import {
  accessToken, finishSignIn, freshToken, refreshAccess, signOut, startSignIn,
} from "./dashboard-auth.js";
import { LiveSubscription } from "./dashboard-live.js";

const MINUTES = 30;
const LATEST = 10;
const STATUSES = ["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"];
// The status an event's transition leaves (db/orders.py TRANSITIONS); a cancellation
// leaves pending or paid, which only the order's last known status tells.
const LEAVES = { "order.paid": "PENDING", "order.shipped": "PAID", "order.delivered": "SHIPPED" };

const ORDER_ROW = "fragment OrderRow on Order { databaseId status totalCents createdAt customer { name } }";
const SNAPSHOT = `query Dashboard($minutes: Int!, $latest: Int!) {
  orderActivity(minutes: $minutes) {
    position ordersToday revenueTodayCents
    statusCounts { status count }
    perMinute { start orderCount }
  }
  orders(first: $latest, orderBy: "id desc") { edges { node { ...OrderRow } } }
}
${ORDER_ROW}`;
const EVENTS = `subscription LiveOrders($after: StreamPosition) {
  orderEvents(after: $after) { position type order { ...OrderRow } }
}
${ORDER_ROW}`;

const $ = (selector) => document.querySelector(selector);
const minuteOf = (time) => new Date(time).toISOString().slice(0, 16); // "2026-12-04T14:05"
const dayOf = (time) => new Date(time).toISOString().slice(0, 10);
const money = (cents) =>
  (cents / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

// What the page shows, as of `position`.
const model = {
  position: null,
  day: "",
  ordersToday: 0,
  revenueToday: 0,
  statuses: Object.fromEntries(STATUSES.map((s) => [s, 0])),
  perMinute: new Map(), // minute -> orders created in it
  latest: [], // newest first
};

// --- reading and applying ----------------------------------------------------------

async function graphql(query, variables) {
  for (let attempt = 0; ; attempt += 1) {
    const reply = await fetch("/graphql", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${await freshToken()}` },
      body: JSON.stringify({ query, variables }),
    });
    if (reply.status === 401 && attempt === 0 && (await refreshAccess())) continue;
    if (reply.status === 401) throw Object.assign(new Error("Signed out"), { signedOut: true });
    const body = await reply.json();
    if (body.errors) throw new Error(body.errors.map((e) => e.message).join("; "));
    return body.data;
  }
}

/** Ask for the numbers; they replace the model's unless older than what it holds. */
async function reload() {
  const data = await graphql(SNAPSHOT, { minutes: MINUTES, latest: LATEST });
  const activity = data.orderActivity;
  if (model.position !== null && activity.position < model.position) return false;
  model.position = activity.position;
  model.day = dayOf(Date.now());
  model.ordersToday = activity.ordersToday;
  model.revenueToday = activity.revenueTodayCents;
  for (const { status, count } of activity.statusCounts) model.statuses[status.toUpperCase()] = count;
  model.perMinute = new Map(activity.perMinute.map((b) => [minuteOf(b.start), b.orderCount]));
  model.latest = data.orders.edges.map((edge) => edge.node);
  return true;
}

let reloading = null;
/** Reload soon, once however many events ask for it, until a reload is as new. */
function reloadSoon() {
  reloading ??= setTimeout(async () => {
    try {
      if (!(await reload())) {
        reloading = null;
        reloadSoon();
        return;
      }
      render();
    } catch (error) {
      showState("error", error.message);
    }
    reloading = null;
  }, 300);
}

function applyEvent(event) {
  if (model.position !== null && event.position <= model.position) return; // counted
  model.position = event.position;
  const order = event.order;
  if (!order) return;
  const shown = model.latest.find((o) => o.databaseId === order.databaseId);
  const today = dayOf(order.createdAt) === model.day;
  const move = (from) => {
    model.statuses[from] -= 1;
    model.statuses[order.status] += 1;
  };
  if (event.type === "order.created") {
    model.statuses[order.status] += 1;
    if (today) model.ordersToday += 1;
    const minute = minuteOf(order.createdAt);
    if (model.perMinute.has(minute)) model.perMinute.set(minute, model.perMinute.get(minute) + 1);
  } else if (LEAVES[event.type]) {
    move(LEAVES[event.type]);
    if (event.type === "order.paid" && today) model.revenueToday += order.totalCents;
  } else if (event.type === "order.cancelled") {
    if (shown && (shown.status === "PENDING" || shown.status === "PAID")) {
      move(shown.status);
      if (shown.status === "PAID" && today) model.revenueToday -= order.totalCents;
    } else {
      reloadSoon(); // pending or paid before? The server knows.
    }
  }
  if (shown) {
    Object.assign(shown, order);
  } else if (event.type === "order.created") {
    model.latest = [order, ...model.latest]
      .sort((a, b) => b.databaseId - a.databaseId)
      .slice(0, LATEST);
  }
}

/** Slide the per-minute window; a new UTC day starts today's numbers afresh. */
function tick() {
  const now = Date.now();
  const slots = new Map();
  for (let m = MINUTES - 1; m >= 0; m -= 1) {
    const minute = minuteOf(now - m * 60_000);
    slots.set(minute, model.perMinute.get(minute) || 0);
  }
  model.perMinute = slots;
  if (model.day && dayOf(now) !== model.day) reloadSoon();
  render();
}

// --- showing -----------------------------------------------------------------------

function setNumber(selector, value, text = value.toLocaleString()) {
  const element = $(selector);
  element.textContent = text;
  element.dataset.value = String(value); // the exact number, for tests and scripts
}

function render() {
  const minutes = [...model.perMinute.entries()];
  setNumber("#orders-this-minute", minutes.length ? minutes[minutes.length - 1][1] : 0);
  setNumber("#orders-today", model.ordersToday);
  setNumber("#revenue-today", model.revenueToday, money(model.revenueToday));
  setNumber("#position", model.position ?? 0);
  for (const status of STATUSES) {
    setNumber(`#status-counts [data-status="${status}"] .count`, model.statuses[status]);
  }
  const highest = Math.max(1, ...minutes.map(([, n]) => n));
  $("#per-minute").replaceChildren(...minutes.map(([minute, count]) => {
    const bar = document.createElement("span");
    bar.style.height = `${(100 * count) / highest}%`; // CSSOM: allowed by the page's CSP
    bar.title = `${minute.replace("T", " ")} UTC: ${count} order${count === 1 ? "" : "s"}`;
    return bar;
  }));
  $("#latest-orders tbody").replaceChildren(...model.latest.map((order) => {
    const row = document.createElement("tr");
    row.dataset.orderId = String(order.databaseId);
    const cells = [
      `#${order.databaseId}`,
      order.customer ? order.customer.name : "–",
      order.status.toLowerCase(),
      money(order.totalCents),
      new Date(order.createdAt).toISOString().slice(0, 19).replace("T", " "),
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text; // text, never HTML: names come from users
      row.append(cell);
    }
    return row;
  }));
}

const STATE_TEXT = {
  starting: "Starting…",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  "signed-out": "Signed out",
  error: "Error",
};

function showState(state, detail) {
  const badge = $("#connection");
  badge.dataset.state = state;
  badge.textContent = detail ? `${STATE_TEXT[state]}: ${detail}` : STATE_TEXT[state];
}

let live = null;

function showSignedOut(message) {
  if (live) live.stop();
  live = null;
  showState("signed-out");
  $("#board").hidden = true;
  $("#sign-out").hidden = true;
  $("#signed-out").hidden = false;
  const error = $("#sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
}

// --- starting ----------------------------------------------------------------------

async function main() {
  $("#sign-in").addEventListener("click", () => {
    startSignIn().catch((error) => showSignedOut(error.message));
  });
  $("#sign-out").addEventListener("click", () => {
    signOut();
    showSignedOut();
  });
  try {
    await finishSignIn();
  } catch (error) {
    showSignedOut(`Sign-in failed: ${error.message}`);
    return;
  }
  if (!accessToken()) {
    showSignedOut();
    return;
  }
  $("#signed-out").hidden = true;
  $("#board").hidden = false;
  $("#sign-out").hidden = false;
  showState("connecting");
  try {
    await reload(); // first the numbers and their position, then what follows it
  } catch (error) {
    if (error.signedOut) showSignedOut();
    else showState("error", error.message);
    return;
  }
  tick();
  setInterval(tick, 5_000);
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  live = new LiveSubscription({
    url: `${scheme}://${window.location.host}/graphql`,
    query: EVENTS,
    after: () => model.position,
    token: freshToken,
    renewToken: refreshAccess,
    onData: (data) => {
      applyEvent(data.orderEvents);
      render();
    },
    onErrors: (errors) => {
      if (errors.some((e) => e.extensions && e.extensions.code === "RESYNC_REQUIRED")) {
        // Resumed past what the log keeps: start again from fresh numbers.
        model.position = null;
        reload().then(() => { render(); live.resubscribe(); })
          .catch((error) => showState("error", error.message));
      } else {
        showState("error", errors.map((e) => e.message).join("; "));
      }
    },
    onState: (state, detail) => {
      if (state === "signed-out") showSignedOut(detail ? `Signed out: ${detail}` : "");
      else showState(state, detail);
    },
  });
  live.start();
}

main();
