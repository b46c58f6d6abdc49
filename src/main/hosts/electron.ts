/**
 * The Electron host: one hardened window over the composed application.
 *
 * Follows Electron's security checklist (https://www.electronjs.org/docs/latest/tutorial/security):
 *  - the renderer runs sandboxed, context-isolated, without Node; the preload exposes only the contract;
 *  - the UI is served from a privileged custom scheme (app://neuroward/), never from file://, with a strict CSP;
 *  - navigation, new windows, <webview>, permissions, downloads and remote requests are refused;
 *  - every IPC call is checked against its sender (our window, its main frame, our origin) before the
 *    one dispatcher validates, authorises and audits it.
 *
 * Bundled by scripts/build.mjs to dist/main/electron.js (ESM). Everything that must happen before the
 * `ready` event runs synchronously at module evaluation; there is no top-level await (it would hang
 * Electron's ESM loader on whenReady).
 */
import {
  app,
  BrowserWindow,
  dialog,
  ipcMain,
  protocol,
  safeStorage,
  session,
  type IpcMainInvokeEvent,
  type Session,
  type WebContents,
} from 'electron';
import { lstat, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ELECTRON_EVENT_CHANNEL, ELECTRON_INVOKE_PREFIX } from '../../shared/bridge.js';
import type { Envelope } from '../../shared/errors.js';
import { CHANNEL_NAMES, type EventName, type EventPayload } from '../../shared/ipc.js';
import { loadConfig, type AppConfig } from '../app/config.js';
import type { Connection, NeurowardApp, SafeStorageKeyProvider } from '../app/types.js';
import { contentSecurityPolicy } from '../../shared/csp.js';

// ---------------------------------------------------------------------------------------------
// Constants and paths
// ---------------------------------------------------------------------------------------------

const APP_NAME = 'NeuroWard';
const APP_ID = 'org.neuroward.workstation';
const SCHEME = 'app';
const APP_HOST = 'neuroward';
const APP_ORIGIN = `${SCHEME}://${APP_HOST}`;
const START_URL = `${APP_ORIGIN}/`;

const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

/** Headers on every app:// response, including refusals. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

/** The bundle is dist/main/electron.js: the app root (package.json) is two levels up. */
const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const RENDERER_ROOT = path.join(APP_ROOT, 'dist', 'renderer');
const PRELOAD_PATH = path.join(APP_ROOT, 'dist', 'preload', 'index.cjs');
const REBUILD_COMMAND = 'node scripts/rebuild-electron-native.mjs';

/**
 * The SQLCipher addon built for Electron's ABI by scripts/rebuild-electron-native.mjs. In a packaged
 * app it sits in app.asar.unpacked (electron-builder's asarUnpack: a .node file cannot be dlopen'ed
 * from inside the archive).
 */
function electronNativeBindingPath(): string {
  const inRoot = path.join(APP_ROOT, 'build', 'electron-native', 'better-sqlite3-multiple-ciphers', 'build', 'Release', 'better_sqlite3.node');
  const asar = `${path.sep}app.asar${path.sep}`;
  return inRoot.includes(asar) ? inRoot.replace(asar, `${path.sep}app.asar.unpacked${path.sep}`) : inRoot;
}

const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
};

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

function log(level: 'info' | 'warn' | 'error', message: string): void {
  const line = `neuroward[electron] ${message}`;
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * True for app://neuroward/… only. Compared on protocol and host rather than `URL.origin`: Node's URL
 * reports the origin of a non-special scheme as "null", while Chromium knows `app` as a standard scheme.
 */
function isAppUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  return url.protocol === `${SCHEME}:` && url.host.toLowerCase() === APP_HOST && url.username === '' && url.password === '' && url.port === '';
}

function forbidden(message: string): Envelope<never> {
  return { ok: false, error: { code: 'forbidden', message } };
}

// ---------------------------------------------------------------------------------------------
// app:// protocol: serves dist/renderer and nothing else
// ---------------------------------------------------------------------------------------------

