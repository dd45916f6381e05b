// The npm graphql-ws client (with `ws` as the WebSocket of node) against the real server.
// Usage: node subscribe.mjs <ws url> <bearer token> <store global id> [events to wait for, default 1]
// Prints one JSON object per line: {"type":"connected"}, {"type":"subscribed"}, {"type":"next","payload":…},
// {"type":"error","error":…}, {"type":"closed","code":…,"reason":…}, {"type":"done","events":n}.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, storeId, wanted = '1'] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => print({ type: 'connected' }),
    closed: (event) => print({ type: 'closed', code: event.code, reason: event.reason }),
    error: (error) => print({ type: 'error', error: String(error?.message ?? error) }),
  },
});

const query = 'subscription($s: ID!) { storeOrderEvents(storeId: $s) { type status orderId } }';
const subscription = client.iterate({ query, variables: { s: storeId } });
print({ type: 'subscribed' });

let events = 0;
try {
  for await (const result of subscription) {
    print({ type: 'next', payload: result });
    events += 1;
    if (events >= Number(wanted)) break; // break sends `complete` for the operation
  }
} catch (error) {
  print({ type: 'error', error: String(error?.message ?? JSON.stringify(error)) });
  process.exitCode = 1;
}
await client.dispose(); // closes the socket with 1000
await new Promise((resolve) => setTimeout(resolve, 100));
print({ type: 'done', events });
