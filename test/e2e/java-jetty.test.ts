/**
 * The sample Java application on Debian's Jetty 9 (javax.servlet), with a two-node epush
 * cluster on a private Redis: it notifies over HTTP (the Java client) and over JMS through a
 * private ActiveMQ, whose notify queue the nodes consume (`--jms-notify`, docs/jms.md).
 */
import { describeJavaAppScenario } from './java-app-scenario.js';

describeJavaAppScenario({ server: 'jetty9' });
