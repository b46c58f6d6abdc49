/**
 * Browser mode: the same application behind HTTP + WebSocket on 127.0.0.1, serving the built renderer.
 * Only loopback, only our own origin: the Host header is checked (DNS rebinding) and so is the
 * WebSocket Origin (cross-site WebSocket hijacking). One WebSocket = one connection = at most one session.
 *
 * Loopback is not one person: any local process can connect. So each launch has a secret (see
 * launch-secret.ts). The address the host prints carries it once (`/?launch=<secret>`); the page trades
 * it for an HttpOnly, SameSite=Strict cookie and is sent on without it. Every other HTTP request and
 * the WebSocket upgrade need that cookie; without it they get 401, audited once per source and window.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { NeurowardApp, Connection } from '../app/types.js';
import type { ErrorCode } from '../../shared/errors.js';
import { LAUNCH_QUERY, launchCookieName, sameSecret } from './launch-secret.js';
import { WS_PATH, type WsReply } from '../../shared/bridge.js';
import type { EventName, EventPayload } from '../../shared/ipc.js';
import { contentSecurityPolicy } from '../../shared/csp.js';

/** Above this the socket is closed (code 1009); each channel has its own, much smaller limit. */
export const WS_MAX_MESSAGE_BYTES = 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.wav': 'audio/wav',
};

export interface HeadlessHost {
  /** The plain address (http://127.0.0.1:PORT/): without the launch secret it answers 401. */
  readonly url: string;
  /** The address to open: it carries this launch's secret once. */
  readonly launchUrl: string;
  readonly port: number;
  close(): Promise<void>;
}

const UNAUTHORISED_PAGE = `<!doctype html><meta charset="utf-8"><title>NeuroWard</title>
<body style="font-family:sans-serif;background:#111;color:#eee;padding:2em">
<h1>Open NeuroWard from the address it printed</h1>
<p>This workstation accepts only the browser window opened with the address <code>npm start</code> printed when it started
(it carries a key for this launch). Open that address again; after a restart, use the new one.</p></body>`;

