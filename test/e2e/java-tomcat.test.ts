/**
 * The sample Java application on Debian's Tomcat 10 (jakarta.servlet), with a two-node epush
 * cluster on a private ActiveMQ: it notifies over HTTP (the Java client) and over JMS (the
 * STOMP backplane's notify ingress; only that backplane has one, docs/jms.md).
 */
import { describeJavaAppScenario } from './java-app-scenario.js';

describeJavaAppScenario({ server: 'tomcat10', backplane: 'stomp' });