function textResponse(status: number, body: string): Response {
  return new Response(body, { status, headers: { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' } });
}

/**
 * Maps a request URL to a file inside dist/renderer, or null when the URL must be refused. Refuses
 * other hosts, `..` segments (also percent-encoded ones), NUL bytes, backslashes and anything that
 * resolves outside the renderer root.
 */
function resolveRendererPath(rawUrl: string, root: string = RENDERER_ROOT): { file: string } | { refuse: 403 | 400 } {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return { refuse: 400 };
  }
  if (!isAppUrl(rawUrl)) return { refuse: 403 };
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.pathname);
  } catch {
    return { refuse: 400 };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { refuse: 403 };
  const segments = decoded.split('/');
  if (segments.some((segment) => segment === '..' || segment === '.')) return { refuse: 403 };
  const relative = decoded === '/' || decoded === '' ? 'index.html' : decoded.replace(/^\/+/, '');
  const rootResolved = path.resolve(root);
  const file = path.resolve(rootResolved, relative);
  if (file !== rootResolved && !file.startsWith(rootResolved + path.sep)) return { refuse: 403 };
  return { file };
}

async function regularFile(file: string): Promise<boolean> {
  try {
    // lstat: a symbolic link is refused rather than followed out of the renderer root.
    const stats = await lstat(file);
    return stats.isFile();
  } catch {
    return false;
  }
}

async function serveApp(request: Request): Promise<Response> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return textResponse(405, 'Method not allowed');
  const target = resolveRendererPath(request.url);
  if ('refuse' in target) {
    log('warn', `refused app:// request (${target.refuse}): ${request.url}`);
    return textResponse(target.refuse, target.refuse === 403 ? 'Forbidden' : 'Bad request');
  }
  let file = target.file;
  if (!(await regularFile(file))) {
    // Client-side routes (no file extension) get the single page; missing assets are a 404.
    const fallback = path.join(RENDERER_ROOT, 'index.html');
    if (path.extname(file) !== '' || !(await regularFile(fallback))) return textResponse(404, 'Not found');
    file = fallback;
  }
  const body = await readFile(file);
  const headers = {
    ...SECURITY_HEADERS,
    'Content-Type': MIME_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': String(body.byteLength),
  };
  return new Response(request.method === 'HEAD' ? null : new Uint8Array(body), { status: 200, headers });
}

// ---------------------------------------------------------------------------------------------
// Session and web contents hardening
// ---------------------------------------------------------------------------------------------

function hardenSession(ses: Session): void {
  ses.protocol.handle(SCHEME, (request) =>
    serveApp(request).catch((error: unknown) => {
      log('error', `app:// handler failed for ${request.url}: ${errorMessage(error)}`);
      return textResponse(500, 'Internal error');
    }),
  );
  // The UI never loads from disk by URL: file:// is answered with a refusal for every page of this session.
  ses.protocol.handle('file', (request) => {
    log('warn', `refused file:// request: ${request.url}`);
    return textResponse(403, 'Forbidden');
  });
  // The renderer talks to nothing on the network: FHIR, MQTT and the store live in the main process.
  ses.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*', 'ftp://*/*'] }, (details, callback) => {
    log('warn', `refused renderer network request: ${details.url}`);
    callback({ cancel: true });
  });
  ses.setPermissionRequestHandler((_contents, permission, callback) => {
    log('warn', `refused permission request: ${permission}`);
    callback(false);
  });
  ses.setPermissionCheckHandler(() => false);
  ses.setDevicePermissionHandler(() => false);
  ses.on('will-download', (event, item) => {
    log('warn', `refused download: ${item.getURL()}`);
    event.preventDefault();
  });
}

const guarded = new WeakSet<WebContents>();

/** Applied to every web contents the app ever creates (our window, devtools, anything unexpected). */
function guardContents(contents: WebContents): void {
  if (guarded.has(contents)) return;
  guarded.add(contents);
  // No new windows: window.open and target=_blank return null. Nothing is ever handed to the OS shell.
  contents.setWindowOpenHandler(({ url }) => {
    log('warn', `refused window.open: ${url}`);
    return { action: 'deny' };
  });
  contents.on('will-navigate', (event) => {
    if (!isAppUrl(event.url)) {
      log('warn', `refused navigation: ${event.url}`);
      event.preventDefault();
    }
  });
  contents.on('will-frame-navigate', (event) => {
    if (!isAppUrl(event.url)) {
      log('warn', `refused frame navigation: ${event.url}`);
      event.preventDefault();
    }
  });
  contents.on('will-redirect', (event) => {
    if (!isAppUrl(event.url)) {
      log('warn', `refused redirect: ${event.url}`);
      event.preventDefault();
    }
  });
  contents.on('will-attach-webview', (event) => {
    log('warn', 'refused <webview>');
    event.preventDefault();
  });
}

// ---------------------------------------------------------------------------------------------
// Store key from the OS keychain
// ---------------------------------------------------------------------------------------------

