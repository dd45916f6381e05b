// Screenshots of GraphiQL for the guides in docs/guides/: Debian's chromium driven by playwright-core.
// Usage: node screenshots.mjs <http base url> <output dir> <shots json>
// shots: [{"name": "admin-orders", "query": "...", "variables": {...}, "headers": {...}}, ...]
// Prints one JSON line per shot: {"name", "response"}; writes <output dir>/<name>.png.
import { chromium } from 'playwright-core';

const [base, outputDir, shotsJson] = process.argv.slice(2);
const shots = JSON.parse(shotsJson);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await context.newPage();
  await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: 30000 });
  await page.waitForLoadState('networkidle');
  const setEditor = (selector, value) => page.evaluate(([s, v]) => document.querySelector(s).CodeMirror.setValue(v),
    [selector, value]);
  const response = () => page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror
    .getValue());
  const TOOL = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
  for (const shot of shots) {
    await page.getByText('Variables', { exact: true }).click();
    await setEditor(TOOL, JSON.stringify(shot.variables || {}, null, 2));
    await page.getByText('Headers', { exact: true }).click();
    await setEditor(TOOL, JSON.stringify(shot.headers || {}, null, 2));
    await setEditor('.graphiql-query-editor .CodeMirror', shot.query);
    // GraphiQL re-reads the operation name from the editor on a debounce: let it, or it sends the previous one.
    await page.waitForTimeout(600);
    const before = await response();
    await page.click('.graphiql-execute-button');
    try {
      await page.waitForFunction((previous) => {
        const value = document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue();
        return value && value !== previous && value.includes('"data"');
      }, before, { timeout: 20000 });
    } catch (error) {
      process.stderr.write(`no answer for ${shot.name}: ${await response()}\n`);
      throw error;
    }
    await page.screenshot({ path: `${outputDir}/${shot.name}.png` });
    process.stdout.write(JSON.stringify({ name: shot.name, response: JSON.parse(await response()) }) + '\n');
  }
  await context.close();
} finally {
  await browser.close();
}
