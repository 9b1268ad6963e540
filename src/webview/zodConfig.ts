// Imported first by the view's entry point: zod decides at schema construction whether to compile
// validators with `new Function`, which the strict CSP forbids (and reports even when the probe is caught).
import { z } from 'zod';

z.config({ jitless: true });
