// Drives Debian's Chromium through playwright-core for tests/browser: one browser for
// the whole pytest session, a new context (fresh storage) for each scenario.
//
//   node run.mjs     then one JSON request a line on stdin: {"id", "scenario", ...args}
//
// For each request it prints one JSON line on stdout:
// {id, result, failure, console, pageErrors, failedRequests}. Every console message,
// uncaught page error and failed request of the scenario's pages (popups too) is
// collected, so the Python side can demand zero of them. The scenarios run in a page
// on another origin (``page``) against the gateway (``api``), as a frontend would.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const TIMEOUT = 30_000;

// playwright-core gives the browser a fresh, empty --user-data-dir of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

const scenarios = {
  // Each scenario: ({ page, context, args }) => result (JSON).
  // fetch from another origin: REST read and write, GraphQL, the token endpoint.
  async cors({ page, context, args }) {
    await page.goto(args.page + "/index.html");
    return await page.evaluate(async ({ api, token, clientId, clientSecret }) => {
      const bearer = { Authorization: `Bearer ${token}` };
      const list = await fetch(`${api}/api/v1/products`, { headers: bearer });
      const made = await fetch(`${api}/api/v1/customers`, {
        method: "POST",
        headers: { ...bearer, "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() },
        body: JSON.stringify({ name: "From a page", email: `page-${crypto.randomUUID()}@example.com` }),
      });
      const graphql = await fetch(`${api}/graphql`, {
        method: "POST",
        headers: { ...bearer, "Content-Type": "application/json" },
        body: JSON.stringify({ query: "{ customers(first: 1) { totalCount } }" }),
      });
      const tokenReply = await fetch(`${api}/oauth/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret,
        }),
      });
      const refused = await fetch(`${api}/api/v1/products`);  // no token: a readable 401
      return {
        list: { status: list.status, etag: list.headers.get("ETag"), requestId: list.headers.get("X-Request-ID") },
        made: {
          status: made.status, location: made.headers.get("Location"), etag: made.headers.get("ETag"),
          requestId: made.headers.get("X-Request-ID"),
        },
        graphql: { status: graphql.status, body: await graphql.json() },
        token: { status: tokenReply.status, hasToken: Boolean((await tokenReply.json()).access_token) },
        refused: { status: refused.status, code: (await refused.json()).code },
      };
    }, args);
  },

  // A page on an origin the gateway does not name: the browser keeps the answers
  // from it, and the socket handshake is refused.
  async stranger({ page, context, args }) {
    await page.goto(args.stranger + "/index.html");
    return await page.evaluate(async ({ api, token }) => {
      let read;
      try {
        const reply = await fetch(`${api}/api/v1/products`, { headers: { Authorization: `Bearer ${token}` } });
        read = `read ${reply.status}`;
      } catch (error) {
        read = error.name;
      }
      const socket = await new Promise((resolve) => {
        const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
        ws.onopen = () => { ws.close(); resolve("opened"); };
        ws.onclose = (e) => resolve(`closed ${e.code}`);
      });
      return { read, socket };
    }, args);
  },

  // EventSource with a single-use ticket: an event caused by a write arrives.
  async eventsource({ page, context, args }) {
    await page.goto(args.page + "/index.html");
    return await page.evaluate(async ({ api, token }) => {
      const bearer = { Authorization: `Bearer ${token}` };
      const ticket = await (await fetch(`${api}/api/v1/events/tickets`, { method: "POST", headers: bearer })).json();
      const source = new EventSource(`${api}/api/v1/events?topics=customers&ticket=${encodeURIComponent(ticket.ticket)}`);
      const opened = new Promise((resolve, reject) => {
        source.onopen = resolve;
        source.onerror = () => reject(new Error("EventSource failed"));
      });
      const received = new Promise((resolve) => {
        source.addEventListener("customer.created", (e) => resolve({ id: e.lastEventId, data: JSON.parse(e.data) }));
      });
      await opened;
      const email = `sse-${crypto.randomUUID()}@example.com`;
      await fetch(`${api}/api/v1/customers`, {
        method: "POST", headers: { ...bearer, "Content-Type": "application/json" },
        body: JSON.stringify({ name: "Streamed", email }),
      });
      const event = await received;
      source.close();
      return { email, event };
    }, args);
  },

  // A GraphQL subscription over graphql-transport-ws, from the page's own socket code.
  async websocket({ page, context, args }) {
    await page.goto(args.page + "/index.html");
    return await page.evaluate(async ({ api, token }) => {
      const ws = new WebSocket(api.replace("http", "ws") + "/graphql", "graphql-transport-ws");
      const email = `ws-${crypto.randomUUID()}@example.com`;
      const frames = [];
      const next = new Promise((resolve, reject) => {
        ws.onmessage = (m) => {
          const frame = JSON.parse(m.data);
          frames.push(frame.type);
          if (frame.type === "connection_ack") {
            // The protocol acknowledges a subscription by nothing, so it resumes
            // from the log's start (after: 0): the write's event arrives whether
            // the subscription was live before the write or not. The write waits
            // for a round trip (a ping) so that it is usually delivered live.
            ws.send(JSON.stringify({
              id: "1", type: "subscribe",
              payload: {
                query: "subscription ($after: StreamPosition) { customerEvents(after: $after) { type resource customer { email } } }",
                variables: { after: 0 },
              },
            }));
            ws.send(JSON.stringify({ type: "ping" }));
          } else if (frame.type === "pong") {
            fetch(`${api}/api/v1/customers`, {
              method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
              body: JSON.stringify({ name: "Subscribed", email }),
            });
          } else if (frame.type === "next") {
            // Earlier scenarios' customers come first from the log: wait for ours.
            const event = frame.payload.data && frame.payload.data.customerEvents;
            if (!event || event.customer?.email === email) resolve(frame.payload);
          } else if (frame.type === "error") {
            reject(new Error(JSON.stringify(frame)));
          }
        };
        ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
      });
      ws.onopen = () => ws.send(JSON.stringify({
        type: "connection_init", payload: { Authorization: `Bearer ${token}` },
      }));
      const payload = await next;
      ws.onclose = null;
      ws.close(1000);
      return { payload, frames, email };
    }, args);
  },

  // GraphiQL opens without a token (a hint, no 401); a token pasted into Headers
  // fetches the schema without a reload, and the first query runs with it; the next
  // visit keeps the headers.
  async graphiql({ page, context, args }) {
    const introspection = (r) => r.url().endsWith("/graphql")
      && (r.request().postData() || "").includes("IntrospectionQuery");
    await page.goto(args.api + "/graphql");
    await page.waitForSelector(".graphiql-container");
    await page.getByRole("button", { name: "Headers" }).click();
    const headers = page.locator(".graphiql-editor-tool .CodeMirror").last();
    await headers.click();
    await page.keyboard.press("Control+A");
    const introspected = page.waitForResponse(introspection);
    // insertText is a paste: no keystrokes for the editor to auto-close.
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${args.token}` }, null, 2));
    const schema = await introspected;
    const sent = (await schema.request().allHeaders()).authorization || null;
    const replied = page.waitForResponse((r) => r.url().endsWith("/graphql")
      && (r.request().postData() || "").includes("FirstOrders"));
    await page.locator(".graphiql-execute-button").click();
    const reply = await replied;
    const body = await reply.json();  // before the reload discards it
    const revisited = page.waitForResponse(introspection);
    await page.reload();
    const kept = await revisited;
    await page.waitForSelector(".graphiql-container");
    // Docs: the explorer shows the schema's root types, and a root type's fields.
    await page.getByRole("button", { name: "Show Documentation Explorer" }).click();
    const explorer = page.locator(".graphiql-doc-explorer");
    await explorer.locator(".graphiql-doc-explorer-root-type").first().waitFor();
    const rootTypes = await explorer.locator(".graphiql-doc-explorer-root-type").allInnerTexts();
    await explorer.locator(".graphiql-doc-explorer-type-name", { hasText: /^Query$/ }).first().click();
    await explorer.locator(".graphiql-doc-explorer-field-name").first().waitFor();
    const queryFields = await explorer.locator(".graphiql-doc-explorer-field-name").allInnerTexts();
    return {
      schemaStatus: schema.status(), schemaAuthorization: sent, status: reply.status(),
      body, keptStatus: kept.status(), rootTypes, queryFields,
    };
  },

  // Swagger UI: Authorize with a bearer token, then Try it out on a list.
  async swagger({ page, context, args }) {
    await page.goto(args.api + "/docs");
    await page.waitForSelector(".swagger-ui .opblock");
    await page.locator(".auth-wrapper .authorize").click();
    const bearer = page.locator("form").filter({ has: page.locator("#auth-bearer-value") });
    await bearer.locator("#auth-bearer-value").fill(args.token);
    await bearer.getByRole("button", { name: "Apply credentials" }).click();
    await page.locator(".btn-done").first().click();
    const operation = page.locator("#operations-products-list_products");
    await operation.locator(".opblock-summary").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    const replied = page.waitForResponse((r) => r.url().includes("/api/v1/products"));
    await operation.getByRole("button", { name: "Execute" }).click();
    const reply = await replied;
    return { status: reply.status(), authorization: (await reply.request().allHeaders()).authorization || null };
  },

  // Swagger UI: Authorize with client credentials (Swagger UI asks /oauth/token for
  // the token itself), then Try it out on a list.
  async swaggerClient({ page, context, args }) {
    await page.goto(args.api + "/docs");
    await page.waitForSelector(".swagger-ui .opblock");
    await page.locator(".auth-wrapper .authorize").click();
    const form = page.locator(".auth-container").filter({ has: page.locator("#client_id_clientCredentials") });
    await form.locator("#client_id_clientCredentials").fill(args.clientId);
    await form.locator("#client_secret_clientCredentials").fill(args.clientSecret);
    await form.locator('label[for="products:read-clientCredentials-checkbox-oauth2"]').click();
    const exchanged = page.waitForResponse((r) => r.url().endsWith("/oauth/token"));
    await form.getByRole("button", { name: "Apply given OAuth2 credentials" }).click();
    const token = await exchanged;
    await page.locator(".btn-done").first().click();
    const operation = page.locator("#operations-products-list_products");
    await operation.locator(".opblock-summary").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    const replied = page.waitForResponse((r) => r.url().includes("/api/v1/products"));
    await operation.getByRole("button", { name: "Execute" }).click();
    const reply = await replied;
    return {
      tokenStatus: token.status(), accessToken: (await token.json()).access_token, status: reply.status(),
      authorization: (await reply.request().allHeaders()).authorization || null,
    };
  },

  // Swagger UI's own sign-in: Authorize with authorization code + PKCE as the demo's
  // public client (demo-docs), the sign-in page in a popup, then Try it out.
  async swaggerPkce({ page, context, args }) {
    await page.goto(args.api + "/docs");
    await page.waitForSelector(".swagger-ui .opblock");
    await page.locator(".auth-wrapper .authorize").click();
    const form = page.locator(".auth-container").filter({ has: page.locator("#client_id_authorizationCode") });
    await form.locator("#client_id_authorizationCode").fill(args.clientId);
    await form.locator('label[for="orders:read-authorizationCode-checkbox-oauth2"]').click();
    const popupOpened = context.waitForEvent("page");
    await form.getByRole("button", { name: "Apply given OAuth2 credentials" }).click();
    const popup = await popupOpened;
    await popup.waitForSelector("#email");
    await popup.fill("#email", args.email);
    await popup.fill("#password", args.password);
    const exchanged = page.waitForResponse((r) => r.url().endsWith("/oauth/token"));
    await popup.getByRole("button", { name: "Sign in and allow" }).click();
    const token = await exchanged;
    await page.locator(".btn-done").first().click();
    const operation = page.locator("#operations-orders-list_orders");
    await operation.locator(".opblock-summary").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    const replied = page.waitForResponse((r) => r.url().includes("/api/v1/orders"));
    await operation.getByRole("button", { name: "Execute" }).click();
    const reply = await replied;
    return {
      tokenStatus: token.status(), status: reply.status(),
      authorization: (await reply.request().allHeaders()).authorization || null,
    };
  },

  // A single-page app on another origin (pages/spa.js) signs a person in: code +
  // PKCE (S256, with WebCrypto), the gateway's sign-in page (a wrong password first),
  // then the app exchanges the code by fetch and calls the API. Clicks and typing only.
  async signin({ page, context, args }) {
    await page.goto(`${args.page}/spa.html?` + new URLSearchParams({ api: args.api, client_id: args.clientId }));
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.href.startsWith(args.api + "/oauth/authorize"));
    await page.fill("#email", args.email);
    await page.fill("#password", "wrong password!");
    await page.getByRole("button", { name: "Sign in and allow" }).click();
    await page.locator("#password").waitFor();
    const kept = await page.inputValue("#email");
    await page.fill("#password", args.password);
    await page.getByRole("button", { name: "Sign in and allow" }).click();
    await page.waitForURL((url) => url.href.startsWith(args.page + "/spa.html"));
    const done = page.locator('#result[data-done="true"]');
    await done.waitFor();
    return { ...JSON.parse(await done.textContent()), emailKept: kept, address: page.url() };
  },
};

