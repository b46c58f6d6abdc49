/**
 * Imported first by main.tsx. The CSP forbids eval; zod would otherwise probe `new Function` on its
 * first object parse and trigger a CSP violation report. Jitless parsing needs no eval.
 */
import { z } from 'zod';

z.config({ jitless: true });
