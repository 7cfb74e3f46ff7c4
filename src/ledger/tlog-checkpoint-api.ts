/** The public `checkpoint` namespace: c2sp.org/tlog-checkpoint format and strict parse. */
export { format, parse, type Checkpoint } from './tlog-checkpoint.js';
