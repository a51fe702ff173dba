import { describeFailoverBehind } from './balancer-failover.js';

describeFailoverBehind('apache');
