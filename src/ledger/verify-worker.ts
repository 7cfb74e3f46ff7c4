import { parentPort } from 'node:worker_threads';
import { verifySegment, type SegmentTask } from './verify-segment.js';

/** Worker side of parallel full verification: verifies a batch of independent segments. */
interface Job { id: number; tasks: SegmentTask[] }

parentPort?.on('message', (job: Job) => {
  let done = 0;
  let reported = 0;
  for (const task of job.tasks) {
    const failure = verifySegment(task, (n) => {
      done += n;
      if (done - reported > 4 * 1024 * 1024) { parentPort!.postMessage({ id: job.id, progress: done - reported }); reported = done; }
    });
    if (failure) { parentPort!.postMessage({ id: job.id, failure, progress: done - reported }); return; }
  }
  parentPort!.postMessage({ id: job.id, failure: null, progress: done - reported });
});
