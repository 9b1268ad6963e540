// Imported first by the view's entry point: zod decides at schema construction whether to compile
// validators with `new Function`, which the strict CSP forbids (and reports even when the probe is caught).
import * as z from '../core/zod';

z.config({ jitless: true });
