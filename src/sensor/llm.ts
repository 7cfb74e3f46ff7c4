/**
 * Which model provider a host name belongs to: a data table of host
 * patterns matched on DNS label boundaries (`api.x.ai` is x_ai, `box.ai`
 * is not), longest pattern first. A pattern is a host name whose labels may
 * contain `*` (any run of characters inside one label); it matches the host
 * itself and every name below it. Values of `gen_ai.provider.name` are
 * OpenTelemetry's well-known ones where one exists.
 * Users extend the table through the config (`llm_providers`) or by passing
 * their own rows to `ProviderTable`.
 */

import { z } from 'zod';

/** A user row (manifest `llm_providers`, daemon config `llmProviders`): host pattern labels of [a-z0-9-*]. */
export const providerRuleSchema = z.strictObject({
  host: z.string().regex(/^(?=.{1,253}$)([a-z0-9*-]{1,63})(\.[a-z0-9*-]{1,63})*\.?$/i, 'a host name whose labels may contain *'),
  provider: z.string().min(1).max(64),
});

export interface ProviderRule {
  /** e.g. 'api.openai.com', 'bedrock-runtime.*.amazonaws.com' */
  host: string;
  /** gen_ai.provider.name */
  provider: string;
}

export const DEFAULT_PROVIDERS: readonly ProviderRule[] = [
  { host: 'api.openai.com', provider: 'openai' },
  { host: 'api.anthropic.com', provider: 'anthropic' },
  { host: 'generativelanguage.googleapis.com', provider: 'gcp.gemini' },
  { host: 'aiplatform.googleapis.com', provider: 'gcp.vertex_ai' },
  { host: '*-aiplatform.googleapis.com', provider: 'gcp.vertex_ai' },
  { host: 'openai.azure.com', provider: 'azure.ai.openai' },
  { host: 'services.ai.azure.com', provider: 'azure.ai.inference' },
  { host: 'bedrock-runtime.*.amazonaws.com', provider: 'aws.bedrock' },
  { host: 'bedrock.*.amazonaws.com', provider: 'aws.bedrock' },
  { host: 'api.mistral.ai', provider: 'mistral_ai' },
  { host: 'api.cohere.com', provider: 'cohere' },
  { host: 'api.cohere.ai', provider: 'cohere' },
  { host: 'api.groq.com', provider: 'groq' },
  { host: 'api.deepseek.com', provider: 'deepseek' },
  { host: 'api.x.ai', provider: 'x_ai' },
  { host: 'api.perplexity.ai', provider: 'perplexity' },
  { host: 'us-south.ml.cloud.ibm.com', provider: 'ibm.watsonx.ai' },
  { host: 'openrouter.ai', provider: 'openrouter' },
  { host: 'api.together.xyz', provider: 'together' },
  { host: 'api.together.ai', provider: 'together' },
  { host: 'api.fireworks.ai', provider: 'fireworks' },
];

interface Compiled { labels: (string | RegExp)[]; provider: string }

function compile(rule: ProviderRule): Compiled {
  const labels = rule.host.toLowerCase().replace(/\.$/, '').split('.').map((l) =>
    l.includes('*') ? new RegExp(`^${l.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')).join('[^.]*')}$`) : l);
  return { labels, provider: rule.provider };
}

function matches(c: Compiled, host: string[]): boolean {
  if (host.length < c.labels.length) return false;
  const off = host.length - c.labels.length;
  for (let i = 0; i < c.labels.length; i++) {
    const p = c.labels[i]!;
    const h = host[off + i]!;
    if (typeof p === 'string' ? p !== h : !p.test(h)) return false;
  }
  return true;
}

export class ProviderTable {
  private readonly rules: Compiled[];
  private readonly cache = new Map<string, string | null>();

  /** user rows are tried before the defaults; among each, more labels first */
  constructor(extra: readonly ProviderRule[] = [], defaults: readonly ProviderRule[] = DEFAULT_PROVIDERS) {
    const byLength = (a: Compiled, b: Compiled): number => b.labels.length - a.labels.length;
    this.rules = [...extra.map(compile).sort(byLength), ...defaults.map(compile).sort(byLength)];
  }

  /** gen_ai.provider.name for a host, null when none matches */
  classify(host: string): string | null {
    const key = host.toLowerCase().replace(/\.$/, '');
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit;
    const labels = key.split('.');
    let found: string | null = null;
    for (const r of this.rules) {
      if (matches(r, labels)) {
        found = r.provider;
        break;
      }
    }
    if (this.cache.size >= 4096) this.cache.clear();
    this.cache.set(key, found);
    return found;
  }
}
