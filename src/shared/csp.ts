/**
 * The one Content-Security-Policy of the renderer, for both hosts. No inline script or style;
 * 'wasm-unsafe-eval' lets WebAssembly (tfjs-wasm, image codecs) compile, which is not eval of strings.
 * `extraConnect` is the headless host's own ws:// origin.
 */
export function contentSecurityPolicy(extraConnect: string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    ["connect-src 'self'", ...extraConnect].join(' '),
    "worker-src 'self' blob:",
    "media-src 'self' blob: data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
