import { z } from 'zod';

/**
 * Attribute shapes of the network-depth events (docs/ndjson.md). `common`
 * is schemas.ts's (header + attribution keys), passed in to keep one source.
 */
export function netDepthSchemas(common: z.ZodRawShape) {
  const u32 = z.number().int().min(0).max(0xffff_ffff);
  const port = z.number().int().min(0).max(0xffff);
  const result = z.number().int();
  const count = z.number().int().min(0);
  const msOrNull = z.number().min(0).nullable();
  const networkType = z.enum(['ipv4', 'ipv6']).nullable();
  const serverAddress = {
    'server.address': z.string().min(1).optional(),
    'witness.server.address.source': z.enum(['dns', 'tls']).optional(),
  };
  const close = {
    ...common,
    'network.transport': z.literal('tcp'),
    'network.type': networkType,
    'network.peer.address': z.string().nullable(),
    'network.peer.port': port,
    'witness.fd': u32,
    'witness.conn.end': z.string(),
    'witness.conn.tx_bytes': count,
    'witness.conn.rx_bytes': count,
    'witness.conn.tx_calls': count,
    'witness.conn.rx_calls': count,
    'witness.conn.duration_ms': msOrNull,
    'witness.conn.first_byte_ms': msOrNull,
    'witness.conn.ttfb_ms': msOrNull,
    ...serverAddress,
  };
  const listen = {
    ...common,
    'network.transport': z.enum(['tcp', 'udp', 'raw', 'unknown']),
    'network.type': networkType,
    'network.local.address': z.string().nullable(),
    'network.local.port': port,
    'witness.result': result,
    'witness.fd': u32,
  };
  const unix = {
    'network.transport': z.literal('unix'),
    'network.peer.address': z.string(),
    'witness.unix.path_source': z.enum(['kernel', 'user']),
    'witness.result': result,
  };
  return {
    serverAddress,
    sensor: {
      'dns.answer': z.object({
        ...common,
        'dns.question.name': z.string().nullable(),
        'dns.answers': z.array(z.string()),
        'witness.dns.cnames': z.array(z.string()),
        'witness.dns.ttl': u32.nullable(),
        'witness.dns.id': z.number().int().min(0).max(0xffff).nullable(),
        'witness.dns.rcode': z.number().int().min(0).max(15).nullable(),
        'witness.dns.truncated': z.boolean(),
        'witness.dns.syscall': z.string(),
        'witness.fd': u32,
        'witness.dns.parse_error': z.string().optional(),
      }).strict(),
      'network.close': z.object(close).strict(),
      'network.unix_connect': z.object({
        ...common,
        ...unix,
        'witness.unix.abstract': z.boolean(),
        'witness.unix.sock_type': z.string(),
        'witness.fd': u32,
      }).strict(),
      'network.listen': z.object({ ...listen, 'witness.listen.backlog': u32 }).strict(),
      'network.accept': z.object({ ...listen, 'network.peer.address': z.string().nullable(), 'network.peer.port': port }).strict(),
    },
    derived: {
      'tls.client_hello': z.object({
        ...common,
        'network.transport': z.literal('tcp'),
        'network.peer.address': z.string().nullable(),
        'network.peer.port': port,
        'witness.fd': u32,
        'witness.tls.captured_bytes': count,
        'witness.tls.writes': count,
        'server.address': z.string().optional(),
        'tls.client.ja4': z.string().regex(/^[tq](13|12|11|10|s3|s2|s1|00)[di]\d{4}[0-9a-zA-Z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/).optional(),
        'witness.tls.ja4_r': z.string().optional(),
        'witness.tls.alpn': z.array(z.string()).optional(),
        'witness.tls.versions': z.array(z.string()).optional(),
        'witness.tls.cipher_count': count.optional(),
        'witness.tls.extension_count': count.optional(),
        'witness.tls.parse_error': z.enum(['not_tls', 'not_client_hello', 'incomplete', 'malformed']).optional(),
        'witness.tls.parse_detail': z.string().optional(),
      }).strict(),
      'llm.call': z.object({
        ...close,
        'server.address': z.string().min(1),
        'gen_ai.provider.name': z.string().min(1),
        'witness.llm.request_bytes': count,
        'witness.llm.response_bytes': count,
        'witness.llm.ttft_ms': msOrNull,
        'witness.llm.duration_ms': msOrNull,
      }).strict(),
      'finding.runtime_socket': z.object({
        ...common,
        ...unix,
        'witness.finding.runtime': z.string().min(1),
        'witness.finding.source_event': z.literal('network.unix_connect'),
        'witness.finding.reason': z.string().min(1),
      }).strict(),
    },
  };
}
