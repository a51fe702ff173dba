/**
 * The browser failover scenario (browser-failover.ts) behind nginx: nginx re-sends the listen
 * cut by the SIGKILL to another node, so the page never notices the kill.
 */
import { describeBrowserFailover } from './browser-failover.js';

describeBrowserFailover('nginx');
