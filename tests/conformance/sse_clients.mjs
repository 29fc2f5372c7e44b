// Independent SSE clients against the gateway, one JSON line per happening.
//   node sse_clients.mjs graphql-sse <url> <token> <query> <count> [variables-json]
//     the npm graphql-sse client (distinct connections mode) on POST /graphql
//   node sse_clients.mjs eventsource <url> <event-type> <count>
//     the npm eventsource package (the browser EventSource API) on /api/v1/events?ticket=...
import { createClient } from "graphql-sse";
import { EventSource } from "eventsource";

const say = (thing) => process.stdout.write(JSON.stringify(thing) + "\n");
const [mode, url, ...rest] = process.argv.slice(2);

if (mode === "graphql-sse") {
  const [token, query, count, variables] = rest;
  const client = createClient({
    url,
    headers: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  let got = 0;
  say({ started: true });
  client.subscribe(
    { query, variables: variables ? JSON.parse(variables) : undefined },
    {
      next: (value) => {
        say({ next: value });
        got += 1;
        if (got >= Number(count)) {
          client.dispose();
          setTimeout(() => process.exit(0), 50);
        }
      },
      error: (error) => {
        say({ error: String(error && error.message ? error.message : JSON.stringify(error)) });
        setTimeout(() => process.exit(0), 50);
      },
      complete: () => {
        say({ complete: true });
        setTimeout(() => process.exit(0), 50);
      },
    },
  );
} else if (mode === "eventsource") {
  const [type, count] = rest;
  const source = new EventSource(url);
  let got = 0;
  source.onopen = () => say({ open: true });
  source.onerror = (event) => {
    say({ error: event.message || "error", status: event.code });
    source.close();
    setTimeout(() => process.exit(0), 50);
  };
  source.addEventListener(type, (event) => {
    say({ id: event.lastEventId, type: event.type, data: JSON.parse(event.data) });
    got += 1;
    if (got >= Number(count)) {
      source.close();
      setTimeout(() => process.exit(0), 50);
    }
  });
} else {
  say({ error: `unknown mode ${mode}` });
  process.exit(2);
}
