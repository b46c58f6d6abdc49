/** Hash-based location (#/patients/…): survives reloads, works under app:// and http://. */
import { create } from 'zustand';

function currentPath(): string {
  const raw = window.location.hash.replace(/^#/, '');
  return raw.startsWith('/') ? raw : '/';
}

interface RouteState {
  path: string;
  segments: string[];
}

function parse(path: string): RouteState {
  return { path, segments: path.split('/').filter(Boolean).map(decodeURIComponent) };
}

export const useRoute = create<RouteState>()(() => parse(currentPath()));

window.addEventListener('hashchange', () => useRoute.setState(parse(currentPath())));

export function navigate(path: string): void {
  const target = path.startsWith('/') ? path : `/${path}`;
  if (currentPath() === target) return;
  window.location.hash = target;
}

export function href(path: string): string {
  return `#${path.startsWith('/') ? path : `/${path}`}`;
}