export async function startHeadlessHost(
  app: NeurowardApp,
  options: { port: number; rendererDir: string; launchSecret: string; fallbackToRandomPort?: boolean },
): Promise<HeadlessHost> {
  const rendererDir = path.resolve(options.rendererDir);
  const secret = options.launchSecret;
  let allowedHosts = new Set<string>();
  let origin = '';
  let cookieName = '';

  const sourceOf = (req: IncomingMessage) => `ws:${req.socket.remoteAddress ?? 'unknown'}`;
  const refuse = (req: IncomingMessage, action: string, code: ErrorCode, message: string, connection: string | null = null) =>
    app.hostRefusal({ source: sourceOf(req), connection, action, code, message });
  const hasLaunchCookie = (req: IncomingMessage): boolean => {
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const [name, ...value] = part.trim().split('=');
      if (name === cookieName && sameSecret(value.join('='), secret)) return true;
    }
    return false;
  };

  const server = createServer((req, res) => {
    void serveStatic(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end('internal error');
    });
  });

  async function serveStatic(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), usb=(), serial=()');
    if (!allowedHosts.has(req.headers.host ?? '')) {
      refuse(req, 'host.bad-host-header', 'forbidden', 'HTTP request with an unknown Host header (refused: 421)');
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Misdirected request: unknown Host');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let url: URL;
    let urlPath: string;
    try {
      url = new URL(req.url ?? '/', origin);
      urlPath = decodeURIComponent(url.pathname);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request');
      return;
    }
    const offered = url.searchParams.get(LAUNCH_QUERY);
    if (offered !== null) {
      if (!sameSecret(offered, secret)) {
        refuse(req, 'host.no-launch-secret', 'unauthenticated', 'wrong launch key in the address (refused: 401)');
        res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(UNAUTHORISED_PAGE);
        return;
      }
      // Trade the key in the address for a cookie the page cannot read, and drop it from the address bar and history.
      url.searchParams.delete(LAUNCH_QUERY);
      res.writeHead(303, {
        location: `${url.pathname}${url.search}`,
        'set-cookie': `${cookieName}=${secret}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    if (!hasLaunchCookie(req)) {
      refuse(req, 'host.no-launch-secret', 'unauthenticated', `HTTP request without this launch's key (refused: 401)`);
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(UNAUTHORISED_PAGE);
      return;
    }
    const relative = urlPath === '/' ? 'index.html' : urlPath.replace(/^\/+/, '');
    const file = path.resolve(rendererDir, relative);
    // Source maps are not served: they would hand any local page the whole source, for nothing a clinician needs.
    if (!file.startsWith(rendererDir + path.sep) || file.endsWith('.map')) {
      res.writeHead(404).end('not found');
      return;
    }
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(relative === 'index.html' ? 'The renderer is not built: run `npm run build`.' : 'not found');
      return;
    }
    const body = await readFile(file);
    const isHtml = file.endsWith('.html');
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': isHtml ? 'no-store' : 'private, max-age=3600',
      ...(isHtml ? { 'content-security-policy': contentSecurityPolicy([origin.replace(/^http/, 'ws')]) } : {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: WS_MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
  });
  server.on('upgrade', (req, socket, head) => {
    const requestPath = new URL(req.url ?? '/', 'http://x').pathname;
    const goodHost = allowedHosts.has(req.headers.host ?? '');
    const goodOrigin = req.headers.origin !== undefined && allowedHosts.has(req.headers.origin.replace(/^http:\/\//, ''));
    if (requestPath !== WS_PATH || !goodHost || !goodOrigin) {
      refuse(req, 'host.bad-origin', 'forbidden', `WebSocket upgrade refused (403): ${requestPath !== WS_PATH ? 'wrong path' : !goodHost ? 'unknown Host header' : 'foreign or missing Origin'}`);
      socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    if (!hasLaunchCookie(req)) {
      refuse(req, 'host.no-launch-secret', 'unauthenticated', `WebSocket upgrade without this launch's key (refused: 401)`);
      socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  let nextConnection = 1;
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const connection: Connection = {
      id: `ws:${nextConnection++}`,
      kind: 'ws',
      source: sourceOf(req),
      launchVerified: true,
      send<E extends EventName>(event: E, payload: EventPayload<E>) {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload } satisfies WsReply));
      },
    };
    app.connectionOpened(connection);
    const reply = (message: WsReply | { id: null; ok: false; error: { code: 'bad-request'; message: string } }) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    const badFrame = (message: string) => {
      refuse(req, 'ipc.bad-frame', 'bad-request', message, connection.id);
      reply({ id: null, ok: false, error: { code: 'bad-request', message } });
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) return badFrame('Binary messages are not accepted.');
      let message: unknown;
      try {
        message = JSON.parse(bytes.toString('utf8'));
      } catch {
        return badFrame('The message is not valid JSON.');
      }
      const fields = typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as Record<string, unknown>) : null;
      const id = fields && Object.prototype.hasOwnProperty.call(fields, 'id') ? fields['id'] : undefined;
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) return badFrame('A request needs a numeric "id".');
      const channel = Object.prototype.hasOwnProperty.call(fields, 'channel') ? fields!['channel'] : undefined;
      const payload = Object.prototype.hasOwnProperty.call(fields, 'payload') ? fields!['payload'] : undefined;
      // dispatch() never rejects; should that ever break, the caller still gets an answer and the host stays up.
      app
        .dispatch(connection, channel, payload, bytes.length)
        .then((envelope) => reply({ id, ...envelope }))
        .catch((error: unknown) => {
          console.error(`neuroward: a call on ${connection.id} failed outside the dispatcher: ${error instanceof Error ? error.message : typeof error}`);
          reply({ id, ok: false, error: { code: 'internal', message: 'NeuroWard could not complete this action; nothing was changed.' } });
        });
    });
    ws.on('close', () => app.connectionClosed(connection.id));
    // Protocol errors from the client (a frame over the size limit, bad framing): audited, socket closed.
    ws.on('error', (error: Error) => {
      refuse(req, 'ipc.bad-frame', 'bad-request', `WebSocket closed: ${error.message.slice(0, 200)}`, connection.id);
      ws.terminate();
    });
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const onError = (error: Error) => {
        server.off('listening', onListening);
        reject(error);
      };
      const onListening = () => {
        server.off('error', onError);
        const address = server.address();
        resolve(typeof address === 'object' && address ? address.port : port);
      };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(port, '127.0.0.1');
    });

  let port: number;
  try {
    port = await listen(options.port);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || !options.fallbackToRandomPort) throw error;
    port = await listen(0);
  }
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  origin = `http://127.0.0.1:${port}`;
  // Cookies are shared across ports of one host: the name carries the port so two hosts never collide.
  cookieName = launchCookieName(port);

  return {
    url: `${origin}/`,
    launchUrl: `${origin}/?${LAUNCH_QUERY}=${secret}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
