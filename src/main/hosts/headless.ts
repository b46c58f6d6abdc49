/**
 * Browser mode: the same application behind HTTP + WebSocket on 127.0.0.1, serving the built renderer.
 * Only loopback, only our own origin: the Host header is checked (DNS rebinding) and so is the
 * WebSocket Origin (cross-site WebSocket hijacking). One WebSocket = one connection = at most one session.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { NeurowardApp, Connection } from '../app/types.js';
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
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.wav': 'audio/wav',
};

export interface HeadlessHost {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startHeadlessHost(app: NeurowardApp, options: { port: number; rendererDir: string; fallbackToRandomPort?: boolean }): Promise<HeadlessHost> {
  const rendererDir = path.resolve(options.rendererDir);
  let allowedHosts = new Set<string>();
  let origin = '';

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
      res.writeHead(421, { 'content-type': 'text/plain' }).end('Misdirected request: unknown Host');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', origin).pathname);
    const relative = urlPath === '/' ? 'index.html' : urlPath.replace(/^\/+/, '');
    const file = path.resolve(rendererDir, relative);
    if (!file.startsWith(rendererDir + path.sep)) {
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
      socket.write('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });

  let nextConnection = 1;
  wss.on('connection', (ws: WebSocket) => {
    const connection: Connection = {
      id: `ws:${nextConnection++}`,
      kind: 'ws',
      send<E extends EventName>(event: E, payload: EventPayload<E>) {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload } satisfies WsReply));
      },
    };
    app.connectionOpened(connection);
    const reply = (message: WsReply | { id: null; ok: false; error: { code: 'bad-request'; message: string } }) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
    };
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) return reply({ id: null, ok: false, error: { code: 'bad-request', message: 'Binary messages are not accepted.' } });
      let message: unknown;
      try {
        message = JSON.parse(bytes.toString('utf8'));
      } catch {
        return reply({ id: null, ok: false, error: { code: 'bad-request', message: 'The message is not valid JSON.' } });
      }
      const id = typeof message === 'object' && message !== null && 'id' in message ? (message as { id: unknown }).id : undefined;
      if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
        return reply({ id: null, ok: false, error: { code: 'bad-request', message: 'A request needs a numeric "id".' } });
      }
      const { channel, payload } = message as { channel?: unknown; payload?: unknown };
      void app.dispatch(connection, channel, payload, bytes.length).then((envelope) => reply({ id, ...envelope }));
    });
    ws.on('close', () => app.connectionClosed(connection.id));
    ws.on('error', () => ws.terminate());
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

  return {
    url: `${origin}/`,
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
