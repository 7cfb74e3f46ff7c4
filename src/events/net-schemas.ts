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
  const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
  const bodyKeys = (side: 'request' | 'response') => ({
    [`witness.http.${side}.body_bytes`]: count.optional(),
    [`witness.http.${side}.body_sha256`]: sha256.optional(),
    [`witness.http.${side}.scan_error`]: z.string().optional(),
    [`witness.http.${side}.body`]: z.string().optional(),
  });
  const httpShape = {
    ...common,
    'network.protocol.name': z.literal('http'),
    'network.protocol.version': z.enum(['1.1', '2']),
    'url.scheme': z.literal('https'),
    'http.request.method': z.string().min(1).optional(),
    'server.address': z.string().min(1).optional(),
    'server.port': port.optional(),
    'url.path': z.string().optional(),
    'witness.url.query_sha256': sha256.optional(),
    'url.query': z.string().optional(),
    'witness.http.stream_id': u32.optional(),
    'http.response.status_code': z.number().int().min(100).max(999).optional(),
    'witness.http.request.header_names': z.array(z.string()).optional(),
    'gen_ai.request.model': z.string().optional(),
    'gen_ai.usage.input_tokens': count.optional(),
    'gen_ai.usage.output_tokens': count.optional(),
    ...bodyKeys('request'),
    ...bodyKeys('response'),
    'witness.http.reset_code': u32.optional(),
    'witness.http.incomplete': z.string().optional(),
    'witness.tls.ssl': z.string().regex(/^0x[0-9a-f]+$/),
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
      // --tls-metadata (docs/privacy.md): metadata of one HTTP exchange; content keys only with --tls-content
      'tls.http_request': z.object(httpShape).catchall(z.array(z.string())).superRefine((a, ctx) => {
        // the only open-ended keys are --tls-content's request header values
        for (const k of Object.keys(a)) if (!(k in httpShape) && !k.startsWith('http.request.header.')) ctx.addIssue({ code: 'custom', message: `unknown key ${k}` });
      }),
      'tls.probe': z.object({
        'process.pid': u32,
        'witness.tls.probe.path': z.string().min(1),
        'witness.tls.probe.library': z.enum(['openssl', 'imports_openssl', 'gnutls', 'go', 'rustls', 'boringssl', 'none', 'not_elf', 'unreadable']),
        'witness.tls.probe.attached': z.array(z.enum(['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex'])),
        'witness.tls.probe.reason': z.string(),
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
