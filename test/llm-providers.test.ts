import { describe, expect, it } from 'vitest';
import { ProviderTable } from '../src/sensor/llm.js';
import { runtimeSocket } from '../src/sensor/runtime-sockets.js';

describe('model provider classification', () => {
  const t = new ProviderTable();
  it('matches on DNS label boundaries only', () => {
    expect(t.classify('api.x.ai')).toBe('x_ai');
    expect(t.classify('box.ai')).toBeNull();
    expect(t.classify('api.x.ai.evil.example')).toBeNull();
    expect(t.classify('notapi.openai.com')).toBeNull();
    expect(t.classify('API.Anthropic.COM.')).toBe('anthropic');
    expect(t.classify('eu.api.openai.com')).toBe('openai');
  });
  it('knows the OpenTelemetry well-known values and label wildcards', () => {
    expect(t.classify('bedrock-runtime.us-east-1.amazonaws.com')).toBe('aws.bedrock');
    expect(t.classify('bedrock-runtime.amazonaws.com')).toBeNull();
    expect(t.classify('us-central1-aiplatform.googleapis.com')).toBe('gcp.vertex_ai');
    expect(t.classify('generativelanguage.googleapis.com')).toBe('gcp.gemini');
    expect(t.classify('myres.openai.azure.com')).toBe('azure.ai.openai');
    expect(t.classify('openrouter.ai')).toBe('openrouter');
    expect(t.classify('api.mistral.ai')).toBe('mistral_ai');
  });
  it('user rows extend and override the defaults', () => {
    const u = new ProviderTable([{ host: 'llm.corp.example', provider: 'corp' }, { host: 'api.openai.com', provider: 'proxy' }]);
    expect(u.classify('eu.llm.corp.example')).toBe('corp');
    expect(u.classify('api.openai.com')).toBe('proxy');
    expect(u.classify('api.anthropic.com')).toBe('anthropic');
  });
});

describe('runtime sockets', () => {
  it('names container runtime and init sockets by path and by file name', () => {
    expect(runtimeSocket('/var/run/docker.sock')).toBe('docker');
    expect(runtimeSocket('/tmp/x/docker.sock')).toBe('docker');
    expect(runtimeSocket('/run/containerd/containerd.sock')).toBe('containerd');
    expect(runtimeSocket('/run/systemd/private')).toBe('systemd');
    expect(runtimeSocket('/run/dbus/system_bus_socket')).toBe('dbus-system');
    expect(runtimeSocket('/run/user/1000/podman/podman.sock')).toBe('podman');
    expect(runtimeSocket('/tmp/docker.sock.bak')).toBeNull();
    expect(runtimeSocket('@docker.sock')).toBeNull();
    expect(runtimeSocket('/tmp/toString')).toBeNull();
  });
});

describe('provider rows from the manifest and the daemon config', () => {
  it('accepts host patterns and rejects anything else with the field path', async () => {
    const { manifestSchema } = await import('../src/manifest/schema.js');
    const { daemonConfigSchema } = await import('../src/config/schema.js');
    const m = manifestSchema.parse({ version: 1, agents: [], llm_providers: [{ host: 'llm.corp.example', provider: 'corp' }] });
    expect(m.llm_providers).toEqual([{ host: 'llm.corp.example', provider: 'corp' }]);
    expect(manifestSchema.parse({ version: 1, agents: [] }).llm_providers).toEqual([]);
    const bad = manifestSchema.safeParse({ version: 1, agents: [], llm_providers: [{ host: 'http://x/', provider: 'p' }] });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['llm_providers', 0, 'host']);
    expect(daemonConfigSchema.parse({ llmProviders: [{ host: '*.inference.example', provider: 'inf' }] }).llmProviders).toHaveLength(1);
  });
});
