/**
 * The browser failover scenario (browser-failover.ts) behind Apache httpd: Apache does not
 * re-send the listen cut by the SIGKILL, so the browser client's own retry path must recover it.
 */
import { describeBrowserFailover } from './browser-failover.js';

describeBrowserFailover('apache');