async function run(request) {
  const context = await browser.newContext();
  const consoleMessages = [];
  const pageErrors = [];
  const failedRequests = [];
  const watch = (p, popup) => {
    p.setDefaultTimeout(TIMEOUT);
    p.on("console", (m) => consoleMessages.push({ type: m.type(), text: m.text(), url: p.url(), popup }));
    p.on("pageerror", (e) => pageErrors.push(String(e)));
    p.on("requestfailed", (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  };
  const page = await context.newPage();
  watch(page, false);
  context.on("page", (popup) => watch(popup, true));
  let result = null;
  let failure = null;
  try {
    const scenario = scenarios[request.scenario];
    if (!scenario) throw new Error(`no scenario ${request.scenario}`);
    result = await scenario({ page, context, args: request });
  } catch (error) {
    failure = String((error && error.stack) || error);
  }
  await context.close();
  return { id: request.id, result, failure, console: consoleMessages, pageErrors, failedRequests };
}

// Steps of a scenario the test acts in the middle of (places orders, cuts the
// network): a request with a ``session`` name runs ``steps[scenario]`` on that
// session's page, kept open between requests until the step "closeSession". Each
// report carries what the page logged since the session's previous report; a step
// that throws saves a screenshot to ``args.screenshot`` when given.
const sessions = new Map();

// What /dashboard shows (gateway/static/dashboard.html), read from its elements.
function readDashboard() {
  const value = (selector) => Number(document.querySelector(selector).dataset.value);
  const statuses = {};
  for (const item of document.querySelectorAll("#status-counts [data-status]")) {
    statuses[item.dataset.status] = Number(item.querySelector(".count").dataset.value);
  }
  return {
    state: document.querySelector("#connection").dataset.state,
    position: value("#position"),
    ordersToday: value("#orders-today"),
    revenueToday: value("#revenue-today"),
    thisMinute: value("#orders-this-minute"),
    bars: document.querySelectorAll("#per-minute span").length,
    statuses,
    latest: [...document.querySelectorAll("#latest-orders tbody tr")].map((row) => Number(row.dataset.orderId)),
    // The states shown since sign-in, a repeated one once ("live", "reconnecting", ...).
    states: window.connectionStates
      ? window.connectionStates.filter((state, i, all) => i === 0 || all[i - 1] !== state)
      : null,
    // Which access token the page holds (its end only): a renewal changes it.
    token: (JSON.parse(sessionStorage.getItem("dashboard.tokens") || "null") || { access: "" }).access.slice(-12),
  };
}

const steps = {
  // Open /dashboard signed out, sign in through the gateway's page, wait until live.
  async dashboardSignIn({ page, args }) {
    await page.goto(args.api + "/dashboard");
    await page.locator('#connection[data-state="signed-out"]').waitFor();
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.href.startsWith(args.api + "/oauth/authorize"));
    await page.fill("#email", args.email);
    await page.fill("#password", args.password);
    await page.getByRole("button", { name: "Sign in and allow" }).click();
    await page.locator('#connection[data-state="live"]').waitFor();
    // From here on, every state the badge shows is kept (a MutationObserver).
    await page.evaluate(() => {
      const badge = document.querySelector("#connection");
      window.connectionStates = [badge.dataset.state];
      new MutationObserver(() => window.connectionStates.push(badge.dataset.state))
        .observe(badge, { attributes: true, attributeFilter: ["data-state"] });
    });
    return { address: page.url(), ...(await page.evaluate(readDashboard)) };
  },

  // Wait until the dashboard shows what the test expects (any of its fields).
  async dashboardWaitFor({ page, args }) {
    // Polled from here: the page's CSP allows no eval, so no predicate built from text.
    const deadline = Date.now() + (args.timeout || TIMEOUT);
    for (;;) {
      const shown = await page.evaluate(readDashboard);
      const same = Object.entries(args.expect)
        .every(([key, value]) => JSON.stringify(shown[key]) === JSON.stringify(value));
      if (same) return shown;
      if (Date.now() > deadline) {
        throw new Error(`the dashboard never showed ${JSON.stringify(args.expect)}: ${JSON.stringify(shown)}`);
      }
      await page.waitForTimeout(50);
    }
  },

  async dashboardRead({ page }) {
    return await page.evaluate(readDashboard);
  },

  async screenshot({ page, args }) {
    await page.screenshot({ path: args.screenshot, fullPage: true });
    return { path: args.screenshot };
  },

  async closeSession({ session }) {
    sessions.delete(session.name);
    await session.context.close();
    return null;
  },
};

async function runStep(request) {
  let session = sessions.get(request.session);
  if (!session) {
    const context = await browser.newContext();
    const page = await context.newPage();
    session = { name: request.session, context, page, console: [], pageErrors: [], failedRequests: [] };
    const watch = (p, popup) => {
      p.setDefaultTimeout(TIMEOUT);
      p.on("console", (m) => session.console.push({ type: m.type(), text: m.text(), url: p.url(), popup }));
      p.on("pageerror", (e) => session.pageErrors.push(String(e)));
      p.on("requestfailed", (r) => session.failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    };
    watch(page, false);
    context.on("page", (popup) => watch(popup, true));
    sessions.set(request.session, session);
  }
  let result = null;
  let failure = null;
  try {
    const step = steps[request.scenario];
    if (!step) throw new Error(`no step ${request.scenario}`);
    result = await step({ page: session.page, context: session.context, session, args: request });
  } catch (error) {
    failure = String((error && error.stack) || error);
    if (request.screenshot) {
      await session.page.screenshot({ path: request.screenshot, fullPage: true }).catch(() => {});
      failure += `\nscreenshot: ${request.screenshot}`;
    }
  }
  return {
    id: request.id, result, failure,
    console: session.console.splice(0), pageErrors: session.pageErrors.splice(0),
    failedRequests: session.failedRequests.splice(0),
  };
}

// One request at a time, in order: pytest waits for each answer.
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const request = JSON.parse(line);
  const report = request.session ? await runStep(request) : await run(request);
  process.stdout.write(JSON.stringify(report) + "\n");
}
await browser.close();
