/** Entry point of the headless host (`node dist/main/headless.js`): config → app → HTTP/WebSocket server. */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ConfigError, DEFAULT_PORT, loadConfig } from '../app/config.js';
import { createApp } from '../app/app.js';
import { startHeadlessHost } from './headless.js';
import { launchCookieName, newLaunchSecret, removeLaunchFile, writeLaunchFile } from './launch-secret.js';

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const app = await createApp({ config, host: 'headless' });
  const rendererDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../renderer');
  const launchSecret = newLaunchSecret();
  const host = await startHeadlessHost(app, { port: config.port, rendererDir, launchSecret, fallbackToRandomPort: config.port === DEFAULT_PORT });
  const launchFile = writeLaunchFile(config.dataDir, { launchUrl: host.launchUrl, url: host.url, port: host.port, secret: launchSecret, cookieName: launchCookieName(host.port), pid: process.pid });
  for (const note of app.startupNotes) console.log(`neuroward: ${note}`);
  console.log(`neuroward: headless host listening on ${host.url} (only with this launch's key)`);
  console.log(`neuroward: open ${host.launchUrl} in Chromium`);
  console.log(`neuroward: (the same address is in ${launchFile}, readable by this account only; it changes at every start)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`neuroward: ${signal}: closing the store and stopping`);
    removeLaunchFile(config.dataDir);
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
