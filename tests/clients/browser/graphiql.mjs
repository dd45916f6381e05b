// Debian's chromium, driven by playwright-core, against GraphiQL served by the real server.
// Usage: node graphiql.mjs <http base url> <screenshot.png> [<subscription query> <headers json>]
// Prints JSON lines: {"type":"ready",...}, {"type":"result",...}, optionally {"type":"subscribing"} and
// {"type":"event",...}, and last {"type":"summary", requests, websockets, frames, consoleErrors}.
import { chromium } from 'playwright-core';

const [base, screenshot, subscription, subscriptionHeaders] = process.argv.slice(2);
const print = (line) => process.stdout.write(JSON.stringify(line) + '\n');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const requests = [];
const websockets = [];
const frames = [];
const consoleErrors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  page.on('websocket', (socket) => {
    websockets.push(socket.url());
    socket.on('framereceived', (frame) => frames.push({
      text: typeof frame.payload === 'string',
      payload: typeof frame.payload === 'string' ? frame.payload : frame.payload.toString('base64'),
    }));
  });

  await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  // rendered: the editors exist and the placeholder is gone; the schema is loaded when the docs can open
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30000 });
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…'), null, { timeout: 30000 });
  await page.waitForLoadState('networkidle'); // the schema's introspection has answered
  const editor = (selector) => page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
  const setEditor = (selector, value) => page.evaluate(([s, v]) => document.querySelector(s).CodeMirror.setValue(v),
    [selector, value]);
  const HEADERS = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
  await page.getByText('Headers', { exact: true }).click(); // the headers tab (already open when prefilled)
  const headers = await editor(HEADERS);
  print({ type: 'ready', title: await page.title(), headers });

  await setEditor('.graphiql-query-editor .CodeMirror', '{ currentStore { name } }');
  await page.click('.graphiql-execute-button');
  await page.waitForFunction(
    () => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue().includes('currentStore'),
    null, { timeout: 20000 });
  print({ type: 'result', response: JSON.parse(await editor('.graphiql-response .CodeMirror')) });
  await page.screenshot({ path: screenshot });

  if (subscription) {
    await setEditor(HEADERS, subscriptionHeaders);
    await setEditor('.graphiql-query-editor .CodeMirror', subscription);
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => document.querySelector('.graphiql-execute-button')
      .getAttribute('aria-label')?.toLowerCase().includes('stop'), null, { timeout: 10000 });
    for (let waited = 0; !frames.some((f) => f.payload.includes('connection_ack')) && waited < 10000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    print({ type: 'subscribing' });
    try {
      await page.waitForFunction(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()
        .includes('order.created'), null, { timeout: 30000 });
    } catch (error) {
      print({ type: 'timeout', response: await editor('.graphiql-response .CodeMirror'), requests, websockets, frames,
        consoleErrors });
      throw error;
    }
    print({ type: 'event', response: JSON.parse(await editor('.graphiql-response .CodeMirror')) });
    await page.screenshot({ path: screenshot.replace(/\.png$/, '-subscription.png') });
    await page.click('.graphiql-execute-button'); // stop: the client completes the operation
  }
  await context.close();
} finally {
  await browser.close();
}
print({ type: 'summary', requests, websockets, frames, consoleErrors });
