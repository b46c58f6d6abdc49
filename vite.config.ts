import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The renderer is served by both hosts from dist/renderer: Electron through the app:// protocol,
// the headless host over http://127.0.0.1. Relative base keeps both working.
export default defineConfig({
  root: 'src/renderer',
  base: './',
  plugins: [react()],
  build: {
    outDir: '../../dist/renderer',
    emptyOutDir: true,
    sourcemap: true,
    // No inline scripts or styles: the CSP is script-src 'self'; style-src 'self'.
    assetsInlineLimit: 0,
    target: 'chrome120',
  },
});
