/** Entry point of the headless host (`node dist/main/headless.js`): config → app → HTTP/WebSocket server. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ConfigError, DEFAULT_PORT, loadConfig } from '../app/config.js';
import { createApp } from '../app/app.js';
import { startHeadlessHost } from './headless.js';

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const app = await createApp({ config, host: 'headless' });
  const rendererDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../renderer');
  const host = await startHeadlessHost(app, { port: config.port, rendererDir, fallbackToRandomPort: config.port === DEFAULT_PORT });
  for (const note of app.startupNotes) console.log(`neuroward: ${note}`);
  console.log(`neuroward: headless host listening on ${host.url}`);
  console.log(`neuroward: open ${host.url} in Chromium (only this machine can connect)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`neuroward: ${signal}: closing the store and stopping`);
    await host.close();
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(`neuroward: configuration error:\n${error.message}`);
  else console.error(`neuroward: could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(2);
});
