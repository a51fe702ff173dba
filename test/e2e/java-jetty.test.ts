/**
 * The sample Java application on Debian's Jetty 9 (javax.servlet), with a two-node epush
 * cluster on a private Redis: it notifies over HTTP through the Java client.
 */
import { describeJavaAppScenario } from './java-app-scenario.js';

describeJavaAppScenario({ server: 'jetty9', backplane: 'redis' });
