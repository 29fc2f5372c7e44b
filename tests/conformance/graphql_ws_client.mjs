// The npm graphql-ws client (graphql-transport-ws) against the gateway's /graphql socket.
// usage: node graphql_ws_client.mjs <ws-url> <token> <query> <count> [variables-json]
// Prints one JSON line per happening: {"connected"}, {"next": payload}, {"error": ...},
// {"complete"}, {"closed": code}; exits after <count> results, an error or completion.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, token, query, count, variables] = process.argv.slice(2);
const say = (thing) => process.stdout.write(JSON.stringify(thing) + "\n");

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: token ? { Authorization: `Bearer ${token}` } : {},
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => say({ connected: true }),
    closed: (event) => say({ closed: event.code, reason: event.reason }),
  },
});

let got = 0;
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
      const shown = Array.isArray(error)
        ? error
        : error && error.code
          ? { code: error.code, reason: error.reason }
          : String(error);
      say({ error: shown });
      setTimeout(() => process.exit(0), 50);
    },
    complete: () => {
      say({ complete: true });
      setTimeout(() => process.exit(0), 50);
    },
  },
);
