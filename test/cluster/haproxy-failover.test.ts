import { describeFailoverBehind } from './balancer-failover.js';

describeFailoverBehind('haproxy');