function safeStorageKeyProvider(): SafeStorageKeyProvider {
  return {
    isProtected(): boolean {
      if (!safeStorage.isEncryptionAvailable()) return false;
      // On Linux without a keyring, safeStorage "encrypts" with a hard-coded password: no protection.
      if (process.platform === 'linux') {
        const backend = safeStorage.getSelectedStorageBackend();
        if (backend === 'basic_text' || backend === 'unknown') return false;
      }
      return true;
    },
    // safeStorage seals strings; base64 keeps arbitrary key bytes intact through the round trip.
    encrypt(plain: Buffer): Buffer {
      return safeStorage.encryptString(plain.toString('base64'));
    },
    decrypt(sealed: Buffer): Buffer {
      return Buffer.from(safeStorage.decryptString(sealed), 'base64');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Windows, connections and IPC
// ---------------------------------------------------------------------------------------------

interface WindowEntry {
  window: BrowserWindow;
  connection: Connection;
}

/** Our windows by webContents id. IPC from any other webContents is refused. */
const windows = new Map<number, WindowEntry>();

function connectionFor(contents: WebContents): Connection {
  return {
    id: `electron:${contents.id}`,
    kind: 'electron',
    source: 'electron',
    // Only our own windows (app://neuroward/, checked per IPC message) reach the dispatcher: no network path exists.
    launchVerified: true,
    send<E extends EventName>(event: E, payload: EventPayload<E>): void {
      if (contents.isDestroyed()) return;
      try {
        contents.send(ELECTRON_EVENT_CHANNEL, { event, payload });
      } catch (error) {
        log('error', `could not send ${event} to electron:${contents.id}: ${errorMessage(error)}`);
      }
    },
  };
}

/** Why a sender is refused, or null when it is our window's main frame showing our origin. */
function untrustedReason(event: IpcMainInvokeEvent): string | null {
  const frame = event.senderFrame;
  if (!frame) return 'no sender frame';
  const main = event.sender.mainFrame;
  const isMainFrame = frame === main || (frame.processId === main.processId && frame.frameToken === main.frameToken);
  if (!isMainFrame) return `sub-frame ${frame.url}`;
  if (!isAppUrl(frame.url)) return `foreign origin ${frame.url}`;
  const entry = windows.get(event.sender.id);
  if (!entry || entry.window.isDestroyed() || entry.window.webContents.id !== event.sender.id) return `unknown webContents ${event.sender.id}`;
  return null;
}

function requestBytes(payload: unknown): number | null {
  try {
    const json = JSON.stringify(payload ?? null) as string | undefined;
    return typeof json === 'string' ? Buffer.byteLength(json) : null;
  } catch {
    return null; // circular, BigInt, a throwing toJSON…
  }
}

function registerIpc(neuroward: NeurowardApp): void {
  for (const name of CHANNEL_NAMES) {
    ipcMain.handle(`${ELECTRON_INVOKE_PREFIX}${name}`, async (event: IpcMainInvokeEvent, payload: unknown): Promise<Envelope<unknown>> => {
      let reason: string | null;
      try {
        reason = untrustedReason(event);
      } catch (error) {
        reason = `sender could not be checked: ${errorMessage(error)}`; // e.g. destroyed mid-call
      }
      if (reason !== null) {
        log('warn', `refused IPC ${name} from an untrusted sender: ${reason}`);
        return forbidden('IPC from an untrusted sender');
      }
      const entry = windows.get(event.sender.id);
      if (!entry) return forbidden('IPC from an untrusted sender');
      const rawBytes = requestBytes(payload);
      if (rawBytes === null) return { ok: false, error: { code: 'bad-request', message: 'The request is not JSON-serialisable' } };
      try {
        return await neuroward.dispatch(entry.connection, name, payload, rawBytes);
      } catch (error) {
        // dispatch() is not supposed to throw; if it does, the page still gets an envelope, not a rejection.
        log('error', `dispatch of ${name} threw: ${errorMessage(error)}`);
        return { ok: false, error: { code: 'internal', message: 'Internal error' } };
      }
    });
  }
}

function createWindow(neuroward: NeurowardApp): BrowserWindow {
  const window = new BrowserWindow({
    title: APP_NAME,
    width: 1280,
    height: 800,
    minWidth: 1024,
    minHeight: 700,
    backgroundColor: '#0b1016',
    show: false,
    webPreferences: {
      preload: PRELOAD_PATH,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
      // Packaged builds have no DevTools (the nodeCliInspect fuse closes the main-process inspector too).
      devTools: !app.isPackaged,
    },
  });
  const contents = window.webContents;
  const contentsId = contents.id;
  guardContents(contents); // normally already done by web-contents-created; idempotent, so the window never depends on it
  const connection = connectionFor(contents);
  windows.set(contentsId, { window, connection });
  neuroward.connectionOpened(connection);
  contents.once('destroyed', () => {
    windows.delete(contentsId);
    neuroward.connectionClosed(connection.id);
  });
  contents.on('preload-error', (_event, preloadPath, error) => log('error', `preload ${preloadPath} failed: ${error.message}`));
  contents.on('render-process-gone', (_event, details) => log('error', `renderer process gone: ${details.reason} (exit code ${details.exitCode})`));
  window.once('ready-to-show', () => window.show());
  void window.loadURL(START_URL).catch((error: unknown) => log('error', `loading ${START_URL} failed: ${errorMessage(error)}`));
  return window;
}

// ---------------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------------

function fail(title: string, message: string): void {
  log('error', `${title}: ${message}`);
  dialog.showErrorBox(title, message);
  app.exit(1);
}

// Before `ready`, synchronously.
// Only our own Electron-ABI build may be loaded (set in start()): never a path inherited from the environment.
delete process.env.NEUROWARD_SQLITE_NATIVE_BINDING;
app.setName(APP_NAME);
if (process.platform === 'win32') app.setAppUserModelId(APP_ID);
app.enableSandbox();
protocol.registerSchemesAsPrivileged([
  { scheme: SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);
app.on('web-contents-created', (_event, contents) => guardContents(contents));

// Settings come after the executable (packaged) or after `electron dist/main/electron.js` (development).
const userArgs = process.argv.slice(app.isPackaged ? 1 : 2);
let config: AppConfig | null = null;
let configFailure: string | null = null;
try {
  config = loadConfig(userArgs, process.env);
} catch (error) {
  // A ConfigError names the bad setting and where it came from; shown once the app is ready.
  configFailure = errorMessage(error);
}

let gotLock = true;
if (config) {
  // Chromium's profile (cache, local storage) lives with the store, one profile per data directory;
  // the single-instance lock is taken on that profile, so one store is never opened twice.
  app.setPath('userData', path.join(config.dataDir, 'electron'));
  gotLock = app.requestSingleInstanceLock();
  if (!gotLock) {
    log('info', `another NeuroWard instance already uses ${config.dataDir}; handing over to it`);
    app.quit();
  }
}

let neurowardApp: NeurowardApp | null = null;
let closing = false;

app.on('second-instance', () => {
  const first = [...windows.values()][0]?.window;
  if (first && !first.isDestroyed()) {
    if (first.isMinimized()) first.restore();
    first.focus();
  }
});

app.on('window-all-closed', () => app.quit());

app.on('will-quit', (event) => {
  const running = neurowardApp;
  if (!running || closing) return;
  closing = true;
  event.preventDefault();
  running
    .close()
    .catch((error: unknown) => log('error', `closing the application failed: ${errorMessage(error)}`))
    .finally(() => {
      neurowardApp = null;
      app.quit();
    });
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.quit());

async function start(): Promise<void> {
  await app.whenReady();
  if (configFailure !== null || !config) {
    fail(`${APP_NAME}: configuration error`, configFailure ?? 'no configuration');
    return;
  }
  if (!gotLock) return;

  hardenSession(session.defaultSession);

  const missingBuild = [PRELOAD_PATH, path.join(RENDERER_ROOT, 'index.html')].filter((file) => !existsSync(file));
  if (missingBuild.length) {
    fail(
      `${APP_NAME}: build output missing`,
      app.isPackaged
        ? `This installation is incomplete (${missingBuild.join(', ')}). Reinstall NeuroWard.`
        : `Missing:\n${missingBuild.join('\n')}\n\nBuild first with:\n\n  node scripts/build.mjs`,
    );
    return;
  }

  const binding = electronNativeBindingPath();
  if (!existsSync(binding)) {
    fail(
      `${APP_NAME}: encrypted store module missing`,
      app.isPackaged
        ? `The SQLCipher module built for Electron is missing from this installation (${binding}). Reinstall NeuroWard.`
        : `The SQLCipher module built for Electron is missing:\n${binding}\n\nBuild it once with:\n\n  ${REBUILD_COMMAND}\n\nthen start NeuroWard again.`,
    );
    return;
  }
  process.env.NEUROWARD_SQLITE_NATIVE_BINDING = binding;

  let created: NeurowardApp;
  try {
    const { createApp } = await import('../app/app.js');
    created = await createApp({ config, host: 'electron', safeStorage: safeStorageKeyProvider() });
  } catch (error) {
    const message = errorMessage(error);
    const hint = /NODE_MODULE_VERSION|was compiled against a different/.test(message)
      ? `\n\nThe SQLCipher module was built for another Electron version. Rebuild it with:\n\n  ${REBUILD_COMMAND} --force`
      : '';
    fail(`${APP_NAME} could not start`, message + hint);
    return;
  }
  neurowardApp = created;
  for (const note of created.startupNotes) console.log(note);

  registerIpc(created);
  createWindow(created);
}

start().catch((error: unknown) => fail(`${APP_NAME} could not start`, errorMessage(error)));
