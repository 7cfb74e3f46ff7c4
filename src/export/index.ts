export { BatchQueue, type QueueStats } from './batch-queue.js';
export { RotatingFileSink, type RotatingFileOptions } from './file-sink.js';
export { StdoutSink, type StdoutSinkOptions } from './stdout-sink.js';
export { OtlpSink, logsUrl, type OtlpSinkOptions } from './otlp-sink.js';
export { toLogRecord, exportRequest, resourceAttributes, anyValue, severityOf } from './otlp-map.js';
export { SCHEMA_VERSION, hostIdentity } from './schema.js';
